"""The flip scores an active evaluation draws by, from the baseline run's stored answers (no candidate data).

For a multiple-choice item the baseline's margin, the log-likelihood of its chosen choice minus the
runner-up's, says how near it was to answering otherwise: a candidate that shifts log-likelihoods a little
flips the small-margin items first. For a generated answer there is no margin; its length stands in (a long
generation has more tokens that a candidate can change). Either is turned into a score r >= 0, larger for a
likelier flip, that `harness.inference.active.proposal` mixes with the uniform distribution under a floor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from harness.data.runfile import SampleRow
from harness.data.runs import Run

SIGNALS = ("margin", "length", "none")
ESTIMATORS = ("importance", "difference")  # how an active run's task is judged (runs without one: importance)


def baseline_rows(run: Run) -> dict[tuple[str, str, str], SampleRow]:
    """The baseline's unperturbed rows by (suite, task, item id): what the flip scores, the signs and the
    fingerprint of an active run read (the last row of an item wins, the same at planning and at judging)."""
    return {(s["suite"], s["task"], str(s.get("source_id") or s["sample_id"])): s for s in run.samples
            if not s.get("perturbation")}


def fingerprint(items: Iterable[str], rows: Sequence[SampleRow | None]) -> str:
    """sha256 of the baseline's per-item scores over a task's population (item ids in population order, None
    for an item it lacks): the difference estimator reads its signs from them, so a different baseline is
    refused rather than judged with another control variate."""
    payload = [[item, None if row is None else row.get("scores")] for item, row in zip(items, rows)]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def margin_scores(margins: ArrayLike) -> np.ndarray:
    """r_i = exp(−m_i / median m): 1 at a tie, 1/e at the median margin; scale-free across tasks and models.
    Margins are clipped at 0; a task whose median margin is 0 gets r = 1 where m = 0, else 0."""
    m = np.clip(np.asarray(margins, dtype=float), 0.0, None)
    scale = float(np.median(m)) if m.size else 0.0
    if scale <= 0:
        return (m <= 0).astype(float)
    return np.exp(-m / scale)


def length_scores(lengths: ArrayLike) -> np.ndarray:
    """r_i = length_i / median length (all 1 when every length is 0)."""
    n = np.asarray(lengths, dtype=float)
    scale = float(np.median(n)) if n.size else 0.0
    return n / scale if scale > 0 else np.ones(n.size)


def margin_of(row: SampleRow) -> float | None:
    """The chosen choice's log-likelihood minus the runner-up's, or None without two finite log-likelihoods."""
    ll = [x for x in (row.get("logliks") or []) if x is not None and np.isfinite(x)]
    if len(ll) < 2:
        return None
    top = sorted(ll, reverse=True)
    return float(top[0] - top[1])


def flip_scores(rows: Sequence[SampleRow | None]) -> tuple[np.ndarray, str]:
    """(r per item, the signal used) for one task's baseline rows in population order (None: an item the
    baseline lacks; it gets the median score, neither favoured nor avoided).

    The margin when every row that exists has one; otherwise the response length; "none" (uniform) when
    neither exists."""
    have = [r for r in rows if r is not None]
    margins = [margin_of(r) for r in have]
    if have and all(m is not None for m in margins):
        known, signal = margin_scores(np.array(margins, dtype=float)), "margin"
    elif have and all(isinstance(r.get("response"), str) for r in have):
        known, signal = length_scores([len(str(r.get("response"))) for r in have]), "length"
    else:
        return np.ones(len(rows)), "none"
    fill = float(np.median(known))
    it = iter(known)
    return np.array([next(it) if r is not None else fill for r in rows], dtype=float), signal


def active_refusal(kind: str, pooled: bool) -> str | None:
    """Why a rule cannot be judged on an active run (None: it can).

    An active run's draws estimate each task's paired difference by importance weights; a pooled (micro) mean
    over tasks drawn each by its own proposal, the candidate's own score (a floor) and robustness drops are not
    what the weights estimate, so those rules need a uniform or complete run."""
    if kind not in ("non_inferiority", "superiority", "max_general_drop"):
        return f"a {kind} rule reads more than the paired difference per task that an active run estimates"
    if pooled:
        return "a pooled (micro) rule over several tasks mixes tasks drawn by different proposals"
    return None
