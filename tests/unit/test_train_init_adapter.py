"""`init_adapter:` a recipe starts from a trained adapter, so DPO (or GRPO) can follow SFT on the same base."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from harness.cli import main
from harness.models.adapters import inspect_adapter
from tests.unit.train_helpers import provenance, write_recipe

pytestmark = pytest.mark.slow  # real training or several processes: the full tier only

SMALL = {"max_steps": 2, "batch_size": 4, "max_length": 96}


@pytest.fixture(scope="module")
def sft_lora(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SFT-LoRA, 2 steps at a high learning rate, so its weights are far from LoRA's zero start."""
    from harness.train import train

    folder = tmp_path_factory.mktemp("sft")
    return train(write_recipe(folder, "sft-lora", tiny_model, train={**SMALL, "learning_rate": 5e-2}), progress=False)


def run_train(args: list[str], capsys: pytest.CaptureFixture, code: int = 2) -> str:
    status = main(["train", *args])
    out, err = capsys.readouterr()
    assert status == code and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("tunegate: error")]
    assert code == 0 or len(lines) == 1, err
    return out.strip() if code == 0 else lines[0]


def test_dpo_goes_on_from_the_sft_adapter(sft_lora: Path, tiny_model: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    recipe = write_recipe(tmp_path, "dpo", tiny_model, "dpo", peft={"type": "lora"}, init_adapter=str(sft_lora),
                          train={**SMALL, "learning_rate": 1e-6})
    plan = run_train([str(recipe), "--check"], capsys, code=0)
    assert f"dpo / lora on {tiny_model} from {sft_lora}" in plan
    run_train([str(recipe)], capsys, code=0)
    out = tmp_path / "dpo"
    prov = provenance(out)
    assert prov["method"] == "dpo" and prov["init_adapter"]["hash"] == inspect_adapter(sft_lora).hash
    # TRL's reference is a frozen copy of the SFT adapter, so at step 0 policy and reference agree: loss log 2.
    assert prov["curve"][0]["step"] == 0 and prov["curve"][0]["eval_loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert not (out / "ref").exists()  # only the trained adapter is written, not TRL's reference copy
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 4  # the SFT adapter's own settings
    before, after = load_file(str(sft_lora / "adapter_model.safetensors")), load_file(str(out / "adapter_model.safetensors"))
    assert set(before) == set(after)
    lora_b = [k for k in before if "lora_B" in k]
    assert lora_b and max(before[k].abs().max().item() for k in lora_b) > 1e-3  # SFT moved B away from zero
    assert max((after[k] - before[k]).abs().max().item() for k in before) < 1e-4  # DPO started there
    # The start is part of the output's identity: a retrained start makes the output stale.
    from harness.train import is_up_to_date

    assert is_up_to_date(recipe)


def test_a_start_trained_on_another_base_is_refused(sft_lora: Path, tiny_model: Path, other_tiny_model: Path,
                                                    tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = write_recipe(tmp_path, "dpo", other_tiny_model, "dpo", peft={"type": "lora"},
                          init_adapter=str(sft_lora))
    for args in ([str(recipe)], [str(recipe), "--check"]):
        line = run_train(args, capsys)
        assert "init_adapter" in line and f"trained on base {tiny_model}" in line
        assert f"this recipe's base is {other_tiny_model}" in line
    assert not (tmp_path / "dpo").exists()


def test_an_adapter_without_provenance_is_checked_by_its_base_name(lora_adapter: Path, tiny_model: Path,
                                                                   other_tiny_model: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    good = write_recipe(tmp_path, "ok", tiny_model, "kto", peft={"type": "lora"}, init_adapter=str(lora_adapter))
    assert run_train([str(good), "--check"], capsys, code=0).startswith("ok:")
    bad = write_recipe(tmp_path, "bad", other_tiny_model, "kto", peft={"type": "lora"}, init_adapter=str(lora_adapter))
    line = run_train([str(bad), "--check"], capsys)
    assert f"was made for base {tiny_model}" in line and str(other_tiny_model) in line


@pytest.mark.parametrize(("peft", "expect"), [
    ({"type": "ia3"}, "is a lora adapter, but the recipe's peft.type is ia3"),
    ({"type": "lora", "r": 16}, "peft.r: with init_adapter the adapter keeps its own settings"),
    ({"type": "full"}, "peft type full has none"),
])
def test_a_start_that_does_not_fit_the_recipe(peft: dict, expect: str, sft_lora: Path, tiny_model: Path,
                                              tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = write_recipe(tmp_path, "r", tiny_model, "dpo", peft=peft, init_adapter=str(sft_lora))
    assert expect in run_train([str(recipe), "--check"], capsys)


def test_a_start_that_is_not_an_adapter(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint = shutil.copytree(tiny_model, tmp_path / "full")
    recipe = write_recipe(tmp_path, "r", tiny_model, "dpo", peft={"type": "lora"}, init_adapter=str(checkpoint))
    assert "has no adapter_config.json (a full checkpoint: name it as base instead)" in run_train(
        [str(recipe), "--check"], capsys)
    recipe = write_recipe(tmp_path, "r", tiny_model, "dpo", peft={"type": "lora"}, init_adapter="never-trained")
    assert "init_adapter" in run_train([str(recipe)], capsys)


def test_sft_goes_on_from_a_bottleneck_adapter(tiny_model: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    """Our own adapter type (not PEFT's) starts a run too: its weights load trainable, the base's stay frozen."""
    from harness.train import train

    peft = {"type": "bottleneck", "bottleneck_size": 4}
    first = train(write_recipe(tmp_path, "bn", tiny_model, peft=peft, train={**SMALL, "learning_rate": 5e-2}),
                  progress=False)
    recipe = write_recipe(tmp_path, "bn-more", tiny_model, peft={"type": "bottleneck"}, init_adapter=str(first),
                          train={**SMALL, "learning_rate": 1e-6})
    run_train([str(recipe)], capsys, code=0)
    prov = provenance(tmp_path / "bn-more")
    assert prov["method"] == "bottleneck" and prov["init_adapter"]["hash"] == inspect_adapter(first).hash
    assert 0 < prov["trainable_params"] < prov["total_params"]
    before = load_file(str(first / "adapter_model.safetensors"))
    after = load_file(str(tmp_path / "bn-more" / "adapter_model.safetensors"))
    assert set(before) == set(after) and max((after[k] - before[k]).abs().max().item() for k in before) < 1e-4
    assert any((after[k] != before[k]).any() for k in before)  # it trained
