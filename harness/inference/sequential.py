"""Anytime-valid inference for sequential ("until decided") evaluation: betting confidence sequences.

A fixed-n interval is valid only at the n fixed in advance: re-testing it after every chunk and stopping at
the first pass inflates the false-pass rate far above alpha/2 (benchmarks/bench_sequential.py shows it). A
confidence sequence (CS) holds uniformly over time, P(∀t: μ ∈ C_t) >= 1 − α, so it stays valid at any
stopping time, including "stop as soon as every gate rule is decided".

This is the hedged-capital betting CS of Waudby-Smith & Ramdas (2024), "Estimating means of bounded random
variables by betting", JRSS-B 86(1):1-27, Section 4 (Theorem 3, the hedged capital process) with the
predictable plug-in bets of their eq. (26) (PrPl, with the t·log(t+1) schedule that makes the CS shrink at the
law-of-the-iterated-logarithm rate without a horizon fixed in advance):

    μ̂_t = (1/2 + Σ_{i<=t} y_i) / (t + 1),   σ̂²_t = (1/4 + Σ_{i<=t} (y_i − μ̂_i)²) / (t + 1),
    λ_t = sqrt(2 log(2/α) / (σ̂²_{t−1} t log(t + 1))),
    K⁺_t(m) = Π_{i<=t} (1 + min(λ_i, c/m)(y_i − m)),   K⁻_t(m) = Π_{i<=t} (1 − min(λ_i, c/(1−m))(y_i − m)),
    C_t = {m : max(K⁺_t(m), K⁻_t(m)) / 2 < 1/α}   (hedge θ = 1/2).

Under H0: mean = m both capitals are nonnegative martingales, so by Ville's inequality P(∃t: K^±_t(m) >= 1/α)
<= α; each side on its own errs with probability <= α/2, which is the one-sided error a gate rule cares
about. The running intersection ∩_{s<=t} C_s is then also a (1 − α) CS: it never widens. Because K⁺ is
nonincreasing in m and K⁻ nondecreasing, the running intersection at t is (L_t, U_t) with L_t the largest m
whose running maximum of K⁺ reached 2/α, found by bisection (like `harness.inference.stats.betting_bounds`).

Order matters: the values must enter in the order they were observed (the seeded evaluation order), and
that order must not depend on the values. Paired per-item differences d in [-1, 1] are rescaled to
y = (d + 1) / 2 in [0, 1].
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from harness.inference.stats import ALPHA, Interval, to_unit

CS_METHOD = "betting confidence sequence (Waudby-Smith & Ramdas 2024)"
CS_TRUNCATION = 0.5  # c in min(λ, c/m); WSR use 1/2 for their CSs; any c in (0, 1) keeps validity


def bets(y: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """The predictable plug-in bets λ_t of WSR eq. (26), one per value, for each row of `y` (shape (S, n)).

    λ_t uses only y_1..y_{t−1} (predictable), which is what makes the capital process a martingale."""
    rows, n = y.shape
    t = np.arange(1, n + 1)
    mu = (0.5 + np.cumsum(y, axis=1)) / (t + 1)
    var = (0.25 + np.cumsum((y - mu) ** 2, axis=1)) / (t + 1)
    var_prev = np.concatenate([np.full((rows, 1), 0.25), var[:, :-1]], axis=1)
    return np.sqrt(2.0 * math.log(2.0 / alpha) / (var_prev * t * np.log1p(t)))


def _check(y: ArrayLike) -> np.ndarray:
    arr = np.asarray(y, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"need a 1-d or 2-d array, got shape {arr.shape}")
    if np.any(~np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise ValueError("a betting confidence sequence needs values in [0, 1]")
    return arr


def log_capital(y: np.ndarray, m: np.ndarray, lam: np.ndarray, *, upper: bool,
                trunc: float = CS_TRUNCATION) -> np.ndarray:
    """log K⁺_t(m) (upper=False: bets that the mean is above m) or log K⁻_t(m) (upper=True), for every t.

    `m` has one entry per row of `y`; the result has y's shape (cumulative over t)."""
    mm = np.asarray(m, dtype=float)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        if upper:
            cap = np.minimum(lam, trunc / (1.0 - mm))
            return np.cumsum(np.log1p(-cap * (y - mm)), axis=1)
        cap = np.minimum(lam, trunc / mm)
        return np.cumsum(np.log1p(cap * (y - mm)), axis=1)


def first_exclusion(y: ArrayLike, m: float | ArrayLike, *, upper: bool, alpha: float = ALPHA) -> np.ndarray:
    """For each row: the first n (1-based) at which the CS's running intersection excludes `m`, 0 if never.

    upper=False: the lower limit passes above m (evidence that the mean exceeds m); upper=True: the upper
    limit falls below m. Exactly the event a gate rule decides on, without solving for the limits."""
    arr = _check(y)
    lam = bets(arr, alpha)
    mm = np.broadcast_to(np.asarray(m, dtype=float), (arr.shape[0],))
    hit = log_capital(arr, mm, lam, upper=upper) >= math.log(2.0 / alpha)
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)


def cs_bounds(y: ArrayLike, *, alpha: float = ALPHA, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """The running intersection (L_n, U_n) of the CS after all n values of each row of `y` (in [0, 1])."""
    arr = _check(y)
    rows = arr.shape[0]
    if arr.shape[1] == 0:
        return np.zeros(rows), np.ones(rows)
    lam = bets(arr, alpha)
    target = math.log(2.0 / alpha)

    def excluded(m: np.ndarray, upper: bool) -> np.ndarray:
        return log_capital(arr, m, lam, upper=upper).max(axis=1) >= target

    def limit(upper: bool) -> np.ndarray:
        edge = 1.0 if upper else 0.0
        a, b = np.full(rows, edge), np.full(rows, 1.0 - edge)  # a: excluded side, b: the other end
        any_ex = excluded(np.full(rows, 1e-12 if not upper else 1 - 1e-12), upper)
        for _ in range(iterations):
            mid = (a + b) / 2
            ex = excluded(mid, upper)
            a, b = np.where(ex, mid, a), np.where(ex, b, mid)
        return np.where(any_ex, a, edge)

    lo, hi = limit(False), limit(True)
    return np.minimum(lo, hi), np.maximum(lo, hi)


def sequence_interval(x: ArrayLike, lower: float, upper: float, *, alpha: float = ALPHA) -> Interval:
    """The CS's running intersection after every value of `x` (in observation order), bounded in [lower, upper].

    Valid at any data-dependent stopping time: this is what a sequential run is judged with."""
    y = to_unit(x, lower, upper)
    if y.size == 0:
        return Interval(None, None, CS_METHOD, 0, "undefined without items")
    span = upper - lower
    lo, hi = cs_bounds(y[None, :], alpha=alpha)
    return Interval(float(lower + span * lo[0]), float(lower + span * hi[0]), CS_METHOD, int(y.size))


def describe(block: dict[str, Any] | None) -> str:
    """One line naming a sequential run's method (for reports)."""
    if not block:
        return ""
    return f"sequential run: {block.get('method', CS_METHOD)}, alpha {block.get('alpha', ALPHA)}"


def anytime_p(x: ArrayLike, lower: float, upper: float, threshold: float, *, above: bool,
              alpha: float = ALPHA) -> float:
    """One-sided anytime-valid p-value, from the same capital process the CS uses (bets tuned at `alpha`).

    above=True tests H0: mean <= threshold (small p: the mean lies above it) with 1 / max_t K⁺_t(threshold);
    above=False tests H0: mean >= threshold with K⁻. Ville's inequality gives P(p <= a) <= a for every a at
    any stopping time, and p <= alpha/2 exactly when the CS's running intersection excludes the threshold
    on that side, so the gate's verdicts and its (Holm-adjusted) p-values agree. Inverting the CS over
    alpha instead would mix processes with different bets, which Ville's inequality does not cover."""
    v = np.asarray(x, dtype=float).ravel()
    if v.size == 0:
        return 1.0
    span = upper - lower
    m = (threshold - lower) / span
    if m < 0.0 or m > 1.0:  # the mean cannot lie beyond the bounds
        return 0.0 if (m < 0.0) == above else 1.0
    y = np.clip((v - lower) / span, 0.0, 1.0)[None, :]
    log_k = log_capital(y, np.array([m]), bets(y, alpha), upper=not above).max()
    return float(min(1.0, math.exp(-max(0.0, float(log_k)))))
