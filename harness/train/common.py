"""What every method shares: the run context, trainer arguments for CPU or GPU, PEFT configs, model loading."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.api import UserError
from harness.models.registry import ModelSource
from harness.train.data import Split
from harness.train.recipe import LoadedRecipe

DEFAULT_TARGETS = {"lora": ["q_proj", "v_proj"], "ia3": ["k_proj", "v_proj", "down_proj"]}
DEFAULT_FEEDFORWARD = ["down_proj"]


@dataclass
class Context:
    """One training run: the recipe, the resolved base, its tokenizer, the data and where output goes."""

    recipe: LoadedRecipe
    source: ModelSource
    tokenizer: Any
    data: Split
    work_dir: Path  # the trainer's scratch directory (never the adapter directory)
    callbacks: list[Any] = field(default_factory=list)
    progress: bool = True

    @property
    def hp(self) -> Any:
        return self.recipe.spec.train


def on_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def trainer_args(ctx: Context) -> dict[str, Any]:
    """TrainingArguments shared by every TRL config; CPU-safe (TRL defaults to bf16 and checkpointing)."""
    spec, hp = ctx.recipe.spec, ctx.hp
    every = spec.eval.every_steps
    has_eval = bool(ctx.data.held_out) and every is not None
    args: dict[str, Any] = dict(
        output_dir=str(ctx.work_dir), max_steps=hp.max_steps, per_device_train_batch_size=hp.batch_size,
        per_device_eval_batch_size=hp.batch_size, gradient_accumulation_steps=hp.grad_accum,
        learning_rate=hp.learning_rate, weight_decay=hp.weight_decay, warmup_steps=hp.warmup_steps,
        logging_steps=hp.logging_steps, save_strategy="no", report_to=[], seed=spec.seed, data_seed=spec.seed,
        eval_strategy="steps" if has_eval else "no", eval_steps=every if has_eval else None,
        gradient_checkpointing=False, dataloader_num_workers=0, disable_tqdm=not ctx.progress)
    if on_cpu():
        args.update(bf16=False, fp16=False, use_cpu=True)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by torchrun / accelerate: gloo on CPU
            args["ddp_backend"] = "gloo"
    return args


def check_targets(ctx: Context, model: Any, targets: list[str], field_name: str) -> None:
    """Every declared target module must match a module of the model (PEFT's rule: exact or name suffix)."""
    names = [name for name, _ in model.named_modules()]
    leaves = sorted({n.split(".")[-1] for n, m in model.named_modules() if not list(m.children()) and n})
    for target in targets:
        if not any(n == target or n.endswith("." + target) for n in names):
            raise ctx.recipe.error(f"target module {target!r} matches nothing in {ctx.source.spec} "
                                   f"(its leaf modules: {', '.join(leaves)})", field_name)


def peft_config(ctx: Context, model: Any, task_type: str = "CAUSAL_LM") -> Any:
    """The PEFT config of the recipe (None for full fine-tuning and for our bottleneck adapters)."""
    import peft

    spec = ctx.recipe.spec.peft
    if spec.type in ("full", "bottleneck"):
        return None
    if spec.type in ("lora", "ia3"):
        targets = spec.target_modules or DEFAULT_TARGETS[spec.type]
        check_targets(ctx, model, targets, "peft.target_modules")
        if spec.type == "lora":
            # The reward model's score head is new and random: it must train and be saved with the adapter.
            extra = {"modules_to_save": ["score"]} if task_type == "SEQ_CLS" else {}
            return peft.LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                                   target_modules=targets, task_type=task_type, **extra)
        feedforward = spec.feedforward_modules or [t for t in targets if t in DEFAULT_FEEDFORWARD]
        if not set(feedforward) <= set(targets):
            raise ctx.recipe.error("feedforward_modules must be a subset of target_modules", "peft.feedforward_modules")
        return peft.IA3Config(target_modules=targets, feedforward_modules=feedforward, task_type=task_type)
    if spec.type == "prompt_tuning":
        init = dict(prompt_tuning_init="TEXT", prompt_tuning_init_text=spec.init_text,
                    tokenizer_name_or_path=ctx.source.path) if spec.init_text else {}
        return peft.PromptTuningConfig(num_virtual_tokens=spec.num_virtual_tokens, task_type=task_type, **init)
    return peft.PrefixTuningConfig(num_virtual_tokens=spec.num_virtual_tokens, task_type=task_type)


def load_tokenizer(source: ModelSource, padding_side: str = "right") -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(source.path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = padding_side
    return tok


def load_causal_lm(source: ModelSource) -> Any:
    """The base as a float32 causal LM (fp32: CPU training; GPUs get mixed precision from the trainer)."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(source.path, dtype=torch.float32, attn_implementation="sdpa")
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load base model {source.spec}: {str(exc).splitlines()[0]}", field="base") from None


def trainable_counts(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters of the model as trained (PEFT wrappers included)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def fit_length(rows: list[dict[str, str]], tokenizer: Any, max_length: int) -> list[dict[str, str]]:
    """Cut over-long rows to `max_length` tokens, dropping the *start* of the prompt.

    TRL truncates the end, which would cut away the completion, the only part with a loss. Cutting here
    also lets padding-free batches run without TRL's max_length (which padding-free does not enforce).
    """
    budget = max_length - 1  # room for the EOS token the trainer appends
    out = []
    for row in rows:
        prompt = tokenizer(row["prompt"], add_special_tokens=False).input_ids
        completion = tokenizer(row["completion"], add_special_tokens=False).input_ids
        if len(prompt) + len(completion) <= budget:
            out.append(row)
            continue
        completion = completion[:max(budget // 2, budget - len(prompt))]
        prompt = prompt[len(prompt) - (budget - len(completion)):] if budget > len(completion) else []
        out.append({"prompt": tokenizer.decode(prompt), "completion": tokenizer.decode(completion)})
    return out
