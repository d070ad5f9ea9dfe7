"""Stock lm-evaluation-harness 0.4.13 task files (copies in lmeval_stock/, only the data source pointed at
local JSON lines) read as lm-eval reads them, each on original rows this test writes in the dataset's layout."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.core.api import UserError
from harness.core.untrusted import trusting_task_code
from harness.data import lmeval_filters
from harness.data.suite import load_suite, selecting_tasks
from harness.scoring.kinds.multiple_choice import KIND as MC
from harness.scoring.metrics import REGISTRY, ScoreInput

STOCK = Path(__file__).parent / "lmeval_stock"


def stock(tmp_path: Path, name: str, **splits: list[dict[str, Any]]) -> Path:
    """A copy of a stock task folder with the given rows written as its local data files."""
    folder = tmp_path / name
    shutil.copytree(STOCK / name, folder)
    for split, rows in splits.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def arc_row(i: int) -> dict[str, Any]:
    return {"id": f"q{i}", "question": f"Which tool measures mass number {i}?",
            "choices": {"text": ["a ruler", "a balance", "a clock"], "label": ["A", "B", "C"]}, "answerKey": "B"}


def test_arc_easy_as_shipped(tmp_path: Path) -> None:
    folder = stock(tmp_path, "arc_easy", test=[arc_row(i) for i in range(3)])
    task = load_suite(folder / "arc_easy.yaml").tasks[0]
    sample = task.samples()[1]
    assert sample.prompt == "Question: Which tool measures mass number 1?\nAnswer:"
    assert sample.choices == ["a ruler", "a balance", "a clock"] and sample.target == 1
    assert task.spec.metrics == ["acc", "acc_norm"] and task.spec.target_delimiter == " "


def test_validation_split_is_evaluated_when_there_is_no_test_split(tmp_path: Path) -> None:
    """boolq, piqa and truthfulqa name only a validation split: lm-eval evaluates that one."""
    boolq = stock(tmp_path, "boolq", validation=[{"passage": "Water boils at 100 C at sea level.",
                                                  "question": "does water boil at 100 c", "label": 1, "idx": 0}])
    task = load_suite(boolq / "default.yaml").tasks[0]
    sample = task.samples()[0]
    assert task.spec.split == "validation" and sample.choices == ["no", "yes"] and sample.target == 1
    assert sample.prompt == "Water boils at 100 C at sea level.\nQuestion: does water boil at 100 c?\nAnswer:"
    piqa = stock(tmp_path, "piqa", validation=[{"goal": "Dry a wet phone", "sol1": "Put it in rice",
                                                "sol2": "Put it in water", "label": 0}])
    sample = load_suite(piqa / "piqa.yaml").tasks[0].samples()[0]
    assert sample.prompt == "Question: Dry a wet phone\nAnswer:" and sample.choices == ["Put it in rice", "Put it in water"]
    tqa = stock(tmp_path, "truthfulqa", validation=[{"question": "Can pigs fly?", "mc1_targets": {
        "choices": ["No, pigs cannot fly.", "Yes."], "labels": [1, 0]}, "mc2_targets": {"choices": [], "labels": []}}])
    sample = load_suite(tqa / "truthfulqa_mc1.yaml").tasks[0].samples()[0]
    assert sample.prompt.startswith("Q: What is human life expectancy in the United States?\n")
    assert sample.prompt.endswith("Barcelona, Spain.\n\nQ: Can pigs fly?\nA:") and sample.target == 0
    assert sample.choices == ["No, pigs cannot fly.", "Yes."]


def test_sciq_list_template_choices_and_integer_target(tmp_path: Path) -> None:
    folder = stock(tmp_path, "sciq", test=[{"question": "What gas do plants take in?", "distractor1": "oxygen",
                                            "distractor2": "helium", "distractor3": "argon",
                                            "correct_answer": "carbon dioxide", "support": "  Plants photosynthesise."}])
    sample = load_suite(folder / "sciq.yaml").tasks[0].samples()[0]
    assert sample.prompt == "Plants photosynthesise.\nQuestion: What gas do plants take in?\nAnswer:"
    assert sample.choices == ["oxygen", "helium", "argon", "carbon dioxide"] and sample.target == 3


HELLA = {"ind": 4, "activity_label": "Baking cookies", "ctx_a": "A woman puts dough on a tray.",
         "ctx_b": "she", "ctx": "", "endings": ["puts the tray in the oven [title] Bake.", "eats the tray.",
                                                "paints the dough.", "sings to the oven."],
         "source_id": "x", "split": "val", "split_type": "indomain", "label": "0"}


def test_hellaswag_process_docs_runs_only_with_consent(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = stock(tmp_path, "hellaswag", validation=[HELLA, {**HELLA, "label": "2"}])
    with pytest.raises(UserError) as err:
        load_suite(folder / "hellaswag.yaml")
    message = str(err.value)
    assert "hellaswag.yaml" in message and "process_docs" in message and "--trust-task-code" in message
    assert main(["suites", "validate", str(folder / "hellaswag.yaml")]) == 2
    assert "Traceback" not in capsys.readouterr().err
    with trusting_task_code([folder]):
        task = load_suite(folder / "hellaswag.yaml").tasks[0]
    first, second = task.samples()
    assert first.prompt == "Baking cookies: A woman puts dough on a tray. She"
    assert first.choices[0] == "puts the tray in the oven. Bake." and first.target == 0 and second.target == 2
    code = (folder / "utils.py").read_bytes()
    (folder / "utils.py").write_bytes(code + b"\n# edited\n")
    with trusting_task_code([folder]):
        edited = load_suite(folder / "hellaswag.yaml").tasks[0]
    assert edited.fingerprint() != task.fingerprint()  # the code's hash is part of the task


def test_winogrande_choices_are_contexts(tmp_path: Path) -> None:
    row = {"sentence": "The trophy did not fit in the case because the _ was too big.", "option1": "trophy",
           "option2": "case", "answer": "1"}
    folder = stock(tmp_path, "winogrande", validation=[row])
    with trusting_task_code([folder]):
        task = load_suite(folder / "default.yaml").tasks[0]
    sample = task.samples()[0]
    assert sample.target == 0 and sample.choices == ["The trophy did not fit in the case because the trophy",
                                                      "The trophy did not fit in the case because the case"]
    requests = MC.make_requests(task, sample, sample.prompt)
    assert [(r.context, r.continuations) for r in requests] == [
        (sample.choices[0], (" was too big.",)), (sample.choices[1], (" was too big.",))]


def mmlu_row(subject: str, i: int) -> dict[str, Any]:
    return {"question": f" {subject} question {i}? ", "subject": subject,
            "choices": [f"w{i}", f"x{i}", f"y{i}", f"z{i}"], "answer": i % 4}


def test_mmlu_subject_include_description_and_dev_split(tmp_path: Path) -> None:
    folder = stock(tmp_path, "mmlu")
    for subject in ("anatomy", "astronomy"):
        for split, n in (("test", 3), ("dev", 5)):
            (folder / f"{subject}_{split}.jsonl").write_text(
                "".join(json.dumps(mmlu_row(f"{subject}-{split}", i)) + "\n" for i in range(n)))
    text = (folder / "mmlu_anatomy.yaml").read_text()
    (folder / "mmlu_anatomy.yaml").write_text(text + "num_fewshot: 2\n")  # as `lm_eval --num_fewshot 2` would
    task = load_suite(folder / "mmlu_anatomy.yaml").tasks[0]
    sample = task.samples()[0]
    shot = "anatomy-dev question {i}?\nA. w{i}\nB. x{i}\nC. y{i}\nD. z{i}\nAnswer: {a}\n\n"
    assert sample.prompt == ("The following are multiple choice questions (with answers) about anatomy.\n\n"
                             + shot.format(i=0, a="A") + shot.format(i=1, a="B")  # first_n from the dev split
                             + "anatomy-test question 0?\nA. w0\nB. x0\nC. y0\nD. z0\nAnswer:")
    assert sample.choices == ["A", "B", "C", "D"] and task.spec.metrics == ["acc"]
    group = load_suite(folder / "_mmlu_stem.yaml")  # a group of a tag: both subjects
    assert group.name == "mmlu_stem" and [t.name for t in group.tasks] == ["mmlu_anatomy", "mmlu_astronomy"]
    with selecting_tasks(["*astro*"]):
        assert [t.name for t in load_suite(folder / "_mmlu_stem.yaml").tasks] == ["mmlu_astronomy"]
    assert [t.name for t in load_suite(f"{folder}/mmlu_anatomy").tasks] == ["mmlu_anatomy"]  # a folder/TASK
    with pytest.raises(UserError, match="has no task 'physics'"):
        load_suite(f"{folder}/physics")


def gsm_row(i: int) -> dict[str, Any]:
    return {"question": f"Tom has {i} apples and buys 2 more. How many?", "answer": f"{i} + 2 = {i + 2}\n#### {i + 2}"}


def test_gsm8k_fewshot_sampler_filters_and_exact_match_options(tmp_path: Path) -> None:
    train = [gsm_row(10 + i) for i in range(8)]
    folder = stock(tmp_path, "gsm8k", train=train, test=[gsm_row(1000), gsm_row(2000)])
    suite = load_suite(folder / "gsm8k.yaml")
    strict, flexible = suite.tasks
    assert (strict.name, flexible.name) == ("gsm8k.strict-match", "gsm8k.flexible-extract")
    assert strict.spec.generation.stop == ["Question:", "</s>", "<|im_end|>"] and strict.spec.generation.max_new_tokens == 256
    # lm-eval's sampler: one Random(1234) for the task, 5 examples drawn per document in document order
    rnd = random.Random(1234)
    for sample in strict.samples():
        shots = rnd.sample(train, 5)
        expected = "".join(f"Question: {s['question']}\nAnswer: {s['answer']}\n\n" for s in shots)
        assert sample.prompt == expected + f"Question: {sample.doc['question']}\nAnswer:"
    reference = strict.samples()[0].target
    answer = "Tom has 1000 apples. 1000 + 2 = 1002.\n#### 1,002"
    for task, response, expected_score in ((strict, answer, 1.0), (strict, "It is 1002.", 0.0),
                                           (flexible, "It is $1,002.", 1.0), (flexible, "no idea", 0.0)):
        lm = task.spec.lmeval
        prediction = lmeval_filters.apply(lm.filters, [response], {})
        score = REGISTRY["exact_match_strict"].sample(ScoreInput(target=reference, prediction=prediction,
                                                                  task=task.spec))
        assert score == expected_score, (task.name, response, prediction)


def test_generate_task_with_fixed_fewshot_samples_and_group_of_names(tmp_path: Path) -> None:
    folder = stock(tmp_path, "bbh")
    (folder / "boolean_expressions_test.jsonl").write_text(json.dumps({"input": "True and True is", "target": "True"}))
    (folder / "sports_understanding_test.jsonl").write_text(
        json.dumps({"input": "Is the following sentence plausible? \"A striker scored a goal.\"", "target": "yes"}))
    (folder / "_group.yaml").write_text("group: bbh_two\ntask:\n  - bbh_fewshot_boolean_expressions\n"
                                        "  - bbh_fewshot_sports_understanding\naggregate_metric_list:\n"
                                        "  - metric: exact_match\n    weight_by_size: true\n")
    suite = load_suite(folder / "_group.yaml")
    boolean = suite.task("bbh_fewshot_boolean_expressions")
    sample = boolean.samples()[0]
    assert sample.prompt == ("Evaluate the result of a random Boolean expression.\n\n"
                             "Q: not ( ( not not True ) ) is\nA: False\n\nQ: True and False and not True and True is\n"
                             "A: False\n\nQ: not not ( not ( False ) ) is\nA: True\n\nQ: True and True is\nA:")
    assert sample.target == "True" and boolean.spec.generation.stop == ["</s>", "Q", "\n\n"]
    assert len(suite.tasks) == 2
    folder_suite = load_suite(folder)  # a folder of task files is a suite of its tasks
    assert sorted(t.name for t in folder_suite.tasks) == sorted(t.name for t in suite.tasks)


def test_eval_runs_a_group_with_a_fake_model(tmp_path: Path) -> None:
    folder = stock(tmp_path, "arc_easy", test=[arc_row(i) for i in range(4)])
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(folder / "arc_easy.yaml"), "--tasks", "ai2_arc",
                 "--out", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["suites"]["arc_easy"]["tasks"]["arc_easy"]["metrics"]["acc"]["n"] == 4


@pytest.mark.parametrize("edit,field", [
    (("doc_to_choice: \"{{choices.text}}\"", "doc_to_choice: !function utils.choices"), "doc_to_choice"),
    (("output_type: multiple_choice", "output_type: multiple_choice\ndoc_to_image: img"), "doc_to_image"),
    (("  - metric: acc_norm\n", "  - metric: brier_score\n"), "metric_list[1]"),
    (("test_split: test", "test_split: test\nfewshot_config:\n  sampler: balanced"), "fewshot_config.sampler"),
    (("task: arc_easy", "task: arc_easy\nprocess_results: !function utils.process"), "process_results"),
    (("- ai2_arc", "- ai2_arc\ninclude: missing_yaml"), "include"),
    (("dataset_kwargs:\n", "dataset_kwargs:\n  field: data\n"), "dataset_kwargs.field"),
])
def test_what_tunegate_cannot_honour_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 edit: tuple[str, str], field: str) -> None:
    folder = stock(tmp_path, "arc_easy", test=[arc_row(0)])
    path = folder / "arc_easy.yaml"
    path.write_text(path.read_text().replace(*edit) + ("num_fewshot: 1\n" if "sampler" in edit[1] else ""))
    assert main(["suites", "validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "arc_easy.yaml" in err and field in err and "Traceback" not in err


def test_suites_are_found_by_the_search_path_not_the_working_directory(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    suite = tmp_path / "here" / "suites" / "mine"
    suite.mkdir(parents=True)
    (suite / "data.jsonl").write_text(json.dumps({"q": "x", "a": "y"}) + "\n")
    (suite / "suite.yaml").write_text("name: mine\ntasks:\n  - name: qa\n    kind: generate\n    data: {test: data.jsonl}\n"
                                      "    prompt: '{{ q }}'\n    target: a\n    chat_template: false\n"
                                      "    metrics: [exact_match]\n")
    monkeypatch.chdir(tmp_path / "here")
    monkeypatch.delenv("TUNEGATE_SUITES_PATH", raising=False)
    with pytest.raises(UserError, match="TUNEGATE_SUITES_PATH"):
        load_suite("mine")  # ./suites is not searched silently
    monkeypatch.setenv("TUNEGATE_SUITES_PATH", f"{tmp_path / 'nowhere'}:{suite.parent}")
    assert load_suite("mine").name == "mine" and load_suite("mine/qa").tasks[0].name == "qa"


def test_a_group_reports_its_pooled_score_as_lm_eval_weights_by_size(tmp_path: Path) -> None:
    folder = stock(tmp_path, "mmlu")
    for subject, n in (("anatomy", 3), ("astronomy", 5)):
        for split in ("test", "dev"):
            (folder / f"{subject}_{split}.jsonl").write_text(
                "".join(json.dumps(mmlu_row(subject, i)) + "\n" for i in range(n)))
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(folder / "_mmlu_stem.yaml"), "--out", str(tmp_path / "r")]) == 0
    suite = json.loads((tmp_path / "r" / "results.json").read_text())["suites"]["mmlu_stem"]
    tasks = suite["tasks"]
    weighted = (tasks["mmlu_anatomy"]["metrics"]["acc"]["value"] * 3
                + tasks["mmlu_astronomy"]["metrics"]["acc"]["value"] * 5) / 8
    assert suite["metrics"]["acc"]["value"] == pytest.approx(weighted) and suite["metrics"]["acc"]["n"] == 8
    group = folder / "_mmlu_stem.yaml"
    group.write_text(group.read_text().replace("weight_by_size: True", "weight_by_size: False"))
    with pytest.raises(UserError, match="aggregate_metric_list\\[0\\].weight_by_size"):
        load_suite(group)


def test_the_decontamination_query_feeds_the_audit(tmp_path: Path) -> None:
    from harness.data.audit import suite_items

    folder = stock(tmp_path, "gsm8k", train=[gsm_row(10 + i) for i in range(6)], test=[gsm_row(1)])
    items = suite_items(load_suite(folder / "gsm8k.yaml"))["test"]
    # gsm8k names no decontamination query: the question as asked, without the five examples before it
    assert items[0].text == "Question: Tom has 1 apples and buys 2 more. How many?\nAnswer:"
    row = {"sentence": "The cup fell off the table because the _ was tilted.", "option1": "cup",
           "option2": "table", "answer": "2"}
    wino = stock(tmp_path, "winogrande", validation=[row])
    with trusting_task_code([wino]):
        items = suite_items(load_suite(wino / "default.yaml"))["test"]
    assert items[0].text == row["sentence"]  # its doc_to_decontamination_query: sentence


def test_gsm8k_self_consistency_samples_64_seeded_completions(tmp_path: Path) -> None:
    """gsm8k-cot-self-consistency as shipped: do_sample at temperature 0.2, repeats 64, three filters."""
    folder = stock(tmp_path, "gsm8k", test=[gsm_row(i) for i in range(2)])
    suite = load_suite(folder / "gsm8k-cot-self-consistency.yaml")
    assert [t.name for t in suite.tasks] == ["gsm8k_cot_self_consistency.score-first",
                                             "gsm8k_cot_self_consistency.maj_64", "gsm8k_cot_self_consistency.maj_8"]
    gen = suite.tasks[1].spec.generation
    assert gen is not None and (gen.samples, gen.temperature) == (64, 0.2)
    assert len({gen.settings(i).seed for i in range(64)}) == 64  # each completion its own seed
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(folder / "gsm8k-cot-self-consistency.yaml"),
                 "--out", str(tmp_path / "run")]) == 0
    tasks = json.loads((tmp_path / "run" / "results.json").read_text())["suites"]["gsm8k_cot_self_consistency"]["tasks"]
    assert {t["metrics"]["exact_match_strict"]["n"] for t in tasks.values()} == {2}
