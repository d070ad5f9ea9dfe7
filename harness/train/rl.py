"""Policy optimisation against a trained reward model: GRPO or RLOO (TRL), LoRA on the policy.

The reward model is the output directory of a `reward_model` recipe: a LoRA adapter plus score head on
the same base, merged here into a plain sequence-classification model for `reward_funcs=`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.train.common import Context, load_causal_lm, peft_config, trainer_args
from harness.train.data import as_dataset
from harness.train.provenance import read_provenance


def load_reward_model(ctx: Context) -> Any:
    """The trained reward model, merged, frozen and in eval mode."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    path = ctx.recipe.resolve(ctx.recipe.spec.reward_model or "")
    prov = read_provenance(path)
    if not (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        raise ctx.recipe.error(f"{path} holds no trained reward model (run its recipe first)", "reward_model")
    if prov is None or prov.get("method") != "reward_model":
        raise ctx.recipe.error(f"{path} is not the output of a reward_model recipe", "reward_model")
    if (path / "config.json").is_file():  # a fully fine-tuned reward model
        model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
    else:
        base = AutoModelForSequenceClassification.from_pretrained(ctx.source.path, num_labels=1,
                                                                  dtype=torch.float32)
        model = PeftModel.from_pretrained(base, str(path)).merge_and_unload()  # not in place: keep the result
    model.config.pad_token_id = ctx.tokenizer.pad_token_id
    return model.eval().requires_grad_(False)


def build_trainer(ctx: Context) -> Any:
    """GRPOTrainer or RLOOTrainer with the reward model as the only reward function."""
    from transformers import AutoTokenizer

    hp, method = ctx.hp, ctx.recipe.spec.method
    # Generation needs left padding; the reward model reads the last token, so it pads on the right.
    ctx.tokenizer.padding_side = "left"
    reward_tok = AutoTokenizer.from_pretrained(ctx.source.path)
    if reward_tok.pad_token_id is None:
        reward_tok.pad_token = reward_tok.eos_token
    reward_tok.padding_side = "right"
    if (hp.batch_size * hp.grad_accum) % hp.num_generations:
        raise ctx.recipe.error(f"batch_size x grad_accum ({hp.batch_size * hp.grad_accum}) must be divisible by "
                               f"num_generations ({hp.num_generations})", "train.num_generations")
    # No held-out loss here: the reward model's score in the logs is the signal.
    common = dict(**{**trainer_args(ctx), "eval_strategy": "no", "eval_steps": None}, num_generations=hp.num_generations, beta=hp.beta,
                  max_completion_length=hp.max_completion_length, temperature=hp.temperature)
    if method == "grpo":
        from trl import GRPOConfig as Config, GRPOTrainer as Trainer
    else:
        from trl import RLOOConfig as Config, RLOOTrainer as Trainer
    model = load_causal_lm(ctx.source)
    return Trainer(model=model, reward_funcs=load_reward_model(ctx), args=Config(**common),
                   train_dataset=as_dataset(ctx.data.train), processing_class=ctx.tokenizer,
                   reward_processing_classes=reward_tok, peft_config=peft_config(ctx, model),
                   callbacks=ctx.callbacks)


def reward_model_hash(ctx: Context) -> str | None:
    """Hash of the reward model's weights: part of the policy's provenance and up-to-date check."""
    from harness.models.adapters import NON_WEIGHT_FILES
    from harness.models.registry import dir_hash

    path = ctx.recipe.resolve(ctx.recipe.spec.reward_model or "")
    return dir_hash(Path(path), exclude=NON_WEIGHT_FILES) if Path(path).is_dir() else None
