"""Property and example tests of the paired statistics."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from harness.inference import stats

binary = st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=40)
reals = st.floats(min_value=-100, max_value=100, allow_nan=False, allow_subnormal=False)


@st.composite
def paired(draw, elements=reals):
    n = draw(st.integers(1, 40))
    base = draw(st.lists(elements, min_size=n, max_size=n))
    cand = draw(st.lists(elements, min_size=n, max_size=n))
    return base, cand


@settings(max_examples=60, deadline=None)
@given(paired(), st.integers(0, 2**16), st.sampled_from(["mean", "median"]))
def test_interval_contains_point_estimate(pair, seed, stat):
    delta, lo, hi = stats.paired_bootstrap(*pair, n_resamples=400, seed=seed, stat=stat)
    assert lo <= delta <= hi


@settings(max_examples=60, deadline=None)
@given(paired(), st.integers(0, 2**16))
def test_swapping_runs_negates_delta_and_mirrors_interval(pair, seed):
    base, cand = pair
    d1, lo1, hi1 = stats.paired_bootstrap(base, cand, n_resamples=400, seed=seed)
    d2, lo2, hi2 = stats.paired_bootstrap(cand, base, n_resamples=400, seed=seed)
    assert d2 == -d1
    assert lo2 == pytest.approx(-hi1, abs=1e-9)
    assert hi2 == pytest.approx(-lo1, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 200), st.integers(0, 200))
def test_mcnemar_agrees_with_scipy_binomtest(b, c):
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
    assert stats.mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_mcnemar_hand_computed():
    # b=1, c=5: 2 * (C(6,0) + C(6,1)) / 2**6 = 14/64
    assert stats.mcnemar_exact(1, 5) == pytest.approx(14 / 64)
    assert stats.mcnemar_exact(3, 3) == 1.0
    assert stats.mcnemar_exact(0, 0) == 1.0


def test_bootstrap_is_seeded_and_sensible():
    rng = np.random.default_rng(1)
    base = rng.binomial(1, 0.5, 200).astype(float)
    cand = np.where(rng.random(200) < 0.3, 1.0, base)
    first = stats.paired_bootstrap(base, cand, seed=7)
    assert first == stats.paired_bootstrap(base, cand, seed=7)
    delta, lo, hi = first
    assert delta == pytest.approx(cand.mean() - base.mean())
    assert 0 < lo < delta < hi < 0.5


def test_bootstrap_rejects_unpaired_input():
    with pytest.raises(ValueError):
        stats.paired_bootstrap([1.0, 0.0], [1.0])
    with pytest.raises(ValueError):
        stats.paired_bootstrap([], [])


def test_holm_matches_hand_computation():
    # sorted p: 0.01, 0.02, 0.04 -> 3*0.01, max(0.03, 2*0.02), max(0.04, 1*0.04)
    assert stats.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert stats.holm([]) == []


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=20))
def test_holm_is_monotone_and_never_below_raw(pvalues):
    adjusted = stats.holm(pvalues)
    assert all(a >= p - 1e-15 and a <= 1.0 for a, p in zip(adjusted, pvalues))
    order = np.argsort(pvalues, kind="stable")
    assert all(np.diff(np.asarray(adjusted)[order]) >= -1e-15)


def test_sign_flip_exact_small_sample():
    # 3 positive differences: only all-positive and all-negative sign patterns are as extreme -> 2/8
    assert stats.sign_flip_pvalue([0, 0, 0], [1, 2, 3]) == pytest.approx(0.25)
    assert stats.sign_flip_pvalue([1, 2], [1, 2]) == 1.0


def test_sign_flip_monte_carlo_detects_shift():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 100)
    assert stats.sign_flip_pvalue(base, base + 0.5 + rng.normal(0, 0.3, 100), n_resamples=2000) < 0.01
    noise = stats.sign_flip_pvalue(base, base + rng.normal(0, 1, 100), n_resamples=2000)
    assert noise > 0.01


def test_one_sided_bootstrap_p_is_dual_to_interval():
    rng = np.random.default_rng(3)
    base = rng.binomial(1, 0.6, 300).astype(float)
    cand = base.copy()
    _, lo, _ = stats.paired_bootstrap(base, cand)
    assert stats.non_inferior(lo, 0.02) and not stats.superior(lo)
    assert stats.bootstrap_p_below(base, cand, -0.02) < 0.025
    assert stats.bootstrap_p_below(base, cand, 0.0) == 1.0


def test_discordant_and_binary_detection():
    assert stats.discordant([1, 1, 0, 0], [0, 1, 1, 1]) == (1, 2)
    assert stats.is_binary([0, 1.0], [1, 1])
    assert not stats.is_binary([0, 0.5])
