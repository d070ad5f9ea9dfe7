"""Statistics for judging runs item by item. Pure functions, seeded, vectorised.

Intervals that the gate decides on (each returns an `Interval` that names its method and says when it is
undefined):

- `paired_binary_interval`: Tango's (1998) score interval for the difference of two paired proportions;
- `bounded_mean_interval`: the hedged-capital betting interval of Waudby-Smith & Ramdas (2024) for the mean
  of bounded values (per-item deltas of a [0, 1] metric lie in [-1, 1]); valid at every n, no asymptotics;
- `proportion_interval`: one proportion (a floor on a binary metric);
- `mean_interval`: one run's mean (bounded: betting; unbounded: t, undefined below `min_n`);
- `bootstrap_interval`: a paired percentile bootstrap for unbounded metrics, undefined below `min_n`.

The unit of analysis is the item: `item_means` folds several scored rows of one item into one value first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize
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


# ---------------------------------------------------------------------------------------------------------
# Intervals that say what they are


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval, the method that made it, and the n it rests on.

    `lo` and `hi` are None when the method is undefined at this n (then `note` says why); an interval is
    never reported as [v, v] for lack of data.
    """

    lo: float | None
    hi: float | None
    method: str
    n: int
    note: str | None = None

    @property
    def defined(self) -> bool:
        return self.lo is not None and self.hi is not None

    def to_json(self) -> dict:
        return {"lo": self.lo, "hi": self.hi, "method": self.method, "n": self.n, "note": self.note,
                "defined": self.defined}


def _z(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return float(sps.norm.ppf(1.0 - alpha / 2.0))


# ---------------------------------------------------------------------------------------------------------
# Paired binary: Tango's score interval

TANGO = "Tango score (1998)"


def tango_statistic(delta: np.ndarray | float, b: np.ndarray | int, c: np.ndarray | int,
                    n: np.ndarray | int) -> np.ndarray:
    """Tango's score statistic for H0: p_cand - p_base = delta, vectorised over every argument.

    b = right→wrong, c = wrong→right, n = all paired items; the estimate is (c - b) / n. This is eq. (3) of
    Tango (1998, Stat Med 17:891-908) with his n12 = c and n21 = b:

        T(delta) = (c - b - n*delta) / sqrt(n * (2*q + delta*(1 - delta)))

    where q is the maximum-likelihood estimate of P(right→wrong) restricted to Δ = delta, the root of
    2n q^2 + B q + C = 0 with B = -c - b + (2n - c + b)*delta and C = -b*delta*(1 - delta) (his eq. (4)).
    T is decreasing in delta; the (1 - alpha) interval is {delta : |T(delta)| <= z_{1-alpha/2}}. At the one
    point where T is 0/0 (b = c = 0 and delta = 0) the data agree exactly with H0, so T = 0.
    """
    d = np.asarray(delta, dtype=float)
    b = np.asarray(b, dtype=float)
    c = np.asarray(c, dtype=float)
    n = np.asarray(n, dtype=float)
    a2 = 2.0 * n
    bq = -c - b + (2.0 * n - c + b) * d
    cq = -b * d * (1.0 - d)
    disc = np.maximum(bq * bq - 4.0 * a2 * cq, 0.0)
    q = np.maximum((np.sqrt(disc) - bq) / (2.0 * a2), 0.0)
    var = n * np.maximum(2.0 * q + d * (1.0 - d), 0.0)
    num = c - b - n * d
    with np.errstate(divide="ignore", invalid="ignore"):
        t = num / np.sqrt(var)
    # var == 0 only where the restricted model puts all mass on one cell; the sign of the numerator then
    # says on which side H0 lies (0/0 means the data match H0 exactly).
    return np.where(var > 0, t, np.where(num > 0, np.inf, np.where(num < 0, -np.inf, 0.0)))


_EDGE = 1e-12  # brackets stop this close to ±1, where T's variance vanishes


def paired_binary_interval(b: int, c: int, n: int, *, alpha: float = ALPHA) -> Interval:
    """Tango (1998) score interval for Δ = p_cand − p_base = (c − b) / n.

    b = items right in the base run and wrong in the candidate, c = wrong → right, n = all paired items
    (concordant ones included: they carry information about the discordance rate). Defined from n = 1 and
    never zero-width: with b = c = 0 it is ±z²/(n + z²). Each limit solves T(δ) = ±z with brentq.
    """
    b, c, n = int(b), int(c), int(n)
    if n < 1:
        return Interval(None, None, TANGO, n, "undefined without paired items")
    if b < 0 or c < 0 or b + c > n:
        raise ValueError(f"need 0 <= b, c and b + c <= n, got b={b}, c={c}, n={n}")
    z = _z(alpha)
    est = (c - b) / n

    def f(delta: float, target: float) -> float:
        return float(tango_statistic(delta, b, c, n)) - target

    if b == n:  # every item regressed: the estimate sits on the boundary
        lo = -1.0
    else:
        lo = optimize.brentq(f, -1.0 + _EDGE, est, args=(z,), xtol=1e-13, rtol=1e-13)
    if c == n:
        hi = 1.0
    else:
        hi = optimize.brentq(f, est, 1.0 - _EDGE, args=(-z,), xtol=1e-13, rtol=1e-13)
    return Interval(max(-1.0, lo), min(1.0, hi), TANGO, n)


def tango_bounds(b: np.ndarray, c: np.ndarray, n: int, *, alpha: float = ALPHA,
                 iterations: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """`paired_binary_interval` for many (b, c) at one n at once, by vectorised bisection (for benchmarks)."""
    b = np.asarray(b, dtype=float)
    c = np.asarray(c, dtype=float)
    z = _z(alpha)
    est = (c - b) / n
    # lower limit: T(δ) - z goes from > 0 near -1 to < 0 at the estimate
    left, right = np.full(est.shape, -1.0 + _EDGE), est.copy()
    for _ in range(iterations):
        mid = (left + right) / 2
        above = tango_statistic(mid, b, c, n) > z
        left, right = np.where(above, mid, left), np.where(above, right, mid)
    lo = np.where(b >= n, -1.0, left)
    left, right = est.copy(), np.full(est.shape, 1.0 - _EDGE)
    for _ in range(iterations):
        mid = (left + right) / 2
        below = tango_statistic(mid, b, c, n) < -z
        left, right = np.where(below, left, mid), np.where(below, mid, right)
    hi = np.where(c >= n, 1.0, right)
    return lo, hi


# ---- provisional (replaced by the statistics branch at merge) ----
def proportion_interval(k: int, n: int, *, alpha: float = ALPHA) -> Interval:
    from statsmodels.stats.proportion import proportion_confint

    if n < 1:
        return Interval(None, None, "Wilson", n, "undefined without items")
    lo, hi = proportion_confint(k, n, alpha=alpha, method="wilson")
    return Interval(float(lo), float(hi), "Wilson", n)


def bounded_mean_interval(x: Sequence[float], lower: float, upper: float, *, alpha: float = ALPHA) -> Interval:
    arr = np.asarray(x, dtype=float)
    n = int(arr.size)
    if n < 1:
        return Interval(None, None, "Hoeffding", n, "undefined without items")
    half = (upper - lower) * np.sqrt(np.log(2 / alpha) / (2 * n))
    m = float(arr.mean())
    return Interval(max(lower, m - half), min(upper, m + half), "Hoeffding", n)


def mean_interval(x: Sequence[float], *, alpha: float = ALPHA, bounds: tuple[float, float] | None = None,
                  min_n: int = 2) -> Interval:
    arr = np.asarray(x, dtype=float)
    if bounds is not None:
        return bounded_mean_interval(arr, bounds[0], bounds[1], alpha=alpha)
    n = int(arr.size)
    if n < max(2, min_n):
        return Interval(None, None, "t", n, f"undefined below n = {max(2, min_n)}")
    half = float(sps.t.ppf(1 - alpha / 2, n - 1) * arr.std(ddof=1) / np.sqrt(n))
    return Interval(float(arr.mean()) - half, float(arr.mean()) + half, "t", n)


def bootstrap_interval(base: Sequence[float], cand: Sequence[float], *, n_resamples: int = 10_000, seed: int = 0,
                       min_n: int = 30) -> Interval:
    b, c = _pairs(base, cand)
    if b.size < min_n:
        return Interval(None, None, "paired percentile bootstrap", int(b.size), f"undefined below n = {min_n}")
    _, lo, hi = paired_bootstrap(b, c, n_resamples=n_resamples, seed=seed)
    return Interval(lo, hi, "paired percentile bootstrap", int(b.size))
