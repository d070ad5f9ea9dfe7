"""Supervised fine-tuning (full, LoRA, IA3, prompt/prefix tuning, bottleneck) with TRL's SFTTrainer.

The loss covers the completion only, and batches are padding-free (each batch flattened into one row
with per-example positions, so attention stays within an example) or packed, so no compute goes to pads.
"""

from __future__ import annotations

from typing import Any

from harness.models import bottleneck
from harness.train.common import Context, fit_length, load_causal_lm, peft_config, trainer_args
from harness.train.data import as_dataset

PROMPT_LEARNING = ("prompt_tuning", "prefix_tuning")


def sft_config(ctx: Context, padding_free: bool, packing: bool) -> Any:
    """SFTConfig for the recipe. `padding_free`/`packing` are arguments so the benchmark can compare."""
    from trl import SFTConfig

    hp = ctx.hp
    return SFTConfig(**trainer_args(ctx), completion_only_loss=True, padding_free=padding_free, packing=packing,
                     # rows are already cut to max_length (fit_length); padding-free requires None without packing
                     max_length=hp.max_length if (packing or not padding_free) else None,
                     include_num_input_tokens_seen="non_padding", dataset_num_proc=None)


def uses_padding_free(ctx: Context) -> bool:
    # PEFT drops position_ids for prompt learning (virtual tokens shift every position), so a flattened
    # batch would attend across examples: those methods train on padded batches.
    return ctx.hp.padding_free and ctx.recipe.spec.peft.type not in PROMPT_LEARNING


def build_trainer(ctx: Context, padding_free: bool | None = None, packing: bool | None = None) -> Any:
    """An SFTTrainer over the recipe's data, with the PEFT config (or our bottleneck modules) applied."""
    from trl import SFTTrainer

    model = load_causal_lm(ctx.source)
    kind = ctx.recipe.spec.peft.type
    if kind == "bottleneck":
        spec = ctx.recipe.spec.peft
        bottleneck.add_adapters(model, spec.bottleneck_size, spec.non_linearity,
                                tuple(spec.target_modules or bottleneck.DEFAULT_TARGETS))
    config = peft_config(ctx, model)
    padding_free = uses_padding_free(ctx) if padding_free is None else padding_free
    packing = ctx.hp.packing if packing is None else packing
    train = fit_length(ctx.data.train, ctx.tokenizer, ctx.hp.max_length)
    held = fit_length(ctx.data.held_out, ctx.tokenizer, ctx.hp.max_length)
    return SFTTrainer(model=model, args=sft_config(ctx, padding_free, packing), train_dataset=as_dataset(train),
                      eval_dataset=as_dataset(held) if held else None, processing_class=ctx.tokenizer,
                      peft_config=config, callbacks=ctx.callbacks)
