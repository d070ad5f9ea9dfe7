"""The evidence behind one gate check: an interval at any level, its p-values, and what n can show.

A `Unit` is one thing a rule judges (a task, a pooled suite, a Bonferroni-combined macro average). It
knows how to produce its interval at any level alpha, so the gate can read a verdict at 95%, invert the
interval into p-values (for Holm across tasks), and say how much data a decision needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from harness.inference import power, stats
from harness.inference.sequential import Design, anytime_p, method_of, sequence_interval, term_mean
from harness.inference.stats import Interval

POWER = 0.8  # the power every plan and minimum detectable effect is stated at
UNBOUNDED_MIN_N = 30  # below this a bootstrap interval of an unbounded metric is not reported

IntervalAt = Callable[[float], Interval]


@dataclass
class Unit:
    """One judged quantity, oriented so that larger is better (deltas) or as the rule reads it (scores)."""

    label: str  # task name, "pooled", "macro"
    figure: float
    interval_at: IntervalAt
    n: int
    mde: float | None  # minimum detectable effect at 80% power with this n
    shape: str  # "paired binary", "paired bounded", "binary", "bounded", "unbounded", "recorded"
    discordance: float | None = None  # paired binary: the rate used for planning
    sd: float | None = None  # bounded: per-item standard deviation used for planning
    note: str | None = None
    # the range the values take (a 0/1 score: [0, 1]; a paired 0/1 improvement: [-1, 1]); None where unbounded.
    # A floor whose estimate sits at an end of it (0 refusals in n) is planned with the sequence itself
    # (harness.decide.gate._plan_n), and the allocator projects no side narrower than a sequence can be there
    extent: tuple[float, float] | None = None
    # sequential runs: the one-sided anytime p-value of "the mean lies above (True) / below (False) t"
    p_at: Callable[[float, bool], float] | None = None

    def interval(self, alpha: float = stats.ALPHA) -> Interval:
        return self.interval_at(alpha)


def invert(interval_at: IntervalAt, holds: Callable[[Interval], bool], *, iterations: int = 40) -> float:
    """The p-value dual to an interval family: the smallest alpha at which `holds` becomes true.

    Intervals widen as alpha falls, so `holds(interval_at(alpha))` is monotone in alpha; bisection on
    log(alpha) finds the switch. Returns 1.0 when it never holds."""
    def ok(alpha: float) -> bool:
        iv = interval_at(alpha)
        return iv.defined and holds(iv)

    hi = 1.0 - 1e-9
    if not ok(hi):
        return 1.0
    lo = 1e-12
    if ok(lo):
        return lo
    for _ in range(iterations):
        mid = math.sqrt(lo * hi)
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def orient(iv: Interval, sign: float, shift: float = 0.0) -> Interval:
    """An interval of sign * x + shift (sign -1 swaps the ends)."""
    if not iv.defined:
        return iv
    a, b = sign * iv.lo + shift, sign * iv.hi + shift  # type: ignore[operator]
    return Interval(min(a, b), max(a, b), iv.method, iv.n, iv.note)


def _z(alpha: float) -> float:
    return float(sps.norm.ppf(1 - alpha / 2))


def one_sample_mde(n: int, sd: float, *, alpha: float = stats.ALPHA) -> float | None:
    """Normal-approximation distance from a threshold that n items detect with 80% power."""
    if n < 1:
        return None
    return (_z(alpha) + float(sps.norm.ppf(POWER))) * sd / math.sqrt(n)


def one_sample_n(distance: float, sd: float, *, alpha: float = stats.ALPHA) -> int | None:
    """Items needed for 80% power when the true score lies `distance` beyond the threshold."""
    if distance <= 0:
        return None
    return int(math.ceil(((_z(alpha) + float(sps.norm.ppf(POWER))) * sd / distance) ** 2))


# ---------------------------------------------------------------- units


NO_SEQUENTIAL_UNBOUNDED = "no anytime-valid interval exists for an unbounded metric: judge it on a complete run"


def delta_interval(b: np.ndarray, c: np.ndarray, binary: bool, bounds: tuple[float, float] | None, *,
                   alpha: float = stats.ALPHA, n_resamples: int = 10_000, seed: int = 0,
                   sequential: bool = False, design: Design | None = None) -> Interval:
    """A (1 - alpha) interval of mean(c - b) that holds at small n: Tango for 0/1 pairs, betting for bounded.

    sequential (a run evaluated until decided, pairs in evaluation order): the betting confidence sequence,
    valid at the data-dependent n the run stopped at; undefined for unbounded metrics. design: its horizon
    design, center on the scale of c - b (None: the LIL schedule of runs recorded without one)."""
    if sequential:
        width = 1.0 if binary else (bounds[1] - bounds[0]) if bounds is not None else None
        if width is None:
            return Interval(None, None, method_of(design), int(b.size), NO_SEQUENTIAL_UNBOUNDED)
        return sequence_interval(c - b, -width, width, alpha=alpha, design=design)
    if binary:
        nb, nc = stats.discordant(b, c)
        return paired_binary_gate_interval(nb, nc, int(b.size), alpha=alpha)
    if bounds is not None:
        width = bounds[1] - bounds[0]
        return stats.bounded_mean_interval(c - b, -width, width, alpha=alpha)
    return stats.bootstrap_interval(b, c, n_resamples=n_resamples, seed=seed, min_n=UNBOUNDED_MIN_N)




def paired_binary_gate_interval(b: int, c: int, n: int, *, alpha: float = stats.ALPHA) -> Interval:
    """The interval the gate judges paired 0/1 scores by: Tango's (continuity-adjusted TANGO_CC), each limit
    that excludes 0 recomputed with TANGO_CC_BEYOND_ZERO (never moving it past 0), then `exact_guard`."""
    iv = stats.paired_binary_interval(b, c, n, alpha=alpha)
    if iv.defined and (iv.lo > 0 or iv.hi < 0):  # type: ignore[operator]
        # bisection (robust where cc flattens the statistic near the estimate)
        far_lo, far_hi = stats.tango_bounds(np.array([b]), np.array([c]), n, alpha=alpha,
                                            cc=stats.TANGO_CC_BEYOND_ZERO)
        lo = max(0.0, float(far_lo[0])) if iv.lo > 0 else float(iv.lo)  # type: ignore[operator,arg-type]
        hi = min(0.0, float(far_hi[0])) if iv.hi < 0 else float(iv.hi)  # type: ignore[operator,arg-type]
        iv = Interval(lo, hi, iv.method, iv.n, iv.note)
    return exact_guard(iv, b, c, alpha, n)


def paired_binary_gate_bounds(b: np.ndarray, c: np.ndarray, n: int, *, alpha: float = stats.ALPHA
                              ) -> tuple[np.ndarray, np.ndarray]:
    """`paired_binary_gate_interval` for many (b, c) at one n at once (vectorised bisection; benchmarks, plans)."""
    b, c = np.asarray(b, dtype=np.int64), np.asarray(c, dtype=np.int64)
    lo, hi = stats.tango_bounds(b, c, n, alpha=alpha)
    far_lo, far_hi = stats.tango_bounds(b, c, n, alpha=alpha, cc=stats.TANGO_CC_BEYOND_ZERO)
    lo = np.where(lo > 0, np.maximum(0.0, far_lo), lo)
    hi = np.where(hi < 0, np.minimum(0.0, far_hi), hi)
    k = b + c
    tail = alpha / 2
    with np.errstate(invalid="ignore"):
        lo = np.where((k > 0) & (lo > 0) & (sps.binom.sf(c - 1, np.maximum(k, 1), 0.5) > tail), 0.0, lo)
        hi = np.where((k > 0) & (hi < 0) & (sps.binom.sf(b - 1, np.maximum(k, 1), 0.5) > tail), 0.0, hi)
        cp_b = np.where(b > 0, sps.beta.ppf(tail, np.maximum(b, 1), n - b + 1), 0.0)
        cp_c = np.where(c > 0, sps.beta.ppf(tail, np.maximum(c, 1), n - c + 1), 0.0)
    return np.minimum(lo, cp_c), np.maximum(hi, -cp_b)


def exact_guard(iv: Interval, b: int, c: int, alpha: float, n: int | None = None) -> Interval:
    """Widen a paired-binary interval where exact tests on the same counts cannot reach as far.

    Tango's interval is asymptotic; at few discordant pairs its bound can leave 0 although the exact
    conditional test (McNemar 1947; the binomial test on the b + c discordant pairs) cannot reject Δ = 0,
    e.g. 4 gains and 0 losses (exact p = 0.125). With n, each end is also kept within the exact one-sided
    Clopper–Pearson bound of the one-directional rate: Δ = p_gain − p_loss ≥ −p_loss, so hi never lies below
    −(lower bound of p_loss), and lo never above the lower bound of p_gain. Where the true rate of the other
    direction is near 0 (a margin's boundary reached by losses alone) Tango's end errs up to 3.4% on one side
    at n 160–580 (issue 23); this keeps each side within alpha / 2 there (benchmarks/bench_gate_validity.py).
    Widening never lowers coverage."""
    if not iv.defined:
        return iv
    lo, hi = float(iv.lo), float(iv.hi)  # type: ignore[arg-type]
    if b + c and lo > 0 and sps.binom.sf(c - 1, b + c, 0.5) > alpha / 2:
        lo = 0.0
    if b + c and hi < 0 and sps.binom.sf(b - 1, b + c, 0.5) > alpha / 2:
        hi = 0.0
    by_mcnemar = (lo, hi) != (iv.lo, iv.hi)
    if n:
        hi = max(hi, -_cp_lower(b, n, alpha))
        lo = min(lo, _cp_lower(c, n, alpha))
    if (lo, hi) == (iv.lo, iv.hi):
        return iv
    how = "widened to 0 by the exact McNemar test" if by_mcnemar else "widened to the exact one-directional bound"
    return Interval(lo, hi, f"{iv.method}, {how}", iv.n, iv.note)


def _cp_lower(k: int, n: int, alpha: float) -> float:
    """The exact one-sided (1 − alpha/2) Clopper–Pearson lower bound of a rate seen k times in n."""
    return 0.0 if k <= 0 else float(sps.beta.ppf(alpha / 2, k, n - k + 1))


def paired_unit(label: str, b: np.ndarray, c: np.ndarray, *, binary: bool, bounds: tuple[float, float] | None,
                hib: bool, n_resamples: int, seed: int, sequential: bool = False,
                design: Design | None = None) -> Unit:
    """The improvement (candidate − baseline, larger is better) of paired item scores (sequential: in
    evaluation order, judged by the confidence sequence; design: its horizon design, center on the
    larger-is-better scale of the improvement)."""
    sign = 1.0 if hib else -1.0
    d = sign * (c - b)
    n = int(b.size)
    # an active run's draws: the terms' mean (importance-weighted, or the difference estimator's) estimates the
    # task's mean (harness.inference.active)
    figure = term_mean(d, design)
    raw = design if design is None or hib else design.flipped()  # c - b runs the other way for lower-is-better

    def at(alpha: float) -> Interval:
        return orient(delta_interval(b, c, binary, bounds, alpha=alpha, n_resamples=n_resamples, seed=seed,
                                     sequential=sequential, design=raw), sign)

    span = 1.0 if binary else (bounds[1] - bounds[0]) if bounds else None
    p_at = None
    if sequential and span is not None:
        def p_at(threshold: float, above: bool) -> float:
            return anytime_p(d, -span, span, threshold, above=above, design=design)  # type: ignore[operator]

    if binary:
        nb, nc = stats.discordant(b, c)
        disc = (nb + nc + 1) / (n + 2)  # Laplace: a zero count at small n must not plan for zero discordance
        mde = power.paired_binary_mde(n, disc) if n else None
        return Unit(label, figure, at, n, mde, "paired binary", discordance=disc, p_at=p_at, extent=(-1.0, 1.0))
    width = (bounds[1] - bounds[0]) if bounds else None
    sd = float(d.std(ddof=1)) if n > 1 else (width / 2 if width else float("nan"))
    shape = "paired bounded" if bounds else "paired unbounded"
    mde = power.bounded_mde(n, sd) if n > 1 and bounds else None
    return Unit(label, figure, at, n, mde, shape, sd=sd, p_at=p_at, extent=(-width, width) if width else None)


def score_unit(label: str, values: np.ndarray, *, binary: bool, bounds: tuple[float, float] | None,
               min_n: int = 2, sequential: bool = False) -> Unit:
    """One run's own mean score, with an interval that holds at its n (sequential: at any stopping time)."""
    n = int(values.size)

    def at(alpha: float) -> Interval:
        if sequential:
            rng = (0.0, 1.0) if binary else bounds
            if rng is None:
                return Interval(None, None, method_of(None), n, NO_SEQUENTIAL_UNBOUNDED)
            return sequence_interval(values, rng[0], rng[1], alpha=alpha)
        if binary:
            return stats.proportion_interval(int(values.sum()), n, alpha=alpha)
        return stats.mean_interval(values, alpha=alpha, bounds=bounds, min_n=min_n)

    if binary:
        p = (float(values.sum()) + 1) / (n + 2)
        sd = math.sqrt(p * (1 - p))
    else:
        sd = float(values.std(ddof=1)) if n > 1 else float("nan")
    shape = "binary" if binary else ("bounded" if bounds else "unbounded")
    rng = (0.0, 1.0) if binary else bounds
    p_at = None
    if sequential and rng is not None:
        def p_at(threshold: float, above: bool) -> float:
            return anytime_p(values, rng[0], rng[1], threshold, above=above)  # type: ignore[index]

    return Unit(label, float(values.mean()) if n else float("nan"), at, n,
                one_sample_mde(n, sd) if math.isfinite(sd) else None, shape, sd=sd, p_at=p_at, extent=rng)


def recorded_unit(label: str, value: float, ci: tuple[float, float] | None, n: int) -> Unit:
    """A corpus-level figure: only the 95% interval results.json recorded exists."""
    def at(alpha: float) -> Interval:
        if ci is None or abs(alpha - stats.ALPHA) > 1e-12:
            return Interval(None, None, "as recorded in results.json", n,
                            "only the recorded 95% interval exists" if ci else "no interval recorded")
        return Interval(ci[0], ci[1], "as recorded in results.json", n)

    return Unit(label, value, at, n, None, "recorded")


def macro_unit(label: str, units: list[Unit]) -> Unit:
    """The mean over tasks: each task's interval at alpha/T, averaged (a Bonferroni union bound, so the
    average interval covers with probability at least 1 − alpha)."""
    k = len(units)

    def at(alpha: float) -> Interval:
        parts = [u.interval_at(alpha / k) for u in units]
        if not all(p.defined for p in parts):
            return Interval(None, None, "macro mean (Bonferroni)", sum(u.n for u in units), "a task's interval is undefined")
        return Interval(float(np.mean([p.lo for p in parts])), float(np.mean([p.hi for p in parts])),
                        f"macro mean of {k} tasks (Bonferroni, {parts[0].method})", sum(u.n for u in units))

    mdes = [u.mde for u in units if u.mde is not None]
    return Unit(label, float(np.mean([u.figure for u in units])), at, sum(u.n for u in units),
                max(mdes) if mdes else None, "macro")
