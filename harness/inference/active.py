"""Active paired evaluation: the candidate's items drawn toward likely flips, importance-weighted, anytime-valid.

In release gating the baseline's answers on every item of a task are stored, and its per-item signal (the
margin between its chosen choice and the runner-up, its correctness, the length of a generation) predicts
which items a candidate is likely to change. Active testing (Kossen, Farquhar, Gal & Rainforth, "Active
Testing: Sample-Efficient Model Evaluation", ICML 2021) evaluates the items such a proposal favours and
removes the bias this causes with importance weights. Here:

Estimand: the population mean paired difference Δ = (1/N) Σ_i d_i over the task's N items, d_i = c_i − b_i
in [−w, w] (w: the width of the metric's range; 1 for 0/1 scores).

Proposal, fixed from the baseline alone before the first draw: a flip score r_i >= 0 per item (larger: more
likely to flip) mixed with the uniform distribution,

    q_i = f / N + (1 − f) r_i / Σ_j r_j,      f in (0, 1] the floor,

so every q_i >= f / N (with f = 1, or every r_i equal, q is uniform).

Draws: K_1, K_2, … iid from q, WITH replacement (an item drawn twice is evaluated once and counted twice).
The terms

    z_t = d_{K_t} / (N q_{K_t})

are then iid with E[z_t] = Σ_i q_i d_i / (N q_i) = Δ: the importance-weighted (Horvitz–Thompson) estimator
Δ̂_T = (1/T) Σ_t z_t is unbiased at every fixed T (with replacement the LURE correction of Farquhar, Gal &
Rainforth 2021, "On statistical bias in active learning", which Kossen et al. need for draws without
replacement, is not needed). Each term lies in [−w B, w B] with B = 1 / (N min_i q_i) <= 1 / f, a bound fixed
with q before any draw. Rescaled to [0, 1], the terms are iid bounded values with mean (Δ + wB) / (2wB), so the
betting confidence sequence of `harness.inference.sequential` (Waudby-Smith & Ramdas 2024, hedged capital
with predictable bets; the horizon design unchanged) holds for them at any stopping time: the gate may look
after every chunk of draws and stop when decided.

The floor trades the tilt against the range: a small f puts more draws on likely flips (a smaller variance of
z when the signal is right) but widens [−wB, wB], which caps the bets the capital process can make (its
growth per draw is at most about gap / (2wB) for a gap between Δ and the threshold). A wrong or useless signal
costs items, never validity. benchmarks/bench_active.py measures coverage, false passes at the boundary and
items to a decision against the uniform order, for several floors and signal qualities, and on stored runs.

What bounds the saving is the variance of z, not only its range: for 0/1 flips with probability p_i, E[z²] =
(1/N²) Σ p_i / q_i >= (1/N²) (Σ √p_i)² whatever the floor (`second_moment`). With a baseline margin whose AUC
for the flips is 0.9, that is 0.60x the uniform draws' variance at discordance 0.15 (0.71x at 0.3), so
importance weighting alone cannot reach 0.5x the draws there.

The difference estimator goes further, and is what `--active` judges a 0/1 metric with: a control variate
g_i = sign_i p̂_i, the side item i can flip to (fixed by the baseline's 0/1 score: a right answer can only
regress) times a flip probability fitted on the earlier draws' flips (`control_terms`, refitted at REFITS), and
terms z_t = ḡ_t + (d_K − g_K) / (N q_K) whose offsets ḡ_t are predictable (`difference_terms`,
`difference_design`). The second moment of (d_K − g_K) / (N q_K) is (1/N²) Σ (d_i − g_i)² / q_i, so the
proposal that minimises it in expectation over the flips is ∝ √E[(d_i − g_i)²] = √(p_i (1 − p_i)) for a
calibrated p̂: flatter than the flip probability, which is why a high floor suits it (benchmarks/bench_active.py, section (d)). Non-0/1 metrics keep the importance weights.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from harness.inference.sequential import ACTIVE_METHOD, DIFFERENCE_METHOD, Design, sequence_interval
from harness.inference.stats import ALPHA, Interval

__all__ = ["ACTIVE_METHOD", "BETS", "DEFAULT_FLOOR", "DIFFERENCE_METHOD", "REFITS", "Draws", "active_interval",
           "check_signs", "control_terms", "control_variate", "difference_design", "difference_terms", "draw",
           "estimate", "fit_flip_model", "flip_features", "proposal", "second_moment", "weight_bound", "weights"]
# The floor `eval --until-decided --active` uses unless told: chosen on benchmarks/bench_active.py's grid for the
# difference estimator (trial runs, 200 a cell, items at Δ = 0 / +margin against the uniform order, D 0.15 AUC
# 0.9: floor 0.5 0.68x / 1.11x, 0.7 0.57x / 0.88x, 0.85 0.54x / 0.80x, 1.0 0.61x / 0.77x; AUC 0.5 at most 0.91x
# from 0.7 up): a lower floor widens the terms' range [−B, B], which caps the bets. With `BETS` (400 a cell):
# 0.7 0.49x / 0.65x, 0.85 0.58x / 0.64x, and at most 0.91x / 0.85x at AUC 0.5: 0.85 stays. The importance-weighted
# fallback (non-0/1 metrics) did as well at 0.85 as at 0.7 on section (a)'s grid.
DEFAULT_FLOOR = 0.85
# The difference estimator refits its flip model after these many draws (fixed before the first draw, so each
# term's control variate depends on earlier draws only); doubling keeps the fits few on a long run.
REFITS = (10, 20, 50, 100, 200, 400, 800, 1600)
# How an active run's bets start and how far they go (`sequential.Design`'s prior_variance and truncation),
# recorded in the run file per task so that compare and gate judge it with the bets it ran with (runs recorded
# without them keep WSR's 1/4 and 1/2). The terms of an active run span [−B, B] but mostly sit near their mean
# (a control variate removes the predictable part of every difference), so WSR's prior, the largest variance a
# [0, 1] value can have, holds the first bets back for tens of draws, and c = 1/2 caps the bet below the
# growth-optimal one once the plug-in variance is small. Any predictable bets keep the sequence valid (Ville's
# inequality); chosen on benchmarks/bench_active.py's grid (see its RESULT lines).
BETS = {"prior_variance": 0.05, "truncation": 0.75}


def proposal(scores: ArrayLike, floor: float = DEFAULT_FLOOR) -> np.ndarray:
    """q_i = floor / N + (1 − floor) r_i / Σ r: the sampling probabilities from flip scores r_i >= 0.

    All scores zero (no signal) gives the uniform distribution. ValueError for a floor outside (0, 1], an
    empty population or a negative or non-finite score."""
    r = np.asarray(scores, dtype=float).ravel()
    if not 0.0 < floor <= 1.0:
        raise ValueError(f"the floor must lie in (0, 1], got {floor}")
    if r.size == 0:
        raise ValueError("a proposal needs at least one item")
    if np.any(~np.isfinite(r)) or np.any(r < 0):
        raise ValueError("flip scores must be finite and >= 0")
    n = r.size
    total = float(r.sum())
    tilt = r / total if total > 0 else np.full(n, 1.0 / n)
    q = floor / n + (1.0 - floor) * tilt
    return q / q.sum()  # exact normalisation against rounding


def weight_bound(q: ArrayLike) -> float:
    """B = 1 / (N min q): the largest importance weight any draw can carry (<= 1 / floor)."""
    arr = np.asarray(q, dtype=float).ravel()
    return float(1.0 / (arr.size * arr.min()))


def draw(q: ArrayLike, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` item indices drawn iid from q (with replacement)."""
    arr = np.asarray(q, dtype=float).ravel()
    return rng.choice(arr.size, size=size, replace=True, p=arr)


def weights(q_drawn: ArrayLike, population: int) -> np.ndarray:
    """The importance weight 1 / (N q) of each draw."""
    return 1.0 / (population * np.asarray(q_drawn, dtype=float))


def estimate(d_drawn: ArrayLike, q_drawn: ArrayLike, population: int) -> float:
    """The importance-weighted estimate of the population mean: mean of d / (N q) over the draws (nan: none)."""
    d = np.asarray(d_drawn, dtype=float)
    if d.size == 0:
        return float("nan")
    return float(np.mean(d * weights(q_drawn, population)))


def second_moment(flip_prob: ArrayLike, q: ArrayLike | None = None) -> float:
    """E[z²] of one term z = d / (N q) when item i flips (|d_i| = 1, else d_i = 0) with probability p_i:
    (1/N²) Σ p_i / q_i; with q None, the smallest any proposal reaches, (1/N²) (Σ √p_i)², attained by q ∝ √p.

    The minimum is Cauchy–Schwarz, (Σ √p_i)² = (Σ √(p_i/q_i) √q_i)² <= Σ p_i/q_i · Σ q_i (the optimal proposal
    of Kossen et al. 2021, Sec. 3, for a squared-error loss). The variance is this minus Δ², the same for every
    q, so at Δ = 0 its ratio to the uniform q's Σ p_i / N bounds the draws any proposal on this signal saves
    (benchmarks/bench_active.py, section (c)). p must be calibrated: the candidate's flip probability given the
    baseline's signal, which only a simulation knows exactly."""
    p = np.asarray(flip_prob, dtype=float).ravel()
    if p.size == 0 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("flip probabilities must be finite and lie in [0, 1]")
    n = p.size
    if q is None:
        return float(np.sqrt(p).sum() ** 2 / n**2)
    qq = np.asarray(q, dtype=float).ravel()
    if qq.size != n or np.any(qq <= 0):
        raise ValueError("q needs one positive probability per item")
    return float(np.sum(p / qq) / n**2)


def flip_features(scores: ArrayLike) -> np.ndarray:
    """The flip model's design matrix from the baseline's flip scores alone: intercept, standardized rank,
    standardized log score (a constant column becomes 0)."""
    r = np.asarray(scores, dtype=float).ravel()
    cols = [sps.rankdata(r), np.log(np.maximum(r, 1e-6))]
    cols = [(c - c.mean()) / c.std() if c.std() > 0 else c * 0.0 for c in cols]
    return np.column_stack([np.ones(r.size), *cols])


def fit_flip_model(x: np.ndarray, flipped: ArrayLike, prior: float = 1.0, iterations: int = 12) -> np.ndarray:
    """Ridge logistic regression (Newton steps) of the flip indicator on the features: its coefficients."""
    y = np.asarray(flipped, dtype=float).ravel()
    beta = np.zeros(x.shape[1])
    pen = prior * np.eye(x.shape[1])
    pen[0, 0] = 1e-3 * prior  # the intercept (the flip rate) almost free: a ridge toward p = 1/2 would be wrong
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-x @ beta))
        hess = x.T @ (x * (p * (1 - p))[:, None]) + pen
        beta = beta + np.linalg.solve(hess, x.T @ (y - p) - pen @ beta)
    return beta


def control_variate(sign: ArrayLike, x: np.ndarray, drawn: ArrayLike, flipped: ArrayLike) -> np.ndarray:
    """g_i = sign_i p̂_i: the predicted paired difference of every item, p̂ fitted on the draws so far (item
    indices `drawn` and whether each flipped); all zeros before the first draw."""
    sg = np.asarray(sign, dtype=float).ravel()
    k = np.asarray(drawn, dtype=int).ravel()
    if k.size == 0:
        return np.zeros(sg.size)
    return sg / (1.0 + np.exp(-x @ fit_flip_model(x[k], flipped)))


def control_terms(d: ArrayLike, sign: ArrayLike, x: np.ndarray, idx: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The difference estimator's control variate on draws `idx` (rows of item indices, in draw order): (g_K, ḡ)
    per draw, g = `control_variate` refitted after REFITS draws on the draws before (predictable), g_K its value
    at the drawn item, ḡ its mean over the population. Only the drawn d are read."""
    dd, sg = np.asarray(d, dtype=float).ravel(), np.asarray(sign, dtype=float).ravel()
    ii = np.atleast_2d(np.asarray(idx, dtype=int))
    g_drawn, gbar = np.zeros(ii.shape), np.zeros(ii.shape)
    cuts = [c for c in REFITS if c < ii.shape[1]] + [ii.shape[1]]
    for r in range(ii.shape[0]):
        for a, b in zip(cuts[:-1], cuts[1:]):
            seen = ii[r, :a]
            g = control_variate(sg, x, seen, dd[seen] != 0)
            g_drawn[r, a:b] = g[ii[r, a:b]]
            gbar[r, a:b] = g.mean()
    return g_drawn, gbar


def check_signs(d_drawn: ArrayLike, sign: ArrayLike, idx: ArrayLike) -> None:
    """ValueError for a sign not ±1 or a drawn paired difference d ∉ {0, sign_K} (d_drawn shaped like idx)."""
    dd, sg = np.asarray(d_drawn, dtype=float), np.asarray(sign, dtype=float).ravel()
    if np.any(np.abs(sg) != 1):
        raise ValueError("every sign must be -1 or +1")
    if np.any((dd != 0) & (dd != sg[np.asarray(idx, dtype=int)])):
        raise ValueError("a drawn paired difference lies on the other side of its sign (not a 0/1 score?)")


def difference_terms(d: ArrayLike, sign: ArrayLike, x: np.ndarray, q: ArrayLike, idx: ArrayLike
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The difference estimator on draws `idx` (rows of item indices drawn from q): (e_t, ḡ_t) per draw, each
    term z_t = ḡ_t + e_t.

    g = `control_variate` refitted after REFITS draws on the draws before (predictable, `control_terms`), ḡ_t its
    mean over the population, e_t = (d_K − g_K) / (N q_K). E[z_t | past] = ḡ_t + Σ_i q_i (d_i − g_i) / (N q_i) = Δ
    exactly, and |e_t| <= 1 / (N min q) because d_i ∈ {0, sign_i} and |g_i| <= 1 on the same side: the
    prediction-powered estimator of active inference (Zrnic & Candès 2024, "Active Statistical Inference", ICML),
    its surrogate fitted online as in Kossen et al. 2022 ("Active Surrogate Estimators"). The betting sequence
    takes ḡ_t as predictable offsets (`harness.inference.sequential`, `shift`). sign_i: the side item i can flip
    to, fixed by the baseline's 0/1 score (−1 where it was right). ValueError for a sign not ±1 or a drawn
    d_i ∉ {0, sign_i}."""
    dd, sg = np.asarray(d, dtype=float).ravel(), np.asarray(sign, dtype=float).ravel()
    qq, ii = np.asarray(q, dtype=float).ravel(), np.atleast_2d(np.asarray(idx, dtype=int))
    check_signs(dd[ii], sg, ii)
    g_drawn, gbar = control_terms(dd, sg, x, ii)
    return (dd[ii] - g_drawn) / (dd.size * qq[ii]), gbar


@dataclass(frozen=True)
class Draws:
    """The draws of one task in order: the proposal's probability of each and the task's population."""

    q: tuple[float, ...]
    population: int
    bound: float  # B = 1 / (N min q) over the whole proposal, fixed before the first draw

    def design(self, base: Design | None) -> Design:
        """The horizon design (or the LIL schedule for None) with these draws' importance weights."""
        horizon, center = (base.horizon, base.center) if base is not None else (0, None)
        return Design(horizon, center, tuple(float(w) for w in weights(self.q, self.population)), self.bound)


def difference_design(d_drawn: ArrayLike, idx: ArrayLike, sign: ArrayLike, scores: ArrayLike, draws: Draws,
                      base: Design | None) -> Design:
    """The design that judges an active run's draws with the difference estimator: importance weights,
    each draw's control variate g_K and the offsets ḡ_t (`control_terms`), from the draws' paired differences
    (in draw order), their item indices in the population, each item's sign and its flip score.
    ValueError for a difference on the other side of its item's sign."""
    dr, ii = np.asarray(d_drawn, dtype=float).ravel(), np.asarray(idx, dtype=int).ravel()
    sg = np.asarray(sign, dtype=float).ravel()
    check_signs(dr, sg, ii)
    d = np.zeros(sg.size)
    d[ii] = dr
    if np.any(d[ii] != dr):
        raise ValueError("an item drawn twice has two different paired differences")
    g_drawn, gbar = control_terms(d, sg, flip_features(scores), ii)
    return replace(draws.design(base), control=tuple(float(v) for v in g_drawn[0]),
                   offsets=tuple(float(v) for v in gbar[0]))


def active_interval(d_drawn: ArrayLike, q_drawn: ArrayLike, population: int, bound: float, width: float = 1.0, *,
                    alpha: float = ALPHA, design: Design | None = None) -> Interval:
    """The anytime-valid (1 − alpha) interval for Δ from paired differences in draw order (each in
    [−width, width]) with their proposal probabilities: the betting CS on d / (N q) in [−width·B, width·B]."""
    draws = Draws(tuple(float(x) for x in np.asarray(q_drawn, dtype=float).ravel()), population, bound)
    return sequence_interval(d_drawn, -width, width, alpha=alpha, design=draws.design(design))
