"""max_drift catches biocreep: a chain of releases, each non-inferior to the one before, drifting far from the first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.core.api import UserError
from harness.core.config import parse_model
from harness.data.runs import Run
from harness.decide.compare import compare_runs
from harness.decide.gate import GateSpec, evaluate_gate
from tests.unit.runfixtures import metric_value

N = 20_000
LOSSES, GAINS = 180, 20  # per step: 1% of items discordant with the release before, net −0.8 points


def _run(label: str, correct: np.ndarray) -> Run:
    """An in-memory run of one suite `general` with one task: 0/1 `acc` per item."""
    scores = correct.astype(float).tolist()
    samples = [{"suite": "general", "task": "mmlu", "sample_id": f"mmlu/{i}", "source_id": f"mmlu/{i}",
                "perturbation": None, "scores": {"acc": s}} for i, s in enumerate(scores)]
    acc = metric_value(scores, "acc")
    results = {"format": "tunegate.results/1", "run_id": f"run-{label}",
               "model": {"adapter": {"name": label, "method": "lora"}},
               "suites": {"general": {"fingerprint": "fp-general", "metrics": {"acc": acc},
                                      "tasks": {"mmlu": {"kind": "multiple_choice", "n": N, "metrics": {"acc": acc}}}}}}
    return Run(results=results, samples=samples, path=Path(label), label=label)


def chain(releases: int = 10, seed: int = 0) -> list[Run]:
    """Release 0 gets 70% right; each next release loses 180 items the first release had right and gains 20
    it had wrong: 200 discordant pairs (1%) between neighbours and 0.8 points lower each time."""
    rng = np.random.default_rng(seed)
    correct = np.zeros(N, dtype=bool)
    correct[rng.permutation(N)[:14_000]] = True
    anchor_right = correct.copy()
    runs = [_run("r0", correct)]
    for k in range(1, releases):
        nxt = correct.copy()
        lose = rng.choice(np.flatnonzero(correct & anchor_right), LOSSES, replace=False)
        gain = rng.choice(np.flatnonzero(~correct & ~anchor_right), GAINS, replace=False)
        nxt[lose], nxt[gain] = False, True
        assert int((nxt != correct).sum()) == LOSSES + GAINS
        correct = nxt
        runs.append(_run(f"r{k}", correct))
    return runs


SPEC = {"n_resamples": 200, "rules": [
    {"name": "step", "suite": "general", "metric": "acc", "non_inferiority": 0.01},
    {"name": "drift", "max_drift": {"from": "first", "metric": "general/acc", "margin": 0.03}}]}


@pytest.mark.slow  # 18 paired comparisons of 20,000 items
def test_each_step_is_non_inferior_but_the_chain_fails_the_drift_rule() -> None:
    """Release 0 is the anchor. After four steps the drift is 3.2 points, too close to the 3-point margin for any
    valid interval at this n to exclude it (its discordance is ≥ 3.2%, so the bound's half-width is ≈ 0.25
    points); after five steps (4 points) the whole interval lies beyond the margin: FAIL."""
    spec = parse_model(GateSpec, SPEC, None, "drift.yaml")
    runs = chain()
    verdicts: list[tuple[str, str]] = []
    for prev, cur in zip(runs, runs[1:]):
        result = evaluate_gate(spec, compare_runs(prev, cur, n_resamples=200), anchor_of=lambda d: runs[0])
        step, drift = result.rules
        assert step.verdict == "PASS", (cur.label, step.interval)
        assert drift.kind == "max_drift" and "anchor" in drift.threshold
        verdicts.append((step.verdict, drift.verdict))
    drift_verdicts = [d for _, d in verdicts]
    first_fail = drift_verdicts.index("FAIL") + 1  # the release number (release 0 is the anchor)
    assert first_fail <= 5, drift_verdicts
    assert drift_verdicts[0] == "PASS"  # 0.8 points is well inside a 3-point margin
    assert all(v == "FAIL" for v in drift_verdicts[first_fail - 1:])  # and it stays failed


def test_a_drift_rule_without_a_ledger_or_with_another_suite_version_is_one_line() -> None:
    spec = parse_model(GateSpec, SPEC, None, "drift.yaml")
    runs = chain(3)
    comp = compare_runs(runs[1], runs[2], n_resamples=200)
    with pytest.raises(UserError, match="needs the release ledger"):
        evaluate_gate(spec, comp)
    other = chain(1)[0]
    other.results["suites"]["general"]["fingerprint"] = "fp-general-v2"
    with pytest.raises(UserError, match="max_drift from first: the anchor .* another version of suite 'general'"):
        evaluate_gate(spec, comp, anchor_of=lambda d: other)


@pytest.mark.parametrize("rule, message", [
    ({"max_drift": {"from": "first", "metric": "general", "margin": 0.03}}, "metric"),
    ({"max_drift": {"from": "first", "metric": "general/acc", "margin": 0}}, "margin"),
    ({"suite": "general", "max_drift": {"from": "first", "metric": "general/acc", "margin": 0.03}}, "max_drift.metric"),
])
def test_bad_drift_rules_name_the_field(rule: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_model(GateSpec, {"rules": [rule]}, None, "drift.yaml")
