"""Planning: exact power of the Tango decision, sample sizes and minimum detectable effects."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from harness.inference import power, stats

Z = sps.norm.ppf(0.975)


def _brute_power(n, margin, delta, discordance, cc=stats.TANGO_CC):
    b, c = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = b + c <= n
    b, c = b[keep], c[keep]
    p = sps.multinomial.pmf(np.stack([b, c, n - b - c], 1), n,
                            [(discordance - delta) / 2, (discordance + delta) / 2, 1 - discordance])
    # a lower limit that must clear 0 or more takes the gate's adjustment beyond zero (stats.TANGO_CC_BEYOND_ZERO)
    passed = stats.tango_statistic(-margin, b, c, n, cc=max(cc, 0.5) if margin <= 0 else cc) > Z
    # the gate's exact guards (evidence.exact_guard): McNemar at a threshold of 0, the exact bound of the gain
    # rate above 0 (superiority by min_effect)
    if margin == 0:
        passed &= sps.binom.sf(c - 1, np.maximum(b + c, 1), 0.5) <= 0.025
        passed &= b + c > 0
    elif margin < 0:
        passed &= sps.beta.ppf(0.025, np.maximum(c, 1), n - c + 1) * (c > 0) > -margin
    return p[passed].sum()


@pytest.mark.parametrize("n", [1, 4, 19, 60])
@pytest.mark.parametrize("margin,delta,discordance", [(0.0, 0.0, 0.2), (0.05, 0.0, 0.15), (0.0, 0.05, 0.05),
                                                      (0.1, -0.1, 0.3), (0.02, 0.0, 0.0), (0.3, 0.1, 1.0),
                                                      (-0.05, 0.15, 0.2)])
def test_exact_power_equals_full_enumeration(n, margin, delta, discordance):
    for cc in (0.0, stats.TANGO_CC):
        assert power.paired_binary_power(n, margin, delta, discordance, cc=cc) == pytest.approx(
            _brute_power(n, margin, delta, discordance, cc), abs=1e-10)


def test_exact_power_matches_simulated_gate_decisions():
    rng = np.random.default_rng(5)
    n, margin, delta, disc = 80, 0.05, 0.0, 0.15
    counts = rng.multinomial(n, [(disc - delta) / 2, (disc + delta) / 2, 1 - disc], size=800)
    passed = np.mean([stats.paired_binary_interval(int(b), int(c), n).lo > -margin for b, c, _ in counts])
    exact = power.paired_binary_power(n, margin, delta, disc)
    assert abs(passed - exact) < 4 * math.sqrt(exact * (1 - exact) / 800) + 1e-3


@pytest.mark.parametrize("margin,delta,discordance", [(0.05, 0.0, 0.15), (0.1, 0.0, 0.3), (0.0, 0.05, 0.1),
                                                      (0.02, 0.0, 0.05)])
def test_sample_size_really_gives_the_power(margin, delta, discordance):
    n = power.paired_binary_n(margin, delta, discordance)
    window = max(10, min(n // 10, 100))
    for m in range(n, n + window + 1):
        assert power.paired_binary_power(m, margin, delta, discordance) >= 0.8
    assert power.paired_binary_power(n - 1, margin, delta, discordance) < 0.8 or n == 1 or \
        min(power.paired_binary_power(m, margin, delta, discordance) for m in range(n - 1, n + window)) < 0.8
    # the asymptotic formula of Nam (1997) / Liu et al. (2002) lands within 10% of the exact answer
    assert abs(power._asymptotic_n(margin, delta, discordance, 0.05, 0.8) - n) <= 0.1 * n + 10


def test_asymptotic_formula_by_hand():
    # superiority (δ0 = 0) at Δ1 = 0.05, D = 0.15: q̃ = D/2, σ0² = D, σ1² = D - Δ1²
    za, zb = sps.norm.ppf(0.975), sps.norm.ppf(0.8)
    by_hand = ((za * math.sqrt(0.15) + zb * math.sqrt(0.15 - 0.0025)) / 0.05) ** 2
    assert power._asymptotic_n(0.0, 0.05, 0.15, 0.05, 0.8) == pytest.approx(by_hand)


def test_power_grows_with_margin_and_n():
    pw = [power.paired_binary_power(200, m, 0.0, 0.15) for m in (0.0, 0.02, 0.05, 0.1)]
    assert pw == sorted(pw) and pw[0] < 0.025 < pw[-1]
    assert power.paired_binary_power(2000, 0.05, 0.0, 0.15) > power.paired_binary_power(200, 0.05, 0.0, 0.15)


def test_minimum_detectable_effect():
    for n, disc in [(30, 0.05), (300, 0.15), (1000, 0.3)]:
        mde = power.paired_binary_mde(n, disc)
        assert power.paired_binary_power(n, mde, 0.0, disc) >= 0.8
        assert power.paired_binary_power(n, mde - 1e-3, 0.0, disc) < 0.8
    assert power.paired_binary_mde(300, 0.15) < power.paired_binary_mde(100, 0.15)
    assert power.paired_binary_mde(10_000, 0.3) < 0.02


def test_large_plans_are_fast_enough():
    n = power.paired_binary_n(0.01, 0.0, 0.3)
    assert 20_000 < n < 30_000
    assert power.paired_binary_power(n, 0.01, 0.0, 0.3) >= 0.8


def test_planning_rejects_impossible_requests():
    with pytest.raises(ValueError):
        power.paired_binary_n(0.0, 0.0, 0.2)  # superiority with no effect
    with pytest.raises(ValueError):
        power.paired_binary_power(50, 0.05, 0.2, 0.1)  # |Δ| > discordance
    with pytest.raises(ValueError):
        power.paired_binary_n(0.05, 0.0, 0.2, power=1.0)
    with pytest.raises(ValueError):
        power.bounded_n(0.05, -0.05, 0.2)


def test_bounded_planning_is_the_inverse_of_its_mde():
    for sd in (0.1, 0.25, 0.5):
        n = power.bounded_n(0.05, 0.0, sd)
        assert power.bounded_mde(n, sd) <= 0.05 + 1e-12 < power.bounded_mde(n - 1, sd)
        assert power.bounded_n(0.0, 0.05, sd) == n
    assert power.bounded_mde(0, 0.25) == math.inf
    assert power.bounded_n(0.2, 0.0, 0.0) >= 2


def test_bounded_half_width_is_the_betting_rate_without_truncation():
    # large sd: the bet is not truncated and the half-width is sqrt(2 log(2/α)/n) sd
    h = power._betting_half_width(400, 0.8, 0.05)
    assert h == pytest.approx(math.sqrt(2 * math.log(40) / 400) * 0.8)
    # all-zero deltas: only the truncated bet's range term is left
    assert power._betting_half_width(400, 0.0, 0.05) == pytest.approx(2 * math.log(40) / (400 * 1.5))


def test_bounded_plan_delivers_power_in_simulation():
    rng = np.random.default_rng(9)
    disc = 0.3
    sd = math.sqrt(disc * 0.2)  # deltas: 0, or 2 Beta(2, 2) - 1 with probability disc
    n = power.bounded_n(0.1, 0.0, sd)
    changed = rng.random((300, n)) < disc
    x = np.where(changed, 2 * rng.beta(2, 2, (300, n)) - 1, 0.0)
    lo, _ = stats.betting_bounds((x + 1) / 2)
    assert np.mean(2 * lo - 1 > -0.1) >= 0.7


@pytest.mark.parametrize("effect,discordance", [(0.05, 0.05), (0.05, 0.1), (0.1, 0.2)])
def test_superiority_plan_reaches_its_power_with_the_gates_exact_guard(effect, discordance):
    """Issue 23: a superiority plan that ignored the exact McNemar widening promised 0.80 and delivered 0.665.
    Checked against the gate's own decisions (Tango + exact guard), enumerated over every (b, c)."""
    from harness.inference.evidence import delta_interval

    n = power.paired_binary_n(0.0, effect, discordance)
    p10, p01 = (discordance - effect) / 2, (discordance + effect) / 2
    ks = np.arange(n + 1)
    total = 0.0
    for b in range(n + 1):
        cs = ks[: n - b + 1]
        mass = sps.multinomial.pmf(np.stack([np.full(cs.size, b), cs, n - b - cs], 1), n, [p10, p01, 1 - discordance])
        for c in cs[mass > 1e-9]:
            base = np.r_[np.ones(b), np.zeros(int(c)), np.zeros(n - b - int(c))]
            cand = np.r_[np.zeros(b), np.ones(int(c)), np.zeros(n - b - int(c))]
            if delta_interval(base, cand, True, (0.0, 1.0)).lo > 0:
                total += float(mass[int(c)])
    assert total >= 0.8 - 1e-6
