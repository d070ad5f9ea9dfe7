"""The items an undecided rule's plan asks for trust this run's estimate only down to its safeguard
(Perugini, Gallucci & Costantini 2014): neither the face value of a few items nor an assumption the data
contradict."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from harness.decide import gate
from harness.decide.gatefile import Rule
from harness.inference import power
from harness.inference.evidence import Unit, one_sample_n
from harness.inference.stats import Interval


def _unit(figure: float, n: int, shape: str, *, discordance: float | None = None, sd: float | None = None,
          extent: tuple[float, float] | None = None) -> Unit:
    return Unit("t", figure, lambda a: Interval(None, None, "x", n), n, None, shape, discordance=discordance, sd=sd,
                extent=extent)


def test_safeguard_is_the_lower_limit_of_a_60_percent_interval() -> None:
    # Perugini et al. (2014) plan at the lower limit of the pilot effect's 60% two-sided interval: z = 0.8416
    assert gate.SAFEGUARD_Z == pytest.approx(sps.norm.ppf(0.8)) == pytest.approx(0.8416, abs=1e-4)
    unit = _unit(0.4, 25, "paired bounded", sd=0.5)
    assert gate.standard_error(unit) == pytest.approx(0.1)
    assert gate.safeguarded(unit) == pytest.approx(0.4 - 0.08416, abs=1e-5)
    # paired 0/1: sd² = D − Δ²
    assert gate.standard_error(_unit(0.2, 100, "paired binary", discordance=0.4)) == pytest.approx(math.sqrt(0.36 / 100))
    assert gate.standard_error(_unit(0.2, 0, "paired binary", discordance=0.4)) is None


def test_superiority_plans_at_the_safeguarded_effect_when_the_data_show_more_than_assumed() -> None:
    rule = Rule(suite="s", superiority=True)
    # the demo's prompt-tuning "one word" rule: Δ +0.9 on 10 items, most of them changed
    strong = gate._plan_n(rule, _unit(0.9, 10, "paired binary", discordance=0.9))
    assert strong is not None and 10 <= strong <= 40  # not the 2,654 items of the assumed +0.05
    guard = 0.9 - gate.SAFEGUARD_Z * math.sqrt((0.9 - 0.81) / 10)
    assert strong == power.paired_binary_n(0.0, guard, 0.9)
    # no effect seen: the assumed one, as before
    flat = gate._plan_n(rule, _unit(0.0, 10, "paired binary", discordance=0.3))
    assert flat == power.paired_binary_n(0.0, gate.ASSUMED_EFFECT, 0.3) and flat > 900
    # a bounded metric alike
    assert gate._plan_n(rule, _unit(0.5, 20, "paired bounded", sd=0.4)) < gate._plan_n(rule, _unit(0.0, 20, "paired bounded", sd=0.4))


def test_non_inferiority_plans_at_no_change_unless_the_safeguard_shows_a_gain() -> None:
    rule = Rule(suite="s", non_inferiority=0.05)
    worse = gate._plan_n(rule, _unit(-0.03, 100, "paired binary", discordance=0.2))
    assert worse == power.paired_binary_n(0.05, 0.0, 0.2)  # never planned at a loss it hopes away, nor a gain
    gain = gate._plan_n(rule, _unit(0.10, 100, "paired binary", discordance=0.2))
    assert gain is not None and gain < worse


def test_a_floor_plans_at_the_safeguarded_distance_and_not_at_all_when_it_vanishes() -> None:
    rule = Rule(suite="s", task="t", floor=0.5)
    # 6 items at 0.83 with sd 0.41: face value asks for 14 items; the safeguard for more
    unit = _unit(0.83, 6, "binary", sd=0.41)
    face = one_sample_n(0.33, 0.41)
    plan = gate._plan_n(rule, unit)
    assert face is not None and plan is not None and plan > face
    assert plan == one_sample_n(0.33 - gate.SAFEGUARD_Z * 0.41 / math.sqrt(6), 0.41)
    # an estimate within the safeguard of its threshold: no plan rather than an invented one
    assert gate._plan_n(rule, _unit(0.55, 6, "binary", sd=0.5)) is None


def test_a_floor_whose_every_value_sits_at_an_end_plans_with_the_sequence_itself() -> None:
    """0 refusals in 1 or in 6: the Laplace sd is made up, so neither face value (7 items) nor the safeguard
    (163) says it; the sequence on values that never vary crosses 0.5 at 10 items and 0.25 at 24."""
    import numpy as np

    from harness.inference.evidence import sequence_interval
    safety = Rule(suite="s", task="t", floor=0.5)
    assert gate._plan_n(safety, _unit(0.0, 1, "binary", sd=0.47, extent=(0.0, 1.0))) == 10
    assert sequence_interval(np.zeros(10), 0.0, 1.0).hi < 0.5 <= sequence_interval(np.zeros(9), 0.0, 1.0).hi
    look_alikes = Rule(suite="s", task="t", floor=0.25)  # a rate that must stay at most 0.25 (refusal_rate ↓)
    assert gate._plan_n(look_alikes, _unit(0.0, 6, "binary", sd=0.33, extent=(0.0, 1.0))) == 24
    # an estimate inside the range keeps the safeguarded plan
    assert gate._plan_n(safety, _unit(0.2, 10, "binary", sd=0.4, extent=(0.0, 1.0))) == \
        one_sample_n(0.3 - gate.SAFEGUARD_Z * 0.4 / math.sqrt(10), 0.4)
