"""The demo's evaluation stages (`demo.decide`) on the real embedded SmolLM2-135M, on a small suite: two adapters
evaluated until the gate is decided against one base whose answers are computed once and shared, the reports, the
summary with every rule's verdict and n, and the smoke-run label on every page of a quick run."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from harness.flows.demo import QUICK, SMOKE, Sizes, decide
from tests.integration.test_until_decided_embedded import N, _broken_adapter, _suite

GATE = """rules:
  - name: sums do not regress
    suite: sums
    non_inferiority: 0.05
"""


def test_decide_two_adapters_against_one_shared_base(tmp_path: Path, capsys) -> None:
    suite = str(_suite(tmp_path / "sums"))
    broken = _broken_adapter(tmp_path / "adapters" / "broken")
    again = tmp_path / "adapters" / "broken-again"  # the same weights under another name: same answers
    shutil.copytree(broken, again)
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    sizes = Sizes("demo-test", max_steps=None, train_rows=None, chunk=10, max_minutes=5.0, max_items=None)
    out = tmp_path / "report"
    code = decide([broken, again], gate, out, sizes, [], str(tmp_path / "store.db"), suites=[suite])
    captured = capsys.readouterr()
    printed = captured.out
    # every look is shown: the first looks, then each later one with its adapter; progress names the adapter
    # and counts down the budget the adapters share
    assert "broken: first look, 10 items" in printed and "broken-again: first look, 10 items" in printed
    assert "later looks, each to the adapter" in printed and ": FAIL 'sums do not regress'" in printed
    assert "broken-again: evaluating items 11–20 of 150" in captured.err
    assert "min of the budget left" in captured.err and "at this pace" not in captured.err
    assert code == 1, printed  # the broken adapter fails non-inferiority
    summary = json.loads((out / "results.json").read_text())
    assert summary["suites"] == [suite] and summary["exit_code"] == 1
    for name in ("broken", "broken-again"):
        verdict = summary["gate"][name]
        assert verdict["verdict"] == "FAIL" and verdict["stopped"] == "decided"
        assert verdict["evaluated"] < N  # stopped early
        rule = verdict["rules"][0]
        assert rule["verdict"] == "FAIL" and rule["n"] <= verdict["evaluated"] and rule["available"] == N
    # one base, computed while the first adapter ran and reused by the second
    first, second = summary["gate"]["broken"], summary["gate"]["broken-again"]
    assert second["evaluated"] == first["evaluated"]  # same answers, same order: decided at the same look
    base = [json.loads(line) for line in (out / "runs" / "base" / "samples.jsonl").read_text().splitlines()]
    assert len(base) == first["evaluated"]
    assert "base: " in printed and "shared by the 2 adapters" in printed
    stage = next(s for s in summary["stages"] if s["name"].startswith("evaluating"))
    assert any(note.startswith("broken-again:") for note in stage["notes"])
    for name in ("report.html", "report.md", "junit.xml"):
        assert (out / name).stat().st_size > 0
    assert "FAIL" in printed and "sums do not regress: n" in printed
    # which method is better: the same weights give the same answers, so the two cannot be separated, at the n
    # both evaluated (sequential runs: their confidence sequence on the shared items)
    assert "which method is better" in printed and "broken ≈ broken-again at n " in printed, printed
    assert "## Which method is better" in (out / "report.md").read_text()
    assert SMOKE not in (out / "report.md").read_text()

    # the same adapters as a smoke run: labelled on the terminal, both reports and results.json
    quick = replace(QUICK, chunk=2)
    out_q = tmp_path / "quick"
    decide([broken, again], gate, out_q, quick, [], str(tmp_path / "store.db"), suites=[suite])
    printed = capsys.readouterr().out
    assert SMOKE in printed and "(smoke run: not evidence)" in printed
    assert SMOKE in (out_q / "report.md").read_text()
    assert 'class="smoke-run"' in (out_q / "report.html").read_text()
    assert json.loads((out_q / "results.json").read_text())["notice"] == SMOKE
