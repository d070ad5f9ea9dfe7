"""Paired statistics for comparing two runs sample by sample. Pure functions, seeded, vectorised."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import stats as sps

Stat = Literal["mean", "median"]
ALPHA = 0.05  # every interval here is a two-sided 95% interval
_CHUNK_ELEMENTS = 4_000_000  # bound memory: resamples are drawn in blocks of about this many indices


def _pairs(base: Sequence[float], cand: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(base, dtype=float)
    c = np.asarray(cand, dtype=float)
    if b.shape != c.shape or b.ndim != 1:
        raise ValueError(f"paired samples need equal 1-d shapes, got {b.shape} and {c.shape}")
    if b.size == 0:
        raise ValueError("paired samples are empty")
    return b, c


def bootstrap_deltas(base: Sequence[float], cand: Sequence[float], *, n_resamples: int = 10_000,
                     seed: int = 0, stat: Stat = "mean") -> np.ndarray:
    """The bootstrap distribution of stat(cand) - stat(base), resampling pairs (not runs) jointly."""
    b, c = _pairs(base, cand)
    n = b.size
    rng = np.random.default_rng(seed)
    diff = c - b  # a - b == -(b - a) exactly in IEEE arithmetic, so swapping runs negates exactly
    out = np.empty(n_resamples)
    step = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, step):
        stop = min(n_resamples, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        if stat == "mean":
            out[start:stop] = diff[idx].mean(axis=1)
        elif stat == "median":
            out[start:stop] = np.median(c[idx], axis=1) - np.median(b[idx], axis=1)
        else:
            raise ValueError(f"unknown statistic {stat!r}")
    return out


def point_delta(base: Sequence[float], cand: Sequence[float], stat: Stat = "mean") -> float:
    """stat(cand) - stat(base) on the paired samples."""
    b, c = _pairs(base, cand)
    if stat == "mean":
        return float((c - b).mean())
    return float(np.median(c) - np.median(b))


def paired_bootstrap(base: Sequence[float], cand: Sequence[float], *, n_resamples: int = 10_000,
                     seed: int = 0, stat: Stat = "mean") -> tuple[float, float, float]:
    """Delta (cand - base) with a 95% percentile paired-bootstrap interval: (delta, lo, hi)."""
    delta = point_delta(base, cand, stat)
    boots = bootstrap_deltas(base, cand, n_resamples=n_resamples, seed=seed, stat=stat)
    lo, hi = np.quantile(boots, [ALPHA / 2, 1 - ALPHA / 2])
    # Percentile intervals can miss the estimate by rounding (or for a very skewed median); widen to it.
    return delta, float(min(lo, delta)), float(max(hi, delta))


def bootstrap_p_below(base: Sequence[float], cand: Sequence[float], threshold: float, *,
                      n_resamples: int = 10_000, seed: int = 0, stat: Stat = "mean") -> float:
    """One-sided bootstrap p-value for H0: delta <= threshold (the share of resampled deltas at or below it).

    It is dual to `paired_bootstrap`: p < 0.025 exactly when the 95% interval's lower bound exceeds
    the threshold (up to quantile interpolation), so it is the p-value of the gate's interval rules.
    """
    boots = bootstrap_deltas(base, cand, n_resamples=n_resamples, seed=seed, stat=stat)
    return float(np.mean(boots <= threshold))


def sign_flip_pvalue(base: Sequence[float], cand: Sequence[float], *, n_resamples: int = 10_000,
                     seed: int = 0) -> float:
    """Two-sided paired permutation p-value for a mean difference of continuous scores.

    Under H0 each pair's difference is symmetric around 0, so its sign is exchangeable. Exact
    enumeration when 2**n <= n_resamples, otherwise Monte Carlo with the (1 + k) / (1 + R) correction.
    """
    b, c = _pairs(base, cand)
    diff = c - b
    observed = abs(diff.mean())
    tol = 1e-12 * max(1.0, observed)  # ties with the observed statistic count as extreme
    n = diff.size
    if 2 ** n <= n_resamples:
        signs = 1 - 2 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)
        return float(np.mean(np.abs((signs * diff).mean(axis=1)) >= observed - tol))
    rng = np.random.default_rng(seed)
    extreme = 0
    step = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, step):
        rows = min(step, n_resamples - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(rows, n))
        extreme += int(np.sum(np.abs((signs * diff).mean(axis=1)) >= observed - tol))
    return (1 + extreme) / (1 + n_resamples)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar test: b and c are the discordant counts (right→wrong, wrong→right)."""
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n = b + c
    if n == 0:
        return 1.0
    # Under H0 the discordant pairs split Binomial(n, 1/2); the distribution is symmetric, so the
    # two-sided p-value is twice the smaller tail.
    return float(min(1.0, 2.0 * sps.binom.cdf(min(b, c), n, 0.5)))


def discordant(base: Sequence[float], cand: Sequence[float]) -> tuple[int, int]:
    """(b, c) for binary paired scores: b = right→wrong, c = wrong→right."""
    bb, cc = _pairs(base, cand)
    return int(np.sum((bb == 1) & (cc == 0))), int(np.sum((bb == 0) & (cc == 1)))


def is_binary(*arrays: Sequence[float]) -> bool:
    """True when every value is 0 or 1."""
    return all(np.isin(np.asarray(a, dtype=float), (0.0, 1.0)).all() for a in arrays)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni step-down adjusted p-values, in the input order."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    stepped = (m - np.arange(m)) * p[order]
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate(stepped))
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted.tolist()


def non_inferior(lo: float, margin: float) -> bool:
    """Non-inferior at 95%: the interval's lower bound lies above -margin."""
    return lo > -margin


def superior(lo: float) -> bool:
    """Superior at 95%: the interval's lower bound lies above 0."""
    return lo > 0.0
