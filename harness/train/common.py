"""What every method shares: the run context, trainer arguments for CPU or GPU, PEFT configs, model loading,
and the start from an existing adapter (`init_adapter`).

torch, transformers, peft and our bottleneck module (torch) are imported inside the functions that use them:
start-up time (a recipe is validated, and `tunegate train --check` runs, without importing torch).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.api import UserError
from harness.core.quiet import active_log
from harness.models.adapters import AdapterInfo, inspect_adapter
from harness.models.registry import ModelSource
from harness.train.data import Split
from harness.train.recipe import LoadedRecipe

DEFAULT_TARGETS = {"lora": ["q_proj", "v_proj"], "ia3": ["k_proj", "v_proj", "down_proj"]}
DEFAULT_FEEDFORWARD = ["down_proj"]
# peft_type in adapter_config.json -> the recipe's peft.type
PEFT_TYPE_NAMES = {"LORA": "lora", "IA3": "ia3", "PROMPT_TUNING": "prompt_tuning", "PREFIX_TUNING": "prefix_tuning",
                   "TUNEGATE_BOTTLENECK": "bottleneck"}  # harness.models.bottleneck.PEFT_TYPE


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
        """The recipe's `train:` options (the method's options class)."""
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
        per_device_eval_batch_size=spec.eval.batch_size, gradient_accumulation_steps=hp.grad_accum,
        learning_rate=hp.learning_rate, weight_decay=hp.weight_decay, warmup_steps=hp.warmup_steps,
        logging_steps=hp.logging_steps, save_strategy="no", report_to=[], seed=spec.seed, data_seed=spec.seed,
        eval_strategy="steps" if has_eval else "no", eval_steps=every if has_eval else None,
        gradient_checkpointing=False, dataloader_num_workers=0,
        disable_tqdm=not ctx.progress or active_log() is not None)  # quiet: `quiet_trainer` draws one bar
    try:
        args.update(precision_args(spec.device, spec.dtype, cpu=on_cpu(), bf16_ok=bf16_supported()))
    except ValueError as exc:
        raise ctx.recipe.error(str(exc), "dtype" if "dtype" in str(exc) else "device") from None
    if args.get("use_cpu") and int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun / accelerate: gloo on CPU
        args["ddp_backend"] = "gloo"
    return args


def precision_args(device: str, dtype: str, *, cpu: bool, bf16_ok: bool) -> dict[str, Any]:
    """The recipe's `device` and `dtype` as TrainingArguments options (use_cpu, bf16, fp16): the weights stay
    float32 and a GPU trains under autocast in the chosen half precision."""
    if device == "cuda" and cpu:
        raise ValueError("device: cuda, but torch sees no CUDA GPU on this machine")
    if cpu or device == "cpu":
        if dtype in ("bfloat16", "float16"):
            raise ValueError(f"dtype {dtype} trains only on a GPU (mixed precision); on the CPU use float32 or auto")
        return {"use_cpu": True, "bf16": False, "fp16": False}
    if dtype == "auto":
        dtype = "bfloat16" if bf16_ok else "float16"
    return {"bf16": dtype == "bfloat16", "fp16": dtype == "float16"}


def bf16_supported() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def check_targets(recipe: LoadedRecipe, model_spec: str, model: Any, targets: list[str], field_name: str) -> None:
    """Every declared target module must match a module of the model (PEFT's rule: exact or name suffix)."""
    names = [name for name, _ in model.named_modules()]
    leaves = sorted({n.split(".")[-1] for n, m in model.named_modules() if not list(m.children()) and n})
    for target in targets:
        if not any(n == target or n.endswith("." + target) for n in names):
            raise recipe.error(f"target module {target!r} matches nothing in {model_spec} "
                               f"(its leaf modules: {', '.join(leaves)})", field_name)


def peft_targets(recipe: LoadedRecipe) -> tuple[list[str], list[str]]:
    """(target_modules, feedforward_modules) of a LoRA/IA3 recipe, defaults filled in."""
    spec = recipe.spec.peft
    targets = spec.target_modules or DEFAULT_TARGETS[spec.type]
    feedforward = (spec.feedforward_modules or [t for t in targets if t in DEFAULT_FEEDFORWARD]) if spec.type == "ia3" else []
    if not set(feedforward) <= set(targets):
        raise recipe.error("feedforward_modules must be a subset of target_modules", "peft.feedforward_modules")
    return targets, feedforward


def check_targets_without_weights(recipe: LoadedRecipe, source: ModelSource) -> None:
    """Check LoRA/IA3 target modules on the base's module tree built on the meta device: no weights load."""
    if recipe.spec.init_adapter or recipe.spec.peft.type not in DEFAULT_TARGETS:
        return
    targets, _ = peft_targets(recipe)
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    try:
        config = AutoConfig.from_pretrained(source.path)
        auto = AutoModelForSequenceClassification if recipe.method.task_type == "SEQ_CLS" else AutoModelForCausalLM
        with init_empty_weights():
            skeleton = auto.from_config(config)
    except (OSError, ValueError, KeyError):
        return  # loading the base reports it, with the real error
    check_targets(recipe, source.spec, skeleton, targets, "peft.target_modules")


def peft_config(ctx: Context, model: Any, task_type: str = "CAUSAL_LM") -> Any:
    """The PEFT config of the recipe (None for full fine-tuning and for our bottleneck adapters)."""
    import peft

    spec = ctx.recipe.spec.peft
    if spec.type in ("full", "bottleneck"):
        return None
    if spec.type in ("lora", "ia3"):
        targets, feedforward = peft_targets(ctx.recipe)
        check_targets(ctx.recipe, ctx.source.spec, model, targets, "peft.target_modules")
        if spec.type == "lora":
            # The reward model's score head is new and random: it must train and be saved with the adapter.
            extra: dict[str, Any] = {"modules_to_save": ["score"]} if task_type == "SEQ_CLS" else {}
            return peft.LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                                   target_modules=targets, task_type=task_type, **extra)
        return peft.IA3Config(target_modules=targets, feedforward_modules=feedforward, task_type=task_type)
    if spec.type == "prompt_tuning":
        init: dict[str, Any] = dict(prompt_tuning_init="TEXT", prompt_tuning_init_text=spec.init_text,
                                    tokenizer_name_or_path=ctx.source.path) if spec.init_text else {}
        return peft.PromptTuningConfig(num_virtual_tokens=spec.num_virtual_tokens, task_type=task_type, **init)
    return peft.PrefixTuningConfig(num_virtual_tokens=spec.num_virtual_tokens, task_type=task_type)


def adapted_model(ctx: Context, model: Any) -> tuple[Any, Any]:
    """(model, peft_config) to hand a trainer: the recipe's init_adapter loaded trainable (no new config; TRL
    keeps a frozen copy of it as the reference of DPO, KTO, GRPO and RLOO), or our bottleneck modules added,
    or the bare base and a fresh PEFT config (None for full fine-tuning)."""
    spec = ctx.recipe.spec
    if spec.init_adapter:
        return load_init_adapter(ctx, model), None
    if spec.peft.type == "bottleneck":
        from harness.models import bottleneck  # torch: start-up time

        peft = spec.peft
        bottleneck.add_adapters(model, peft.bottleneck_size, peft.non_linearity,
                                tuple(peft.target_modules or bottleneck.DEFAULT_TARGETS))
        return model, None
    return model, peft_config(ctx, model, ctx.recipe.method.task_type)


def check_init_adapter(recipe: LoadedRecipe, source: ModelSource, base: dict[str, Any]) -> AdapterInfo | None:
    """The recipe's init_adapter, checked without loading it: an adapter of the recipe's PEFT type and task,
    trained on the recipe's base (its provenance's base hash, else adapter_config's base name)."""
    if not recipe.spec.init_adapter:
        return None
    path = recipe.resolve(recipe.spec.init_adapter)
    if not path.is_dir():
        raise recipe.error(f"init_adapter {path} does not exist (train its recipe first)", "init_adapter")
    if not (path / "adapter_config.json").is_file():
        what = "a full checkpoint: name it as base instead" if (path / "config.json").is_file() else "not an adapter"
        raise recipe.error(f"init_adapter {path} has no adapter_config.json ({what})", "init_adapter")
    try:
        info = inspect_adapter(path)
    except UserError as exc:
        raise recipe.error(f"init_adapter: {exc}", "init_adapter") from None
    peft_type = str(info.config.get("peft_type"))
    kind = PEFT_TYPE_NAMES.get(peft_type)
    if kind is None:
        raise recipe.error(f"init_adapter {path} is a {peft_type} adapter, which tunegate train cannot go on "
                           f"training (known: {', '.join(PEFT_TYPE_NAMES.values())})", "init_adapter")
    if kind != recipe.spec.peft.type:
        raise recipe.error(f"init_adapter {path} is a {kind} adapter, but the recipe's peft.type is "
                           f"{recipe.spec.peft.type}: set peft.type: {kind}", "peft.type")
    task = info.config.get("task_type") or "CAUSAL_LM"
    if task != recipe.method.task_type:
        raise recipe.error(f"init_adapter {path} is a {task} adapter; method {recipe.method.name} trains a "
                           f"{recipe.method.task_type} model", "init_adapter")
    recorded = ((info.provenance or {}).get("base") or {})
    if recorded.get("model_hash"):
        if recorded["model_hash"] != base["model_hash"]:
            raise recipe.error(f"init_adapter {path} was trained on base {recorded.get('model', '?')} (hash "
                               f"{str(recorded['model_hash'])[:12]}), but this recipe's base is {base['model']} "
                               f"(hash {str(base['model_hash'])[:12]})", "init_adapter")
    else:
        named = info.config.get("base_model_name_or_path")
        if named and not _same_model(str(named), source):
            raise recipe.error(f"init_adapter {path} was made for base {named}, but this recipe's base is "
                               f"{source.spec} ({source.path})", "init_adapter")
    return info


def _same_model(named: str, source: ModelSource) -> bool:
    if named in (source.spec, source.path):
        return True
    path = Path(named).expanduser()
    return path.exists() and not source.hub and path.resolve() == Path(source.path).resolve()


def load_init_adapter(ctx: Context, model: Any) -> Any:
    """The base with the recipe's init_adapter attached, its weights trainable (the base's stay frozen)."""
    path = ctx.recipe.resolve(ctx.recipe.spec.init_adapter or "")
    from harness.models import bottleneck  # torch: start-up time

    try:
        if ctx.recipe.spec.peft.type == "bottleneck":
            adapted = bottleneck.attach(model, path)
            for name, param in adapted.named_parameters():
                param.requires_grad_(f".{bottleneck.ADAPTER_ATTR}." in name)
            return adapted
        from peft import PeftModel

        return PeftModel.from_pretrained(model, str(path), is_trainable=True)
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ctx.recipe.error(f"init_adapter {path} does not fit base {ctx.source.spec}: {first}",
                               "init_adapter") from None


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
