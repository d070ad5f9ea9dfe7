"""lm-evaluation-harness task files read as they are; anything outside the subset is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.api import UserError
from harness.data.suite import load_suite

MC_YAML = """task: tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
num_fewshot: 0
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
"""
ROWS = [{"question": f"What is {i} + 1?", "choices": [str(i + 1), str(i + 5)], "answer": 0} for i in range(6)]


def write_task(tmp_path: Path, text: str) -> Path:
    data = tmp_path / "data.json"
    data.write_text(json.dumps(ROWS))
    path = tmp_path / "task.yaml"
    path.write_text(text.format(data=data))
    return path


def test_multiple_choice_task_converts(tmp_path: Path) -> None:
    suite = load_suite(write_task(tmp_path, MC_YAML))
    task = suite.tasks[0]
    assert suite.name == "tiny_mc" and task.spec.kind == "multiple_choice" and task.spec.metrics == ["acc", "acc_norm"]
    sample = task.samples()[0]
    assert sample.prompt == "Question: What is 0 + 1?\nAnswer:" and sample.choices == ["1", "5"] and sample.target == 0
    assert task.spec.target_delimiter == " " and task.spec.chat_template is False


def test_generate_until_and_rolling(tmp_path: Path) -> None:
    gen = MC_YAML.replace("output_type: multiple_choice", "output_type: generate_until").replace(
        'doc_to_choice: "{{{{choices}}}}"\n', 'generation_kwargs:\n  until: ["\\n"]\n  max_gen_toks: 7\n').replace(
        "doc_to_target: answer", 'doc_to_target: "{{{{choices[0]}}}}"').replace(
        "  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n  - metric: acc_norm\n",
        "  - metric: exact_match\n")
    task = load_suite(write_task(tmp_path, gen)).tasks[0]
    assert task.spec.kind == "generate" and task.spec.generation.max_new_tokens == 7
    assert task.spec.generation.stop == ["\n"] and task.spec.metrics == ["exact_match_strict"]
    assert task.samples()[0].target == "1"


@pytest.mark.parametrize("edit,field", [
    (("num_fewshot: 0", "doc_to_image: image"), "doc_to_image"),
    (("num_fewshot: 0", "repeats: 0"), "repeats"),
    (("output_type: multiple_choice", "output_type: loglikelihood"), "output_type"),
    (("dataset_path: json", "dataset_path: super_glue"), "dataset_path"),
    (("  - metric: acc_norm\n", "  - metric: likelihood\n"), "metric_list[1]"),
    (("    aggregation: mean\n", "    aggregation: median\n"), "metric_list[0].aggregation"),
])
def test_outside_the_subset_is_refused(tmp_path: Path, edit: tuple[str, str], field: str) -> None:
    with pytest.raises(UserError) as err:
        load_suite(write_task(tmp_path, MC_YAML.replace(*edit)))
    assert field in str(err.value) and "task.yaml" in str(err.value)


def test_eval_runs_an_lmeval_task(tmp_path: Path, tiny_model: Path) -> None:
    assert main(["eval", "-q", "-m", str(tiny_model), "-s", str(write_task(tmp_path, MC_YAML)),
                 "--out", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["suites"]["tiny_mc"]["tasks"]["tiny_mc"]["metrics"]["acc"]["n"] == len(ROWS)


def test_the_tasks_own_higher_is_better_is_honoured(tmp_path: Path) -> None:
    text = MC_YAML.replace("  - metric: acc_norm\n", "  - metric: acc_norm\n    higher_is_better: false\n")
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(write_task(tmp_path, text)),
                 "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "results.json").read_text())["suites"]["tiny_mc"]["tasks"]["tiny_mc"]["metrics"]
    assert metrics["acc"]["higher_is_better"] is True and metrics["acc_norm"]["higher_is_better"] is False
    with pytest.raises(UserError, match="metric_list\\[0\\].higher_is_better"):
        load_suite(write_task(tmp_path, MC_YAML.replace("higher_is_better: true", "higher_is_better: maybe")))
