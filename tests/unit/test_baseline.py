"""A release pipeline compares against a baseline saved in the store, not a run it must recompute."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main

GATE = """rules:
  - name: mc accuracy does not collapse
    suite: t
    task: mc
    metric: acc
    non_inferiority: 1.0
"""


def test_save_baseline_then_gate_by_name(tiny_model: Path, lora_adapter: Path, small_suite: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", "-q", "-m", str(tiny_model), "-s", str(small_suite), "--save-baseline", "approved"]) == 0
    assert main(["eval", "-q", "-m", str(tiny_model), "-a", str(lora_adapter), "-s", str(small_suite),
                 "--out", str(tmp_path / "candidate")]) == 0
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    capsys.readouterr()
    code = main(["gate", str(gate), "--baseline", "approved", "--candidate", str(tmp_path / "candidate"),
                 "--junit", str(tmp_path / "junit.xml")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "mc accuracy does not collapse" in out and (tmp_path / "junit.xml").exists()
    assert main(["report", "approved", str(tmp_path / "candidate"), "--md", str(tmp_path / "r.md"),
                 "--gate", str(gate)]) == 0
    report = (tmp_path / "r.md").read_text()
    assert "PASS: all 1 rules pass" in report and "mc accuracy does not collapse" in report


def test_unknown_baseline_name_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    code = main(["gate", str(gate), "--baseline", "never-saved", "--candidate", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "never-saved" in err and "no such run directory or saved baseline" in err
