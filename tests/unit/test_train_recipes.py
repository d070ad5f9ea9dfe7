"""Recipes as a table of methods: the schema per method, bad values, JSON-lines data, --force, --check.

Nothing here trains except the --force tests; everything else fails (or passes) before a model loads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter

from harness.cli import main
from harness.core.api import UserError
from harness.core.fileio import read_jsonl
from harness.train import check, get_method, load_recipe, methods
from harness.train.recipe import recipe_union
from tests.unit.train_helpers import write_recipe

ADAPTERS = Path(__file__).resolve().parents[2] / "adapters"


def run_train(args: list[str], capsys: pytest.CaptureFixture, code: int = 2) -> str:
    """`tunegate train ARGS`; returns the one error line (or stdout when `code` is 0)."""
    status = main(["train", *args])
    out, err = capsys.readouterr()
    assert status == code, err
    assert "Traceback" not in err, err
    if code == 0:
        return out.strip()
    lines = [line for line in err.strip().splitlines() if line.startswith("tunegate: error")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def no_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any model weights load (tokenizers and configs may)."""
    import transformers

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded")

    for name in ("AutoModelForCausalLM", "AutoModelForSequenceClassification"):
        monkeypatch.setattr(getattr(transformers, name), "from_pretrained", refuse)


# ---- the table and the schema ----------------------------------------------------------------------------

def test_every_builtin_method_is_registered_with_its_data_shape() -> None:
    table = {m.name: m for m in methods()}
    assert {"sft", "reward_model", "dpo", "kto", "grpo", "rloo"} <= set(table)
    assert table["sft"].data == "completion" and table["kto"].data == "unpaired"
    assert table["dpo"].data == "preference" and table["grpo"].data == "prompt"
    assert table["grpo"].needs_reward_model and not table["dpo"].needs_reward_model
    assert table["reward_model"].peft_types == ("lora", "full") and "bottleneck" not in table["dpo"].peft_types
    # DPO and KTO share one builder, parameterised by TRL's classes.
    assert table["dpo"].builder.func is table["kto"].builder.func  # type: ignore[attr-defined]
    assert table["grpo"].builder.func is table["rloo"].builder.func  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", sorted(ADAPTERS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_recipe_loads_and_the_union_picks_its_method(path: Path) -> None:
    recipe = load_recipe(path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert recipe.spec.method == raw["method"]
    picked = TypeAdapter(recipe_union()).validate_python(raw)
    assert type(picked) is type(recipe.spec) and picked == recipe.spec


def test_unknown_method_suggests_the_closest(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    line = run_train([str(write_recipe(tmp_path, "r", "tiny", method="dop"))], capsys)
    assert "unknown method 'dop'" in line and "did you mean 'dpo'?" in line and "r.yaml:2" in line
    with pytest.raises(UserError, match="did you mean 'kto'"):
        get_method("kt0")


@pytest.mark.parametrize(("method", "section", "key", "value", "owners"), [
    ("sft", "train", "beta", 0.1, "dpo, grpo, kto, rloo"),
    ("sft", "train", "num_generations", 4, "grpo, rloo"),
    ("dpo", "train", "packing", True, "sft"),
    ("kto", "train", "temperature", 0.7, "grpo, rloo"),
    ("sft", None, "reward_model", "rm", "grpo, rloo"),
])
def test_an_option_of_another_method_names_the_option_and_both_methods(
        method: str, section: str | None, key: str, value: object, owners: str, tmp_path: Path,
        capsys: pytest.CaptureFixture) -> None:
    extra: dict = {"train": {"max_steps": 2, key: value}} if section == "train" else {key: value}
    recipe = write_recipe(tmp_path, "r", "tiny", method=method, **extra)
    line = run_train([str(recipe)], capsys)
    field = f"train.{key}" if section else key
    assert f"{field}: {key} is an option of method" in line and owners in line and f"not of method {method}" in line
    text = recipe.read_text().splitlines()
    assert f"r.yaml:{next(i for i, t in enumerate(text, 1) if t.strip().startswith(key + ':'))}" in line


def test_an_option_no_method_has_is_an_unknown_key(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    line = run_train([str(write_recipe(tmp_path, "r", "tiny", train={"max_step": 2}))], capsys)
    assert "train.max_step" in line and "unknown key" in line


@pytest.mark.parametrize(("train", "expect"), [
    ({"max_steps": 10**9}, "train.max_steps"),
    ({"learning_rate": float("inf")}, "train.learning_rate"),
    ({"learning_rate": float("nan")}, "train.learning_rate"),
    ({"weight_decay": float("inf")}, "train.weight_decay"),
])
def test_unbounded_or_non_finite_values_are_refused(train: dict, expect: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    line = run_train([str(write_recipe(tmp_path, "r", "tiny", train=train))], capsys)
    assert expect in line


def test_yaml_inf_learning_rate_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: sft\ndata: {suites: [basics]}\ntrain:\n  learning_rate: .inf\n")
    line = run_train([str(recipe)], capsys)
    assert "r.yaml:4: train.learning_rate" in line and "finite" in line


def test_peft_type_outside_the_methods_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    line = run_train([str(write_recipe(tmp_path, "r", "tiny", method="reward_model", peft={"type": "ia3"}))], capsys)
    assert "peft.type" in line and "method reward_model trains with peft type lora or full, not ia3" in line


def test_policy_groups_must_divide_the_batch(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = write_recipe(tmp_path, "r", "tiny", method="grpo", reward_model="rm",
                          train={"batch_size": 4, "num_generations": 3})
    line = run_train([str(recipe)], capsys)
    assert "train: batch_size x grad_accum (4) must be divisible by num_generations (3)" in line


# ---- data: read as JSON lines, checked before any model loads ----------------------------------------------

def test_read_jsonl_splits_on_newlines_only_and_names_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"prompt": "a\xe2\x80\xa8b", "n": 1}\n\n  \n{"prompt": "c"}\r\n')
    assert list(read_jsonl(path)) == [(1, {"prompt": "a\u2028b", "n": 1}), (4, {"prompt": "c"})]
    for content, message in [(b'{"a": 1}\n{"a": \n', "rows.jsonl:2: malformed JSON"),
                             (b'{"a": 1}\n[1, 2]\n', "rows.jsonl:2: expected a JSON object"),
                             (b'{"a": "\xff"}\n', "rows.jsonl:1: not valid UTF-8"),
                             (b"[" * 100_000 + b"\n", "rows.jsonl:1: malformed JSON"),
                             (b'{"a": ' + b"9" * 5000 + b"}\n", "rows.jsonl:1: malformed JSON")]:
        path.write_bytes(content)
        with pytest.raises(UserError) as err:
            list(read_jsonl(path))
        assert message in str(err.value)


@pytest.mark.parametrize(("content", "expect"), [
    (b'{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": \n', "prefs.jsonl:2: malformed JSON"),
    (b'{"prompt": "q", "chosen": "a", "rejected": "\xff"}\n', "prefs.jsonl:1: not valid UTF-8"),
    (b"", "the dataset is empty"),
])
def test_bad_training_data_fails_before_any_model_loads(content: bytes, expect: str, tiny_model: Path,
                                                        tmp_path: Path, capsys: pytest.CaptureFixture,
                                                        no_model_loads: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.train

    def no_base(spec: str) -> None:
        raise AssertionError("the base was resolved before the data was checked")

    monkeypatch.setattr(harness.train, "resolve_model", no_base)
    data = tmp_path / "prefs.jsonl"
    data.write_bytes(content)
    recipe = write_recipe(tmp_path, "r", tiny_model, method="dpo", data={"file": str(data)})
    assert expect in run_train([str(recipe)], capsys)
    assert expect in run_train([str(recipe), "--check"], capsys)


def test_held_out_fraction_that_leaves_no_training_rows(tiny_model: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "prefs.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "a", "rejected": "b"}) + "\n" for i in range(2)))
    recipe = write_recipe(tmp_path, "r", tiny_model, method="dpo", data={"file": str(data), "eval_fraction": 0.9})
    assert "data.eval_fraction: no training rows" in run_train([str(recipe)], capsys)


# ---- --check: a dry run ------------------------------------------------------------------------------------

def test_check_prints_the_plan_and_loads_no_model(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                  no_model_loads: None) -> None:
    recipe = write_recipe(tmp_path, "r", tiny_model, method="kto")
    plan = run_train([str(recipe), "--check"], capsys, code=0)
    # issue 28: the what-line, then the held-out passes and a time estimate (still no model loads)
    line, held, time_line = plan.splitlines()
    assert line.startswith(f"ok: {recipe}: kto / lora on {tiny_model}") and "steps ->" in line
    assert "rows" in line and not (tmp_path / "r").exists()
    assert held.startswith("  held-out loss: ") and time_line.startswith("  time: about ")
    assert check(recipe) == plan


def test_check_finds_target_modules_that_match_nothing(tiny_model: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture, no_model_loads: None) -> None:
    recipe = write_recipe(tmp_path, "r", tiny_model, peft={"type": "lora", "target_modules": ["q_proj", "qkv"]})
    line = run_train([str(recipe), "--check"], capsys)
    assert "target module 'qkv' matches nothing" in line and "peft.target_modules" in line


def test_check_finds_a_missing_reward_model(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                            no_model_loads: None) -> None:
    recipe = write_recipe(tmp_path, "r", tiny_model, method="rloo", reward_model=str(tmp_path / "nothing"))
    assert "reward_model: " in run_train([str(recipe), "--check"], capsys)


# ---- --force replaces only what tunegate wrote ---------------------------------------------------------------

@pytest.mark.parametrize("force", [False, True])
def test_a_folder_tunegate_did_not_write_is_never_replaced(force: bool, tiny_model: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    victim = tmp_path / "elsewhere" / "x"
    victim.mkdir(parents=True)
    (victim / "notes.txt").write_text("keep me")
    recipes = tmp_path / "a" / "b"
    recipe = write_recipe(recipes, "r", tiny_model, output="../../elsewhere/x")
    line = run_train([str(recipe), *(["--force"] if force else [])], capsys)
    assert str(recipes / "../../elsewhere/x") in line and "no provenance.json of tunegate train" in line
    assert ("even with --force" in line) == force
    assert (victim / "notes.txt").read_text() == "keep me"
    (victim / "provenance.json").write_text('{"not": "ours"}')  # a provenance.json tunegate did not write
    assert "no provenance.json of tunegate train" in run_train([str(recipe), "--force"], capsys)
    assert (victim / "notes.txt").read_text() == "keep me"


def test_force_replaces_a_folder_tunegate_wrote(tiny_model: Path, other_tiny_model: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    from harness.train import train
    from tests.unit.train_helpers import provenance

    out = train(write_recipe(tmp_path, "r", tiny_model), progress=False)
    (out / "stale.txt").write_text("from the earlier run")
    recipe = write_recipe(tmp_path, "r", other_tiny_model)
    assert "holds an adapter for another base model" in run_train([str(recipe)], capsys)
    assert "wrote" in run_train([str(recipe), "--force"], capsys, code=0)
    assert provenance(out)["base"]["model"] == str(other_tiny_model) and not (out / "stale.txt").exists()
