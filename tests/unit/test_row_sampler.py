"""Sampled generation draws each row from its own seeded generator (harness.models.hf._RowSampler): greedy
decoding over the warped scores plus Gumbel noise is an exact draw from the distribution transformers' sampler
draws from (temperature, then top-p)."""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from harness.core.api import GenSettings
from harness.models.hf import _RowSampler

LOGITS = torch.tensor([2.0, 1.5, 0.5, 0.0, -1.0, -3.0])


def _expected(temperature: float, top_p: float) -> np.ndarray:
    """transformers' sampling distribution: its own warpers, then the softmax."""
    from transformers import TemperatureLogitsWarper, TopPLogitsWarper

    scores = TemperatureLogitsWarper(temperature)(None, LOGITS[None].clone())
    if top_p < 1:
        scores = TopPLogitsWarper(top_p)(None, scores)
    return torch.softmax(scores, -1)[0].double().numpy()


def _draws(temperature: float, top_p: float, rows: int = 2000, steps: int = 10) -> np.ndarray:
    sampler = _RowSampler(GenSettings(temperature=temperature, top_p=top_p), list(range(rows)))
    counts = np.zeros(len(LOGITS))
    for _ in range(steps):  # each step advances every row's generator
        picks = sampler(None, LOGITS.repeat(rows, 1)).argmax(-1)
        counts += np.bincount(picks.numpy(), minlength=len(LOGITS))
    return counts


def test_the_draws_follow_transformers_sampling_distribution() -> None:
    for temperature, top_p in [(1.0, 1.0), (0.7, 1.0), (0.9, 0.8)]:
        expected = _expected(temperature, top_p)
        counts = _draws(temperature, top_p)
        kept = expected > 0
        assert counts[~kept].sum() == 0  # top-p's excluded tokens are never drawn
        test = stats.chisquare(counts[kept], counts.sum() * expected[kept] / expected[kept].sum())
        assert test.pvalue > 1e-3, (temperature, top_p, counts, expected)


def test_a_rows_draws_depend_on_its_seed_only() -> None:
    settings = GenSettings(temperature=1.0)
    alone = _RowSampler(settings, [42])(None, LOGITS[None].clone())
    batch = _RowSampler(settings, [7, 42, 9])(None, LOGITS.repeat(3, 1))
    assert torch.equal(batch[1], alone[0])
    assert not torch.equal(batch[0], batch[1])
