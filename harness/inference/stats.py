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

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize
from scipy import stats as sps

Stat = Literal["mean", "median"]
ALPHA = 0.05  # every interval here is a two-sided 95% interval
_CHUNK_ELEMENTS = 4_000_000  # bound memory: resamples are drawn in blocks of about this many indices


def _pairs(base: ArrayLike, cand: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(base, dtype=float)
    c = np.asarray(cand, dtype=float)
    if b.shape != c.shape or b.ndim != 1:
        raise ValueError(f"paired samples need equal 1-d shapes, got {b.shape} and {c.shape}")
    if b.size == 0:
        raise ValueError("paired samples are empty")
    return b, c


def bootstrap_deltas(base: ArrayLike, cand: ArrayLike, *, n_resamples: int = 10_000,
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


def point_delta(base: ArrayLike, cand: ArrayLike, stat: Stat = "mean") -> float:
    """stat(cand) - stat(base) on the paired samples."""
    b, c = _pairs(base, cand)
    if stat == "mean":
        return float((c - b).mean())
    return float(np.median(c) - np.median(b))


def paired_bootstrap(base: ArrayLike, cand: ArrayLike, *, n_resamples: int = 10_000,
                     seed: int = 0, stat: Stat = "mean") -> tuple[float, float, float]:
    """Delta (cand - base) with a 95% percentile paired-bootstrap interval: (delta, lo, hi)."""
    delta = point_delta(base, cand, stat)
    boots = bootstrap_deltas(base, cand, n_resamples=n_resamples, seed=seed, stat=stat)
    lo, hi = np.quantile(boots, [ALPHA / 2, 1 - ALPHA / 2])
    # Percentile intervals can miss the estimate by rounding (or for a very skewed median); widen to it.
    return delta, float(min(lo, delta)), float(max(hi, delta))


def bootstrap_p_below(base: ArrayLike, cand: ArrayLike, threshold: float, *,
                      n_resamples: int = 10_000, seed: int = 0, stat: Stat = "mean") -> float:
    """One-sided bootstrap p-value for H0: delta <= threshold (the share of resampled deltas at or below it).

    It is dual to `paired_bootstrap`: p < 0.025 exactly when the 95% interval's lower bound exceeds
    the threshold (up to quantile interpolation), so it is the p-value of the gate's interval rules.
    """
    boots = bootstrap_deltas(base, cand, n_resamples=n_resamples, seed=seed, stat=stat)
    return float(np.mean(boots <= threshold))


def sign_flip_pvalue(base: ArrayLike, cand: ArrayLike, *, n_resamples: int = 10_000,
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


def discordant(base: ArrayLike, cand: ArrayLike) -> tuple[int, int]:
    """(b, c) for binary paired scores: b = right→wrong, c = wrong→right."""
    bb, cc = _pairs(base, cand)
    return int(np.sum((bb == 1) & (cc == 0))), int(np.sum((bb == 0) & (cc == 1)))


def is_binary(*arrays: ArrayLike) -> bool:
    """True when every value is 0 or 1."""
    return all(np.isin(np.asarray(a, dtype=float), (0.0, 1.0)).all() for a in arrays)


def holm(pvalues: ArrayLike) -> list[float]:
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

# Tango's interval with a continuity adjustment of TANGO_CC: the numerator |c - b - n*delta| is reduced by
# 2 * TANGO_CC counts, in the equivariant form of ratesci::pairbinci (Laud), where cc = 0.5 reproduces the
# continuity-corrected McNemar test. Why: plain Tango is asymptotic, and its exact one-sided error (the
# rate of false passes the gate cares about) exceeds 2.5% at some n: up to 2.6% on the benchmark grid
# (n = 100, discordance 0.3, Δ = 0) and up to 3.9% on a wider grid (n = 1..1000, discordance 0.01..0.7).
# By exact enumeration over n = 1..200 (and 1..1000 for discordance <= 0.7), margins 0..0.2 and
# discordance 0.01..0.9, cc = 0.25 is the smallest of {0.0625, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25} with no
# cell above 2.5%; it lowers power by at most a few points (see benchmarks/bench_gate_validity.py).
TANGO_CC = 0.25
# The adjustment of a limit that excludes 0 (an upper limit below 0: a FAIL of non-inferiority; a lower limit
# above 0: superiority, by min_effect too). There the limit is decided mostly by the rarer direction of change,
# and with 0.25 its exact one-sided error reached 3.4% (margin 0.01, n 580, no gains: issue 23). With 0.5 and
# the exact one-directional guard of harness.inference.evidence.exact_guard, no cell of n = 20..1000, margins
# 0.01..0.1 and gain rates 0..0.03 exceeds 2.5% (benchmarks/bench_gate_validity.py, section 8).
TANGO_CC_BEYOND_ZERO = 0.5


def _tango_method(cc: float) -> str:
    return "Tango score (1998)" if cc == 0 else f"Tango score (1998), continuity-adjusted {cc:g}"


TANGO = _tango_method(TANGO_CC)


def tango_statistic(delta: np.ndarray | float, b: np.ndarray | int, c: np.ndarray | int,
                    n: np.ndarray | int, *, cc: float = TANGO_CC) -> np.ndarray:
    """Tango's score statistic for H0: p_cand - p_base = delta, vectorised over every argument.

    b = right→wrong, c = wrong→right, n = all paired items; the estimate is (c - b) / n. This is Tango
    (1998, Stat Med 17:891-908), eq. (3), with his n12 = c and n21 = b:

        T(delta) = (c - b - n*delta) / sqrt(n * (2*q + delta*(1 - delta)))

    where q is the maximum-likelihood estimate of P(right→wrong) restricted to Δ = delta, the root of
    2n q^2 + B q + C = 0 with B = -c - b + (2n - c + b)*delta and C = -b*delta*(1 - delta) (closed form,
    his eq. (4)). With cc > 0 the numerator moves 2*cc counts towards 0 (see TANGO_CC). T decreases in
    delta; the (1 - alpha) interval is {delta : |T(delta)| <= z_{1-alpha/2}}, so "the lower limit exceeds
    d" is exactly "T(d) > z". Where T is 0/0 (b = c = 0 and delta = 0) the data match H0 exactly: T = 0.
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
    if cc:
        num = np.sign(num) * np.maximum(np.abs(num) - 2.0 * cc, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = num / np.sqrt(var)
    # var == 0 only where the restricted model puts all its mass on one cell; the numerator's sign then
    # says on which side of H0 the data lie (0/0: they match it).
    return np.where(var > 0, t, np.where(num > 0, np.inf, np.where(num < 0, -np.inf, 0.0)))


_EDGE = 1e-12  # brackets stop this close to ±1, where T's variance vanishes


def paired_binary_interval(b: int, c: int, n: int, *, alpha: float = ALPHA, cc: float = TANGO_CC) -> Interval:
    """Tango (1998) score interval for Δ = p_cand − p_base = (c − b) / n, continuity-adjusted by `cc`.

    b = items right in the base run and wrong in the candidate, c = wrong → right, n = all paired items
    (concordant ones too: they carry the discordance rate). Defined from n = 1 and never zero-width (with
    b = c = 0 and cc = 0 it is ±z²/(n + z²)). Each limit solves T(δ) = ±z with brentq.
    """
    b, c, n = int(b), int(c), int(n)
    method = _tango_method(cc)
    if n < 1:
        return Interval(None, None, method, n, "undefined without paired items")
    if b < 0 or c < 0 or b + c > n:
        raise ValueError(f"need 0 <= b, c and b + c <= n, got b={b}, c={c}, n={n}")
    z = _z(alpha)
    est = (c - b) / n

    def f(delta: float, target: float) -> float:
        return float(tango_statistic(delta, b, c, n, cc=cc)) - target

    lo = -1.0 if b == n else optimize.brentq(f, -1.0 + _EDGE, est, args=(z,), xtol=1e-14, rtol=1e-12)
    hi = 1.0 if c == n else optimize.brentq(f, est, 1.0 - _EDGE, args=(-z,), xtol=1e-14, rtol=1e-12)
    return Interval(max(-1.0, lo), min(1.0, hi), method, n)


def tango_bounds(b: np.ndarray, c: np.ndarray, n: int, *, alpha: float = ALPHA, cc: float = TANGO_CC,
                 iterations: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """`paired_binary_interval` for many (b, c) at one n at once, by vectorised bisection (for benchmarks)."""
    b = np.asarray(b, dtype=float)
    c = np.asarray(c, dtype=float)
    z = _z(alpha)
    est = (c - b) / n
    left, right = np.full(est.shape, -1.0 + _EDGE), est.copy()  # T - z: > 0 near -1, < 0 at the estimate
    for _ in range(iterations):
        mid = (left + right) / 2
        above = tango_statistic(mid, b, c, n, cc=cc) > z
        left, right = np.where(above, mid, left), np.where(above, right, mid)
    lo = np.where(b >= n, -1.0, left)
    left, right = est.copy(), np.full(est.shape, 1.0 - _EDGE)
    for _ in range(iterations):
        mid = (left + right) / 2
        below = tango_statistic(mid, b, c, n, cc=cc) < -z
        left, right = np.where(below, left, mid), np.where(below, mid, right)
    hi = np.where(c >= n, 1.0, right)
    return lo, hi


# ---------------------------------------------------------------------------------------------------------
# One proportion

CLOPPER_PEARSON = "Clopper-Pearson exact"


def proportion_interval(k: int, n: int, *, alpha: float = ALPHA) -> Interval:
    """Interval for one proportion k/n: Clopper–Pearson, via statsmodels `proportion_confint(method="beta")`.

    Not Wilson: by exact enumeration Wilson's 95% interval covers only 0.904 at n = 10, p = 0.99, and a floor
    at 0.7 with n = 30 would pass 3.0% of the time when the true rate is exactly 0.7 (> 2.5%). Clopper–Pearson
    guarantees each tail <= alpha/2 at every n and p; benchmarks/bench_gate_validity.py prints both.
    """
    from statsmodels.stats.proportion import proportion_confint

    k, n = int(k), int(n)
    if n < 1:
        return Interval(None, None, CLOPPER_PEARSON, n, "undefined without items")
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    _z(alpha)
    lo, hi = proportion_confint(k, n, alpha=alpha, method="beta")
    return Interval(float(lo), float(hi), CLOPPER_PEARSON, n)


# ---------------------------------------------------------------------------------------------------------
# Bounded means: betting confidence intervals

BETTING = "betting (Waudby-Smith & Ramdas 2024)"
BET_TRUNCATION = 0.75  # c in λ(m) = min(λ, c/m): any c in (0, 1) keeps the interval valid; WSR suggest 1/2 or 3/4


def betting_bounds(y: np.ndarray, *, alpha: float = ALPHA, seed: int = 0, trunc: float = BET_TRUNCATION,
                   iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Hedged-capital betting CI for the mean of values in [0, 1], one per row of `y` (shape (S, n)).

    Waudby-Smith & Ramdas (2024), "Estimating means of bounded random variables by betting", JRSSB 86(1):1-27,
    Section 4 (hedged capital process, Theorem 3) with the predictable plug-in bets of their fixed-n CI:

        λ_t = sqrt(2 log(2/α) / (n σ̂²_{t-1})),  σ̂²_t = (1/4 + Σ_{i<=t} (y_i − μ̂_i)²) / (t + 1),
        μ̂_t = (1/2 + Σ_{i<=t} y_i) / (t + 1),
        K⁺_t(m) = Π (1 + min(λ_i, c/m)(y_i − m)),  K⁻_t(m) = Π (1 − min(λ_i, c/(1−m))(y_i − m)).

    m is excluded once max(K⁺_t(m), K⁻_t(m)) / 2 >= 1/α for some t <= n (Ville's inequality: valid for the
    running maximum, not only t = n). K⁺ is nonincreasing and K⁻ nondecreasing in m, so the interval is
    (L, U) with L, U found by bisection; each is reported at its excluded end, a hair conservative.

    The bets depend on the order of the values. Validity needs the values iid in the order used, which
    holds for any order fixed independently of the values (item id order is); on top of that each row is
    put in one seeded random order, so that items grouped by topic or difficulty do not meet the bets in
    blocks. (Sorting first would make the result order-free but would break that independence.)
    """
    y = np.asarray(y, dtype=float)
    if y.ndim != 2 or y.shape[1] < 1:
        raise ValueError(f"need a 2-d array with at least one column, got shape {y.shape}")
    if np.any(~np.isfinite(y)) or np.any(y < 0) or np.any(y > 1):
        raise ValueError("betting_bounds needs values in [0, 1]")
    rows, n = y.shape
    y = y[:, np.random.default_rng(seed).permutation(n)]
    log_target = math.log(2.0 / alpha)
    t = np.arange(1, n + 1)
    mu = (0.5 + np.cumsum(y, axis=1)) / (t + 1)
    var = (0.25 + np.cumsum((y - mu) ** 2, axis=1)) / (t + 1)
    var_prev = np.concatenate([np.full((rows, 1), 0.25), var[:, :-1]], axis=1)
    lam = np.sqrt(2.0 * log_target / (n * var_prev))

    def plus(m: np.ndarray) -> np.ndarray:  # max_t log K⁺_t(m) - log(2/α), nonincreasing in m
        with np.errstate(divide="ignore"):
            cap = np.minimum(lam, trunc / m[:, None])
        return np.cumsum(np.log1p(cap * (y - m[:, None])), axis=1).max(axis=1) - log_target

    def minus(m: np.ndarray) -> np.ndarray:  # max_t log K⁻_t(m) - log(2/α), nondecreasing in m
        with np.errstate(divide="ignore"):
            cap = np.minimum(lam, trunc / (1.0 - m[:, None]))
        return np.cumsum(np.log1p(-cap * (y - m[:, None])), axis=1).max(axis=1) - log_target

    def limit(wealth: Any, edge: float) -> np.ndarray:
        """Bisect between an excluded mean `a` (from `edge`) and an included `b` (the other end)."""
        a, b = np.full(rows, edge), np.full(rows, 1.0 - edge)
        excluded = wealth(a) >= 0
        for _ in range(iterations):
            mid = (a + b) / 2
            ex = wealth(mid) >= 0
            a, b = np.where(ex, mid, a), np.where(ex, b, mid)
        return np.where(excluded, a, edge)

    lo = limit(plus, 0.0)  # plus(1) < 0 always: every factor is <= 1 there
    hi = limit(minus, 1.0)  # minus(0) < 0 always
    # both sides excluding everything is possible only for pathological orders; fall back to the hull
    return np.minimum(lo, hi), np.maximum(lo, hi)


def to_unit(x: ArrayLike | np.ndarray, lower: float, upper: float) -> np.ndarray:
    """Finite values declared to lie in [lower, upper], rescaled to [0, 1] (what the betting methods take);
    ValueError for bad bounds, non-finite values or values outside the bounds."""
    if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
        raise ValueError(f"need finite lower < upper, got [{lower}, {upper}]")
    v = np.asarray(x, dtype=float).ravel()
    if np.any(~np.isfinite(v)):
        raise ValueError("values must be finite")
    span = upper - lower
    tol = 1e-9 * span
    if np.any(v < lower - tol) or np.any(v > upper + tol):
        raise ValueError(f"values outside the declared bounds [{lower}, {upper}]")
    return np.clip((v - lower) / span, 0.0, 1.0)


def bounded_mean_interval(x: ArrayLike | np.ndarray, lower: float, upper: float, *, alpha: float = ALPHA,
                          seed: int = 0) -> Interval:
    """Finite-sample-valid interval for the mean of iid values bounded in [lower, upper].

    The hedged-capital betting CI of Waudby-Smith & Ramdas (2024, JRSSB; see `betting_bounds`): no normal
    approximation, valid at every n (at n = 1 it is close to the whole range), and never wider than
    [lower, upper]. Per-item deltas of a [0, 1] metric lie in [-1, 1]. Pass the values in an order fixed
    independently of them (item id order, as `item_means` returns); the result is deterministic given it.
    """
    y = to_unit(x, lower, upper)
    if y.size == 0:
        return Interval(None, None, BETTING, 0, "undefined without items")
    span = upper - lower
    lo, hi = betting_bounds(y[None, :], alpha=alpha, seed=seed)
    return Interval(float(lower + span * lo[0]), float(lower + span * hi[0]), BETTING, int(y.size))


# ---------------------------------------------------------------------------------------------------------
# One run's mean, and unbounded paired deltas

T_INTERVAL = "Student t"


def mean_interval(x: ArrayLike | np.ndarray, *, alpha: float = ALPHA, bounds: tuple[float, float] | None = None,
                  min_n: int = 2) -> Interval:
    """Interval for one run's metric mean.

    Bounded metrics (say [0, 1]) use `bounded_mean_interval`, valid at every n. Unbounded ones use the t
    interval, undefined (lo = hi = None, with a note) below `min_n` (at least 2) and when every value is
    equal: the t interval would then be [v, v], which claims certainty the data do not give.
    """
    v = np.asarray(x, dtype=float).ravel()
    if bounds is not None:
        return bounded_mean_interval(v, bounds[0], bounds[1], alpha=alpha)
    n = int(v.size)
    min_n = max(2, int(min_n))
    if n < min_n:
        return Interval(None, None, T_INTERVAL, n, f"undefined below n = {min_n}")
    if np.any(~np.isfinite(v)):
        raise ValueError("values must be finite")
    sd = float(v.std(ddof=1))
    if sd == 0.0:
        return Interval(None, None, T_INTERVAL, n, "undefined: every value is equal (zero sample variance)")
    half = float(sps.t.ppf(1 - alpha / 2, n - 1)) * sd / math.sqrt(n)
    mean = float(v.mean())
    return Interval(mean - half, mean + half, T_INTERVAL, n)


PERCENTILE_BOOTSTRAP = "paired percentile bootstrap"


def bootstrap_interval(base: ArrayLike, cand: ArrayLike, *, n_resamples: int = 10_000,
                       seed: int = 0, min_n: int = 30, alpha: float = ALPHA) -> Interval:
    """Paired percentile-bootstrap interval for mean(cand - base), for unbounded metrics only.

    Undefined below `min_n` pairs: the percentile bootstrap undercovers at small n (the benchmark measures it).
    """
    b, c = _pairs(base, cand)
    n = int(b.size)
    if n < min_n:
        return Interval(None, None, PERCENTILE_BOOTSTRAP, n, f"undefined below n = {min_n}")
    delta = point_delta(base, cand)
    boots = bootstrap_deltas(base, cand, n_resamples=n_resamples, seed=seed)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return Interval(float(min(lo, delta)), float(max(hi, delta)), PERCENTILE_BOOTSTRAP, n)


def item_means(values: ArrayLike, items: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """One value per item: the mean of that item's scored rows (perturbed variants, k generations, judges).

    The unit of analysis is the item; rows of one item are not independent. Returns the items in sorted
    order (so two runs over the same items line up) and their means. NaN rows make that item's mean NaN.
    """
    v = np.asarray(values, dtype=float).ravel()
    ids = [str(i) for i in items]
    if v.size != len(ids):
        raise ValueError(f"{v.size} values for {len(ids)} item ids")
    if v.size == 0:
        return [], np.empty(0)
    names, inverse = np.unique(np.asarray(ids, dtype=object).astype(str), return_inverse=True)
    sums = np.bincount(inverse, weights=v, minlength=names.size)
    counts = np.bincount(inverse, minlength=names.size)
    return [str(s) for s in names], sums / counts
