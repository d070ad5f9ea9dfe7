"""Gating a sequential run (evaluated until decided): paired on its evaluated ids, judged by the confidence
sequence, refused when the other run lacks an evaluated id or its prompt differs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.decide.compare import prompt_sha
from harness.inference import sequential
from tests.unit.runfixtures import build_run

GATE = "rules:\n  - suite: s\n    non_inferiority: {margin}\n"


def _make_sequential(run: Path, order: list[int], task: str = "t", suite: str = "s") -> None:
    """Rewrite a complete run into a sequential one over `order` (its evaluation order)."""
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    by_id = {s["sample_id"]: s for s in samples}
    kept = [by_id[f"{task}/{i}"] for i in order]
    results = json.loads((run / "results.json").read_text())
    entry = results["suites"][suite]["tasks"][task]
    entry["n"], entry["prompt_hash"] = len(kept), "subset-" + "x" * 8
    results["sequential"] = {"method": sequential.CS_METHOD, "alpha": 0.05, "seed": 0, "chunk": 10,
                             "available": {f"{suite}/{task}": len(samples)}, "stopped": "decided",
                             "items": [{"suite": suite, "task": task, "sample_id": s["sample_id"],
                                        "prompt_hash": prompt_sha(s["prompt"])} for s in kept]}
    (run / "results.json").write_text(json.dumps(results))
    (run / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in kept))


def _pair(tmp_path: Path, base: list[float], cand: list[float]) -> tuple[Path, Path]:
    b = build_run(tmp_path / "b", scores={("s", "t"): {"acc": base}})
    c = build_run(tmp_path / "c", scores={("s", "t"): {"acc": cand}}, adapter="cand")
    return b, c


def _gate(tmp_path: Path, margin: float, b: Path, c: Path, capsys) -> tuple[int, dict, str]:
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE.format(margin=margin))
    code = main(["gate", str(gate), "--baseline", str(b), "--candidate", str(c), "--verdict",
                 str(tmp_path / "verdict.json")])
    out = capsys.readouterr()
    path = tmp_path / "verdict.json"
    return code, json.loads(path.read_text()) if path.exists() else {}, out.out + out.err


def test_sequential_subset_is_judged_by_the_confidence_sequence_not_as_incomplete(tmp_path, capsys):
    rng = np.random.default_rng(0)
    base = rng.binomial(1, 0.6, 400).astype(float).tolist()
    b, c = _pair(tmp_path, base, list(base))  # identical answers
    order = [int(i) for i in rng.permutation(400)[:150]]
    _make_sequential(c, order)
    code, verdict, out = _gate(tmp_path, 0.2, b, c, capsys)
    assert code == 0, out
    rule = verdict["rules"][0]
    assert rule["verdict"] == "PASS" and rule["n"] == 150
    assert rule["method"] == sequential.CS_METHOD
    assert verdict["sequential"]["evaluated"] == {"s/t": 150}
    assert verdict["sequential"]["available"] == {"s/t": 400}
    assert "confidence sequence" in out and "150 of 400" in out
    # the interval is the CS of the deltas in evaluation order (all zero here)
    want = sequential.sequence_interval(np.zeros(150), -1.0, 1.0)
    assert rule["interval"]["lo"] == pytest.approx(want.lo)
    # compare shows the sequence too, and no fixed-n p-value
    assert main(["compare", str(b), str(c)]) == 0
    shown = capsys.readouterr().out
    assert "confidence" in shown and "McNemar" not in shown


def test_evaluation_order_is_the_order_of_the_sequence(tmp_path, capsys):
    """Gains first and losses last give a different running intersection than the reverse: the gate must
    read the recorded order, not the file's or the id's."""
    base = [0.0] * 40 + [1.0] * 40 + [1.0] * 120
    cand = [1.0] * 40 + [0.0] * 40 + [1.0] * 120
    b, c = _pair(tmp_path, base, cand)
    order = list(range(200))
    _make_sequential(c, order)
    _, v1, _ = _gate(tmp_path, 0.1, b, c, capsys)
    lo1 = v1["rules"][0]["interval"]["lo"]
    d = np.array(cand) - np.array(base)
    assert lo1 == pytest.approx(sequential.sequence_interval(d[order], -1, 1).lo)
    assert lo1 != pytest.approx(sequential.sequence_interval(d[::-1], -1, 1).lo)


def test_a_missing_evaluated_id_in_the_baseline_is_bad_input(tmp_path, capsys):
    b, c = _pair(tmp_path, [1.0] * 50, [1.0] * 50)
    _make_sequential(c, list(range(30)))
    _make_sequential(b, list(range(20)))  # the baseline lacks items 20..29
    results = json.loads((b / "results.json").read_text())
    del results["sequential"]
    (b / "results.json").write_text(json.dumps(results))
    code, _, out = _gate(tmp_path, 0.1, b, c, capsys)
    assert code == 2
    assert "lacks 10 of the 30 samples" in out and "Traceback" not in out


def test_a_changed_prompt_is_bad_input(tmp_path, capsys):
    b, c = _pair(tmp_path, [1.0] * 30, [1.0] * 30)
    _make_sequential(c, list(range(30)))
    samples = [json.loads(line) for line in (b / "samples.jsonl").read_text().splitlines()]
    samples[3]["prompt"] += " (edited)"
    (b / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    code, _, out = _gate(tmp_path, 0.1, b, c, capsys)
    assert code == 2 and "prompt of s/t/t/3" in out


def test_samples_not_listed_in_the_sequential_block_are_refused(tmp_path, capsys):
    b, c = _pair(tmp_path, [1.0] * 30, [1.0] * 30)
    _make_sequential(c, list(range(30)))
    results = json.loads((c / "results.json").read_text())
    results["sequential"]["items"].pop()
    (c / "results.json").write_text(json.dumps(results))
    code, _, out = _gate(tmp_path, 0.1, b, c, capsys)
    assert code == 2 and "sequential.items" in out


def test_clearly_worse_candidate_fails_sequentially(tmp_path, capsys):
    base = [1.0] * 100
    cand = [0.0] * 60 + [1.0] * 40
    b, c = _pair(tmp_path, base, cand)
    _make_sequential(c, [int(i) for i in np.random.default_rng(1).permutation(100)[:60]])
    code, verdict, _ = _gate(tmp_path, 0.05, b, c, capsys)
    assert code == 1 and verdict["rules"][0]["verdict"] == "FAIL"


def test_sequential_p_values_are_the_anytime_ones(tmp_path, capsys):
    rng = np.random.default_rng(4)
    base = rng.binomial(1, 0.5, 300).astype(float)
    cand = np.where(rng.random(300) < 0.3, 1.0, base)  # gains only
    b, c = _pair(tmp_path, base.tolist(), cand.tolist())
    order = list(range(300))
    _make_sequential(c, order)
    code, verdict, _ = _gate(tmp_path, 0.05, b, c, capsys)
    check = verdict["rules"][0]["checks"][0] if verdict["rules"][0]["checks"] else None
    assert code == 0 and check is not None
    want = sequential.anytime_p(cand - base, -1.0, 1.0, -0.05, above=True)
    assert check["p_pass"] == pytest.approx(want) and want <= 0.025
