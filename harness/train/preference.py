"""Preference methods on {prompt, chosen, rejected}: the reward model, DPO and KTO (TRL trainers).

DPO and KTO take the same arguments and differ in their TRL config and trainer classes (and KTO's unpaired
data, which `MethodSpec.data` says), so one builder serves both. trl is imported inside the builders:
start-up time.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import Field, FiniteFloat

from harness.core.api import UserError
from harness.train.common import Context, adapted_model, load_causal_lm, trainer_args
from harness.train.data import as_dataset
from harness.train.methods import PEFT_TYPES, MethodSpec, TrainOptions, register_method


class PreferenceOptions(TrainOptions):
    """DPO's and KTO's `train:` options."""

    beta: FiniteFloat = Field(default=0.1, gt=0)  # how far the policy may move from the reference


def load_reward_base(ctx: Context) -> Any:
    """The base with a one-output sequence-classification head (the reward score)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    try:
        model = AutoModelForSequenceClassification.from_pretrained(ctx.source.path, num_labels=1,
                                                                   dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load base model {ctx.source.spec} with a reward head: "
                        f"{str(exc).splitlines()[0]}", field="base") from None
    model.config.pad_token_id = ctx.tokenizer.pad_token_id  # the head reads the last non-pad token
    return model


def build_reward_trainer(ctx: Context) -> Any:
    from trl import RewardConfig, RewardTrainer

    model, config = adapted_model(ctx, load_reward_base(ctx))
    args = RewardConfig(**trainer_args(ctx), max_length=ctx.hp.max_length)
    return RewardTrainer(model=model, args=args, train_dataset=as_dataset(ctx.data.train),
                         eval_dataset=as_dataset(ctx.data.held_out) if ctx.data.held_out else None,
                         processing_class=ctx.tokenizer, peft_config=config, callbacks=ctx.callbacks)


def build_preference_trainer(ctx: Context, config_class: str, trainer_class: str) -> Any:
    """A TRL preference trainer (`DPOConfig`/`DPOTrainer`, `KTOConfig`/`KTOTrainer`) on the recipe's rows.

    With a fresh PEFT config the reference model is the base with the adapter disabled (no second copy);
    from an init_adapter, TRL keeps a frozen copy of that adapter as the reference.
    """
    import trl

    model, config = adapted_model(ctx, load_causal_lm(ctx.source))
    args = getattr(trl, config_class)(**trainer_args(ctx), max_length=ctx.hp.max_length, beta=ctx.hp.beta)
    return getattr(trl, trainer_class)(model=model, args=args, train_dataset=as_dataset(ctx.data.train),
                                       eval_dataset=as_dataset(ctx.data.held_out) if ctx.data.held_out else None,
                                       processing_class=ctx.tokenizer, peft_config=config, callbacks=ctx.callbacks)


def pairwise_accuracy(trainer: Any) -> float | None:
    """Held-out pairwise accuracy: the share of pairs whose chosen answer out-scores the rejected one."""
    if trainer.eval_dataset is None:
        return None
    metrics = trainer.evaluate()
    value = metrics.get("eval_accuracy")
    return round(float(value), 4) if value is not None else None


def reward_stats(trainer: Any) -> dict[str, Any]:
    return {"held_out_pairwise_accuracy": pairwise_accuracy(trainer)}


# Bottleneck adapters are offered for SFT only; a reward model's score head trains with LoRA or fully.
NOT_BOTTLENECK = tuple(t for t in PEFT_TYPES if t != "bottleneck")

register_method(MethodSpec("reward_model", build_reward_trainer, data="preference", peft_types=("lora", "full"),
                           task_type="SEQ_CLS", stats=reward_stats,
                           description="a reward model: sequence-classification head trained on preference pairs"))
register_method(MethodSpec("dpo", partial(build_preference_trainer, config_class="DPOConfig", trainer_class="DPOTrainer"),
                           data="preference", options=PreferenceOptions, peft_types=NOT_BOTTLENECK, held_out_loss=True,
                           description="direct preference optimisation on preference pairs"))
register_method(MethodSpec("kto", partial(build_preference_trainer, config_class="KTOConfig", trainer_class="KTOTrainer"),
                           data="unpaired", options=PreferenceOptions, peft_types=NOT_BOTTLENECK, held_out_loss=True,
                           description="KTO on unpaired desirable/undesirable completions"))
