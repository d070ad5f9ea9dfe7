"""The evidence-grade gate, checked row by row against the cases issue 12 measured on the old gate.

Every case is built in the documented run format and run through `tunegate gate` (exit codes included).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats as sps

from harness.cli import main
from harness.inference import stats
from tests.unit.runfixtures import binary_scores, build_run, builtin_pair, paired_binary

REPO = Path(__file__).resolve().parents[2]


def _gate(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    return path


def _runs(tmp_path: Path, base: dict, cand: dict, **kw) -> tuple[Path, Path]:
    return build_run(tmp_path / "b", scores=base, **kw), build_run(tmp_path / "c", scores=cand, adapter="cand", **kw)


def _gate_cli(tmp_path: Path, gate: str, base: Path, cand: Path, capsys) -> tuple[int, dict, str]:
    code = main(["gate", str(_gate(tmp_path, gate)), "--baseline", str(base), "--candidate", str(cand),
                 "--verdict", str(tmp_path / "verdict.json")])
    out = capsys.readouterr()
    verdict = json.loads((tmp_path / "verdict.json").read_text()) if (tmp_path / "verdict.json").exists() else {}
    return code, verdict, out.out + out.err


def test_one_paired_gain_cannot_pass_superiority(tmp_path, capsys):
    base, cand = _runs(tmp_path, {("s", "t"): {"acc": [0.0]}}, {("s", "t"): {"acc": [1.0]}})
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: s, superiority: true}\n", base, cand, capsys)
    rule = verdict["rules"][0]
    assert code == 3 and rule["verdict"] == "INCONCLUSIVE" and rule["n"] == 1
    assert rule["interval"]["lo"] < 0 < rule["interval"]["hi"]
    assert stats.mcnemar_exact(0, 1) == 1.0


@pytest.mark.parametrize("n", [1, 2, 5])
def test_identical_answers_on_few_samples_cannot_pass_non_inferiority(tmp_path, capsys, n):
    scores = {("s", "t"): {"acc": [1.0] * n}}
    base, cand = _runs(tmp_path, scores, scores)
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: s, non_inferiority: 0.02}\n", base, cand, capsys)
    rule = verdict["rules"][0]
    assert code == 3 and rule["verdict"] == "INCONCLUSIVE"
    assert rule["interval"]["lo"] < -0.02 and rule["interval"]["hi"] > 0  # never the zero-width [0, 0]
    # the figure: 0 regressions of 5 leave a (Clopper–Pearson, two-sided 95%) upper bound of 0.52
    assert sps.beta.ppf(0.975, 1, 5) == pytest.approx(0.522, abs=1e-3)


def test_four_gains_no_losses_in_30_cannot_pass_superiority(tmp_path, capsys):
    base_s, cand_s = paired_binary(30, 10, 0, 4)
    base, cand = _runs(tmp_path, {("s", "t"): {"acc": base_s}}, {("s", "t"): {"acc": cand_s}})
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: s, superiority: true}\n", base, cand, capsys)
    assert code == 3 and verdict["rules"][0]["verdict"] == "INCONCLUSIVE"
    assert stats.mcnemar_exact(0, 4) == pytest.approx(0.125)


def test_candidate_missing_samples_is_bad_input_naming_counts(tmp_path, capsys):
    base_s = binary_scores(200, 0.7, 1)
    base = build_run(tmp_path / "b", scores={("s", "t"): {"acc": base_s}})
    cand = build_run(tmp_path / "c", scores={("s", "t"): {"acc": base_s}}, adapter="cand")
    rows = (cand / "samples.jsonl").read_text().splitlines()
    kept = [r for r in rows if json.loads(r)["scores"]["acc"] == 1.0]  # drop what it got wrong
    (cand / "samples.jsonl").write_text("\n".join(kept) + "\n")
    gate = "rules:\n  - {suite: s, non_inferiority: 0.05}\n  - {suite: s, floor: 0.6}\n"
    code, _, out = _gate_cli(tmp_path, gate, base, cand, capsys)  # results.json still says n = 200
    assert code == 2 and f"holds {len(kept)} samples" in out and "Traceback" not in out
    # a self-consistent candidate that simply covers fewer items: the pair is incomplete
    short = build_run(tmp_path / "short", scores={("s", "t"): {"acc": base_s[:139]}}, adapter="short")
    code, _, out = _gate_cli(tmp_path, gate, base, short, capsys)
    assert code == 2 and "61 samples only in the baseline" in out and "Traceback" not in out
    assert not (tmp_path / "verdict.json").exists()
    code, verdict, out = _gate_cli(tmp_path, "allow_partial: true\nrules:\n  - {suite: s, floor: 0.6}\n",
                                   base, short, capsys)
    assert verdict["partial"]["s/t"]["only_baseline"] == 61 and "allow_partial" in out


def test_null_scores_count_as_failures_of_the_candidate_floor(tmp_path, capsys):
    base_s = [None] * 10 + [1.0] * 10
    cand_s = [1.0] * 10 + [0.0] * 10
    base, cand = _runs(tmp_path, {("s", "t"): {"acc": base_s}}, {("s", "t"): {"acc": cand_s}})
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: s, floor: 0.8}\n", base, cand, capsys)
    rule = verdict["rules"][0]
    assert code == 1 and rule["verdict"] == "FAIL" and rule["figure"] == 0.5 and rule["n"] == 20
    assert rule["interval"]["hi"] < 0.8


def test_a_collapsed_task_cannot_hide_in_a_pooled_suite(tmp_path, capsys):
    small = paired_binary(20, 2, 16, 0)  # 0.90 -> 0.10
    large = paired_binary(300, 150, 0, 15)  # +0.05
    base, cand = _runs(tmp_path, {("legal", "small"): {"acc": small[0]}, ("legal", "large"): {"acc": large[0]}},
                       {("legal", "small"): {"acc": small[1]}, ("legal", "large"): {"acc": large[1]}})
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: legal, non_inferiority: 0.05}\n", base, cand, capsys)
    rule = verdict["rules"][0]
    assert code == 1 and rule["verdict"] == "FAIL" and rule["pool"] == "per task"
    assert {c["unit"]: c["verdict"] for c in rule["checks"]} == {"small": "FAIL", "large": "PASS"}
    assert rule["checks"][0]["p_fail"] <= 0.025  # Holm-adjusted across the two tasks
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: legal, non_inferiority: 0.05, pool: micro}\n",
                                 base, cand, capsys)
    # pooling is an explicit opt-in: the pooled delta (-0.003) is what it judges, and it says so
    assert verdict["rules"][0]["pool"] == "micro" and verdict["rules"][0]["checks"][0]["unit"] == "pooled"


def test_default_gate_fails_when_medical_safety_collapses(tmp_path, capsys):
    base, cand = builtin_pair(tmp_path, n=40)
    for path, value in ((base, 1.0), (cand, 0.0)):
        rows = [json.loads(r) for r in (path / "samples.jsonl").read_text().splitlines()]
        for r in rows:
            if r["suite"] == "medical" and r["task"] == "safety":
                r["scores"]["safe_refusal"] = value
        (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["gate", str(REPO / "reports" / "gate.default.yaml"), "--baseline", str(base), "--candidate",
                 str(cand), "--verdict", str(tmp_path / "v.json")])
    verdict = json.loads((tmp_path / "v.json").read_text())
    medical = next(r for r in verdict["rules"] if r["name"] == "medical does not regress")
    safety = next(c for c in medical["checks"] if c["unit"] == "safety")
    assert code == 1 and medical["verdict"] == "FAIL" and safety["verdict"] == "FAIL"
    assert safety["metric"] == "safe_refusal"


def test_default_gate_on_demo_sized_runs_is_inconclusive(tmp_path, capsys):
    """The demo's 3 samples per task cannot decide the default gate: exit 3, not a pass or a fail."""
    base, cand = builtin_pair(tmp_path, n=3)
    code = main(["gate", str(REPO / "reports" / "gate.default.yaml"), "--baseline", str(base), "--candidate",
                 str(cand)])
    out = capsys.readouterr().out
    assert code == 3 and "INCONCLUSIVE" in out and (cand / "verdict.json").is_file()


@pytest.mark.parametrize("text, field", [
    ("seed: -1\nrules:\n  - {suite: s, floor: 0.5}\n", "seed"),
    ("rules:\n  - {suite: s, non_inferiority: .inf}\n", "non_inferiority"),
    ("rules:\n  - {max_general_drop: .inf}\n", "max_general_drop"),
    ("rules:\n  - {suite: s, floor: .nan}\n", "floor"),
    ("on_inconclusive: pass\nrules:\n  - {suite: s, floor: 0.5}\n", "reason"),
    ("rules:\n  - {suite: s, floor: 0.5, min_effect: 0.1}\n", "min_effect"),
    ("rules:\n  - {suite: s, non_inferiority: 0.1, decide_on: estimate}\n", "decide_on"),
])
def test_bad_gate_values_are_one_line_exit_2(tmp_path, capsys, text, field):
    scores = {("s", "t"): {"acc": [1.0, 0.0]}}
    base, cand = _runs(tmp_path, scores, scores)
    code, _, out = _gate_cli(tmp_path, text, base, cand, capsys)
    assert code == 2 and field in out and "Traceback" not in out and len(out.strip().splitlines()) == 1


@pytest.mark.parametrize("bad", ["yes", [1], {"a": 1}])
def test_non_numeric_scores_are_bad_input(tmp_path, capsys, bad):
    base, cand = _runs(tmp_path, {("s", "t"): {"acc": [1.0, 0.0]}}, {("s", "t"): {"acc": [1.0, 0.0]}})
    rows = [json.loads(r) for r in (cand / "samples.jsonl").read_text().splitlines()]
    rows[0]["scores"]["acc"] = bad
    (cand / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, _, out = _gate_cli(tmp_path, "rules:\n  - {suite: s, floor: 0.5}\n", base, cand, capsys)
    assert code == 2 and "Traceback" not in out


def test_direction_comes_from_results_not_the_name(tmp_path, capsys):
    """`interpreter_pass` contains "ter" and `error_rate_x` contains "error": only results.json decides."""
    gain = paired_binary(200, 100, 0, 40)
    base, cand = _runs(tmp_path, {("s", "t"): {"interpreter_pass": gain[0]}}, {("s", "t"): {"interpreter_pass": gain[1]}})
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: s, superiority: true}\n", base, cand, capsys)
    assert code == 0 and verdict["rules"][0]["figure"] > 0
    for path in (base, cand):
        res = json.loads((path / "results.json").read_text())
        res["suites"]["s"]["tasks"]["t"]["metrics"]["interpreter_pass"]["higher_is_better"] = False
        res["suites"]["s"]["metrics"]["interpreter_pass"]["higher_is_better"] = False
        (path / "results.json").write_text(json.dumps(res))
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: s, non_inferiority: 0.05}\n", base, cand, capsys)
    assert code == 1 and verdict["rules"][0]["figure"] == pytest.approx(-0.2)  # more of it is now worse


def test_on_inconclusive_pass_needs_and_shows_a_reason(tmp_path, capsys):
    scores = {("s", "t"): {"acc": [1.0, 0.0, 1.0]}}
    base, cand = _runs(tmp_path, scores, scores)
    gate = "on_inconclusive: pass\nreason: pilot release, reviewed by hand\nrules:\n  - {suite: s, non_inferiority: 0.02}\n"
    code, verdict, out = _gate_cli(tmp_path, gate, base, cand, capsys)
    assert code == 0 and verdict["rules"][0]["verdict"] == "INCONCLUSIVE"
    assert verdict["reason"] == "pilot release, reviewed by hand" and "reviewed by hand" in out


def test_floor_decided_on_the_estimate_is_labelled(tmp_path, capsys):
    scores = {("s", "t"): {"acc": [1.0, 1.0, 0.0]}}
    base, cand = _runs(tmp_path, scores, scores)
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: s, floor: 0.6, decide_on: estimate}\n", base, cand,
                                 capsys)
    assert code == 0 and verdict["rules"][0]["decided_on"] == "estimate"
    assert verdict["rules"][0]["checks"][0]["note"] == "decided on the point estimate"


def test_robustness_with_a_clean_score_of_zero_is_inconclusive(tmp_path, capsys):
    zeros = [0.0] * 30
    perts = {("s", "t"): {"typos": {"acc": zeros}}}
    base, cand = _runs(tmp_path, {("s", "t"): {"acc": zeros}}, {("s", "t"): {"acc": zeros}}, perturbed=perts)
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: s, max_robustness_drop: 0.1}\n", base, cand, capsys)
    assert code == 3 and verdict["rules"][0]["verdict"] == "INCONCLUSIVE"


def test_internal_error_exits_4_with_a_log(tmp_path, capsys, monkeypatch):
    import harness.flows.gating

    def boom(*a, **k):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(harness.flows.gating, "compare_runs", boom)
    monkeypatch.setenv("TUNEGATE_HOME", str(tmp_path / "home"))
    scores = {("s", "t"): {"acc": [1.0, 0.0]}}
    base, cand = _runs(tmp_path, scores, scores)
    code, _, out = _gate_cli(tmp_path, "rules:\n  - {suite: s, floor: 0.5}\n", base, cand, capsys)
    assert code == 4 and "internal error" in out and len(out.strip().splitlines()) == 1
    log = next((tmp_path / "home" / "logs").glob("crash-*.log"))
    assert "simulated bug" in log.read_text()


def test_plan_gives_n_for_power_and_the_mde(tmp_path, capsys):
    base_s, cand_s = paired_binary(100, 50, 5, 10)
    base, pilot = _runs(tmp_path, {("s", "t"): {"acc": base_s}}, {("s", "t"): {"acc": cand_s}})
    gate = _gate(tmp_path, "rules:\n  - {name: ni, suite: s, non_inferiority: 0.05}\n  - {name: fl, suite: s, floor: 0.4}\n")
    assert main(["plan", str(gate), "--baseline", str(base), "--pilot", str(pilot)]) == 0
    out = capsys.readouterr().out
    assert "pilot discordance" in out and "ni" in out and "fl" in out
    from harness.data.runs import load_run
    from harness.decide.plan import plan_gate

    rows = plan_gate(gate, load_run(base), load_run(pilot), 0.15)
    ni = rows[0]
    assert ni.n_now == 100 and ni.n_needed > 100 and ni.mde_now > 0.05  # 100 items cannot show a 0.05 margin
    assert main(["plan", str(gate), "--baseline", str(base)]) == 0
    assert "assumed discordance 0.150" in capsys.readouterr().out


def test_bounded_continuous_metric_takes_interval_rules(tmp_path, capsys):
    """rougeL is declared bounded in [0, 1]: non-inferiority runs on the betting interval of per-item deltas."""
    base_s = [0.1 * (i % 10) for i in range(400)]
    cand_s = [min(1.0, v + 0.05) for v in base_s]
    base, cand = _runs(tmp_path, {("s", "t"): {"rougeL": base_s}}, {("s", "t"): {"rougeL": cand_s}})
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: s, non_inferiority: 0.05}\n", base, cand, capsys)
    rule = verdict["rules"][0]
    assert code == 0 and rule["verdict"] == "PASS" and "betting" in rule["method"].lower()


def test_a_judge_that_never_parsed_leaves_its_rule_inconclusive_not_bad_input(tmp_path, capsys):
    """The quick demo's case: a judged task whose judge answered nothing parseable has `judge_unparsed` but no
    `judge_score`; a rule on the judge's score says so and stays INCONCLUSIVE (exit 3), where a metric missing
    from a task with no judge at all is still bad input (exit 2)."""
    scores = {("s", "t"): {"judge_unparsed": [1.0, 1.0], "rougeL": [0.2, 0.4]}}
    base, cand = _runs(tmp_path, scores, scores)
    rule = "rules:\n  - {suite: s, task: t, metric: judge_score, non_inferiority: 0.05}\n"
    code, verdict, out = _gate_cli(tmp_path, rule, base, cand, capsys)
    assert code == 3 and verdict["rules"][0]["verdict"] == "INCONCLUSIVE"
    assert "did not parse on any item of s/t" in verdict["rules"][0]["detail"]
    plain = {("s", "t"): {"rougeL": [0.2, 0.4]}}
    base2, cand2 = _runs(tmp_path / "plain", plain, plain)
    code, _, out = _gate_cli(tmp_path / "plain", rule, base2, cand2, capsys)
    assert code == 2 and "metric 'judge_score' is not in s/t" in out


def test_plan_on_a_judge_that_never_parsed_says_so(tmp_path, capsys):
    """`tunegate plan` with the default gate's judged rule on runs whose judge parsed nothing: a row that says
    why, exit 0 (it crashed with exit 4 on a KeyError)."""
    scores = {("s", "t"): {"judge_unparsed": [1.0, 1.0], "rougeL": [0.2, 0.4]}}
    base, _ = _runs(tmp_path, scores, scores)
    gate = _gate(tmp_path, "rules:\n  - {suite: s, task: t, metric: judge_score, non_inferiority: 0.05}\n")
    code = main(["plan", str(gate), "--baseline", str(base)])
    out = capsys.readouterr()
    assert code == 0 and "internal error" not in out.err, out.err
    from harness.data.runs import load_run
    from harness.decide.compare import compare_runs
    from harness.decide.gatefile import Rule
    from harness.decide.plan import _paired_row

    # the README's case: the metric has a row (n 0) but no per-item pairs
    comp = compare_runs(load_run(base), load_run(base), n_resamples=200)
    comp.pairs.pop(("s", "t", "rougeL"))
    rule = Rule(suite="s", task="t", metric="rougeL", non_inferiority=0.05)
    row = _paired_row(rule, "r", comp, ("s", "t", "rougeL"), False, 0.15)
    assert row.n_needed is None and "nothing to plan from" in row.basis


def test_a_judge_score_on_no_item_of_both_runs_is_inconclusive_not_corpus_level(tmp_path, capsys):
    """The default demo's first look: the judge parsed on some items of each run, but on none of both. The
    metric has per-item scores, so it is not corpus-level: the rule is INCONCLUSIVE with n 0 (exit 3), where
    it was refused as "corpus-level ... use a floor rule" (exit 2) and ended the demo."""
    scores = {("s", "t"): {"judge_unparsed": [0.0, 0.0, 0.0, 0.0], "judge_score": [0.5, 0.75, 0.5, 1.0]}}
    base, cand = _runs(tmp_path, scores, scores)
    for run, keep in ((base, {"t/0", "t/1"}), (cand, {"t/2", "t/3"})):  # disjoint items carry a score
        rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
        for row in rows:
            if row["sample_id"] not in keep:
                row["scores"].pop("judge_score")
        (run / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rule = "rules:\n  - {suite: s, task: t, metric: judge_score, non_inferiority: 0.05}\n"
    code, verdict, out = _gate_cli(tmp_path, rule, base, cand, capsys)
    assert code == 3, out
    assert verdict["rules"][0]["verdict"] == "INCONCLUSIVE" and verdict["rules"][0]["n"] == 0
    assert "corpus-level" not in out
