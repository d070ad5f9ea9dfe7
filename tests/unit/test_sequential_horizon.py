"""The horizon design of `eval --until-decided` (issue 23, "raise the bar near the boundary"): its bets against a
direct transcription of the paper, its validity whatever the horizon or threshold, and that the design recorded
in results.json is the sequence compare and gate judge with (old runs without one are judged as before)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.data.runs import load_run
from harness.decide.compare import compare_runs
from harness.decide.gate import GateSpec
from harness.flows.until import plan_design
from harness.inference import power
from harness.inference import sequential as sq
from tests.conftest import write_suite
from tests.unit.test_gate_sequential import _gate, _make_sequential, _pair
from tests.unit.test_until_decided import ROWS, SCRIPT, TASK, BrokenAdapter, N, _baseline, _run
from tests.unit.test_until_decided import _gate as _write_gate


def _direct(y: list[float], m: float, horizon: int, center: float | None, alpha: float = 0.05,
            c: float = sq.CS_TRUNCATION) -> tuple[float, float]:
    """max_t log K⁺_t(m), max_t log K⁻_t(m) with the horizon design, term by term: WSR (2024) eq. (26) with
    t log(t + 1) replaced by the horizon, leaned toward their aGRAPA bet (μ̂ − m₀) / (σ̂² + (μ̂ − m₀)²)."""
    s_y = s_v = 0.0
    mu_prev, var_prev = 0.5, 0.25
    kp = km = 0.0
    best_p = best_m = -math.inf
    w = sq.GRO_WEIGHT
    for t, yt in enumerate(y, start=1):
        lam = math.sqrt(2 * math.log(2 / alpha) / (var_prev * horizon))
        lam_p = lam_m = lam
        if center is not None:
            up, down = max(mu_prev - center, 0.0), max(center - mu_prev, 0.0)
            lam_p = max(lam, (1 - w) * lam + w * up / (var_prev + (mu_prev - center) ** 2))
            lam_m = max(lam, (1 - w) * lam + w * down / (var_prev + (mu_prev - center) ** 2))
        kp += math.log(1 + min(lam_p, c / m) * (yt - m))
        km += math.log(1 - min(lam_m, c / (1 - m)) * (yt - m))
        best_p, best_m = max(best_p, kp), max(best_m, km)
        s_y += yt
        mu_prev = (0.5 + s_y) / (t + 1)
        s_v += (yt - mu_prev) ** 2
        var_prev = (0.25 + s_v) / (t + 1)
    return best_p, best_m


@pytest.mark.parametrize("center", [None, 0.45, 0.6])
def test_capital_matches_a_direct_transcription(center: float | None) -> None:
    y = np.random.default_rng(5).beta(3, 2, size=80)
    design = sq.Design(50, center)
    for m in (0.3, 0.5, 0.7):
        got = [sq.log_capital(y[None, :], np.array([m]), sq.bets(y[None, :], design=design, upper=u), upper=u).max()
               for u in (False, True)]
        want = _direct(list(y), m, 50, center)
        assert got == pytest.approx(want, rel=1e-10, abs=1e-10)


def test_horizon_bets_are_the_fixed_n_bets_of_the_paper() -> None:
    """Closed form: λ^H_t / λ^LIL_t = sqrt(t log(1 + t) / H) for every t, and λ^H_H equals the LIL bet WSR would
    place at the t whose t log(1 + t) is H."""
    y = np.random.default_rng(1).random((1, 300))
    lil = sq.bets(y)[0]
    t = np.arange(1, 301)
    for horizon in (10, 137, 300):
        tuned = sq.bets(y, design=sq.Design(horizon))[0]
        assert tuned / lil == pytest.approx(np.sqrt(t * np.log1p(t) / horizon), rel=1e-12)


def test_the_lean_never_bets_against_the_data_and_only_raises_the_bet() -> None:
    y = np.random.default_rng(2).random((3, 200))
    plain = sq.bets(y, design=sq.Design(100))
    for upper in (False, True):
        leaned = sq.bets(y, design=sq.Design(100, 0.5), upper=upper)
        assert np.all(leaned >= plain) and np.all(np.isfinite(leaned))


@pytest.mark.parametrize("design", [sq.Design(40, 0.45), sq.Design(400, 0.3), sq.Design(5, 0.9), sq.Design(200)])
def test_time_uniform_error_whatever_the_horizon_or_threshold(design: sq.Design) -> None:
    """Each side excludes the true mean at some t <= 600 in at most alpha/2 of runs (+ 2 Monte Carlo SE), for a
    horizon that is right, far too short or too long, and a threshold that is wrong: validity never depends on them."""
    rng = np.random.default_rng(11)
    reps, mean = 600, 0.45
    y = rng.choice([0.0, 0.5, 1.0], p=[0.15, 0.8, 0.05], size=(reps, 600))  # paired 0/1 deltas, mean 0.45
    limit = 0.025 + 2 * math.sqrt(0.025 * 0.975 / reps)
    for upper in (False, True):
        hits = sq.first_exclusion(y, mean, upper=upper, design=design) > 0
        assert hits.mean() <= limit, (design, upper, hits.mean())


def test_limits_agree_with_first_exclusion_and_anytime_p() -> None:
    """The running intersection is an interval (the bets do not depend on the m under test): its ends are where
    each side's capital first reached 2/alpha, and the anytime p-value at a threshold is <= alpha/2 exactly when
    the interval excludes it."""
    rng = np.random.default_rng(7)
    x = rng.choice([-1.0, 0.0, 1.0], p=[0.05, 0.8, 0.15], size=400)
    design = sq.Design(300, -0.05)
    iv = sq.sequence_interval(x, -1.0, 1.0, design=design)
    assert iv.method == sq.HORIZON_METHOD and iv.lo < iv.hi
    for threshold in (iv.lo - 0.01, iv.lo + 0.01):
        p = sq.anytime_p(x, -1.0, 1.0, threshold, above=True, design=design)
        assert (p <= 0.025) == (threshold < iv.lo)
    y = ((x + 1) / 2)[None, :]
    unit = design.on_unit(-1.0, 1.0)
    assert sq.first_exclusion(y, (iv.lo - 0.005 + 1) / 2, upper=False, design=unit)[0] > 0
    assert sq.first_exclusion(y, (iv.lo + 0.005 + 1) / 2, upper=False, design=unit)[0] == 0


def test_it_needs_fewer_items_than_the_lil_sequence_near_the_boundary() -> None:
    """At the planner's design point (non-inferiority, margin 0.05, Δ = 0, discordance 0.15) the tuned sequence
    passes sooner than the LIL one on the same data (bench_sequential.py section 5 measures by how much)."""
    rng = np.random.default_rng(3)
    plan = power.paired_binary_n(0.05, 0.0, 0.15)
    u = rng.random((300, 3000))
    d = np.where(u < 0.075, -1.0, np.where(u < 0.15, 1.0, 0.0))
    y, m = (d + 1) / 2, (1 - 0.05) / 2
    tuned = sq.first_exclusion(y, m, upper=False, design=sq.Design(plan, -0.05).on_unit(-1, 1))
    lil = sq.first_exclusion(y, m, upper=False)
    n_tuned, n_lil = np.where(tuned > 0, tuned, 3000), np.where(lil > 0, lil, 3000)
    assert n_tuned.mean() < 0.8 * n_lil.mean()
    assert n_tuned.mean() < plan


def test_plan_design_follows_the_planner_and_the_split() -> None:
    spec = GateSpec.model_validate({"rules": [
        {"suite": "s", "task": "a", "non_inferiority": 0.05},
        {"suite": "s", "superiority": True, "min_effect": 0.02},
        {"suite": "f", "floor": 0.5},
        {"suite": "p", "non_inferiority": 0.1, "pool": "micro"},
    ]})
    reads = [{("s", "a")}, {("s", "a"), ("s", "b")}, {("f", "x")}, {("p", "x"), ("p", "y")}]
    available = {"s/a": 5000, "s/b": 100, "f/x": 50, "p/x": 300, "p/y": 100}
    design = plan_design(spec, reads, available, 0.15)
    ni = power.paired_binary_n(0.05, 0.0, 0.15)
    assert design["s/a"] == {"horizon": ni, "center": -0.05, "planned_n": ni, "discordance": 0.15}  # the first rule
    sup = power.paired_binary_n(-0.02, 0.07, 0.15)
    assert design["s/b"]["horizon"] == 100 and design["s/b"]["planned_n"] == sup  # at most the split
    assert design["s/b"]["center"] == pytest.approx(0.02)
    assert "f/x" not in design  # a floor keeps the LIL sequence
    pooled = power.paired_binary_n(0.1, 0.0, 0.15)
    assert design["p/x"]["horizon"] == math.ceil(pooled * 300 / 400)  # a pooled rule's n, shared by split size
    assert design["p/y"]["horizon"] == math.ceil(pooled * 100 / 400)


def _with_design(run: Path, design: dict) -> None:
    results = json.loads((run / "results.json").read_text())
    results["sequential"]["design"] = design
    results["sequential"]["method"] = sq.HORIZON_METHOD
    (run / "results.json").write_text(json.dumps(results))


def test_gate_and_compare_judge_with_the_recorded_design(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(4)
    base = rng.binomial(1, 0.6, 400).astype(float)
    cand = np.where(rng.random(400) < 0.08, 1.0 - base, base)  # 8% of pairs flip either way
    b, c = _pair(tmp_path, base.tolist(), cand.tolist())
    order = [int(i) for i in rng.permutation(400)[:250]]
    _make_sequential(c, order)
    d = (cand - base)[order]
    # a run recorded without a design (before issue 23) is judged with the LIL sequence, as before
    _, old, _ = _gate(tmp_path, 0.1, b, c, capsys)
    assert old["rules"][0]["method"] == sq.CS_METHOD
    assert old["rules"][0]["interval"]["lo"] == pytest.approx(sq.sequence_interval(d, -1, 1).lo)
    _with_design(c, {"s/t": {"horizon": 120, "center": -0.1, "planned_n": 120, "discordance": 0.15}})
    code, new, out = _gate(tmp_path, 0.1, b, c, capsys)
    want = sq.sequence_interval(d, -1, 1, design=sq.Design(120, -0.1))
    rule = new["rules"][0]
    assert rule["method"] == sq.HORIZON_METHOD
    assert (rule["interval"]["lo"], rule["interval"]["hi"]) == pytest.approx((want.lo, want.hi))
    assert want.lo != pytest.approx(sq.sequence_interval(d, -1, 1).lo)
    assert new["sequential"]["design"]["s/t"]["horizon"] == 120
    assert "bets tuned before the first look to s/t 120 items" in out
    check = rule["checks"][0]  # its anytime p-value comes from the same (tuned) capital process
    assert check["p_pass"] == pytest.approx(sq.anytime_p(d, -1, 1, -0.1, above=True, design=sq.Design(120, -0.1)))
    comp = compare_runs(load_run(b), load_run(c))  # what `tunegate compare` shows
    row = next(r for r in comp.metrics if r.task == "t" and r.metric == "acc")
    assert row.interval is not None and row.interval.method == sq.HORIZON_METHOD
    assert row.interval.lo == pytest.approx(want.lo)


@pytest.mark.parametrize("design, field", [
    ({"s/t": {"horizon": 0, "center": -0.1}}, "horizon"),
    ({"s/t": {"horizon": 10, "center": "x"}}, "center"),
])
def test_a_bad_recorded_design_is_bad_input(tmp_path: Path, capsys, design: dict, field: str) -> None:
    b, c = _pair(tmp_path, [1.0] * 30, [1.0] * 30)
    _make_sequential(c, list(range(30)))
    _with_design(c, design)
    code, _, out = _gate(tmp_path, 0.1, b, c, capsys)
    assert code == 2 and "sequential.design" in out and field in out and "Traceback" not in out


def test_until_decided_records_the_design_and_gates_alike(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", TASK, {"data/add.jsonl": ROWS})
    backend = BrokenAdapter(model="toy", script=SCRIPT)
    base = _baseline(backend, suite, tmp_path / "base")
    gate = _write_gate(tmp_path / "g.yaml", "rules:\n  - suite: t\n    non_inferiority: 0.1\n")
    outcome = _run(backend, suite, gate, base, tmp_path / "cand", None, discordance=0.2)
    block = json.loads((tmp_path / "cand" / "results.json").read_text())["sequential"]
    planned = power.paired_binary_n(0.1, 0.0, 0.2)
    assert block["design"] == {"t/add": {"horizon": min(N, planned), "center": -0.1, "planned_n": planned,
                                         "discordance": 0.2}}
    assert block["method"] == sq.HORIZON_METHOD
    assert outcome.gate.verdict == "PASS" and outcome.gate.rules[0].interval.method == sq.HORIZON_METHOD
    verdict = json.loads((tmp_path / "cand" / "verdict.json").read_text())
    assert verdict["rules"][0]["method"].startswith("betting confidence sequence")
    # the written run, gated again, is judged with the same sequence: the same interval
    assert main(["gate", str(gate), "--baseline", str(base), "--candidate", str(tmp_path / "cand"),
                 "--verdict", str(tmp_path / "v2.json")]) == 0
    again = json.loads((tmp_path / "v2.json").read_text())
    assert again["rules"][0]["interval"] == verdict["rules"][0]["interval"]
    from harness.flows.until import summary

    assert f"bets tuned to {min(N, planned)} items of t/add (the planner's n {planned} at discordance 0.2" in summary(outcome)


@pytest.mark.parametrize("value", ["0", "1.5", "nan"])
def test_a_bad_discordance_is_exit_2(tmp_path: Path, capsys, value: str) -> None:
    code = main(["eval", "-q", "-m", "fake:toy", "-s", "nowhere", "--until-decided", "g.yaml", "--baseline", "b",
                 "--discordance", value])
    err = capsys.readouterr().err
    assert code == 2 and "--discordance must lie in (0, 1]" in err and "Traceback" not in err


def test_a_lower_is_better_metric_gets_the_mirrored_sequence() -> None:
    """The gate orients a lower-is-better metric by negating c - b; its design's center flips with it, so the
    interval of the improvement is the mirror of the raw one and the anytime p-value still matches it."""
    x = np.random.default_rng(9).choice([-1.0, 0.0, 1.0], p=[0.2, 0.7, 0.1], size=300)  # c - b, lower is better
    design = sq.Design(200, -0.05)  # on the improvement, -(c - b)
    raw = sq.sequence_interval(x, -1.0, 1.0, design=design.flipped())
    oriented = sq.sequence_interval(-x, -1.0, 1.0, design=design)
    assert (oriented.lo, oriented.hi) == pytest.approx((-raw.hi, -raw.lo), abs=1e-9)
    p = sq.anytime_p(-x, -1.0, 1.0, -0.05, above=True, design=design)
    assert (p <= 0.025) == (oriented.lo > -0.05)


def test_gate_and_compare_mirror_the_design_for_a_lower_is_better_metric(tmp_path: Path, capsys) -> None:
    from tests.unit.runfixtures import build_run

    rng = np.random.default_rng(12)
    base = rng.binomial(1, 0.3, 300).astype(float)  # an error rate: lower is better
    cand = np.where(rng.random(300) < 0.1, 1.0 - base, base)
    b = build_run(tmp_path / "b", scores={("s", "t"): {"err": base.tolist()}}, lower={("s", "t"): {"err"}})
    c = build_run(tmp_path / "c", scores={("s", "t"): {"err": cand.tolist()}}, adapter="cand",
                  lower={("s", "t"): {"err"}})
    order = [int(i) for i in rng.permutation(300)[:200]]
    _make_sequential(c, order)
    _with_design(c, {"s/t": {"horizon": 150, "center": -0.1}})
    design = sq.Design(150, -0.1)
    d = (cand - base)[order]  # c - b; the improvement is its negation
    _, verdict, _ = _gate(tmp_path, 0.1, b, c, capsys)
    want = sq.sequence_interval(-d, -1.0, 1.0, design=design)
    got = verdict["rules"][0]["interval"]
    assert (got["lo"], got["hi"]) == pytest.approx((want.lo, want.hi), abs=1e-9)
    row = next(r for r in compare_runs(load_run(b), load_run(c)).metrics if r.task == "t" and r.metric == "err")
    raw = sq.sequence_interval(d, -1.0, 1.0, design=design.flipped())
    assert row.interval is not None and (row.interval.lo, row.interval.hi) == pytest.approx((raw.lo, raw.hi))


def test_many_tasks_fold_into_one_design_line_per_planner_setting() -> None:
    from harness.flows.until import _design_lines

    design = {f"s/t{i}": {"horizon": 2 + i, "planned_n": 506, "discordance": 0.15, "center": -0.05} for i in range(40)}
    lines = _design_lines(design)
    assert lines == ["  bets tuned to 40 tasks' horizons of 2–41 items (the planner's n 506 at discordance 0.15, at "
                     "most each split), threshold -0.050"]
    few = _design_lines({"s/a": {"horizon": 7, "planned_n": 506, "discordance": 0.15, "center": -0.05}})
    assert few == ["  bets tuned to 7 items of s/a (the planner's n 506 at discordance 0.15, at most the split), "
                   "threshold -0.050"]
