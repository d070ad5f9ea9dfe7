"""Planning how much to evaluate: sample sizes, exact power and minimum detectable effects. Pure functions.

Paired binary metrics (accuracy, pass@1) are judged by the continuity-adjusted Tango interval of
`harness.inference.stats.paired_binary_interval` with the gate's exact guards (`harness.inference.evidence.exact_guard`); a rule
passes when the interval's lower bound exceeds -margin (non-inferiority), 0 (superiority) or min_effect
(superiority by min_effect: margin = -min_effect). Power here is that of this
exact decision rule, computed by enumerating the trinomial outcomes (b, c, rest), not simulated.

Bounded continuous metrics are judged by the betting interval of `harness.inference.stats.bounded_mean_interval`;
their planning uses a normal approximation (see `bounded_n`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import stats as sps

from harness.inference.stats import ALPHA, BET_TRUNCATION, TANGO_CC, TANGO_CC_BEYOND_ZERO, tango_statistic

_TAIL = 1e-13  # probability mass left out at each end of the enumeration
_MAX_N = 10_000_000  # planning gives up beyond this many items


def _check_binary(margin: float, true_delta: float, discordance: float, alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if not 0.0 <= discordance <= 1.0:
        raise ValueError(f"discordance must lie in [0, 1], got {discordance}")
    if abs(true_delta) > discordance + 1e-12:
        raise ValueError(f"|true_delta| = {abs(true_delta)} cannot exceed the discordance {discordance}: "
                         "a change needs items that changed")
    if not -1.0 < margin < 1.0:  # a negative margin: superiority by min_effect = -margin
        raise ValueError(f"margin must lie in (-1, 1), got {margin}")


def _k_range(n: int, discordance: float) -> np.ndarray:
    """The numbers of discordant items k ~ Bin(n, D) that carry all but about 1e-13 of each tail."""
    if discordance <= 0.0:
        return np.zeros(1, dtype=np.int64)
    if discordance >= 1.0:
        return np.full(1, n, dtype=np.int64)
    k_lo = max(0, int(sps.binom.ppf(_TAIL, n, discordance)) - 1)
    k_hi = min(n, int(sps.binom.isf(_TAIL, n, discordance)) + 1)
    return np.arange(k_lo, k_hi + 1, dtype=np.int64)


def _pass_boundary(n: int, ks: np.ndarray, margin: float, alpha: float, cc: float) -> np.ndarray:
    """For each k = b + c, the smallest c in [0, k] whose Tango lower bound exceeds -margin (k + 1: none).

    With k fixed, moving an item from b (right→wrong) to c (wrong→right) only raises Tango's statistic, so
    the pass region is {c >= c*(k)}; a vectorised bisection finds c*(k) for every k at once.
    """
    z = float(sps.norm.ppf(1 - alpha / 2))
    if margin <= 0:  # a lower limit that must clear 0 or more is the gate's TANGO_CC_BEYOND_ZERO one
        cc = max(cc, TANGO_CC_BEYOND_ZERO)
    lo = np.zeros(ks.shape, dtype=np.int64)
    hi = ks + 1
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        active = lo < hi
        probe = np.minimum(mid, ks)
        ok = tango_statistic(-margin, ks - probe, probe, n, cc=cc) > z
        ok &= mid <= ks
        hi = np.where(active & ok, mid, hi)
        lo = np.where(active & ~ok, mid + 1, lo)
    return np.maximum(lo, _guard_boundary(n, ks, margin, alpha))


def _guard_boundary(n: int, ks: np.ndarray, margin: float, alpha: float) -> np.ndarray:
    """The smallest c that the gate's exact guards (`harness.inference.evidence.exact_guard`) let pass, for each k.

    At a threshold of 0 the exact McNemar test on the k discordant pairs must reject: P(Bin(k, 1/2) >= c) <=
    alpha/2. Above 0 (superiority by min_effect e = -margin) the exact lower bound of the gain rate, c of n,
    must exceed e. Below 0 (non-inferiority) neither binds."""
    if margin == 0:
        return (sps.binom.isf(alpha / 2, ks, 0.5) + 1).astype(np.int64)
    if margin < 0:
        e = -margin
        c = max(1, int(sps.binom.isf(alpha / 2, n, e)) - 1)
        while c <= n and not sps.beta.ppf(alpha / 2, c, n - c + 1) > e:
            c += 1
        return np.full(ks.shape, c, dtype=np.int64)
    return np.zeros(ks.shape, dtype=np.int64)


def paired_binary_power(n: int, margin: float, true_delta: float, discordance: float, *,
                        alpha: float = ALPHA, cc: float = TANGO_CC) -> float:
    """Exact P(the Tango interval's lower bound > -margin) for n items with true Δ and P(discordant).

    Enumerates the trinomial (b, c, concordant): k = b + c ~ Bin(n, D) and, given k, c ~ Bin(k, p01/D) with
    p01 = (D + Δ)/2 = P(wrong→right). The lower bound exceeds -margin exactly when Tango's score statistic
    at -margin exceeds z_{1-alpha/2}, so no interval is solved, and for each k that happens exactly for
    c >= c*(k) (`_pass_boundary`). Non-inferiority: true_delta = 0 (or the expected delta); superiority:
    margin = 0 and true_delta = the effect to detect. Mass below 1e-13 per tail is left out.
    """
    _check_binary(margin, true_delta, discordance, alpha)
    n = int(n)
    if n < 1:
        return 0.0
    ks = _k_range(n, discordance)
    share = 0.5 if discordance <= 0 else min(1.0, max(0.0, (discordance + true_delta) / (2.0 * discordance)))
    cstar = _pass_boundary(n, ks, margin, alpha, cc)
    p_k = sps.binom.pmf(ks, n, discordance) if 0 < discordance < 1 else np.ones(1)
    p_pass = sps.binom.sf(cstar - 1, ks, share)
    return float(min(1.0, np.sum(p_k * p_pass)))


def _asymptotic_n(margin: float, true_delta: float, discordance: float, alpha: float, power: float) -> float:
    """Sample size of the score test for paired proportions: Nam (1997, Biometrics 53:1422-1430) and
    Liu, Hsueh, Hsieh & Chen (2002, Stat Med 21:231-245, eq. 7):

        n = ((z_{1-α/2} σ0 + z_power σ1) / (Δ1 - δ0))²,  δ0 = -margin,  Δ1 = true_delta,
        σ1² = D - Δ1²,  σ0² = 2 q̃ + δ0 (1 - δ0),

    where q̃ is the restricted (Δ = δ0) maximum-likelihood estimate of P(right→wrong) evaluated at the
    expected cell proportions (Tango's closed form with n = 1).
    """
    d0, d1, dis = -margin, true_delta, discordance
    p10, p01 = (dis - d1) / 2, (dis + d1) / 2
    bq = -p01 - p10 + (2 - p01 + p10) * d0
    cq = -p10 * d0 * (1 - d0)
    q = max(0.0, (math.sqrt(max(bq * bq - 8 * cq, 0.0)) - bq) / 4)
    s0 = math.sqrt(max(2 * q + d0 * (1 - d0), 0.0))
    s1 = math.sqrt(max(dis - d1 * d1, 0.0))
    za, zb = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
    try:
        return float(((za * s0 + zb * s1) / (d1 - d0)) ** 2)
    except (ZeroDivisionError, OverflowError):
        return math.inf


@functools.lru_cache(maxsize=4096)  # a gate asks the same question for many tasks
def paired_binary_n(margin: float, true_delta: float, discordance: float, *, alpha: float = ALPHA,
                    power: float = 0.8, cc: float = TANGO_CC) -> int:
    """Items needed so the two-sided (1 - alpha) Tango interval's lower bound exceeds -margin with `power`.

    Non-inferiority: true_delta = 0; superiority: margin = 0 and true_delta = min_effect. Starts from the
    asymptotic formula of Nam (1997) / Liu et al. (2002) (`_asymptotic_n`), then refines it by exact power
    (`paired_binary_power`). Exact power is a sawtooth in n (the data are discrete), so the answer is the
    smallest n found whose exact power reaches `power` there and at every n up to 10% beyond (at least 10,
    at most 100 items): a plan that ends up with a few items more still has the power it was promised.
    """
    _check_binary(margin, true_delta, discordance, alpha)
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must lie in (0, 1), got {power}")
    if true_delta <= -margin:
        raise ValueError(f"no n can show Δ > {-margin} when the true Δ is {true_delta}")
    asymptotic = _asymptotic_n(margin, true_delta, discordance, alpha, power)
    if not math.isfinite(asymptotic) or asymptotic > _MAX_N:  # e.g. a margin so small its square underflows
        raise ValueError(f"power {power} needs more than {_MAX_N} items")
    n_a = max(1, math.ceil(asymptotic))
    cache: dict[int, float] = {}

    def pw(n: int) -> float:
        if n not in cache:
            cache[n] = paired_binary_power(n, margin, true_delta, discordance, alpha=alpha, cc=cc)
        return cache[n]

    def window(n: int) -> int:
        return max(10, min(n // 10, 100))

    # bracket a crossing of the target: lo below it, hi at or above it
    lo, hi = max(1, int(0.9 * n_a)), max(2, int(1.1 * n_a) + 10)
    while lo > 1 and pw(lo) >= power:
        lo = max(1, lo // 2)
    while pw(hi) < power:
        if hi > _MAX_N:
            raise ValueError(f"power {power} not reached below n = {_MAX_N}")
        lo, hi = hi, 2 * hi
    if lo == 1 and pw(1) >= power:
        hi = 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if pw(mid) >= power else (mid, hi)
    # exact power is a sawtooth: from just below the crossing, take the first n whose window all reaches it
    n = max(1, hi - window(hi))
    while not all(pw(m) >= power for m in range(n, n + window(n) + 1)):
        n += 1
        if n > _MAX_N:
            raise ValueError(f"power {power} not reached below n = {_MAX_N}")
    return n


@functools.lru_cache(maxsize=4096)  # a gate asks the same question for many tasks
def paired_binary_mde(n: int, discordance: float, *, alpha: float = ALPHA, power: float = 0.8,
                      cc: float = TANGO_CC) -> float:
    """Minimum detectable effect: the smallest non-inferiority margin that n items show with `power` when
    the true Δ is 0 and P(discordant) = discordance. math.inf when no margin below 1 is reachable.

    Exact power increases with the margin (the pass region only grows), so this bisects on it.
    """
    _check_binary(0.0, 0.0, discordance, alpha)
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must lie in (0, 1), got {power}")

    def pw(m: float) -> float:
        return paired_binary_power(n, m, 0.0, discordance, alpha=alpha, cc=cc)

    top = 1.0 - 1e-9
    if pw(top) < power:
        return math.inf
    lo, hi = 0.0, top
    if pw(lo) >= power:
        return 0.0
    while hi - lo > 1e-5:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if pw(mid) >= power else (mid, hi)
    return hi


# ---------------------------------------------------------------------------------------------------------
# Bounded continuous metrics (per-item deltas of a [0, 1] metric): normal approximation


def _betting_half_width(n: int, sd: float, alpha: float) -> float:
    """Approximate distance from the mean delta to the betting interval's lower bound, deltas in [-1, 1].

    On the [0, 1] scale (sd/2), the hedged capital against m = mean - h grows like n (λh - λ²σ²/2) (second
    order), so the bound sits at h = log(2/α)/(nλ) + λσ²/2 with the bet λ = min(λ*, Λ):
    λ* = sqrt(2 log(2/α)/(nσ²)) gives sqrt(2 log(2/α)/n) σ (Waudby-Smith & Ramdas 2024: 2.96 sd/√n at
    α = 0.05 where a t interval has 1.96 sd/√n, the price of validity without a CLT), and the truncation
    Λ = c/m ≈ 2c (c = stats.BET_TRUNCATION) binds when most deltas are 0, where the bound is wider.
    """
    log_target = math.log(2.0 / alpha)
    sigma = sd / 2.0
    cap = 2.0 * BET_TRUNCATION
    lam = cap if sigma == 0 else min(cap, math.sqrt(2.0 * log_target / (n * sigma * sigma)))
    return 2.0 * (log_target / (n * lam) + lam * sigma * sigma / 2.0)


def _bounded_power(n: int, margin: float, true_delta: float, sd: float, alpha: float) -> float:
    gap = true_delta + margin - _betting_half_width(n, sd, alpha)
    if sd == 0:
        return 1.0 if gap > 0 else 0.0
    return float(sps.norm.cdf(math.sqrt(n) * gap / sd))


@functools.lru_cache(maxsize=4096)  # a gate asks the same question for many tasks
def bounded_n(margin: float, true_delta: float, sd: float, *, alpha: float = ALPHA, power: float = 0.8) -> int:
    """Items needed for the betting interval's lower bound to exceed -margin with `power`.

    Normal approximation: the mean delta is N(true_delta, sd²/n) and the lower bound sits
    `_betting_half_width(n, sd)` below it; the answer is the smallest n with
    Φ(√n (true_delta + margin - h(n)) / sd) >= power. sd is the standard deviation of the per-item deltas
    (unchanged items' zeros included), deltas in [-1, 1]. The benchmark prints the simulated power at this
    n: near the target when most deltas are 0, conservative (more power than promised) otherwise.
    """
    if sd < 0 or not math.isfinite(sd):
        raise ValueError(f"sd must be finite and >= 0, got {sd}")
    if not 0.0 < power < 1.0 or not 0.0 < alpha < 1.0:
        raise ValueError("alpha and power must lie in (0, 1)")
    if true_delta + margin <= 0:
        raise ValueError(f"no n can show Δ > {-margin} when the true Δ is {true_delta}")
    lo, hi = 1, 2
    while _bounded_power(hi, margin, true_delta, sd, alpha) < power:
        lo, hi = hi, hi * 2
        if hi > _MAX_N:
            raise ValueError(f"power {power} not reached below n = {_MAX_N}")
    while hi - lo > 1:  # power increases with n: h(n) and sd/√n both shrink
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _bounded_power(mid, margin, true_delta, sd, alpha) >= power else (mid, hi)
    return max(2, hi)


@functools.lru_cache(maxsize=4096)  # a gate asks the same question for many tasks
def bounded_mde(n: int, sd: float, *, alpha: float = ALPHA, power: float = 0.8) -> float:
    """The smallest margin that n items show with `power` at a true Δ of 0, under the approximation of
    `bounded_n`: h(n) + z_power sd / √n."""
    if n < 1:
        return math.inf
    if sd < 0 or not math.isfinite(sd):
        raise ValueError(f"sd must be finite and >= 0, got {sd}")
    return float(_betting_half_width(n, sd, alpha) + sps.norm.ppf(power) * sd / math.sqrt(n))
