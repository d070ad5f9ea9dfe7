"""A training method added from outside harness/: one MethodSpec, registered through the public API.

The method here is plain causal language modelling on prompt + completion text with transformers' own
`Trainer` (no TRL), and one option of its own (`label_smoothing`). No file under harness/ knows about it,
and it trains 2 steps on the tiny model through `tunegate train`, the same entry point as every method.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, FiniteFloat

from harness.cli import main
from harness.train import MethodSpec, TrainOptions, load_recipe, register_method, unregister_method
from harness.train.common import Context, adapted_model, load_causal_lm, trainer_args
from harness.train.data import as_dataset
from tests.unit.train_helpers import provenance, write_recipe


class CausalLMOptions(TrainOptions):
    label_smoothing: FiniteFloat = Field(default=0.0, ge=0.0, lt=1.0)


def build_causal_lm_trainer(ctx: Context) -> Any:
    from peft import get_peft_model
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    model, config = adapted_model(ctx, load_causal_lm(ctx.source))
    if config is not None:  # TRL trainers take peft_config=; transformers' Trainer wants the PEFT model
        model = get_peft_model(model, config)
    tokenizer, max_length = ctx.tokenizer, ctx.hp.max_length

    def encode(row: dict[str, str]) -> dict[str, Any]:
        return tokenizer(row["prompt"] + row["completion"], truncation=True, max_length=max_length)

    rows = as_dataset(ctx.data.train).map(encode, remove_columns=["prompt", "completion"])
    args = TrainingArguments(**{**trainer_args(ctx), "eval_strategy": "no", "eval_steps": None},
                             label_smoothing_factor=ctx.hp.label_smoothing)
    return Trainer(model=model, args=args, train_dataset=rows, callbacks=ctx.callbacks,
                   data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False))


CAUSAL_LM = MethodSpec("causal_lm", build_causal_lm_trainer, data="completion", options=CausalLMOptions,
                       peft_types=("lora", "ia3"), description="plain causal LM loss on prompt + completion")


@pytest.fixture
def causal_lm() -> Iterator[MethodSpec]:
    spec = register_method(CAUSAL_LM)
    yield spec
    unregister_method(spec.name)


def test_a_method_registered_outside_harness_trains_through_tunegate_train(
        causal_lm: MethodSpec, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = write_recipe(tmp_path, "clm", tiny_model, method="causal_lm", peft={"type": "lora", "r": 4, "alpha": 8},
                          train={"max_steps": 2, "batch_size": 4, "max_length": 96, "label_smoothing": 0.1},
                          eval={"suites": ["basics"], "limit": 2})
    assert type(load_recipe(recipe).spec.train) is CausalLMOptions
    assert main(["train", str(recipe), "--check"]) == 0
    assert "causal_lm / lora" in capsys.readouterr().out
    assert main(["train", str(recipe)]) == 0, capsys.readouterr().err
    out = tmp_path / "clm"
    prov = provenance(out)
    assert prov["method"] == "causal_lm" and prov["steps"] == 2 and prov["peft_type"] == "lora"
    assert 0 < prov["trainable_params"] < prov["total_params"]
    assert any("loss" in point for point in prov["curve"])
    assert any(key.startswith("basics/") for key in prov["curve"][-1])  # suites ran through the eval engine
    assert (out / "adapter_model.safetensors").stat().st_size > 0


def test_its_option_belongs_to_it_alone(causal_lm: MethodSpec, tiny_model: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    recipe = write_recipe(tmp_path, "r", tiny_model, method="sft", train={"max_steps": 2, "label_smoothing": 0.1})
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "train.label_smoothing: label_smoothing is an option of method causal_lm, not of method sft" in err
    recipe = write_recipe(tmp_path, "r", tiny_model, method="causal_lm", peft={"type": "prompt_tuning"})
    assert main(["train", str(recipe)]) == 2
    assert "method causal_lm trains with peft type lora or ia3, not prompt_tuning" in capsys.readouterr().err


def test_unregistered_it_is_unknown_again(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = write_recipe(tmp_path, "r", tiny_model, method="causal_lm")
    assert main(["train", str(recipe)]) == 2
    assert "unknown method 'causal_lm'" in capsys.readouterr().err
