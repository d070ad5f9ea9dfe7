"""Every built-in domain suite runs on the real embedded model and gives a per-task table with 95% CIs.

One item per task, and generated answers capped at a few tokens (tests/integration/scratch.py): every task of
every suite is still loaded, run and scored, which is what this test checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.data.suite import SUITES_PATH_VAR, load_suite
from tests.integration.scratch import capped_suites

DOMAIN = ["medical", "legal", "code", "adversarial", "general"]

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_every_domain_suite_runs_on_the_embedded_model(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv(SUITES_PATH_VAR, str(capped_suites(tmp_path / "suites")))
    out = tmp_path / "run"
    args = ["eval", "-m", "smollm2-135m", "--limit", "1", "--out", str(out), "-q"]
    for name in DOMAIN:
        args += ["-s", name]
    assert main(args) == 0
    table = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert set(results["suites"]) == set(DOMAIN)
    for name in DOMAIN:
        tasks = results["suites"][name]["tasks"]
        assert set(tasks) == {t.name for t in load_suite(name).tasks}
        for task_name, task in tasks.items():
            assert task["n"] == 1 and task["metrics"], (name, task_name)
            for metric in task["metrics"].values():
                lo, hi = metric["ci95"]
                assert lo <= metric["value"] <= hi or metric["n"] == 0
            assert f"| {name} | {task_name} |" in table
    robust = results["suites"]["adversarial"]["tasks"]["robust_qa"]
    assert len(robust["perturbations"]) == 7 and "worst_case_acc" in robust["robustness"]
    assert results["isolation"] in ("bwrap", "unshare")  # the code suite ran in the sandbox
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    code = [r for r in rows if r["suite"] == "code"]
    assert all(len(r["extra"]["status"]) == 3 for r in code)
