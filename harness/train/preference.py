"""Preference methods on {prompt, chosen, rejected}: the reward model, DPO and KTO (TRL trainers)."""

from __future__ import annotations

from typing import Any

from harness.api import UserError
from harness.train.common import Context, load_causal_lm, peft_config, trainer_args
from harness.train.data import as_dataset


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

    model = load_reward_base(ctx)
    args = RewardConfig(**trainer_args(ctx), max_length=ctx.hp.max_length)
    return RewardTrainer(model=model, args=args, train_dataset=as_dataset(ctx.data.train),
                         eval_dataset=as_dataset(ctx.data.held_out) if ctx.data.held_out else None,
                         processing_class=ctx.tokenizer, peft_config=peft_config(ctx, model, "SEQ_CLS"),
                         callbacks=ctx.callbacks)


def build_dpo_trainer(ctx: Context) -> Any:
    from trl import DPOConfig, DPOTrainer

    model = load_causal_lm(ctx.source)
    # With a PEFT config the reference model is the base with the adapter disabled: no second copy.
    args = DPOConfig(**trainer_args(ctx), max_length=ctx.hp.max_length, beta=ctx.hp.beta)
    return DPOTrainer(model=model, args=args, train_dataset=as_dataset(ctx.data.train),
                      eval_dataset=as_dataset(ctx.data.held_out) if ctx.data.held_out else None,
                      processing_class=ctx.tokenizer, peft_config=peft_config(ctx, model), callbacks=ctx.callbacks)


def build_kto_trainer(ctx: Context) -> Any:
    from trl import KTOConfig, KTOTrainer

    model = load_causal_lm(ctx.source)
    args = KTOConfig(**trainer_args(ctx), max_length=ctx.hp.max_length, beta=ctx.hp.beta)
    return KTOTrainer(model=model, args=args, train_dataset=as_dataset(ctx.data.train),
                      eval_dataset=as_dataset(ctx.data.held_out) if ctx.data.held_out else None,
                      processing_class=ctx.tokenizer, peft_config=peft_config(ctx, model), callbacks=ctx.callbacks)


def pairwise_accuracy(trainer: Any) -> float | None:
    """Held-out pairwise accuracy: the share of pairs whose chosen answer out-scores the rejected one."""
    if trainer.eval_dataset is None:
        return None
    metrics = trainer.evaluate()
    value = metrics.get("eval_accuracy")
    return round(float(value), 4) if value is not None else None
