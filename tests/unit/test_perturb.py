"""Perturbations: declarative, seeded, deterministic; shuffled choices keep the right answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.core.api import UserError
from harness.data import perturb
from harness.data.suite import PerturbationSpec, load_suite
from tests.conftest import write_suite

ROWS = [{"id": f"q{i}", "question": f"What is the colour of item number {i}? It is not red, is it?",
         "opts": ["blue", "green", "red", "white"], "gold": i % 4} for i in range(6)]
ALL = ("[{name: typos, rate: 0.2, seed: 1}, {name: casing, mode: upper}, {name: contractions},"
       " {name: whitespace, rate: 0.2}, {name: distractor, sentences: 2}, {name: shuffle_choices, seed: 3},"
       " {name: injection}]")


def _task(tmp_path: Path, perturbations: str = ALL, prompt: str = "Q: {{ question }}\\nOptions: {{ opts | join(', ') }}\\nA:",
          fewshot: str = "{n: 1, split: train}"):
    yaml = f"""  - name: mc
    kind: multiple_choice
    data: {{test: data/t.jsonl, train: data/tr.jsonl}}
    id_field: id
    prompt: "{prompt}"
    choices: opts
    target: gold
    chat_template: false
    fewshot: {fewshot}
    metrics: [acc]
    perturbations: {perturbations}
"""
    root = write_suite(tmp_path / "s", yaml, {"data/t.jsonl": ROWS, "data/tr.jsonl": ROWS[:2]})
    return load_suite(root).task("mc")


def test_variants_are_named_linked_and_deterministic(tmp_path: Path) -> None:
    task = _task(tmp_path)
    samples = task.samples()
    first, second = perturb.variants(task, samples), perturb.variants(task, samples)
    assert len(first) == 7 * len(samples)
    assert [(v.sample_id, v.prompt, v.choices, v.target) for v in first] == \
           [(v.sample_id, v.prompt, v.choices, v.target) for v in second]
    v = first[0]
    assert v.sample_id == f"{samples[0].sample_id}@typos"
    assert v.source_id == samples[0].sample_id and v.perturbation == "typos"
    assert {x.perturbation for x in first} == {"typos", "casing", "contractions", "whitespace", "distractor",
                                               "shuffle_choices", "injection"}


def test_each_sample_gets_its_own_edit_independent_of_the_batch(tmp_path: Path) -> None:
    task = _task(tmp_path, "[{name: typos, rate: 0.3, seed: 9}]")
    samples = task.samples()
    alone = perturb.variants(task, samples[3:4])[0]
    together = perturb.variants(task, samples)[3]
    assert alone.prompt == together.prompt


def test_seed_changes_typos_and_template_text_is_untouched(tmp_path: Path) -> None:
    a = _task(tmp_path / "a", "[{name: typos, rate: 0.3, seed: 1}]")
    b = _task(tmp_path / "b", "[{name: typos, rate: 0.3, seed: 2}]")
    va, vb = perturb.variants(a, a.samples())[0], perturb.variants(b, b.samples())[0]
    assert va.prompt != vb.prompt
    orig = a.samples()[0]
    prefix = orig.prompt[: orig.prompt.index("Q: What is the colour of item number 0")]
    assert va.prompt.startswith(prefix)  # the few-shot example is not perturbed
    assert "\nOptions: blue, green, red, white\nA:" in va.prompt  # neither is the template


def test_text_edits(tmp_path: Path) -> None:
    task = _task(tmp_path, "[{name: casing, mode: upper}, {name: contractions}, {name: injection},"
                           " {name: distractor, sentences: 1, seed: 4}, {name: whitespace, rate: 0.5}]",
                 fewshot="{n: 0}")
    sample = task.samples()[0]
    by = {v.perturbation: v for v in perturb.variants(task, [sample])}
    assert "WHAT IS THE COLOUR OF ITEM NUMBER 0? IT IS NOT RED, IS IT?" in by["casing"].prompt
    assert "What's the colour" in by["contractions"].prompt and "It isn't red" in by["contractions"].prompt
    assert perturb.INJECTION in by["injection"].prompt
    assert any(s in by["distractor"].prompt for s in perturb.DISTRACTORS)
    assert by["whitespace"].prompt != sample.prompt
    assert by["whitespace"].prompt.split() == sample.prompt.split()  # only whitespace changed


def test_keyboard_typos_use_neighbouring_keys() -> None:
    import random

    spec = PerturbationSpec(name="typos", rate=1.0)
    text = "hello"
    out = perturb._typos(text, spec, random.Random(0))
    assert all(o in perturb.KEYBOARD[c] for c, o in zip(text, out))


@pytest.fixture(scope="module")
def mc_task(tmp_path_factory: pytest.TempPathFactory):
    return _task(tmp_path_factory.mktemp("h"), ALL)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), index=st.integers(0, 5))
def test_shuffled_choices_keep_the_right_answer(mc_task, seed: int, index: int) -> None:
    task = mc_task
    sample = task.samples()[index]
    spec = PerturbationSpec(name="shuffle_choices", seed=seed)
    variant = perturb.perturb_sample(task, sample, spec)
    assert variant.choices[variant.target] == sample.choices[sample.target]
    assert sorted(variant.choices) == sorted(sample.choices)
    assert f"Options: {', '.join(variant.choices)}" in variant.prompt  # the shown options moved too


def test_shuffle_is_refused_for_generation_tasks(tmp_path: Path) -> None:
    yaml = """  - name: gen
    kind: generate
    data: {test: data/t.jsonl}
    prompt: "{{ question }}"
    target: opts[0]
    chat_template: false
    metrics: [exact_match]
    perturbations: [{name: shuffle_choices}]
"""
    task = load_suite(write_suite(tmp_path / "g", yaml, {"data/t.jsonl": ROWS})).task("gen")
    with pytest.raises(UserError, match="only to multiple_choice"):
        perturb.variants(task, task.samples())


@pytest.mark.parametrize("bad, message", [
    ("[{name: typo}]", "Input should be"),
    ("[{name: typos, colour: red}]", "unknown key"),
    ("[{name: typos}, {name: typos, rate: 0.1}]", "distinct names"),
])
def test_bad_perturbation_specs_are_user_errors(tmp_path: Path, bad: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        _task(tmp_path, bad)


def test_engine_reports_per_perturbation_and_worst_case(tmp_path: Path, tiny_model: Path) -> None:
    from harness.flows.evaluate import evaluate
    from harness.run.engine import EvalSettings

    task = _task(tmp_path, "[{name: casing, mode: lower}, {name: shuffle_choices, seed: 2}]")
    out = tmp_path / "run"
    [results] = evaluate(str(tiny_model), [], [str(Path(task.suite.path).parent)], out,
                         EvalSettings(progress=False))
    res = results["suites"]["t"]["tasks"]["mc"]
    assert set(res["perturbations"]) == {"casing", "shuffle_choices"}
    assert res["n"] == len(ROWS) and res["robustness"]["worst_case_acc"]["n"] == len(ROWS)
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    shuffled = [r for r in rows if r["perturbation"] == "shuffle_choices"]
    assert all(r["source_id"] == r["sample_id"].split("@")[0] for r in shuffled)
