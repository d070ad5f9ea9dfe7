"""Agreement and preference statistics: Krippendorff's alpha, Cohen's kappa, BCa and cluster bootstrap
intervals, t intervals and Bradley-Terry strengths.

Pure functions of values: the review app's summary (harness.review.summary) and the judge-human calibration
(harness.decide.calibration) both use them, so each statistic is written once.

- alpha: Krippendorff's alpha (tested on Krippendorff's 2011 worked example) with the interval or nominal metric.
- kappa: Cohen's (1960) unweighted kappa, via statsmodels (tested on a textbook example).
- BCa bootstrap over items (Efron 1987, JASA 82:171-185; scipy.stats.bootstrap), resampling whole items.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

N_BOOT = 2000
SEED = 0


# ---- statistics -------------------------------------------------------------------------------------------
def cluster_bootstrap_ci(values_by_cluster: list[list[float]], *, n_resamples: int = N_BOOT,
                         seed: int = SEED) -> tuple[float, float]:
    """Percentile 95% interval of the pooled mean, resampling clusters (items judged by several reviewers)."""
    sums = np.array([sum(v) for v in values_by_cluster], dtype=float)
    counts = np.array([len(v) for v in values_by_cluster], dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(sums), size=(n_resamples, len(sums)))
    means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def t_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """95% t interval of a mean (None for fewer than two values)."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        return None
    half = float(sps.t.ppf(0.975, arr.size - 1) * arr.std(ddof=1) / math.sqrt(arr.size))
    mean = float(arr.mean())
    return mean - half, mean + half


def bradley_terry(comparisons: Sequence[tuple[int, int, float]], n_models: int, *, prior: float = 0.5,
                  iterations: int = 500) -> np.ndarray:
    """Log-strengths (mean 0) from (i, j, score of i) comparisons by Hunter's MM algorithm.

    `prior` adds that many virtual wins each way to every compared pair, so a model that never lost
    still gets a finite strength.
    """
    wins = np.zeros((n_models, n_models))
    for i, j, s in comparisons:
        wins[i, j] += s
        wins[j, i] += 1.0 - s
    played = wins + wins.T
    wins = wins + prior * (played > 0)
    games = wins + wins.T
    p = np.ones(n_models)
    for _ in range(iterations):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1)
        new = np.where(denom > 0, wins.sum(axis=1) / np.where(denom > 0, denom, 1.0), p)
        new = new / math.exp(float(np.mean(np.log(new))))
        if np.max(np.abs(new - p)) < 1e-10:
            p = new
            break
        p = new
    logp = np.log(p)
    return logp - logp.mean()


def krippendorff_alpha(units: Sequence[Sequence[Hashable]], distance: Callable[[Any, Any], float]) -> float | None:
    """Krippendorff's alpha over units (each: the values its reviewers gave); None when undefined."""
    pairable = [list(u) for u in units if len(u) >= 2]
    coincidence: dict[tuple[Any, Any], float] = defaultdict(float)
    for values in pairable:
        for a, b in itertools.permutations(range(len(values)), 2):
            coincidence[(values[a], values[b])] += 1.0 / (len(values) - 1)
    totals: dict[Any, float] = defaultdict(float)
    for (c, _k), w in coincidence.items():
        totals[c] += w
    n = sum(totals.values())
    if n <= 1:
        return None
    observed = sum(w * distance(c, k) for (c, k), w in coincidence.items()) / n
    expected = sum(totals[c] * totals[k] * distance(c, k) for c in totals for k in totals) / (n * (n - 1))
    return None if expected == 0 else 1.0 - observed / expected


def nominal(a: Any, b: Any) -> float:
    return 0.0 if a == b else 1.0


def interval(a: Any, b: Any) -> float:
    return (float(a) - float(b)) ** 2


# ---- the summary ------------------------------------------------------------------------------------------

GRID = (1, 2, 3, 4, 5)  # the review app's rating scale


def cohen_kappa(pairs: Sequence[tuple[int, int]], categories: Sequence[int] = GRID) -> float | None:
    """Cohen's unweighted kappa of (rater 1, rater 2) category pairs; None when chance agreement is 1."""
    from statsmodels.stats.inter_rater import cohens_kappa  # start-up time: statsmodels loads slowly

    table = confusion(pairs, categories)
    if not pairs or _chance(table) >= 1.0:
        return None
    return float(cohens_kappa(table, return_results=False))


def _chance(table: np.ndarray) -> float:
    n = table.sum()
    return float((table.sum(axis=0) * table.sum(axis=1)).sum() / (n * n)) if n else 1.0


def confusion(pairs: Sequence[tuple[int, int]], categories: Sequence[int] = GRID) -> np.ndarray:
    """Counts: rows the first rater's category, columns the second's."""
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)), dtype=int)
    for a, b in pairs:
        table[index[a], index[b]] += 1
    return table


def bootstrap(units: list[Any], statistic: Any, *, n_boot: int = N_BOOT, seed: int = SEED) -> tuple[float, float] | None:
    """BCa 95% interval (Efron 1987) of `statistic(units)`, resampling whole units, by scipy.stats.bootstrap.

    Where the statistic is undefined on some resamples (no variation), BCa is too; then the percentile
    interval of the defined resamples, if at least half are; else None."""
    from scipy.stats import bootstrap as scipy_bootstrap  # start-up time: scipy.stats loads slowly

    def stat(idx: np.ndarray) -> float:
        value = statistic([units[int(i)] for i in idx])
        return float("nan") if value is None else float(value)

    with warnings.catch_warnings():  # degenerate resamples warn; they are handled below
        warnings.simplefilter("ignore")
        res = scipy_bootstrap((np.arange(len(units)),), stat, vectorized=False, n_resamples=n_boot, method="BCa",
                              random_state=np.random.default_rng(seed))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if math.isfinite(lo) and math.isfinite(hi):
        return lo, hi
    draws = res.bootstrap_distribution[np.isfinite(res.bootstrap_distribution)]
    if draws.size < n_boot // 2:
        return None
    plo, phi = np.percentile(draws, [2.5, 97.5])
    return float(plo), float(phi)


def alpha_of(units: list[tuple[float, list[float]]]) -> float | None:
    """Interval-metric alpha with the judge as one coder: units are (judge value, human values)."""
    return krippendorff_alpha([[j, *h] for j, h in units], interval)


def kappa_of(units: list[tuple[float, list[float]]]) -> float | None:
    return cohen_kappa([(_grid(j), _grid(h)) for j, hs in units for h in hs])


def _grid(value: float) -> int:
    """A [0, 1] value on the 1–5 grid."""
    return int(1 + round(4 * min(max(value, 0.0), 1.0)))


def agreement(units: list[tuple[float, list[float]]], *, n_boot: int = N_BOOT, seed: int = SEED) -> dict[str, Any]:
    """Alpha and kappa with bootstrap intervals, the confusion table (judge rows × human columns) and counts."""
    pairs = [(_grid(j), _grid(h)) for j, hs in units for h in hs]
    return {"n_items": len(units), "n_ratings": sum(len(h) for _, h in units),
            "alpha": alpha_of(units) if units else None,
            "alpha_ci95": bootstrap(units, alpha_of, n_boot=n_boot, seed=seed) if len(units) >= 2 else None,
            "kappa": kappa_of(units) if units else None,
            "kappa_ci95": bootstrap(units, kappa_of, n_boot=n_boot, seed=seed) if len(units) >= 2 else None,
            "confusion": {"labels": list(GRID), "rows": confusion(pairs).tolist()},
            "method": "Krippendorff's alpha (interval) and Cohen's kappa (1–5 grid); 95% BCa bootstrap "
                      f"over items ({n_boot} resamples)"}
