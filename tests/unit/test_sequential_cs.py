"""The betting confidence sequence (harness.inference.sequential): the paper's formulas, coverage over time, shrinking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.inference import sequential as sq


def _direct(y: list[float], m: float, alpha: float = 0.05, c: float = sq.CS_TRUNCATION,
            v0: float = 0.25) -> tuple[float, float]:
    """max_t log K⁺_t(m) and max_t log K⁻_t(m), transcribed term by term from WSR (2024) eq. (26), Section 4
    (v0: the plug-in variance's prior, their 1/4)."""
    s_y = s_v = 0.0
    var_prev = v0
    kp = km = 0.0
    best_p = best_m = -math.inf
    for t, yt in enumerate(y, start=1):
        lam = math.sqrt(2 * math.log(2 / alpha) / (var_prev * t * math.log(1 + t)))
        kp += math.log(1 + min(lam, c / m) * (yt - m))
        km += math.log(1 - min(lam, c / (1 - m)) * (yt - m))
        best_p, best_m = max(best_p, kp), max(best_m, km)
        s_y += yt
        mu = (0.5 + s_y) / (t + 1)
        s_v += (yt - mu) ** 2
        var_prev = (v0 + s_v) / (t + 1)
    return best_p, best_m


def test_capital_matches_a_direct_transcription_of_the_paper() -> None:
    rng = np.random.default_rng(3)
    y = rng.beta(2, 3, size=60)
    for m in (0.2, 0.4, 0.6):
        lam = sq.bets(y[None, :])
        vec_p = sq.log_capital(y[None, :], np.array([m]), lam, upper=False).max()
        vec_m = sq.log_capital(y[None, :], np.array([m]), lam, upper=True).max()
        want_p, want_m = _direct(list(y), m)
        assert vec_p == pytest.approx(want_p, rel=1e-10, abs=1e-10)
        assert vec_m == pytest.approx(want_m, rel=1e-10, abs=1e-10)


def test_limits_are_where_the_capital_reaches_two_over_alpha() -> None:
    y = np.random.default_rng(0).beta(5, 2, size=200)
    lo, hi = sq.cs_bounds(y)
    target = math.log(2 / 0.05)
    assert _direct(list(y), float(lo[0]))[0] >= target  # reported at the excluded end
    assert _direct(list(y), float(lo[0]) + 1e-6)[0] < target
    assert _direct(list(y), float(hi[0]))[1] >= target
    assert _direct(list(y), float(hi[0]) - 1e-6)[1] < target
    assert lo[0] < y.mean() < hi[0]


def test_running_intersection_never_widens() -> None:
    y = np.random.default_rng(1).random(300)
    widths = []
    prev = (0.0, 1.0)
    for n in range(10, 301, 10):
        lo, hi = sq.cs_bounds(y[:n])
        assert lo[0] >= prev[0] - 1e-12 and hi[0] <= prev[1] + 1e-12
        prev = (float(lo[0]), float(hi[0]))
        widths.append(prev[1] - prev[0])
    assert widths[-1] < 0.5 * widths[0]


def test_first_exclusion_agrees_with_the_limits() -> None:
    y = np.random.default_rng(2).beta(4, 2, size=(20, 150))
    m = 0.5
    first = sq.first_exclusion(y, m, upper=False)
    for row, t in zip(y, first):
        lo, _ = sq.cs_bounds(row[None, :])
        assert (lo[0] > m) == bool(t)
        if t:
            assert sq.cs_bounds(row[None, :t])[0][0] > m
            if t > 1:
                assert sq.cs_bounds(row[None, :t - 1])[0][0] <= m + 1e-9


def test_time_uniform_error_by_simulation() -> None:
    """P(the CS ever excludes the true mean, over 500 values) <= 5% (each side <= 2.5%), with MC slack."""
    rng = np.random.default_rng(7)
    reps, n, p = 1500, 500, 0.3
    d = np.where(rng.random((reps, n)) < p / 2, -1.0, np.where(rng.random((reps, n)) < p / (2 - p), 1.0, 0.0))
    y = (d + 1) / 2
    true = 0.5  # P(-1) = P(+1) = p/2: the deltas have mean 0, so y = (d + 1)/2 has mean 1/2
    below = sq.first_exclusion(y, true, upper=False) > 0  # lower limit ever above the truth
    above = sq.first_exclusion(y, true, upper=True) > 0
    se = math.sqrt(0.025 * 0.975 / reps)
    assert below.mean() <= 0.025 + 2.5 * se
    assert above.mean() <= 0.025 + 2.5 * se


def test_a_designs_own_bets_match_the_transcription_and_keep_the_level() -> None:
    """An active run's bets (a smaller prior variance, a larger truncation): the capital is the paper's with
    those two numbers, and the sequence still errs on each side in at most alpha/2 of the runs, on low-variance
    values (where the bets grow largest) tuned to a horizon with a threshold at the truth."""
    rng = np.random.default_rng(11)
    y = list(np.clip(0.5 + 0.05 * rng.standard_normal(120), 0, 1))
    design = sq.Design(0, prior_variance=0.05, truncation=0.75)
    lam_p = sq.bets(np.array([y]), design=design)
    got_p = sq.log_capital(np.array([y]), np.array([0.47]), lam_p, upper=False, trunc=sq.truncation(design)).max()
    lam_m = sq.bets(np.array([y]), design=design, upper=True)
    got_m = sq.log_capital(np.array([y]), np.array([0.47]), lam_m, upper=True, trunc=sq.truncation(design)).max()
    want_p, want_m = _direct(y, 0.47, c=0.75, v0=0.05)
    assert got_p == pytest.approx(want_p) and got_m == pytest.approx(want_m)
    assert sq.truncation(None) == sq.CS_TRUNCATION and sq.Design(5).prior_variance == sq.PRIOR_VARIANCE
    reps, n = 3000, 400
    vals = np.where(rng.random((reps, n)) < 0.06, rng.choice([0.0, 1.0], (reps, n)), 0.5)  # mean 1/2, var 0.015
    for horizon in (0, 100):
        tuned = sq.Design(horizon, 0.5, prior_variance=0.05, truncation=0.75)
        se = math.sqrt(0.025 * 0.975 / reps)
        for upper in (False, True):
            assert (sq.first_exclusion(vals, 0.5, upper=upper, design=tuned) > 0).mean() <= 0.025 + 2.5 * se
    for bad in ({"prior_variance": 0.0}, {"prior_variance": 0.3}, {"truncation": 1.0}, {"truncation": 0.0}):
        with pytest.raises(ValueError, match="prior variance"):
            sq.Design(5, **bad)


def test_sequence_interval_on_paired_deltas() -> None:
    d = np.array([1.0, 0.0, 0.0, 1.0, 0.0, -1.0, 1.0, 0.0] * 30)
    iv = sq.sequence_interval(d, -1.0, 1.0)
    assert iv.defined and iv.method == sq.CS_METHOD and iv.n == d.size
    assert iv.lo < d.mean() < iv.hi  # type: ignore[operator]
    assert sq.sequence_interval([], -1.0, 1.0).defined is False
    with pytest.raises(ValueError):
        sq.sequence_interval([2.0], -1.0, 1.0)


def test_anytime_p_agrees_with_the_sequence_and_is_valid() -> None:
    rng = np.random.default_rng(11)
    d = rng.choice([-1.0, 0.0, 1.0], p=[0.1, 0.6, 0.3], size=300)
    iv = sq.sequence_interval(d, -1.0, 1.0)
    for t in (-0.2, -0.05, 0.0, 0.1, 0.3):
        p_above = sq.anytime_p(d, -1.0, 1.0, t, above=True)
        p_below = sq.anytime_p(d, -1.0, 1.0, t, above=False)
        assert (p_above <= 0.025) == (iv.lo > t + 1e-6) or abs(iv.lo - t) < 1e-6  # type: ignore[operator]
        assert (p_below <= 0.025) == (iv.hi < t - 1e-6) or abs(iv.hi - t) < 1e-6  # type: ignore[operator]
    assert sq.anytime_p(d, -1.0, 1.0, -2.0, above=True) == 0.0
    assert sq.anytime_p(d, -1.0, 1.0, 2.0, above=True) == 1.0
    # under H0 (mean exactly at the threshold) P(p <= a) <= a at every a, at the end of 400 values
    reps = 1000
    sims = np.where(rng.random((reps, 400)) < 0.15, -1.0, np.where(rng.random((reps, 400)) < 0.15 / 0.85, 1.0, 0.0))
    ps = np.array([sq.anytime_p(row, -1.0, 1.0, 0.0, above=True) for row in sims])
    for a in (0.01, 0.05, 0.2):
        assert np.mean(ps <= a) <= a + 3 * math.sqrt(a * (1 - a) / reps)
