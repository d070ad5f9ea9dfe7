"""The gate's intervals: Tango (paired binary), betting (bounded means), Clopper–Pearson, t, bootstrap."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from harness.inference import stats

Z = sps.norm.ppf(0.975)

# Published limits of Tango's (1998) score interval, without continuity adjustment. Each source gives a
# table (a, b, c, d) whose difference is (b - c)/n; here b_ours = c_theirs (wrong→right is c_ours).
# The numbers are those asserted in the test suite of the R package ratesci (Laud), file
# tests/testthat/test3.R, which cites each source, and in contingencytables (Fagerland, Lydersen & Laake,
# "Statistical Analysis of Contingency Tables", 2017), tests/testthat/test-ch8.R.
PUBLISHED = [
    # (b, c, n, level, lo, hi, digits, source)
    (3, 9, 32, 0.95, -0.027, 0.390, 3, "Tango 1998 Table VII, (a,b,c,d) = (4,9,3,16)"),
    (1, 0, 44, 0.90, -0.096, 0.037, 3, "Tango 1998 Table V, (43,0,1,0), 90%"),
    (8, 16, 86, 0.95, -0.020, 0.207, 3, "Agresti & Min 2005, (53,16,8,9)"),
    (7, 1, 21, 0.95, -0.517, -0.026, 3, "Fagerland, Lydersen & Laake 2014, Bentur et al. 2009 data (1,1,7,12)"),
    (1, 3, 14, 0.95, -0.1670, 0.4327, 4, "Tang M-L et al. 2010 example (8,3,1,2), as cited by ratesci"),
    (16, 6, 161, 0.95, -0.1240, -0.0054, 4, "Fagerland et al. 2017, Cavo 2012 (59,6,16,80)"),
    (0, 3, 3, 0.95, -0.1230, 1.0, 4, "contingencytables test-ch8, table (0,3,0,0)"),
    (3, 0, 3, 0.95, -1.0, 0.1230, 4, "contingencytables test-ch8, table (0,0,3,0)"),
]


@pytest.mark.parametrize("b,c,n,level,lo,hi,digits,source", PUBLISHED)
def test_tango_matches_published_limits(b, c, n, level, lo, hi, digits, source):
    iv = stats.paired_binary_interval(b, c, n, alpha=1 - level, cc=0)
    assert (round(iv.lo, digits), round(iv.hi, digits)) == (lo, hi), source
    assert iv.method == "Tango score (1998)" and iv.n == n


def test_tango_without_discordance_has_a_closed_form():
    # b = c = 0: T(δ) = -sqrt(nδ/(1-δ)) for δ > 0, so the limits are ±z²/(n + z²)
    for n in (1, 5, 30, 300):
        iv = stats.paired_binary_interval(0, 0, n, cc=0)
        assert iv.hi == pytest.approx(Z**2 / (n + Z**2), rel=1e-9)
        assert iv.lo == pytest.approx(-iv.hi, rel=1e-9)


def test_issue_cases_cannot_pass():
    # 1 item, wrong→right: superiority must not pass
    assert stats.paired_binary_interval(0, 1, 1).lo < 0
    # 5 identical answers: non-inferiority at 0.02 must not pass
    assert stats.paired_binary_interval(0, 0, 5).lo < -0.02
    # 30 items, 4 gains, 0 losses: superiority must not pass (exact McNemar p = 0.125)
    assert stats.paired_binary_interval(0, 4, 30).lo < 0


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))
       .flatmap(lambda t: st.tuples(st.just(t[0]), st.just(t[1]), st.integers(0, t[0] - t[1]))),
       st.sampled_from([0.0, stats.TANGO_CC]))
def test_tango_is_defined_nonzero_width_and_mirrors(nbc, cc):
    n, b, c = nbc
    iv = stats.paired_binary_interval(b, c, n, cc=cc)
    est = (c - b) / n
    assert iv.defined and -1 <= iv.lo <= est <= iv.hi <= 1
    assert iv.hi - iv.lo > 0.05
    swapped = stats.paired_binary_interval(c, b, n, cc=cc)
    assert swapped.lo == pytest.approx(-iv.hi, abs=1e-9) and swapped.hi == pytest.approx(-iv.lo, abs=1e-9)


@pytest.mark.parametrize("n", [1, 2, 7, 25, 40])
@pytest.mark.parametrize("cc", [0.0, stats.TANGO_CC])
def test_vectorised_bounds_and_the_score_decision_agree_with_brentq(n, cc):
    b, c = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = b + c <= n
    b, c = b[keep], c[keep]
    lo, hi = stats.tango_bounds(b, c, n, cc=cc)
    ref = [stats.paired_binary_interval(int(x), int(y), n, cc=cc) for x, y in zip(b, c)]
    assert np.allclose(lo, [r.lo for r in ref], atol=1e-9)
    assert np.allclose(hi, [r.hi for r in ref], atol=1e-9)
    # T decreasing in δ: "lower limit > d" is exactly "T(d) > z" (what power.py enumerates)
    for d in (-0.3, -0.05, -0.02, 0.0, 0.1):
        decided = stats.tango_statistic(d, b, c, n, cc=cc) > Z
        away = np.abs(lo - d) > 1e-7
        assert np.array_equal(decided[away], (lo > d)[away])


def test_tango_edges_and_bad_input():
    assert stats.paired_binary_interval(4, 0, 4).lo == -1.0
    assert stats.paired_binary_interval(0, 4, 4).hi == 1.0
    empty = stats.paired_binary_interval(0, 0, 0)
    assert not empty.defined and empty.note
    with pytest.raises(ValueError):
        stats.paired_binary_interval(3, 3, 5)
    with pytest.raises(ValueError):
        stats.paired_binary_interval(-1, 0, 5)


def _exact_tango_rates(n, discordance, delta):
    b, c = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = b + c <= n
    b, c = b[keep], c[keep]
    p = sps.multinomial.pmf(np.stack([b, c, n - b - c], 1), n,
                            [(discordance - delta) / 2, (discordance + delta) / 2, 1 - discordance])
    t = stats.tango_statistic(delta, b, c, n)
    return p[np.abs(t) <= Z].sum(), p[t > Z].sum()


@pytest.mark.parametrize("n,discordance,delta", [(10, 0.3, 0.0), (20, 0.4, -0.05), (30, 0.15, -0.05),
                                                 (30, 0.3, 0.0), (100, 0.3, -0.02)])
def test_tango_exact_coverage_and_false_pass_at_small_cells(n, discordance, delta):
    coverage, false_pass = _exact_tango_rates(n, discordance, delta)
    assert coverage >= 0.94
    assert false_pass <= 0.025


# ---------------------------------------------------------------------------------------------------------
# betting interval


def _deltas(rng, sims, n, discordance, delta):
    mu = (1 + delta / discordance) / 2
    changed = rng.random((sims, n)) < discordance
    return np.where(changed, 2 * rng.beta(4 * mu, 4 * (1 - mu), (sims, n)) - 1, 0.0)


@pytest.mark.parametrize("n,discordance,delta", [(10, 0.3, 0.0), (30, 0.15, -0.05), (30, 0.5, 0.1)])
def test_betting_covers_in_a_seeded_simulation(n, discordance, delta):
    rng = np.random.default_rng(12)
    x = _deltas(rng, 400, n, discordance, delta)
    lo, hi = stats.betting_bounds((x + 1) / 2)
    lo, hi = 2 * lo - 1, 2 * hi - 1
    assert np.mean((lo <= delta) & (delta <= hi)) >= 0.95
    assert np.mean(lo > delta) <= 0.025


def test_betting_covers_a_skewed_bernoulli_mean():
    rng = np.random.default_rng(3)
    y = (rng.random((500, 40)) < 0.1).astype(float)
    lo, hi = stats.betting_bounds(y)
    assert np.mean((lo <= 0.1) & (0.1 <= hi)) >= 0.95


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False, allow_subnormal=False), min_size=1, max_size=60))
def test_betting_stays_inside_the_bounds_and_is_deterministic(values):
    iv = stats.bounded_mean_interval(values, -1, 1)
    assert iv.defined and -1 <= iv.lo <= iv.hi <= 1 and iv.n == len(values)
    again = stats.bounded_mean_interval(list(values), -1, 1)
    assert (again.lo, again.hi) == (iv.lo, iv.hi)


def test_betting_contains_the_mean_of_ordinary_samples():
    rng = np.random.default_rng(4)
    for n in (5, 20, 200):
        for _ in range(20):
            x = np.clip(rng.normal(0.1, 0.3, n), -1, 1)
            iv = stats.bounded_mean_interval(x, -1, 1)
            assert iv.lo <= x.mean() <= iv.hi


def test_betting_shrinks_with_n_and_is_wide_at_n_1():
    one = stats.bounded_mean_interval([0.0], -1, 1)
    assert one.lo < -0.9 and one.hi > 0.9
    widths = [stats.bounded_mean_interval(np.zeros(n), -1, 1) for n in (10, 100, 1000)]
    assert widths[0].hi > widths[1].hi > widths[2].hi > 0
    assert stats.bounded_mean_interval(np.full(50, 0.7), 0, 1).lo > 0.5


def test_betting_rejects_values_outside_the_bounds():
    with pytest.raises(ValueError):
        stats.bounded_mean_interval([0.5, 1.5], 0, 1)
    with pytest.raises(ValueError):
        stats.bounded_mean_interval([0.5], 1, 0)
    assert not stats.bounded_mean_interval([], 0, 1).defined


# ---------------------------------------------------------------------------------------------------------
# one proportion, one mean, bootstrap, item means


def test_proportion_interval_is_clopper_pearson_from_statsmodels():
    for k, n in [(0, 1), (3, 10), (10, 10), (57, 80)]:
        iv = stats.proportion_interval(k, n)
        lo, hi = proportion_confint(k, n, alpha=0.05, method="beta")
        assert (iv.lo, iv.hi) == pytest.approx((lo, hi))
        assert iv.hi > iv.lo
    assert not stats.proportion_interval(0, 0).defined
    with pytest.raises(ValueError):
        stats.proportion_interval(5, 4)


def test_proportion_interval_false_floor_passes_stay_below_2_5_percent():
    for n in (10, 30, 100):
        k = np.arange(n + 1)
        lo = np.array([stats.proportion_interval(int(x), n).lo for x in k])
        for p in (0.5, 0.7, 0.9):
            assert sps.binom.pmf(k, n, p)[lo > p].sum() <= 0.025


def test_mean_interval_t_and_undefined_cases():
    x = [1.0, 2.0, 4.0, 7.0]
    iv = stats.mean_interval(x)
    lo, hi = sps.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=sps.sem(x))
    assert (iv.lo, iv.hi) == pytest.approx((lo, hi)) and iv.method == "Student t"
    for bad in ([], [3.0], [2.0, 2.0, 2.0]):
        out = stats.mean_interval(bad)
        assert not out.defined and out.lo is None and out.hi is None and out.note
    assert not stats.mean_interval([1.0, 2.0], min_n=5).defined
    bounded = stats.mean_interval([0.0, 1.0], bounds=(0.0, 1.0))
    assert bounded.defined and bounded.method == stats.BETTING
    assert bounded.hi > bounded.lo


def test_bootstrap_interval_has_a_minimum_n():
    rng = np.random.default_rng(0)
    base, cand = rng.normal(size=40), rng.normal(size=40) + 1
    small = stats.bootstrap_interval(base[:10], cand[:10])
    assert not small.defined and "30" in small.note
    iv = stats.bootstrap_interval(base, cand, n_resamples=2000, seed=3)
    _, lo, hi = stats.paired_bootstrap(base, cand, n_resamples=2000, seed=3)
    assert (iv.lo, iv.hi) == (lo, hi) and iv.n == 40


def test_item_means_fold_rows_into_items():
    names, means = stats.item_means([1, 0, 1, 1, 0.5], ["q2", "q1", "q2", "q1", "q3"])
    assert names == ["q1", "q2", "q3"]
    assert means.tolist() == [0.5, 1.0, 0.5]
    assert stats.item_means([], []) == ([], pytest.approx(np.empty(0)))
    with pytest.raises(ValueError):
        stats.item_means([1.0], ["a", "b"])


def test_interval_json():
    iv = stats.Interval(None, None, "Student t", 1, "undefined below n = 2")
    assert not iv.defined
    assert iv.to_json() == {"lo": None, "hi": None, "method": "Student t", "n": 1,
                            "note": "undefined below n = 2", "defined": False}
    assert stats.Interval(-0.1, 0.2, "x", 5).to_json()["defined"] is True
    assert math.isfinite(stats.paired_binary_interval(0, 0, 1).lo)
