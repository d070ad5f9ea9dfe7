"""Issue 18, run files: every malformed or self-contradicting run is one line naming file and field, exit 2,
in compare, gate and report alike; saved baselines are checked the same way."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.data.runfile import Results, Sample
from harness.data.runs import load_run
from harness.storage import ledger
from harness.storage.store import Store
from tests.unit.runfixtures import demo_pair
from tests.unit.test_hardening_suites import one_line_error

GATE = "rules:\n  - {suite: medical, metric: acc, floor: 0.1}\n"


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return demo_pair(tmp_path / "runs", n=20)


def _edit_results(run: Path, edit: Callable[[dict[str, Any]], Any]) -> None:
    data = json.loads((run / "results.json").read_text())
    edit(data)
    (run / "results.json").write_text(json.dumps(data))


def _edit_sample(run: Path, index: int, edit: Callable[[dict[str, Any]], Any]) -> None:
    lines = (run / "samples.jsonl").read_text().splitlines()
    row = json.loads(lines[index])
    edit(row)
    lines[index] = json.dumps(row)
    (run / "samples.jsonl").write_text("\n".join(lines) + "\n")


def _replace_bytes(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))


DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE = b"9" * 5000


def _case(name: str, run: Path) -> tuple[str, ...]:
    """Break the run as case `name` says; returns what the one error line must name."""
    results, samples = run / "results.json", run / "samples.jsonl"
    acc = ("suites", "medical", "tasks", "medqa", "metrics", "acc")

    def metric(data: dict[str, Any]) -> dict[str, Any]:
        node: Any = data
        for key in acc:
            node = node[key]
        return node

    if name == "model_string":
        _edit_results(run, lambda d: d.__setitem__("model", "smollm2"))
        return "results.json", "model", "JSON object"
    if name == "adapter_string":
        _edit_results(run, lambda d: d["model"].__setitem__("adapter", "medical-lora"))
        return "results.json", "model.adapter"
    if name == "suite_metrics_list":
        _edit_results(run, lambda d: d["suites"]["medical"].__setitem__("metrics", [{"value": 1}]))
        return "results.json", "suites.medical.metrics"
    if name == "results_invalid_utf8":
        _replace_bytes(results, b'"medical-lora"', b'"medical-\xff\xfelora"')
        return "results.json", "not valid UTF-8"
    if name == "samples_invalid_utf8":
        _replace_bytes(samples, b"answer 3", b"answer \xc3\x28")
        return "samples.jsonl:4", "not valid UTF-8"
    if name == "results_deep":
        _replace_bytes(results, b'"isolation": null', b'"isolation": ' + DEEP)
        return "results.json", "nested too deeply"
    if name == "samples_deep":
        _replace_bytes(samples, b'"extra": {}', b'"extra": {"x": ' + DEEP + b"}")
        return "samples.jsonl:1", "nested too deeply"
    if name == "results_huge_int":
        _replace_bytes(results, b'"n": 20', b'"n": ' + HUGE)
        return "results.json", "5000 digits"
    if name == "samples_huge_int":
        _edit_sample(run, 2, lambda s: s["scores"].__setitem__("acc", 7))
        _replace_bytes(samples, b'"acc": 7', b'"acc": ' + HUGE)
        return "samples.jsonl:3", "5000 digits"
    if name in ("score_yes", "score_list", "score_nan_string"):
        value = {"score_yes": "yes", "score_list": [1], "score_nan_string": "NaN"}[name]
        _edit_sample(run, 4, lambda s: s["scores"].__setitem__("acc", value))
        return "samples.jsonl:5", "scores.acc", "expected a number"
    if name == "ci95_strings":
        _edit_results(run, lambda d: metric(d).__setitem__("ci95", ["0.1", "0.9"]))
        return "results.json", "suites.medical.tasks.medqa.metrics.acc.ci95[0]"
    if name == "value_nan":
        _edit_results(run, lambda d: metric(d).__setitem__("value", float("nan")))
        return "results.json", "suites.medical.tasks.medqa.metrics.acc", "finite"
    if name == "value_bool":
        _edit_results(run, lambda d: metric(d).__setitem__("value", True))
        return "results.json", "metrics.acc.value"
    if name == "provenance_infinite":
        _edit_results(run, lambda d: d["model"]["adapter"]["provenance"].__setitem__("trainable_params",
                                                                                    float("inf")))
        return "results.json", "model.adapter.provenance.trainable_params"
    if name == "format_2":
        _edit_results(run, lambda d: d.__setitem__("format", "tunegate.results/2"))
        return "results.json", "format", "tunegate.results/1"
    if name == "results_a_list":
        results.write_text("[1, 2]")
        return "results.json", "JSON object"
    if name == "half_the_samples":  # item 7: the run contradicts itself
        lines = samples.read_text().splitlines()
        samples.write_text("\n".join(line for line in lines if '"task": "medqa"' not in line or
                                     int(json.loads(line)["sample_id"].split("/")[1]) < 10) + "\n")
        return "samples.jsonl", "holds 10 samples of medical/medqa", "n=20"
    if name == "sample_of_unknown_task":
        _edit_sample(run, 0, lambda s: s.__setitem__("task", "not-a-task"))
        return "samples.jsonl:1", "medical/not-a-task", "does not list"
    if name == "sample_of_unknown_variant":
        lines = samples.read_text().splitlines()
        index = next(i for i, line in enumerate(lines) if '"perturbation": "typos"' in line)
        _edit_sample(run, index, lambda s: s.__setitem__("perturbation", "mystery"))
        return "samples.jsonl", "mystery"
    if name == "sample_id_number":
        _edit_sample(run, 1, lambda s: s.__setitem__("sample_id", 12))
        return "samples.jsonl:2", "sample_id", "expected a string"
    raise AssertionError(name)


CASES = ["model_string", "adapter_string", "suite_metrics_list", "results_invalid_utf8", "samples_invalid_utf8",
         "results_deep", "samples_deep", "results_huge_int", "samples_huge_int", "score_yes", "score_list",
         "score_nan_string", "ci95_strings", "value_nan", "value_bool", "provenance_infinite", "format_2",
         "results_a_list", "half_the_samples", "sample_of_unknown_task", "sample_of_unknown_variant",
         "sample_id_number"]


@pytest.mark.parametrize("case", CASES)
def test_bad_run_files_are_one_line_and_exit_2_everywhere(case: str, pair: tuple[Path, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    base, cand = pair
    needles = _case(case, cand)
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    commands = [["compare", str(base), str(cand), "--resamples", "20"],
                ["gate", str(gate), "--baseline", str(base), "--candidate", str(cand),
                 "--verdict", str(tmp_path / "verdict.json")],
                ["report", str(base), str(cand), "--md", str(tmp_path / "r.md")]]
    for argv in commands:
        one_line_error(main(argv), capsys.readouterr().err, *needles)
    assert not (tmp_path / "verdict.json").exists() and not (tmp_path / "r.md").exists()


def test_valid_runs_round_trip_through_the_schema(pair: tuple[Path, Path]) -> None:
    for path in pair:
        run = load_run(path)
        assert Results.model_validate(run.results).model_dump(exclude_unset=True) == run.results
        for sample in run.samples:
            assert Sample.model_validate(sample).model_dump(exclude_unset=True) == sample


def test_keys_this_version_does_not_read_are_kept(pair: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    base, cand = pair
    _edit_results(cand, lambda d: d.update({"written_by_a_newer_tunegate": {"x": [1, 2]}}))
    _edit_results(cand, lambda d: d["suites"]["medical"]["metrics"]["acc"].update({"higher_is_better": True,
                                                                                   "note": "kept"}))
    _edit_sample(cand, 0, lambda s: s.update({"latency_ms": 12.5}))
    run = load_run(cand)
    assert run.results["written_by_a_newer_tunegate"] == {"x": [1, 2]} and run.samples[0]["latency_ms"] == 12.5
    assert main(["compare", str(base), str(cand), "--resamples", "20"]) == 0


def test_a_corrupt_saved_baseline_is_one_line(pair: tuple[Path, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    base, cand = pair
    run = load_run(base)
    store = Store(tmp_path / "store.sqlite")
    broken = json.loads(json.dumps(run.results))
    broken["suites"]["medical"]["tasks"]["medqa"]["metrics"]["acc"]["ci95"] = "wide"
    ledger.save_baseline(store.conn, "broken", "r1", broken, run.samples)
    ledger.save_baseline(store.conn, "short", "r2", run.results, run.samples[:5])
    ledger.save_baseline(store.conn, "fine", "r3", run.results, run.samples)
    store.close()
    for name, needles in (("broken", ("baseline broken", "ci95")), ("short", ("baseline short", "n=20"))):
        code = main(["compare", name, str(cand), "--store", str(tmp_path / "store.sqlite"), "--resamples", "20"])
        one_line_error(code, capsys.readouterr().err, *needles)
    assert main(["compare", "fine", str(cand), "--store", str(tmp_path / "store.sqlite"), "--resamples", "20"]) == 0


def test_an_empty_mean_may_be_nan(pair: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    """The engine writes NaN for a metric no sample scored (every answer abstained): that is not an error."""
    base, cand = pair
    for run in pair:
        _edit_results(run, lambda d: d["suites"]["medical"]["tasks"]["medqa"]["metrics"].__setitem__(
            "selective_accuracy", {"value": float("nan"), "ci95": [float("nan"), float("nan")], "n": 0}))
    assert main(["compare", str(base), str(cand), "--resamples", "20"]) == 0
