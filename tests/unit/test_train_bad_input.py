"""Bad training input: one clear line naming file and field, exit status 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from tests.unit.train_helpers import write_recipe


def run_train(args: list[str], capsys: pytest.CaptureFixture) -> str:
    code = main(["train", *args])
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("tunegate: error")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_unknown_method(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = write_recipe(tmp_path, "r", tiny_model, method="ppo")
    line = run_train([str(recipe)], capsys)
    assert "unknown method 'ppo'" in line and "r.yaml:2" in line and "method" in line and "dpo" in line
    assert not (tmp_path / "r").exists()


def test_unknown_key_names_field_and_line(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = write_recipe(tmp_path, "r", tiny_model, peft={"type": "lora", "rank": 4})
    line = run_train([str(recipe)], capsys)
    assert "peft.rank" in line and "unknown key" in line and "r.yaml:" in line


def test_target_modules_matching_nothing(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = write_recipe(tmp_path, "r", tiny_model, peft={"type": "lora", "target_modules": ["q_proj", "qkv"]})
    line = run_train([str(recipe)], capsys)
    assert "target module 'qkv' matches nothing" in line and "peft.target_modules" in line and "q_proj" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("missing", ["chosen", "rejected"])
def test_preference_data_missing_a_side(missing: str, tiny_model: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "prefs.jsonl"
    rows = [{"prompt": "Q1", "chosen": "good", "rejected": "bad"}, {"prompt": "Q2", "chosen": "a", "rejected": "b"}]
    del rows[1][missing]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = write_recipe(tmp_path, "r", tiny_model, method="dpo", data={"file": str(data)})
    line = run_train([str(recipe)], capsys)
    assert "prefs.jsonl:2" in line and f"missing '{missing}'" in line


def test_output_holding_an_adapter_for_another_base(tiny_model: Path, other_tiny_model: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    from harness.train import train

    out = train(write_recipe(tmp_path, "r", tiny_model), progress=False)
    before = (out / "provenance.json").read_text()
    recipe = write_recipe(tmp_path, "r", other_tiny_model)
    line = run_train([str(recipe)], capsys)
    assert "holds an adapter for another base model" in line and "field" not in line and "output" in line
    assert (out / "provenance.json").read_text() == before  # untouched


def test_merge_refused_for_prompt_tuning(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = write_recipe(tmp_path, "r", tiny_model, peft={"type": "prompt_tuning"})
    line = run_train([str(recipe), "--merge"], capsys)
    assert "prompt_tuning cannot be merged" in line and "kept as an adapter" in line


def test_policy_optimisation_needs_a_reward_model(tiny_model: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    line = run_train([str(write_recipe(tmp_path, "r", tiny_model, method="grpo"))], capsys)
    assert "needs reward_model" in line
