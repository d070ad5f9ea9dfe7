"""BLEU, chrF and TER from per-sample statistics agree with sacrebleu's own corpus scores."""

from __future__ import annotations

import random

import pytest

from harness.scoring import metrics

WORDS = "the a cat dog sat ran on under mat rug quickly, slowly. (yes) no!".split()


def _items(seed: int, n: int) -> list[metrics.ScoreInput]:
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 12)))

    return [metrics.ScoreInput(target=[sentence() for _ in range(rng.randint(1, 3))], response=sentence())
            for _ in range(n)]


@pytest.mark.parametrize("seed", range(5))
def test_chrf_from_summed_statistics_is_sacrebleus_corpus_chrf(seed: int) -> None:
    from sacrebleu.metrics import CHRF

    items = _items(seed, 40)
    metric = metrics.REGISTRY["chrf"]
    assert metric.corpus_stats is not None and metric.from_stats is not None
    ours = metric.from_stats(metric.corpus_stats(items).sum(axis=0))
    assert ours == pytest.approx(CHRF().corpus_score(*metrics._corpus_refs(items)).score, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_bleu_from_summed_statistics_is_sacrebleus_corpus_bleu(seed: int) -> None:
    from sacrebleu.metrics import BLEU

    items = _items(seed, 40)
    metric = metrics.REGISTRY["bleu"]
    assert metric.corpus_stats is not None and metric.from_stats is not None
    ours = metric.from_stats(metric.corpus_stats(items).sum(axis=0))
    assert ours == pytest.approx(BLEU().corpus_score(*metrics._corpus_refs(items)).score, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_ter_from_summed_statistics_is_sacrebleus_corpus_ter(seed: int) -> None:
    from sacrebleu.metrics import TER

    items = _items(seed, 40)
    metric = metrics.REGISTRY["ter"]
    assert metric.corpus_stats is not None and metric.from_stats is not None and not metric.higher_is_better
    ours = metric.from_stats(metric.corpus_stats(items).sum(axis=0))
    assert ours == pytest.approx(TER().corpus_score(*metrics._corpus_refs(items)).score, abs=1e-9)
