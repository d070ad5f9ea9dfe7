"""Every user mistake: one clear line naming file and field, exit status 2, no traceback, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from tests.conftest import MC_ROWS, MC_TASK, write_suite


def run_cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err
    return code, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.startswith("tunegate: error")]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def suite_with(tmp_path: Path, task: str = MC_TASK, rows=MC_ROWS, extra_files=None) -> Path:
    files = {"data/mc.jsonl": rows, **(extra_files or {})}
    return write_suite(tmp_path / "s", task, files)


CASES = {
    "malformed_yaml": (MC_TASK.replace("metrics: [acc, acc_norm]", "metrics: [acc, acc_norm"), None,
                       ["suite.yaml", "malformed YAML"]),
    "unknown_key": (MC_TASK.replace("chat_template: false", "chat_template: false\n    colour: blue"), None,
                    ["suite.yaml:10", "tasks[mc].colour", "unknown key"]),
    "missing_data_file": (MC_TASK.replace("data/mc.jsonl", "data/nope.jsonl"), None,
                          ["nope.jsonl", "does not exist", "tasks[mc].data.test"]),
    "missing_column": (MC_TASK.replace("{{ q }}", "{{ question }}"), None,
                       ["'question' is named by the template but missing", "tasks[mc]"]),
    "empty_dataset": (MC_TASK, [], ["mc.jsonl", "the dataset is empty"]),
    "choice_out_of_range": (MC_TASK, [{**MC_ROWS[0], "gold": 7}], ["target index 7 is out of range", "row 1"]),
    "unknown_metric": (MC_TASK.replace("[acc, acc_norm]", "[acc, accuracy_plus]"), None,
                       ["unknown metric 'accuracy_plus'", "tasks[mc].metrics", "suite.yaml:10"]),
    "metric_for_wrong_kind": (MC_TASK.replace("[acc, acc_norm]", "[acc, bleu]"), None,
                              ["'bleu' does not apply to multiple_choice"]),
    "missing_chat_template_flag": (MC_TASK.replace("    chat_template: false\n", ""), None,
                                   ["tasks[mc].chat_template", "Field required"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_suite_errors(case: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    task, rows, needles = CASES[case]
    suite = suite_with(tmp_path, task, MC_ROWS if rows is None else rows)
    out = tmp_path / "out"
    code, err = run_cli(["suites", "validate", str(suite)], capsys)
    assert_one_line_error(code, err, *needles)
    code, err = run_cli(["eval", "-m", str(tmp_path / "no-model"), "-s", str(suite), "--out", str(out)], capsys)
    assert code == 2 and not out.exists()


def test_non_utf8_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    suite = write_suite(tmp_path / "s", MC_TASK, {"data/mc.jsonl": b'{"q": "caf\xe9", "opts": ["a"], "gold": 0}\n'})
    code, err = run_cli(["suites", "validate", str(suite)], capsys)
    assert_one_line_error(code, err, "mc.jsonl", "not valid UTF-8")


def test_malformed_jsonl_row(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    suite = write_suite(tmp_path / "s", MC_TASK, {"data/mc.jsonl": '{"q": 1}\n{oops\n'})
    code, err = run_cli(["suites", "validate", str(suite)], capsys)
    assert_one_line_error(code, err, "mc.jsonl", "line 2")


def test_model_path_missing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    suite = suite_with(tmp_path)
    code, err = run_cli(["eval", "-m", str(tmp_path / "missing-model"), "-s", str(suite)], capsys)
    assert_one_line_error(code, err, "missing-model", "does not exist", "-m/--model")


def test_out_is_existing_file(tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture) -> None:
    suite = suite_with(tmp_path)
    out = tmp_path / "results.txt"
    out.write_text("keep me")
    code, err = run_cli(["eval", "-m", str(tiny_model), "-s", str(suite), "--out", str(out), "-q"], capsys)
    assert_one_line_error(code, err, "--out", "is a file")
    assert out.read_text() == "keep me"


def test_adapter_for_another_base(tmp_path: Path, other_tiny_model: Path, lora_adapter: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    suite = suite_with(tmp_path)
    out = tmp_path / "out"
    code, err = run_cli(["eval", "-m", str(other_tiny_model), "-a", str(lora_adapter), "-s", str(suite),
                         "--out", str(out), "-q"], capsys)
    assert_one_line_error(code, err, "tiny-lora", "does not fit base model")
    assert not out.exists()


def test_adapter_dir_missing_config(tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture) -> None:
    suite = suite_with(tmp_path)
    (tmp_path / "not-an-adapter").mkdir()
    code, err = run_cli(["eval", "-m", str(tiny_model), "-a", str(tmp_path / "not-an-adapter"), "-s", str(suite)],
                        capsys)
    assert_one_line_error(code, err, "adapter_config.json")


def test_adapter_passed_as_model(tmp_path: Path, lora_adapter: Path, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(["eval", "-m", str(lora_adapter), "-s", str(suite_with(tmp_path))], capsys)
    assert_one_line_error(code, err, "is an adapter", "-a/--adapter")


def test_unknown_suite(capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(["eval", "-s", "no-such-suite"], capsys)
    assert_one_line_error(code, err, "suite no-such-suite not found", "basics")


def test_subprocess_prints_no_traceback(tmp_path: Path) -> None:
    """The real console entry point, as a user runs it."""
    suite = suite_with(tmp_path, MC_TASK.replace("chat_template: false", "chat_template: maybe"))
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "suites", "validate", str(suite)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "chat_template" in proc.stderr
