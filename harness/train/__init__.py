"""Training hooks: `train(recipe)` turns a recipe into `adapters/<name>/` with provenance and a model card.

One TRL trainer per method (SFT, reward model, DPO, KTO, GRPO, RLOO), `peft_config=` for the PEFT
methods, our bottleneck module for Houlsby adapters. Launch under `torchrun`/`accelerate launch` to train
on several processes; only the main process writes the output.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from harness.api import UserError
from harness.train.modelcard import update_model_card, write_model_card
from harness.train.recipe import UNMERGEABLE, LoadedRecipe, load_recipe

__all__ = ["train", "is_up_to_date", "update_model_card", "load_recipe"]


def train(recipe_path: str | Path, merge: bool = False, force: bool = False, progress: bool = True) -> Path:
    """Train the recipe into its output directory and return that directory.

    An unchanged recipe (same recipe, data and base hashes) reuses the existing output unless `force`.
    """
    recipe = load_recipe(recipe_path)
    check_merge(recipe, merge)
    plan = _plan(recipe)
    out = recipe.output_dir
    check_output_dir(recipe, out, plan["base"], force)
    if not force and _matches(out, plan, merge):
        _say(progress, f"{out} is up to date with {recipe.path} (same recipe, data and base): reusing it")
        return out
    return _run(recipe, plan, merge, progress)


def is_up_to_date(recipe_path: str | Path, merge: bool = False) -> bool:
    """True when the recipe's output exists and was trained from the same recipe, data and base."""
    recipe = load_recipe(recipe_path)
    return _matches(recipe.output_dir, _plan(recipe), merge)


def check_merge(recipe: LoadedRecipe, merge: bool) -> None:
    """--merge is offered for LoRA and IA3; prompt/prefix tuning and bottlenecks have nothing to merge into."""
    kind = recipe.spec.peft.type
    if merge and kind in UNMERGEABLE:
        raise UserError(f"--merge: {kind} cannot be merged into the base ({UNMERGEABLE[kind]}); "
                        "it is kept as an adapter: drop --merge", source=str(recipe.path), field="peft.type")


def check_output_dir(recipe: LoadedRecipe, out: Path, base: dict[str, Any], force: bool) -> None:
    """Refuse to overwrite an adapter trained for another base (or a directory tunegate did not write)."""
    from harness.train.provenance import read_provenance

    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"output {out} exists and is not a directory", source=str(recipe.path), field="output")
    if force:
        return
    prov = read_provenance(out)
    recorded = ((prov or {}).get("base") or {}).get("model_hash")
    if recorded and recorded != base["model_hash"]:
        raise UserError(f"output directory {out} holds an adapter for another base model "
                        f"({prov['base'].get('model')}, hash {recorded[:12]}), not {base['model']} "
                        f"(hash {base['model_hash'][:12]}): choose another output or pass --force",
                        source=str(recipe.path), field="output")
    if prov is None and any(out.iterdir()):
        raise UserError(f"output directory {out} is not empty and has no provenance.json (not written by "
                        "tunegate train): choose another output or pass --force", source=str(recipe.path),
                        field="output")


# ---- identity ------------------------------------------------------------------------------------------

def _plan(recipe: LoadedRecipe) -> dict[str, Any]:
    """Everything that decides the output: base fingerprint, recipe hash, data (and reward model) hash."""
    from harness.models.hf import HFBackend
    from harness.models.registry import resolve_model
    from harness.train.common import load_tokenizer
    from harness.train.data import load_rows

    source = resolve_model(recipe.spec.base)
    fp = HFBackend(source).fingerprint()
    tokenizer = load_tokenizer(source)
    data = load_rows(recipe, tokenizer)
    plan = {"source": source, "tokenizer": tokenizer, "data": data, "recipe_hash": recipe.hash(),
            "base": {"model": fp["model"], "model_hash": fp["model_hash"], "tokenizer_hash": fp["tokenizer_hash"]},
            "data_hash": data.data_hash, "reward_model_hash": None}
    if recipe.spec.method in ("grpo", "rloo"):
        from harness.models.adapters import NON_WEIGHT_FILES
        from harness.models.registry import dir_hash

        path = recipe.resolve(recipe.spec.reward_model or "")
        plan["reward_model_hash"] = dir_hash(path, exclude=NON_WEIGHT_FILES) if path.is_dir() else None
    return plan


def _matches(out: Path, plan: dict[str, Any], merge: bool) -> bool:
    from harness.train.provenance import read_provenance

    prov = read_provenance(out)
    if not prov:
        return False
    same = (prov.get("recipe_hash") == plan["recipe_hash"] and prov.get("data_hash") == plan["data_hash"]
            and (prov.get("base") or {}).get("model_hash") == plan["base"]["model_hash"]
            and prov.get("reward_model_hash") == plan["reward_model_hash"])
    return same and (not merge or (out / "merged" / "config.json").is_file())


# ---- the run -------------------------------------------------------------------------------------------

def _builders() -> dict[str, Callable[[Any], Any]]:
    from harness.train import preference, rl, sft

    return {"sft": sft.build_trainer, "reward_model": preference.build_reward_trainer,
            "dpo": preference.build_dpo_trainer, "kto": preference.build_kto_trainer,
            "grpo": rl.build_trainer, "rloo": rl.build_trainer}


def _run(recipe: LoadedRecipe, plan: dict[str, Any], merge: bool, progress: bool) -> Path:
    from transformers import set_seed

    from harness.train.common import Context

    spec = recipe.spec
    set_seed(spec.seed)  # before the model is built: PEFT's initial weights come from this seed
    work = Path(tempfile.mkdtemp(prefix="tunegate-trainer-"))
    ctx = Context(recipe, plan["source"], plan["tokenizer"], plan["data"], work, progress=progress)
    callback = _suite_callback(ctx)
    if callback is not None:
        ctx.callbacks.append(callback)
    try:
        _say(progress, f"training {recipe.name}: {spec.method} / {spec.peft.type} on {plan['source'].spec}, "
                       f"{len(plan['data'].train)} rows, {spec.train.max_steps} steps")
        trainer = _builders()[spec.method](ctx)
        stats = _fit(ctx, trainer, callback)
        if trainer.args.process_index == 0:
            _write_output(ctx, trainer, plan, stats, merge, callback)
        _barrier(trainer)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return recipe.output_dir


def _suite_callback(ctx: Any) -> Any:
    spec = ctx.recipe.spec
    if not spec.eval.suites or spec.method == "reward_model":  # a reward model is not a language model
        return None
    from harness.suite import load_suite
    from harness.train.callbacks import SuiteEvalCallback

    suites = [load_suite(ref) for ref in spec.eval.suites]
    return SuiteEvalCallback(ctx.source, ctx.tokenizer, suites, spec.eval.every_steps, spec.eval.limit,
                             spec.base)


def _fit(ctx: Any, trainer: Any, callback: Any) -> dict[str, Any]:
    """Evaluate at step 0 (held-out loss, suites), train, evaluate at the end; returns timing figures."""
    has_eval = trainer.eval_dataset is not None and ctx.recipe.spec.method in ("sft", "dpo", "kto")
    # train() starts a fresh TrainerState, so the step-0 held-out loss is kept here for the curve.
    initial = [{**trainer.evaluate(), "step": 0}] if has_eval else []
    if callback is not None and ctx.recipe.spec.eval.every_steps and trainer.args.process_index == 0:
        callback._log(trainer.state, callback.evaluate(trainer.model, 0))
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    stats: dict[str, Any] = {"train_seconds": round(seconds, 2), "final_loss": result.training_loss,
                             "initial_logs": initial}
    if has_eval and not any(e.get("step") == trainer.state.global_step and "eval_loss" in e
                            for e in trainer.state.log_history):
        trainer.evaluate()
    if ctx.recipe.spec.method == "reward_model":
        from harness.train.preference import pairwise_accuracy

        stats["held_out_pairwise_accuracy"] = pairwise_accuracy(trainer)
    stats["tokens"] = _tokens_trained(ctx, trainer)
    return stats


def _tokens_trained(ctx: Any, trainer: Any) -> int:
    """Non-pad tokens trained on: counted by the trainer for SFT, estimated from the data otherwise."""
    seen = int(getattr(trainer.state, "num_input_tokens_seen", 0) or 0)
    if seen:
        return seen
    from harness.train.data import count_tokens

    rows = ctx.data.train
    keys = ("prompt", "chosen", "rejected", "completion")
    per_row = count_tokens(rows[:64], ctx.tokenizer, keys) / max(1, min(len(rows), 64))
    rows_seen = trainer.state.global_step * ctx.hp.batch_size * ctx.hp.grad_accum * trainer.args.world_size
    return int(per_row * rows_seen)


def _write_output(ctx: Any, trainer: Any, plan: dict[str, Any], stats: dict[str, Any], merge: bool,
                  callback: Any) -> None:
    """Save weights, provenance, curve and card into a temporary directory, then swap it in."""
    from harness.train.provenance import (CURVE, PROVENANCE, adapter_bytes, curve_from_logs, library_versions,
                                          peak_memory_mb, write_json)

    out = ctx.recipe.output_dir
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        trainable, total = _save_weights(ctx, trainer, tmp)
        curve = curve_from_logs(stats["initial_logs"] + trainer.state.log_history, callback.scores if callback else {})
        spec = ctx.recipe.spec
        prov = {"method": _method_name(spec), "trainer_method": spec.method, "peft_type": spec.peft.type,
                "recipe": str(ctx.recipe.path), "base": plan["base"], "recipe_hash": plan["recipe_hash"],
                "data_hash": plan["data_hash"], "reward_model_hash": plan["reward_model_hash"],
                "library_versions": library_versions(), "seed": spec.seed, "world_size": trainer.args.world_size,
                "train_rows": len(ctx.data.train), "held_out_rows": len(ctx.data.held_out),
                "steps": trainer.state.global_step, "train_seconds": stats["train_seconds"],
                "tokens_trained": stats["tokens"],
                "tokens_per_second": round(stats["tokens"] / stats["train_seconds"], 1) if stats["train_seconds"] else None,
                "trainable_params": trainable, "total_params": total, "adapter_bytes": 0,
                "peak_memory_mb": peak_memory_mb(), "final_train_loss": stats["final_loss"], "curve": curve}
        if "held_out_pairwise_accuracy" in stats:
            prov["held_out_pairwise_accuracy"] = stats["held_out_pairwise_accuracy"]
        if spec.peft.type in UNMERGEABLE:
            prov["merge_note"] = f"Not mergeable: {UNMERGEABLE[spec.peft.type]}."
        if merge:
            _save_merged(ctx, trainer, tmp / "merged")
        prov["adapter_bytes"] = adapter_bytes(tmp)
        write_json(tmp / PROVENANCE, prov)
        write_json(tmp / CURVE, curve)
        results = callback.last_results if callback else None
        write_model_card(tmp, results, name=out.name)
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _method_name(spec: Any) -> str:
    """The name reports show: the PEFT type for SFT (`lora`, `sft-full`), else the trainer's method."""
    if spec.method == "sft":
        return "sft-full" if spec.peft.type == "full" else spec.peft.type
    return spec.method


def _save_weights(ctx: Any, trainer: Any, tmp: Path) -> tuple[int, int]:
    from harness.models import bottleneck
    from harness.train.common import trainable_counts

    model = trainer.model
    trainable, total = trainable_counts(model)
    kind = ctx.recipe.spec.peft.type
    if kind == "bottleneck":
        bottleneck.save(model, tmp, ctx.source.spec)
    elif kind == "full":
        model.save_pretrained(tmp)
        ctx.tokenizer.save_pretrained(tmp)
    else:
        model.save_pretrained(tmp)
    return trainable, total


def _save_merged(ctx: Any, trainer: Any, target: Path) -> None:
    """LoRA/IA3 merged into the base: a standalone checkpoint (merge_and_unload returns it; not in place)."""
    merged = trainer.model.merge_and_unload()
    merged.save_pretrained(target)
    ctx.tokenizer.save_pretrained(target)


def _swap_in(tmp: Path, out: Path) -> None:
    """Replace `out` by `tmp` so readers never see a half-written adapter directory."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _barrier(trainer: Any) -> None:
    """Ranks wait for the main process's write, so none exits (and tears down) while it still saves."""
    if trainer.args.world_size > 1:
        trainer.accelerator.wait_for_everyone()


def _say(progress: bool, text: str) -> None:
    if progress:
        print(f"tunegate: {text}", file=sys.stderr, flush=True)

