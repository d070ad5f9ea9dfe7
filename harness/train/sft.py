"""Supervised fine-tuning (full, LoRA, IA3, prompt/prefix tuning, bottleneck) with TRL's SFTTrainer.

The loss covers the completion only, and no compute goes to pad tokens. Two ways, chosen by the attention
kernel the model runs (see `choose_batching`):

- packed rows: examples packed best-fit decreasing into rows of at most `max_length` tokens, one row per
  forward, `position_ids` restarting at each example. transformers (`find_packed_sequence_indices`) turns
  the restarts into a block-diagonal causal mask on SDPA/eager, so examples never attend to each other and
  attention is quadratic only within a row of at most `max_length` tokens. The default without FlashAttention
  (always on CPU).
- padding-free batches: each batch of `batch_size` examples flattened into one row. With a varlen kernel
  (FlashAttention) attention stays per example; on SDPA/eager the mask is block-diagonal too, but it is a
  dense mask over the whole flattened row (8 rows of ~360 tokens: ~2,900 tokens, quadratic), which cost more
  than padding saved on the legal split (0.87x TRL's padding, benchmarks/bench_sft_packing.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.train.common import Context, adapted_model, fit_length, load_causal_lm, on_cpu, trainer_args
from harness.train.data import as_dataset
from harness.train.methods import MethodSpec, TrainOptions, register_method

PROMPT_LEARNING = ("prompt_tuning", "prefix_tuning")
# Attention kernels that run a flattened row as separate sequences (cu_seq_lens), never as one dense mask.
VARLEN_ATTENTION = ("flash_attention_2", "flash_attention_3", "flash_attention_4")


class SFTOptions(TrainOptions):
    """SFT's `train:` options: how batches are formed (see `choose_batching`)."""

    padding_free: bool = True  # no pad tokens; each example attends only to itself (block-diagonal attention)
    # Pack examples best-fit decreasing into rows of at most max_length tokens, one row per forward (and about
    # batch_size x grad_accum examples per optimizer step). None: pack unless the attention kernel is
    # FlashAttention, where padding-free batches (each batch flattened into one row) cost no more.
    packing: bool | None = None


@dataclass(frozen=True)
class Batching:
    """How SFT batches are formed: `padding_free` flattens each batch into one row; `packing` packs examples
    into rows of at most max_length (TRL always runs packed rows padding-free). With packing, one packed row
    goes per forward (`batch_size` 1) and `grad_accum` rows make an optimizer step."""

    padding_free: bool
    packing: bool
    batch_size: int
    grad_accum: int


def varlen_attention(model: Any) -> bool:
    """Whether the model's attention runs packed sequences without a dense mask (FlashAttention, GPU only)."""
    return getattr(model.config, "_attn_implementation", None) in VARLEN_ATTENTION


def choose_batching(ctx: Context, model: Any, train_rows: list[dict[str, str]], padding_free: bool | None = None,
                    packing: bool | None = None) -> Batching:
    """Packed rows unless the attention kernel is varlen (then padding-free batches) or the method is prompt
    learning (then padded batches). `packing: true/false` in the recipe, or the arguments (the benchmark),
    win over the choice."""
    hp = ctx.hp
    if padding_free is None and packing is None and ctx.recipe.spec.peft.type in PROMPT_LEARNING:
        # PEFT drops position_ids for prompt learning (virtual tokens shift every position), so neither a
        # flattened nor a packed row would keep examples apart: those methods train on padded batches. On a CPU,
        # where a forward costs what its tokens (pads included) cost, each batch goes one example per forward
        # instead: no pads, and the same examples per optimizer step (the loss is normalised over the
        # accumulated tokens). The demo's prompt tuning: 11.4 s a step against 23.2 padded, 2 cores.
        if on_cpu() and hp.batch_size > 1:
            return Batching(False, False, 1, hp.batch_size * hp.grad_accum)
        return Batching(False, False, hp.batch_size, hp.grad_accum)
    padding_free = hp.padding_free if padding_free is None else padding_free
    if packing is None:
        # Decided by device, through the kernel: FlashAttention (CUDA) runs a flattened batch per example, so
        # padding-free batches cost nothing extra there; SDPA/eager (CPU, and GPUs without flash-attn) would
        # build one dense mask over the flattened batch, so they get rows of at most max_length instead.
        packing = hp.packing if hp.packing is not None else (padding_free and not varlen_attention(model))
    if not packing:
        return Batching(padding_free, False, hp.batch_size, hp.grad_accum)
    # One packed row per forward; enough rows per optimizer step to hold about batch_size x grad_accum
    # examples, so the examples per step (and the learning rates the recipes were tuned with) stay comparable.
    per_row = len(train_rows) / max(1, packed_row_count(train_rows, ctx.tokenizer, hp.max_length))
    return Batching(True, True, 1, max(1, round(hp.batch_size * hp.grad_accum / max(per_row, 1.0))))


def packed_row_count(rows: list[dict[str, str]], tokenizer: Any, max_length: int) -> int:
    """How many rows TRL's best-fit-decreasing packing makes of these examples (prompt + completion + EOS)."""
    if not rows:
        return 0
    from datasets import Dataset
    from trl.data_utils import pack_dataset

    lengths = [min(max_length, len(tokenizer(r["prompt"]).input_ids) +
                   len(tokenizer(r["completion"], add_special_tokens=False).input_ids) + 1) for r in rows]
    return len(pack_dataset(Dataset.from_dict({"input_ids": [[0] * n for n in lengths]}), max_length, "bfd"))


def sft_config(ctx: Context, batching: Batching) -> Any:
    """SFTConfig for the recipe, batched as `choose_batching` decided."""
    from trl import SFTConfig

    hp = ctx.hp
    padding_free, packing = batching.padding_free, batching.packing
    args = trainer_args(ctx)
    args.update(per_device_train_batch_size=batching.batch_size, gradient_accumulation_steps=batching.grad_accum)
    # Held-out rows are never packed: they run in padded batches of eval.batch_size (harness.train.held_out).
    return SFTConfig(**args, completion_only_loss=True, padding_free=padding_free, packing=packing,
                     packing_strategy="bfd", eval_packing=False,
                     # rows are already cut to max_length (fit_length); padding-free requires None without packing
                     max_length=hp.max_length if (packing or not padding_free) else None,
                     include_num_input_tokens_seen="non_padding", dataset_num_proc=None)


def build_trainer(ctx: Context, padding_free: bool | None = None, packing: bool | None = None,
                  batching: Batching | None = None) -> Any:
    """An SFTTrainer over the recipe's data, with the PEFT config (or our bottleneck modules) applied.

    `padding_free`/`packing` given (the benchmark), or a whole `batching` (a test), override the batching the
    recipe and device choose.
    """
    from harness.train.held_out import HeldOutSFTTrainer  # trl: start-up time

    model, config = adapted_model(ctx, load_causal_lm(ctx.source))
    train = fit_length(ctx.data.train, ctx.tokenizer, ctx.hp.max_length)
    held = fit_length(ctx.data.held_out, ctx.tokenizer, ctx.hp.max_length)
    batching = batching or choose_batching(ctx, model, train, padding_free, packing)
    return HeldOutSFTTrainer(model=model, args=sft_config(ctx, batching),
                             train_dataset=as_dataset(train), eval_dataset=as_dataset(held) if held else None,
                             processing_class=ctx.tokenizer, peft_config=config, callbacks=ctx.callbacks)


register_method(MethodSpec("sft", build_trainer, data="completion", options=SFTOptions, held_out_loss=True,
                           named_by_peft=True, description="supervised fine-tuning on prompt/completion rows"))
