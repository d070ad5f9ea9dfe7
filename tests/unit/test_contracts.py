"""The backend contract and registry, the task-kind registry and metric directions, on the fake backend."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.api import Backend, UserError
from harness.data.suite import load_suite
from harness.flows.evaluate import evaluate
from harness.models import load_backend
from harness.models.fake import FakeBackend
from harness.models.registry import split_spec
from harness.run.engine import EvalSettings, check_capabilities
from tests.conftest import GEN_TASK, MC_ROWS, MC_TASK, PPL_TASK, write_suite


def run(tmp_path: Path, suite: Path, model: str, *adapters: str, name: str = "run") -> tuple[dict, list[dict]]:
    args = ["eval", "-q", "-m", model, "-s", str(suite), "--out", str(tmp_path / name)]
    for adapter in adapters:
        args += ["-a", adapter]
    assert main(args) == 0
    out = tmp_path / name
    return (json.loads((out / "results.json").read_text()),
            [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()])


# ---- the registry of backends ----------------------------------------------------------------------------

def test_plain_specs_stay_hf_specs(tiny_model: Path) -> None:
    assert split_spec(str(tiny_model)) == ("hf", str(tiny_model))
    assert split_spec("smollm2-135m") == ("hf", "smollm2-135m")
    assert split_spec("org/model") == ("hf", "org/model")
    assert split_spec("model.gguf") == ("hf", "model.gguf")
    plain, prefixed = load_backend(str(tiny_model)), load_backend(f"hf:{tiny_model}")
    assert plain.name == prefixed.name == "hf"
    assert plain.fingerprint() == prefixed.fingerprint()  # same answers, same cache


def test_unknown_backend_prefix_suggests_the_closest(tmp_path: Path, small_suite: Path, capsys) -> None:
    assert main(["eval", "-q", "-m", "fak:x", "-s", str(small_suite), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown backend 'fak'" in err and "did you mean fake:" in err and "Traceback" not in err
    with pytest.raises(UserError, match="known backends: .*hf"):
        split_spec("zzz:model")


def test_a_backend_must_implement_what_it_declares() -> None:
    with pytest.raises(TypeError, match="declares \\['generate'\\] but does not override generate"):
        class Broken(Backend):  # noqa: F841
            capabilities = frozenset({"generate"})

            def fingerprint(self) -> dict:
                return {}


# ---- the fake backend through the engine -----------------------------------------------------------------

def test_fake_backend_runs_every_kind_deterministically(tmp_path: Path, small_suite: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    first, samples = run(tmp_path, small_suite, "fake:toy", name="a")
    monkeypatch.setenv("TUNEGATE_STORE", str(tmp_path / "other.sqlite"))
    second, again = run(tmp_path, small_suite, "fake:toy", name="b")
    assert set(first["suites"]["t"]["tasks"]) == {"mc", "gen", "ppl"}
    assert first["suites"] == second["suites"] and samples == again
    assert all(s["prompt"].startswith("<|user|>") for s in samples if s["task"] == "gen")  # its chat template
    assert first["timing"]["cache_misses"] == 3 * len(MC_ROWS) and first["timing"]["tokens_processed"] > 0


def test_fake_backend_adapters_change_the_fingerprint(tmp_path: Path, small_suite: Path) -> None:
    (tmp_path / "ad1").mkdir()
    base, base_samples = run(tmp_path, small_suite, "fake:toy", name="base")
    tuned, tuned_samples = run(tmp_path, small_suite, "fake:toy", str(tmp_path / "ad1"), name="tuned")
    assert tuned["model"]["adapter"]["name"] == "ad1"
    assert base["model"]["fingerprint_hash"] != tuned["model"]["fingerprint_hash"]
    assert [s["logliks"] for s in base_samples] != [s["logliks"] for s in tuned_samples]


@pytest.mark.parametrize(("caps", "needle"), [
    ("generate,chat_template,loglikelihood_rolling", "t/mc (multiple_choice) needs loglikelihood"),
    ("loglikelihood,loglikelihood_rolling,generate", "t/gen (generate) needs chat_template"),
    ("loglikelihood,generate,chat_template", "t/ppl (perplexity) needs loglikelihood_rolling"),
])
def test_a_task_the_backend_cannot_serve_is_refused_before_any_work(caps: str, needle: str, tmp_path: Path,
                                                                   small_suite: Path) -> None:
    backend = FakeBackend.from_spec(f"toy?caps={caps}")
    with pytest.raises(UserError, match=re.escape(needle)) as info:
        check_capabilities(backend, [load_suite(small_suite)])
    assert "fake:toy" in str(info.value) and backend.calls == []


def test_adapters_on_a_backend_without_them_are_refused(tmp_path: Path, small_suite: Path, capsys) -> None:
    (tmp_path / "ad").mkdir()
    code = main(["eval", "-q", "-m", "fake:toy?caps=loglikelihood,generate,chat_template,loglikelihood_rolling",
                 "-s", str(small_suite), "-a", str(tmp_path / "ad"), "--out", str(tmp_path / "o")])
    assert code == 2 and "cannot load adapters" in capsys.readouterr().err and not (tmp_path / "o").exists()


# ---- task kinds ----------------------------------------------------------------------------------------------

def test_unknown_kind_suggests_the_closest(tmp_path: Path, capsys) -> None:
    suite = write_suite(tmp_path / "s", MC_TASK.replace("kind: multiple_choice", "kind: multiple_choise"),
                        {"data/mc.jsonl": MC_ROWS})
    assert main(["suites", "validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "unknown task kind 'multiple_choise'" in err and "did you mean 'multiple_choice'" in err
    assert "tasks[mc].kind" in err


def test_a_kind_checks_its_required_fields(tmp_path: Path, capsys) -> None:
    suite = write_suite(tmp_path / "s", MC_TASK.replace("    choices: opts\n", ""), {"data/mc.jsonl": MC_ROWS})
    assert main(["suites", "validate", str(suite)]) == 2
    assert "a multiple_choice task needs choices" in capsys.readouterr().err


# ---- metric direction ----------------------------------------------------------------------------------------

def test_direction_is_written_for_every_metric_entry_and_a_task_can_override_it(tmp_path: Path) -> None:
    lower = MC_TASK.replace("metrics: [acc, acc_norm]", "metrics: [acc, acc_norm]\n    direction: {acc: lower}")
    perturbed = lower.replace("name: mc", "name: mc2") + "    perturbations: [{name: casing}]\n"
    suite = write_suite(tmp_path / "s", MC_TASK + perturbed + PPL_TASK, {"data/mc.jsonl": MC_ROWS})
    results, _ = run(tmp_path, suite, "fake:toy")
    tasks, pooled = results["suites"]["t"]["tasks"], results["suites"]["t"]["metrics"]
    assert tasks["mc"]["metrics"]["acc"]["higher_is_better"] is True
    assert tasks["mc2"]["metrics"]["acc"]["higher_is_better"] is False
    assert tasks["mc2"]["metrics"]["acc_norm"]["higher_is_better"] is True
    assert tasks["mc2"]["perturbations"]["casing"]["acc"]["higher_is_better"] is False
    assert tasks["mc2"]["robustness"]["worst_case_acc"]["higher_is_better"] is False
    assert tasks["ppl"]["metrics"]["token_perplexity"]["higher_is_better"] is False
    assert "acc" not in pooled  # better high on one task and low on the other: no pooled figure
    assert pooled["acc_norm"]["higher_is_better"] is True


def test_direction_must_name_the_tasks_own_metrics(tmp_path: Path, capsys) -> None:
    task = MC_TASK.replace("metrics: [acc, acc_norm]", "metrics: [acc]\n    direction: {acc_norm: lower}")
    suite = write_suite(tmp_path / "s", task, {"data/mc.jsonl": MC_ROWS})
    assert main(["suites", "validate", str(suite)]) == 2
    assert "direction names acc_norm" in capsys.readouterr().err


def test_direction_does_not_change_the_suite_fingerprint(tmp_path: Path) -> None:
    plain = write_suite(tmp_path / "a", MC_TASK + GEN_TASK, {"data/mc.jsonl": MC_ROWS})
    directed = write_suite(tmp_path / "b", MC_TASK.replace("metrics: [acc, acc_norm]",
                                                           "metrics: [acc, acc_norm]\n    direction: {acc: higher}")
                           + GEN_TASK, {"data/mc.jsonl": MC_ROWS})
    assert load_suite(plain).fingerprint() == load_suite(directed).fingerprint()


def test_evaluate_on_the_fake_backend_in_process(tmp_path: Path, small_suite: Path) -> None:
    [results] = evaluate("fake:toy", [], [str(small_suite)], tmp_path / "run", EvalSettings(progress=False))
    assert results["model"]["fingerprint"]["backend"] == "fake"
    assert (tmp_path / "run" / "results.json").is_file()
