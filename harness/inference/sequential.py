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

Horizon-aware design (issue 23, "raise the bar near the boundary"). The LIL schedule above does not know how
many items will come, so near a margin it needs 1.4-1.9x the planner's fixed n. A sequential evaluation always
knows its maximum (the split) and, before the first look, the n its planner asks. A `Design` fixed then tunes
the bets to that horizon H, as WSR's fixed-n plug-in bets do (their eq. (26) with t log(t + 1) replaced by H):

    λ^H_t = sqrt(2 log(2/α) / (σ̂²_{t−1} H)),

and, where the rule's threshold m₀ is known in advance, leans each side's bet toward the growth-optimal bet
against m₀, the aGRAPA bet of WSR (2024), (μ̂_{t−1} − m₀) / (σ̂²_{t−1} + (μ̂_{t−1} − m₀)²) (sign flipped for K⁻):

    λ^±_t = max(λ^H_t, (1 − w) λ^H_t + w · aGRAPA^±_t),   w = GRO_WEIGHT,

which stops sooner when the truth lies far beyond the threshold. Every λ_t still uses only y_1..y_{t−1} and
does not depend on the m under test, so both capitals stay nonnegative martingales for every m (Ville's
inequality holds at any stopping time, whatever the horizon or the threshold, even a wrong one) and K⁺(m)
stays nonincreasing in m, so the running intersection is still an interval. A wrong horizon or threshold costs
items, never validity. benchmarks/bench_sequential.py (section 5) measures both.

Predictable offsets (`shift`). The capital only needs each value's conditional mean given the past, so values
whose mean under H0 is m − s_t, with s_t fixed before y_t is seen, are tested by the factors
1 ± λ_t (y_t − (m − s_t)) (truncated so that each stays positive for y_t in [0, 1]; bets from y + s), which are
again nonnegative martingales under H0 (Waudby-Smith & Ramdas 2024 only use E[y_t | past] = m). The
difference estimator of active evaluation needs this: its terms ḡ_t + e_t move their center ḡ_t, a mean of
predictions refitted on past draws (benchmarks/bench_active.py, section (d)).

Starting variance and truncation. σ̂²_0 = 1/4 and c = 1/2 above are WSR's; a `Design` may carry others,
fixed before the first value (`prior_variance`, `truncation`): an active run's terms (harness.inference.active)
mostly sit near their mean, so it records smaller prior and a looser c (`active.BETS`) with its draws. Any
σ̂²_0 > 0 and c in (0, 1) keep each factor positive and the bets predictable, so validity is unchanged.

Order matters: the values must enter in the order they were observed (the seeded evaluation order), and
that order must not depend on the values. Paired per-item differences d in [-1, 1] are rescaled to
y = (d + 1) / 2 in [0, 1].
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from harness.inference.stats import ALPHA, Interval, to_unit

CS_METHOD = "betting confidence sequence (Waudby-Smith & Ramdas 2024)"
HORIZON_METHOD = "betting confidence sequence tuned to a horizon (Waudby-Smith & Ramdas 2024)"
ACTIVE_METHOD = ("active paired evaluation: importance-weighted betting confidence sequence "
                 "(Kossen et al. 2021; Waudby-Smith & Ramdas 2024)")  # see harness.inference.active
DIFFERENCE_METHOD = ("active paired evaluation: difference estimator with a refitted control variate, betting "
                     "confidence sequence (Zrnic & Candès 2024; Waudby-Smith & Ramdas 2024)")  # the same module
CS_TRUNCATION = 0.5  # c in min(λ, c/m); WSR use 1/2 for their CSs; any c in (0, 1) keeps validity
PRIOR_VARIANCE = 0.25  # σ̂²_0, the plug-in variance's prior (one pseudo-value): WSR's 1/4, the most a [0, 1] value has
# Share of the aGRAPA bet against the threshold in a horizon design's bets, chosen on a trial run of
# benchmarks/bench_sequential.py's section 5 grid (1000 runs a cell): w = 0 (horizon bets alone) left 0.10
# beyond the boundary at 0.32-0.33x the planner's n; w = 0.3 / 0.4 / 0.5 gave at most 0.29x there and at most
# 0.97x / 0.98x / 0.99x at the design point. Any w in [0, 1] keeps validity.
GRO_WEIGHT = 0.4


@dataclass(frozen=True)
class Design:
    """How a horizon-aware sequence bets, fixed before the first look.

    horizon: the items the bets are tuned to (the planner's n, at most the split's); center: the rule's
    threshold on the scale of the values (None: bet for the width of the interval only)."""

    horizon: int  # <= 0: no horizon (the LIL schedule), for an active run recorded without one
    center: float | None = None
    # An active run (harness.inference.active): each value's importance weight 1 / (N q), in order, and their
    # bound B fixed with the proposal; the sequence then runs on value × weight in [lower·B, upper·B].
    weights: tuple[float, ...] | None = None
    bound: float = 1.0
    # The difference estimator of an active run: each draw's control variate g_K (subtracted from its value
    # before the weight) and the predictable offset ḡ_t added back (the sequence's `shift`); both fixed by
    # earlier draws only. None: importance weights alone.
    control: tuple[float, ...] | None = None
    offsets: tuple[float, ...] | None = None
    # How the bets start and how far they may go (see `bets` and `log_capital`): WSR's values unless an active
    # run recorded its own (harness.inference.active.BETS), so a run is always judged with the bets it ran with.
    prior_variance: float = PRIOR_VARIANCE
    truncation: float = CS_TRUNCATION

    def __post_init__(self) -> None:
        if not 0.0 < self.prior_variance <= 0.25 or not 0.0 < self.truncation < 1.0:
            raise ValueError(f"a design's prior variance must lie in (0, 1/4] and its truncation in (0, 1), got "
                             f"{self.prior_variance} and {self.truncation}")

    def on_unit(self, lower: float, upper: float) -> Design:
        """The same design for values rescaled from [lower, upper] to [0, 1]."""
        if self.center is None:
            return self
        return replace(self, center=min(1.0, max(0.0, (self.center - lower) / (upper - lower))))

    def flipped(self) -> Design:
        """The design of the negated values (a lower-is-better metric oriented so that larger is better)."""
        return replace(self, center=None if self.center is None else -self.center,
                       control=None if self.control is None else tuple(-g for g in self.control),
                       offsets=None if self.offsets is None else tuple(-g for g in self.offsets))


def weighted(x: ArrayLike, lower: float, upper: float, design: Design | None) -> tuple[np.ndarray, float, float]:
    """The values a sequence runs on and their bounds: x itself, or, for an active design, x × weight in
    [min(lower, 0)·B, max(upper, 0)·B] (weights lie in (0, B]); with a control variate, (x − g) × weight, which
    needs x − g to stay in [lower, upper] (`harness.inference.active.difference_terms` says why it does)."""
    v = np.asarray(x, dtype=float).ravel()
    if design is None or design.weights is None:
        return v, lower, upper
    w = np.asarray(design.weights, dtype=float)
    if w.size != v.size:
        raise ValueError(f"{v.size} values but {w.size} importance weights")
    if np.any(w <= 0) or np.any(w > design.bound * (1 + 1e-9)):
        raise ValueError(f"importance weights must lie in (0, {design.bound:g}]")
    if design.control is not None:
        g = np.asarray(design.control, dtype=float)
        if g.size != v.size or design.offsets is None or len(design.offsets) != v.size:
            raise ValueError(f"{v.size} values but {g.size} control variates")
        v = v - g
        if np.any(v < lower - 1e-9) or np.any(v > upper + 1e-9):
            raise ValueError("a value minus its control variate leaves the values' range")
        v = np.clip(v, lower, upper)
    return v * w, min(lower, 0.0) * design.bound, max(upper, 0.0) * design.bound


def unit_shift(design: Design | None, span: float) -> np.ndarray | None:
    """The predictable offsets ḡ_t of a difference design on the [0, 1] scale of a sequence whose values span
    `span` (None: no offsets)."""
    if design is None or design.offsets is None:
        return None
    return np.asarray(design.offsets, dtype=float) / span


def term_mean(x: ArrayLike, design: Design | None) -> float:
    """The estimate a sequence's terms give: mean of x; of x × weight (importance weights); of ḡ_t + (x − g)
    × weight (the difference estimator). Unbiased for the task's mean at every fixed number of draws."""
    v = np.asarray(x, dtype=float).ravel()
    if v.size == 0:
        return float("nan")
    if design is None or design.weights is None:
        return float(v.mean())
    terms = (v - np.asarray(design.control or np.zeros(v.size))) * np.asarray(design.weights)
    return float((terms + np.asarray(design.offsets or np.zeros(v.size))).mean())


def bets(y: np.ndarray, alpha: float = ALPHA, design: Design | None = None, *, upper: bool = False,
         shift: np.ndarray | None = None) -> np.ndarray:
    """The predictable bets λ_t, one per value, for each row of `y` (in [0, 1], shape (S, n)).

    No design: the plug-in bets of WSR eq. (26) (LIL schedule). A design: the horizon bets, leaned toward the
    aGRAPA bet against its center on the side `upper` names (see the module docstring).
    λ_t uses only y_1..y_{t−1} (predictable), which is what makes the capital process a martingale.
    shift: the predictable offsets of `log_capital` (the plug-in mean and variance are then those of y + shift,
    whose conditional mean is the same at every t)."""
    if shift is not None:
        y = y + _offsets(shift, y.shape)
    rows, n = y.shape
    t = np.arange(1, n + 1)
    v0 = PRIOR_VARIANCE if design is None else design.prior_variance
    mu = (0.5 + np.cumsum(y, axis=1)) / (t + 1)
    var = (v0 + np.cumsum((y - mu) ** 2, axis=1)) / (t + 1)
    var_prev = np.concatenate([np.full((rows, 1), v0), var[:, :-1]], axis=1)
    if design is None or design.horizon <= 0:
        return np.sqrt(2.0 * math.log(2.0 / alpha) / (var_prev * t * np.log1p(t)))
    lam = np.sqrt(2.0 * math.log(2.0 / alpha) / (var_prev * max(1, design.horizon)))
    if design.center is None:
        return lam
    mu_prev = np.concatenate([np.full((rows, 1), 0.5), mu[:, :-1]], axis=1)
    gap = (design.center - mu_prev) if upper else (mu_prev - design.center)
    agrapa = np.maximum(gap, 0.0) / (var_prev + gap * gap)  # a bet against the data is never made
    return np.maximum(lam, (1.0 - GRO_WEIGHT) * lam + GRO_WEIGHT * agrapa)


def truncation(design: Design | None) -> float:
    """c of the truncated bets min(λ, c/m): the design's, or WSR's 1/2 without one."""
    return CS_TRUNCATION if design is None else design.truncation


def _check(y: ArrayLike) -> np.ndarray:
    arr = np.asarray(y, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"need a 1-d or 2-d array, got shape {arr.shape}")
    if np.any(~np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise ValueError("a betting confidence sequence needs values in [0, 1]")
    return arr


def _offsets(shift: ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
    """Predictable offsets (one per value, or one row for every row) on the shape of the values."""
    return np.broadcast_to(np.asarray(shift, dtype=float), shape)


def log_capital(y: np.ndarray, m: np.ndarray, lam: np.ndarray, *, upper: bool,
                trunc: float = CS_TRUNCATION, shift: np.ndarray | None = None) -> np.ndarray:
    """log K⁺_t(m) (upper=False: bets that the mean is above m) or log K⁻_t(m) (upper=True), for every t.

    `m` has one entry per row of `y`; the result has y's shape (cumulative over t).
    shift: predictable offsets s_t (fixed before y_t is seen), for values whose conditional mean under H0 is
    m − s_t rather than m (the difference estimator of `harness.inference.active`): each factor is then
    1 ± λ_t (y_t − (m − s_t)), truncated so that it stays positive for every y_t in [0, 1]."""
    mm = np.asarray(m, dtype=float)[:, None]
    if shift is not None:
        mm = mm - _offsets(shift, y.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        if upper:
            room = 1.0 - mm  # the factor's worst case is y = 0; room <= 0: y − m_t <= 0, every bet is safe
            cap = np.where(room > 0, np.minimum(lam, trunc / room), lam)
            return np.cumsum(np.log1p(-cap * (y - mm)), axis=1)
        cap = np.where(mm > 0, np.minimum(lam, trunc / mm), lam)
        return np.cumsum(np.log1p(cap * (y - mm)), axis=1)


def first_exclusion(y: ArrayLike, m: float | ArrayLike, *, upper: bool, alpha: float = ALPHA,
                    design: Design | None = None, shift: ArrayLike | None = None) -> np.ndarray:
    """For each row: the first n (1-based) at which the CS's running intersection excludes `m`, 0 if never.

    upper=False: the lower limit passes above m (evidence that the mean exceeds m); upper=True: the upper
    limit falls below m. Exactly the event a gate rule decides on, without solving for the limits.
    shift: predictable offsets of each value's conditional mean (see `log_capital`), shaped like y or (n,)."""
    arr = _check(y)
    sh = None if shift is None else _offsets(shift, arr.shape)
    lam = bets(arr, alpha, design, upper=upper, shift=sh)
    mm = np.broadcast_to(np.asarray(m, dtype=float), (arr.shape[0],))
    hit = log_capital(arr, mm, lam, upper=upper, shift=sh, trunc=truncation(design)) >= math.log(2.0 / alpha)
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)


def cs_bounds(y: ArrayLike, *, alpha: float = ALPHA, iterations: int = 50, design: Design | None = None,
              shift: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The running intersection (L_n, U_n) of the CS after all n values of each row of `y` (in [0, 1]).

    design: its center on the [0, 1] scale of `y` (see `Design.on_unit`). shift: as in `first_exclusion`; the
    limits are then on the scale of y + shift."""
    arr = _check(y)
    rows = arr.shape[0]
    if arr.shape[1] == 0:
        return np.zeros(rows), np.ones(rows)
    sh = None if shift is None else _offsets(shift, arr.shape)
    lams = {side: bets(arr, alpha, design, upper=side, shift=sh) for side in (False, True)}
    target = math.log(2.0 / alpha)

    def excluded(m: np.ndarray, upper: bool) -> np.ndarray:
        return log_capital(arr, m, lams[upper], upper=upper, shift=sh, trunc=truncation(design)).max(axis=1) >= target

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


def method_of(design: Design | None) -> str:
    """The method name a sequence with this design reports."""
    if design is not None and design.weights is not None:
        return ACTIVE_METHOD if design.control is None else DIFFERENCE_METHOD
    return CS_METHOD if design is None or design.horizon <= 0 else HORIZON_METHOD


def sequence_interval(x: ArrayLike, lower: float, upper: float, *, alpha: float = ALPHA,
                      design: Design | None = None) -> Interval:
    """The CS's running intersection after every value of `x` (in observation order), bounded in [lower, upper].

    Valid at any data-dependent stopping time: this is what a sequential run is judged with. design: the
    horizon design fixed before the first look (its center on the scale of `x`); None: the LIL schedule."""
    x, lower, upper = weighted(x, lower, upper, design)
    y = to_unit(x, lower, upper)
    method = method_of(design)
    if y.size == 0:
        return Interval(None, None, method, 0, "undefined without items")
    span = upper - lower
    unit = design.on_unit(lower, upper) if design is not None else None
    lo, hi = cs_bounds(y[None, :], alpha=alpha, design=unit, shift=unit_shift(design, span))
    return Interval(float(lower + span * lo[0]), float(lower + span * hi[0]), method, int(y.size))


@functools.lru_cache(maxsize=4096)
def narrowest(m: int) -> float:
    """The distance from the estimate to a side of the sequence after m values that never vary (0 in every one
    of m items, on [0, 1]): 0.63 at 6, 0.47 at 10, 0.21 at 30. A sequence on varying values is wider; none on m
    items is much narrower. It says how many items a rate seen 0 (or every) time needs (harness.decide.gate)."""
    hi = sequence_interval(np.zeros(max(1, m)), 0.0, 1.0).hi
    return 1.0 if hi is None else float(hi)


def items_to_clear(distance: float, limit: int = 65_536) -> int | None:
    """The fewest items m at which `narrowest`(m) < distance (None: none up to `limit`)."""
    if distance <= 0:
        return None
    lo, hi = 1, 1
    while narrowest(hi) >= distance:
        if hi >= limit:
            return None
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if narrowest(mid) >= distance else (lo, mid)
    return hi


def describe(block: dict[str, Any] | None) -> str:
    """One line naming a sequential run's method (for reports)."""
    if not block:
        return ""
    line = f"sequential run: {block.get('method', CS_METHOD)}, alpha {block.get('alpha', ALPHA)}"
    design = block.get("design") or {}
    if design:
        line += "; horizons " + ", ".join(f"{task} {d.get('horizon')}" for task, d in sorted(design.items()))
    return line


def anytime_p(x: ArrayLike, lower: float, upper: float, threshold: float, *, above: bool,
              alpha: float = ALPHA, design: Design | None = None) -> float:
    """One-sided anytime-valid p-value, from the same capital process the CS uses (bets tuned at `alpha`).

    above=True tests H0: mean <= threshold (small p: the mean lies above it) with 1 / max_t K⁺_t(threshold);
    above=False tests H0: mean >= threshold with K⁻. Ville's inequality gives P(p <= a) <= a for every a at
    any stopping time, and p <= alpha/2 exactly when the CS's running intersection excludes the threshold
    on that side, so the gate's verdicts and its (Holm-adjusted) p-values agree. Inverting the CS over
    alpha instead would mix processes with different bets, which Ville's inequality does not cover. design: as
    in `sequence_interval` (the same bets, so p and the interval still agree)."""
    v, lower, upper = weighted(x, lower, upper, design)
    if v.size == 0:
        return 1.0
    span = upper - lower
    m = (threshold - lower) / span
    if m < 0.0 or m > 1.0:  # the mean cannot lie beyond the bounds
        return 0.0 if (m < 0.0) == above else 1.0
    y = np.clip((v - lower) / span, 0.0, 1.0)[None, :]
    unit = design.on_unit(lower, upper) if design is not None else None
    shift = unit_shift(design, span)  # the difference estimator's offsets: the terms' mean is m − shift under H0
    lam = bets(y, alpha, unit, upper=not above, shift=shift)
    log_k = log_capital(y, np.array([m]), lam, upper=not above, shift=shift, trunc=truncation(unit)).max()
    return float(min(1.0, math.exp(-max(0.0, float(log_k)))))
