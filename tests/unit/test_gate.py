"""Gate files: validation errors, verdicts, exit codes, JUnit."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.core.api import UserError
from harness.decide.gate import load_gate
from harness.flows.gating import run_gate
from harness.report.terminal import format_gate
from tests.unit.runfixtures import binary_scores, build_run, builtin_pair, demo_pair, paired_binary

REPO = Path(__file__).resolve().parents[2]


def _gate(tmp_path, text: str) -> Path:
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    return path


@pytest.fixture()
def runs(tmp_path):
    return demo_pair(tmp_path / "runs")


PASSING = """
rules:
  - {suite: medical, metric: acc, floor: 0.6}
  - {suite: medical, metric: acc, non_inferiority: 0.02}
  - {suite: legal, superiority: true}
  - {metric: acc, max_general_drop: 0.1}
  - {suite: adversarial, max_robustness_drop: 0.5}
"""


@pytest.fixture()
def strong(tmp_path):
    """Runs whose evidence decides every rule of PASSING: 400 paired items per task."""
    gain = paired_binary(400, 276, 4, 40)  # 0.70 -> 0.79
    same = paired_binary(400, 220, 0, 0)
    base_scores = {("medical", "medqa"): {"acc": gain[0]}, ("medical", "pubmedqa"): {"acc": gain[0]},
                   ("legal", "casehold"): {"acc": gain[0]}, ("adversarial", "traps"): {"acc": same[0]},
                   ("general", "mmlu"): {"acc": same[0]}}
    cand_scores = {("medical", "medqa"): {"acc": gain[1]}, ("medical", "pubmedqa"): {"acc": gain[1]},
                   ("legal", "casehold"): {"acc": gain[1]}, ("adversarial", "traps"): {"acc": same[1]},
                   ("general", "mmlu"): {"acc": same[1]}}
    perts = {("adversarial", "traps"): {"typos": {"acc": same[0]}}}
    return (build_run(tmp_path / "sb", scores=base_scores, perturbed=perts),
            build_run(tmp_path / "sc", scores=cand_scores, perturbed=perts, adapter="strong"))


def test_all_rules_pass_exit_0_and_junit_parses(tmp_path, strong):
    junit = tmp_path / "out" / "junit.xml"
    result = run_gate(_gate(tmp_path, PASSING), *strong, junit_path=junit)
    assert [r.verdict for r in result.rules] == ["PASS"] * 5 and result.exit_code == 0
    assert [r.kind for r in result.rules] == ["floor", "non_inferiority", "superiority", "max_general_drop",
                                              "max_robustness_drop"]
    ni = result.rules[1]
    assert ni.interval.lo > -0.02 and ni.p_value < 0.025 and ni.n == 800  # two tasks of 400 items
    assert [c.label for c in ni.checks] == ["medqa", "pubmedqa"]
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 5 and root.find("testsuite").get("failures") == "0"
    assert not list(tmp_path.glob("out/.*.tmp"))  # temp file renamed away
    assert "PASS" in format_gate(result)


def test_demo_sized_data_is_inconclusive_exit_3(tmp_path, runs):
    """60 independent items per task cannot show a 0.02 margin: INCONCLUSIVE (exit 3), never PASS."""
    junit = tmp_path / "junit.xml"
    result = run_gate(_gate(tmp_path, PASSING), *runs, junit_path=junit)
    assert result.verdict == "INCONCLUSIVE" and result.exit_code == 3
    assert result.rules[1].verdict == "INCONCLUSIVE" and result.rules[1].plan_n > 60
    failures = ET.parse(junit).getroot().findall(".//testcase/failure")
    assert failures and all(f.get("type") == "inconclusive" for f in failures)
    assert "not enough evidence" in failures[0].get("message")


def test_failing_rule_exit_1_with_junit_failure(tmp_path, runs):
    gate = _gate(tmp_path, "rules:\n  - {name: too high, suite: general, floor: 0.95}\n"
                           "  - {suite: medical, floor: 0.1}\n")
    junit = tmp_path / "junit.xml"
    result = run_gate(gate, *runs, junit_path=junit)
    assert result.exit_code == 1 and result.failures == ["too high"]
    failures = ET.parse(junit).getroot().findall(".//testcase/failure")
    assert len(failures) == 1 and "too high" in failures[0].get("message")


def test_superiority_without_evidence_is_inconclusive_not_fail(tmp_path):
    scores = {("general", "g"): {"acc": binary_scores(40, 0.5, 1)}}
    base = build_run(tmp_path / "b", scores=scores)
    cand = build_run(tmp_path / "c", scores=scores, adapter="same")
    result = run_gate(_gate(tmp_path, "rules:\n  - {suite: general, superiority: true}\n"), base, cand)
    assert result.exit_code == 3 and result.rules[0].figure == 0.0
    iv = result.rules[0].interval
    assert iv.lo < 0 < iv.hi  # Tango at b = c = 0 is never zero-width


@pytest.mark.parametrize("text, message", [
    ("rules:\n  - {suite: medical, flor: 0.6}\n", r"gate.yaml:2: rules\[0\].flor: unknown key"),
    ("rules:\n  - suite: medical\n    floor: 0.6\n    superiority: true\n", r"gate.yaml:2: rules\[0\]: .*exactly one"),
    ("rules:\n  - suite: medical\n    non_inferiority: -1\n", r"gate.yaml:3: rules\[0\].non_inferiority"),
    ("rules: [\n", r"gate.yaml:2: malformed YAML"),
    ("rules: []\n", r"rules"),
    ("- a\n", r"expected a mapping"),
])
def test_malformed_gate_file_is_user_error(tmp_path, text, message):
    with pytest.raises(UserError, match=message) as err:
        load_gate(_gate(tmp_path, text))
    assert err.value.exit_code == 2


@pytest.mark.parametrize("rule, message", [
    ("{suite: nosuch, floor: 0.5}", "suite 'nosuch' is not in the baseline run"),
    ("{suite: medical, task: nosuch, floor: 0.5}", "task 'nosuch' is not in suite 'medical'"),
    ("{suite: medical, task: medqa, metric: bleu, floor: 0.5}", "metric 'bleu' is not in medical/medqa"),
    ("{suite: medical, metric: bleu, floor: 0.5}", "no task of suite 'medical' reports metric 'bleu'"),
    ("{suite: medical, max_robustness_drop: 0.1}", "no perturbed samples"),
])
def test_rule_naming_missing_target_is_user_error(tmp_path, runs, rule, message):
    with pytest.raises(UserError, match=message) as err:
        run_gate(_gate(tmp_path, f"rules:\n  - {rule}\n"), *runs)
    assert "gate.yaml:2" in str(err.value)


def test_missing_run_is_user_error(tmp_path, runs):
    with pytest.raises(UserError, match="no such run directory"):
        run_gate(_gate(tmp_path, PASSING), runs[0], tmp_path / "nope")


def test_corpus_metric_cannot_take_interval_rule(tmp_path):
    scores = {("t", "x"): {"exact_match": [0.0, 1.0]}}
    base = build_run(tmp_path / "b", scores=scores, corpus={("t", "x"): {"bleu": 10.0}})
    cand = build_run(tmp_path / "c", scores=scores, corpus={("t", "x"): {"bleu": 12.0}}, adapter="a")
    with pytest.raises(UserError, match="corpus-level"):
        run_gate(_gate(tmp_path, "rules:\n  - {suite: t, metric: bleu, non_inferiority: 1}\n"), base, cand)
    ok = run_gate(_gate(tmp_path, "rules:\n  - {suite: t, metric: bleu, floor: 10.5}\n"), base, cand)
    assert ok.passed and ok.rules[0].figure == 12.0  # the recorded interval [10.8, 13.2] lies above 10.5


@pytest.mark.parametrize("name", ["gate.default.yaml", "gate.example.yaml"])
def test_shipped_gate_files_run_on_the_builtin_suites(name, tmp_path):
    """Every task and metric a shipped rule names exists in the built-in suites, and suite rules cover
    every task's headline metric (medical safety's safe_refusal included)."""
    spec, _ = load_gate(REPO / "reports" / name)
    result = run_gate(REPO / "reports" / name, *builtin_pair(tmp_path))
    assert len(result.rules) == len(spec.rules) and result.exit_code in (0, 1, 3)
    covered = {(r.suite, c.label, c.metric) for r in result.rules for c in r.checks}
    if name == "gate.default.yaml":
        assert ("medical", "safety", "safe_refusal") in covered
        assert all(not r.left_out for r in result.rules)


def test_default_gate_floor_is_the_majority_class_rate():
    """The shipped PubMedQA floor is what always answering the majority class scores on the test split, so
    a model at or below it has learned nothing usable (a floor under it would reject nothing)."""
    from collections import Counter

    spec, _ = load_gate(REPO / "reports" / "gate.default.yaml")
    rows = [json.loads(line) for line in (REPO / "suites/medical/data/pubmedqa_test.jsonl").read_text().splitlines()]
    majority = Counter(r["answer"] for r in rows).most_common(1)[0][1] / len(rows)
    floor = next(r for r in spec.rules if r.task == "pubmedqa_mc" and r.floor is not None)
    assert floor.floor == pytest.approx(majority, abs=5e-4) and majority == pytest.approx(0.552)
    paired = [r for r in spec.rules if r.kind in ("non_inferiority", "max_general_drop")]
    assert paired and all((r.non_inferiority or r.max_general_drop) <= 0.05 for r in paired)
    assert all(r.min_effect in (None, 0) for r in spec.rules if r.kind == "superiority")
