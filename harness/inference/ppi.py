"""Prediction-powered inference: a judge's scores on every item plus people's ratings on some of them give a
valid interval for the human-scale mean (issue 27).

Method: PPI, Angelopoulos, Bates, Fannjiang, Jordan and Zrnic, "Prediction-powered inference", Science 382
(2023); with the power tuning of PPI++, Angelopoulos, Duchi and Zrnic, "PPI++: Efficient prediction-powered
inference", arXiv:2311.01453 (2023), section 2 (mean estimation). With n rated items (human Y_i, judge f_i)
and N items the judge scored that nobody rated (judge f~_j):

    theta_lambda = mean_n(Y - lambda f) + lambda mean_N(f~)
    var          = Var(Y - lambda f) / n + lambda^2 Var(f~) / N
    lambda*      = Cov(Y, f) / ((1 + n / N) Var(f))      (PPI++ eq. for the mean; clipped to [0, 1])

lambda = 1 is the original PPI, lambda = 0 the human-only (classical) estimate. The judge's bias cancels in
mean_n(Y - lambda f) - lambda mean_N(f~), so the interval is valid whatever the judge, and narrower than the
human-only one when the judge tracks people. The interval uses Student's t with n - 1 degrees of freedom (a
little wider than the papers' normal quantile, for small rated sets). For the gate, Y and f are paired
per-item differences (candidate minus baseline) on the human scale and the judge's scale.
benchmarks/bench_gate_validity.py (section 8) shows coverage with a biased judge and the width against the
human-only interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

ALPHA = 0.05
MIN_RATED = 10  # fewer rated items: no interval (the variance of Y - lambda f is not estimable with sense)
METHOD = "prediction-powered (PPI++, power-tuned; Angelopoulos et al. 2023), Student t"


@dataclass(frozen=True)
class PPIResult:
    """A prediction-powered estimate of a mean and its interval."""

    estimate: float
    lo: float
    hi: float
    se: float
    lam: float  # the weight on the judge: 0 human-only, 1 the original PPI
    n_rated: int
    n_unrated: int
    df: int

    def p_below(self, threshold: float) -> float:
        """One-sided p-value of "the mean is at least `threshold`" (small: the mean lies below it)."""
        if self.se > 0:
            return float(sps.t.cdf((self.estimate - threshold) / self.se, self.df))
        return 0.0 if self.estimate < threshold else 1.0

    def p_above(self, threshold: float) -> float:
        """One-sided p-value of "the mean is at most `threshold`" (small: the mean lies above it)."""
        if self.se > 0:
            return float(sps.t.sf((self.estimate - threshold) / self.se, self.df))
        return 0.0 if self.estimate > threshold else 1.0


def power_tuned_lambda(y: np.ndarray, f: np.ndarray, f_unrated: np.ndarray) -> float:
    """PPI++'s variance-minimising weight on the judge for a mean, clipped to [0, 1]."""
    n, big_n = len(y), len(f_unrated)
    f_all = np.concatenate([f, f_unrated])
    var_f = float(np.var(f_all, ddof=1)) if len(f_all) > 1 else 0.0
    if var_f <= 0 or n < 2:
        return 0.0
    cov = float(np.cov(y, f, ddof=1)[0, 1])
    return float(min(max(cov / ((1 + n / big_n) * var_f), 0.0), 1.0))


def ppi_mean(y: np.ndarray | list[float], f: np.ndarray | list[float], f_unrated: np.ndarray | list[float],
             alpha: float = ALPHA, lam: float | None = None) -> PPIResult:
    """The prediction-powered interval of E[Y]: `y` and `f` on the rated items (same order), `f_unrated`
    the judge on the others. `lam` None: power-tuned (PPI++); 1: PPI; 0: human-only."""
    y_arr, f_arr, u_arr = (np.asarray(a, dtype=float) for a in (y, f, f_unrated))
    if len(y_arr) != len(f_arr):
        raise ValueError("y and f must be paired (same length)")
    if len(y_arr) < 2:
        raise ValueError("PPI needs at least two rated items")
    if len(u_arr) == 0:  # nothing unrated: the judge adds nothing
        lam = 0.0
    weight = power_tuned_lambda(y_arr, f_arr, u_arr) if lam is None else float(lam)
    n, big_n = len(y_arr), len(u_arr)
    rectifier = y_arr - weight * f_arr
    estimate = float(rectifier.mean() + (weight * u_arr.mean() if big_n else 0.0))
    var = float(np.var(rectifier, ddof=1)) / n
    if big_n > 1 and weight:
        var += weight ** 2 * float(np.var(u_arr, ddof=1)) / big_n
    se = math.sqrt(max(var, 0.0))
    df = n - 1
    half = float(sps.t.ppf(1 - alpha / 2, df)) * se
    return PPIResult(estimate, estimate - half, estimate + half, se, weight, n, big_n, df)


def paired_ppi(human: dict[str, float], judge: dict[str, float], alpha: float = ALPHA) -> PPIResult:
    """PPI++ for a paired difference: `human` maps each rated item to its human-scale Δ (candidate − baseline),
    `judge` each item the judge scored in both runs to the judge's Δ. Rated items the judge did not score
    are left out (PPI needs the judge on every rated item)."""
    rated = sorted(k for k in human if k in judge)
    unrated = sorted(k for k in judge if k not in human)
    return ppi_mean([human[k] for k in rated], [judge[k] for k in rated], [judge[k] for k in unrated], alpha)
