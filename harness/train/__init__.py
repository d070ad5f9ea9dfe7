"""Training hooks: `train(recipe)` turns a recipe into `adapters/<name>/` with provenance and a model card.

Each method is a row of the table in `harness/train/methods.py` (its builder, data shape, options, PEFT
types, ...), registered by the file that builds its trainer: one TRL trainer per method (SFT, reward model,
DPO, KTO, GRPO, RLOO), `peft_config=` for the PEFT methods, our bottleneck module for Houlsby adapters.
A recipe may start from a trained adapter (`init_adapter`). Everything that can be checked without a model
(recipe, data, init_adapter, reward model, output folder, target modules) is checked first; that is also
`tunegate train --check`. Launch under `torchrun`/`accelerate launch` to train on several processes; only
the main process writes the output.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from harness.core.api import UserError
from harness.core.quiet import active_log, quiet_trainer
from harness.core.untrusted import terminal_line
from harness.data.suite import load_suite
from harness.models.adapters import NON_WEIGHT_FILES, AdapterInfo
from harness.models.hf import HFBackend
from harness.models.registry import ModelSource, dir_hash, resolve_model

# The built-in methods register themselves on import: a new method is its file plus its name on this line.
from harness.train import preference, rl, sft  # noqa: F401
from harness.train.common import (
    Context,
    check_init_adapter,
    check_targets_without_weights,
    load_tokenizer,
    trainable_counts,
)
from harness.train.data import check_data, count_tokens, load_rows
from harness.train.methods import MethodSpec, TrainOptions, get_method, methods, register_method, unregister_method
from harness.train.modelcard import update_model_card, write_model_card
from harness.train.provenance import (
    CURVE,
    PROVENANCE,
    adapter_bytes,
    curve_from_logs,
    library_versions,
    peak_memory_mb,
    read_provenance,
    write_json,
)
from harness.train.recipe import UNMERGEABLE, LoadedRecipe, load_recipe

__all__ = ["train", "check", "is_up_to_date", "update_model_card", "load_recipe", "MethodSpec", "TrainOptions",
           "register_method", "unregister_method", "get_method", "methods"]


def train(recipe_path: str | Path, merge: bool = False, force: bool = False, progress: bool = True,
          overrides: dict[str, Any] | None = None) -> Path:
    """Train the recipe into its output directory and return that directory.

    An unchanged recipe (same recipe, data, base and starting adapter) reuses the existing output unless
    `force`. `force` replaces only a folder that tunegate train wrote (one holding its provenance.json).
    """
    _STAGE.start()
    _stage(progress, "checking the recipe, its data and the base (no model loads yet)")
    recipe = load_recipe(recipe_path, overrides)
    pre = preflight(recipe, merge, force)
    _stage(progress, "loading the tokenizer and tokenising the training rows")
    plan = _plan(recipe, pre)
    out = recipe.output_dir
    if not force and _matches(out, plan, merge):
        _say(progress, f"{out} is up to date with {recipe.path} (same recipe, data and base): reusing it")
        return out
    return _run(recipe, plan, merge, progress)


def check(recipe_path: str | Path, merge: bool = False, force: bool = False,
          overrides: dict[str, Any] | None = None) -> str:
    """`tunegate train --check`: validate recipe, data, init_adapter, reward model and output folder without
    loading a model; returns the plan: one line of what, then the held-out passes and a time estimate."""
    recipe = load_recipe(recipe_path, overrides)
    pre = preflight(recipe, merge, force)
    spec, (n_train, n_held) = recipe.spec, pre.rows
    start = f" from {spec.init_adapter}" if spec.init_adapter else ""
    reward = f" against {recipe.reward_model}" if recipe.reward_model else ""
    replaces = " (replaces it)" if recipe.output_dir.exists() else ""
    lines = [f"ok: {recipe.path}: {spec.method} / {spec.peft.type} on {pre.base['model']}{start}{reward}, "
             f"{n_train} training + {n_held} held-out rows, {spec.train.max_steps} steps -> {recipe.output_dir}"
             f"{replaces}"]
    if overrides:
        lines.append("  --set: " + ", ".join(f"{k}={v}" for k, v in overrides.items()))
    return "\n".join(lines + _plan_lines(recipe, pre))


def _plan_lines(recipe: LoadedRecipe, pre: Preflight) -> list[str]:
    """The held-out passes (on or off, rows, batching) and the time the run should take on the reference
    machine (tokenizer and rows only: no model loads)."""
    from harness.train.estimate import LOAD_SECONDS, fmt_duration  # start-up time: only --check needs it

    spec, method = recipe.spec, recipe.method
    if not method.held_out_loss:
        held = "  held-out loss: not computed by this method"
    elif not spec.eval.held_out_loss:
        held = "  held-out loss: off (eval.held_out_loss: false)"
    elif not pre.rows[1]:
        held = "  held-out loss: no held-out rows (data.eval_fraction is 0)"
    else:
        held = (f"  held-out loss: {pre.rows[1]} rows at step 0 and at the end, in padded batches of "
                f"{spec.eval.batch_size} sorted by length (eval.batch_size; eval.held_out_loss: false skips it)")
    lines = [held]
    if method.data == "prompt":
        return lines + ["  time: not estimated (sampling completions dominates; see the progress bar's ETA)"]
    tokenizer = load_tokenizer(pre.source)
    est, measured = run_estimate(recipe, tokenizer, load_rows(recipe, tokenizer), pre.base["model_hash"])
    where = (f"measured by earlier runs on this machine ({measured.source})" if measured.source else
             "DESIGN.md's figures for a 135M model on 2 CPU cores: a larger base or slower machine takes longer, "
             "a GPU far less")
    lines.append(f"  time: about {fmt_duration(est.total_seconds)} (training {fmt_duration(est.train_seconds)}: "
                 f"{est.train_tokens} tokens at {est.train_rate:.0f} tokens/s; held-out loss "
                 f"{fmt_duration(est.held_out_seconds)}; loading the model up to {fmt_duration(LOAD_SECONDS)}), "
                 f"from {where}")
    return lines


def is_up_to_date(recipe_path: str | Path, merge: bool = False) -> bool:
    """True when the recipe's output exists and was trained from the same recipe, data, base and start."""
    recipe = load_recipe(recipe_path)
    return _matches(recipe.output_dir, _plan(recipe, preflight(recipe, merge, force=True)), merge)


@dataclass(frozen=True)
class Preflight:
    """What was checked before any model loads: the resolved base, its identity, row counts, the start adapter."""

    source: ModelSource
    base: dict[str, Any]
    rows: tuple[int, int]
    init: AdapterInfo | None


def preflight(recipe: LoadedRecipe, merge: bool, force: bool) -> Preflight:
    """Every check that needs no model weights, data first (so bad data fails before the base is even resolved)."""
    check_merge(recipe, merge)
    rows = check_data(recipe)
    for ref in recipe.spec.eval.suites:
        load_suite(ref)
    try:
        source = resolve_model(recipe.spec.base)
    except UserError as exc:
        raise recipe.error(str(exc).removeprefix("-m/--model: "), "base") from None
    fp = HFBackend(source).fingerprint()  # file hashes; no weights load
    base = {"model": fp["model"], "model_hash": fp["model_hash"], "tokenizer_hash": fp["tokenizer_hash"]}
    check_output_dir(recipe, recipe.output_dir, base, force)
    method = recipe.method
    if method.check is not None:
        method.check(recipe, base)
    init = check_init_adapter(recipe, source, base)
    check_targets_without_weights(recipe, source)
    return Preflight(source, base, rows, init)


def check_merge(recipe: LoadedRecipe, merge: bool) -> None:
    """--merge is offered for LoRA and IA3; prompt/prefix tuning and bottlenecks have nothing to merge into."""
    kind = recipe.spec.peft.type
    if merge and not recipe.method.can_merge:
        raise UserError(f"--merge: method {recipe.spec.method} writes nothing that merges into the base: drop --merge",
                        source=str(recipe.path), field="method")
    if merge and kind in UNMERGEABLE:
        raise UserError(f"--merge: {kind} cannot be merged into the base ({UNMERGEABLE[kind]}); "
                        "it is kept as an adapter: drop --merge", source=str(recipe.path), field="peft.type")


def is_tunegate_output(prov: Any) -> TypeGuard[dict[str, Any]]:
    """Whether a provenance.json is one that tunegate train wrote."""
    return isinstance(prov, dict) and "recipe_hash" in prov and isinstance(prov.get("base"), dict)


def check_output_dir(recipe: LoadedRecipe, out: Path, base: dict[str, Any], force: bool) -> None:
    """Replace only what tunegate train wrote: a folder holding its provenance.json (or an empty folder).

    Anything else is refused, even with --force; without --force, so is an adapter for another base.
    """
    if out.is_symlink():
        raise UserError(f"output {out} is a symbolic link: name the folder itself", source=str(recipe.path),
                        field="output")
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"output {out} exists and is not a directory", source=str(recipe.path), field="output")
    prov = read_provenance(out)
    if not is_tunegate_output(prov):
        if not any(out.iterdir()):
            return  # an empty folder: nothing to lose
        raise UserError(f"output directory {out} is not empty and has no provenance.json of tunegate train: it "
                        f"replaces only folders it wrote{', even with --force' if force else ''}; move it away or "
                        "choose another output", source=str(recipe.path), field="output")
    if force:
        return
    recorded = prov["base"].get("model_hash")
    if recorded and recorded != base["model_hash"]:
        raise UserError(f"output directory {out} holds an adapter for another base model "
                        f"({prov['base'].get('model')}, hash {recorded[:12]}), not {base['model']} "
                        f"(hash {base['model_hash'][:12]}): choose another output or pass --force",
                        source=str(recipe.path), field="output")


# ---- identity ------------------------------------------------------------------------------------------

def _plan(recipe: LoadedRecipe, pre: Preflight) -> dict[str, Any]:
    """Everything that decides the output: base fingerprint, recipe hash, data, reward model and start adapter."""
    tokenizer = load_tokenizer(pre.source)
    data = load_rows(recipe, tokenizer)
    plan = {"source": pre.source, "tokenizer": tokenizer, "data": data, "recipe_hash": recipe.hash(),
            "base": pre.base, "data_hash": data.data_hash, "reward_model_hash": None,
            "init_adapter": ({"path": str(recipe.spec.init_adapter), "hash": pre.init.hash, "method": pre.init.method}
                             if pre.init else None)}
    if recipe.method.needs_reward_model:
        path = recipe.resolve(recipe.reward_model or "")
        plan["reward_model_hash"] = dir_hash(path, exclude=NON_WEIGHT_FILES) if path.is_dir() else None
    return plan


def _matches(out: Path, plan: dict[str, Any], merge: bool) -> bool:
    prov = read_provenance(out)
    if not is_tunegate_output(prov):
        return False
    same = (prov.get("recipe_hash") == plan["recipe_hash"] and prov.get("data_hash") == plan["data_hash"]
            and prov["base"].get("model_hash") == plan["base"]["model_hash"]
            and prov.get("reward_model_hash") == plan["reward_model_hash"]
            and (prov.get("init_adapter") or {}).get("hash") == (plan["init_adapter"] or {}).get("hash"))
    return same and (not merge or (out / "merged" / "config.json").is_file())


# ---- the run -------------------------------------------------------------------------------------------

def _run(recipe: LoadedRecipe, plan: dict[str, Any], merge: bool, progress: bool) -> Path:
    from transformers import set_seed  # start-up time

    spec = recipe.spec
    set_seed(spec.seed)  # before the model is built: PEFT's initial weights come from this seed
    work = Path(tempfile.mkdtemp(prefix="tunegate-trainer-"))
    ctx = Context(recipe, plan["source"], plan["tokenizer"], plan["data"], work, progress=progress)
    callback = _suite_callback(ctx)
    if callback is not None:
        ctx.callbacks.append(callback)
    try:
        start = f" from {spec.init_adapter}" if spec.init_adapter else ""
        _say(progress, f"training {recipe.name}: {spec.method} / {spec.peft.type} on {plan['source'].spec}{start}, "
                       f"{len(plan['data'].train)} rows, {spec.train.max_steps} steps")
        _STAGE.expect = _expected_seconds(recipe, plan)
        _stage(progress, "loading the model")
        trainer = recipe.method.builder(ctx)
        if active_log() is not None:  # inside `library_output`: one bar of ours, the trainer's logs to the file
            quiet_trainer(trainer, f"training {recipe.name}", progress and trainer.args.process_index == 0)
        stats = _fit(ctx, trainer, callback)
        if trainer.args.process_index == 0:
            _stage(progress, f"saving {recipe.output_dir}")
            _write_output(ctx, trainer, plan, stats, merge, callback)
        _barrier(trainer)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return recipe.output_dir


def _suite_callback(ctx: Context) -> Any:
    spec = ctx.recipe.spec
    if not spec.eval.suites or ctx.recipe.method.task_type != "CAUSAL_LM":  # a reward model is no language model
        return None
    from harness.train.callbacks import SuiteEvalCallback  # transformers and the eval engine: start-up time

    suites = [load_suite(ref) for ref in spec.eval.suites]
    return SuiteEvalCallback(ctx.source, ctx.tokenizer, suites, spec.eval.every_steps, spec.eval.limit,
                             spec.base)


def _fit(ctx: Context, trainer: Any, callback: Any) -> dict[str, Any]:
    """Evaluate at step 0 (held-out loss, suites), train, evaluate at the end; returns timing figures."""
    method = ctx.recipe.method
    has_eval = trainer.eval_dataset is not None and method.held_out_loss and ctx.recipe.spec.eval.held_out_loss
    # train() starts a fresh TrainerState, so the step-0 held-out loss is kept here for the curve.
    held_start = time.perf_counter()
    if has_eval:
        _stage(ctx.progress, f"held-out loss at step 0: {len(trainer.eval_dataset)} rows, "
                             f"{trainer.args.per_device_eval_batch_size} per forward (eval.batch_size; "
                             "eval.held_out_loss: false skips it)")
    initial = [{**trainer.evaluate(), "step": 0}] if has_eval else []
    held_seconds = time.perf_counter() - held_start
    if callback is not None and ctx.recipe.spec.eval.every_steps and trainer.args.process_index == 0:
        callback._log(trainer.state, callback.evaluate(trainer.model, 0))
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    stats: dict[str, Any] = {"train_seconds": round(seconds, 2), "final_loss": result.training_loss,
                             "initial_logs": initial, "extra": {}}
    if has_eval and not any(e.get("step") == trainer.state.global_step and "eval_loss" in e
                            for e in trainer.state.log_history):
        held_start = time.perf_counter()
        _stage(ctx.progress, f"held-out loss at the end (step 0 took {held_seconds:.0f} s)")
        trainer.evaluate()
        held_seconds += time.perf_counter() - held_start
    stats["held_out_seconds"] = round(held_seconds, 2) if has_eval else None  # `train --check` estimates from it
    if method.stats is not None:
        stats["extra"] = dict(method.stats(trainer))
    stats["tokens"] = _tokens_trained(ctx, trainer)
    return stats


def _tokens_trained(ctx: Any, trainer: Any) -> int:
    """Non-pad tokens trained on: counted by the trainer for SFT, estimated from the data otherwise."""
    seen = int(getattr(trainer.state, "num_input_tokens_seen", 0) or 0)
    if seen:
        return seen
    rows = ctx.data.train
    keys = ("prompt", "chosen", "rejected", "completion")
    per_row = count_tokens(rows[:64], ctx.tokenizer, keys) / max(1, min(len(rows), 64))
    rows_seen = trainer.state.global_step * ctx.hp.batch_size * ctx.hp.grad_accum * trainer.args.world_size
    return int(per_row * rows_seen)


def _write_output(ctx: Any, trainer: Any, plan: dict[str, Any], stats: dict[str, Any], merge: bool,
                  callback: Any) -> None:
    """Save weights, provenance, curve and card into a temporary directory, then swap it in."""
    out = ctx.recipe.output_dir
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        trainable, total = _save_weights(ctx, trainer, tmp)
        curve = curve_from_logs(stats["initial_logs"] + trainer.state.log_history, callback.scores if callback else {})
        spec = ctx.recipe.spec
        prov = {"method": _method_name(ctx.recipe), "trainer_method": spec.method, "peft_type": spec.peft.type,
                "recipe": str(ctx.recipe.path), "base": plan["base"], "recipe_hash": plan["recipe_hash"],
                "data_hash": plan["data_hash"], "reward_model_hash": plan["reward_model_hash"],
                "init_adapter": plan["init_adapter"],
                "library_versions": library_versions(), "seed": spec.seed, "world_size": trainer.args.world_size,
                "train_rows": len(ctx.data.train), "held_out_rows": len(ctx.data.held_out),
                "steps": trainer.state.global_step, "train_seconds": stats["train_seconds"],
                "held_out_seconds": stats.get("held_out_seconds"), "held_out_batch_size": spec.eval.batch_size,
                "tokens_trained": stats["tokens"],
                "tokens_per_second": round(stats["tokens"] / stats["train_seconds"], 1) if stats["train_seconds"] else None,
                "trainable_params": trainable, "total_params": total, "adapter_bytes": 0,
                "peak_memory_mb": peak_memory_mb(), "final_train_loss": stats["final_loss"], "curve": curve}
        prov.update(stats["extra"])  # the method's own figures (a reward model's held-out pairwise accuracy)
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


def _method_name(recipe: LoadedRecipe) -> str:
    """The name reports show: the PEFT type for SFT (`lora`, `sft-full`), else the trainer's method."""
    spec = recipe.spec
    if recipe.method.named_by_peft:
        return f"{spec.method}-full" if spec.peft.type == "full" else spec.peft.type
    return spec.method


def _save_weights(ctx: Context, trainer: Any, tmp: Path) -> tuple[int, int]:
    from harness.models import bottleneck  # torch: start-up time

    model = trainer.model
    peft_config = getattr(model, "peft_config", None)
    if isinstance(peft_config, dict) and "ref" in peft_config and len(peft_config) > 1:
        # From an init_adapter, TRL trains "default" against a frozen copy named "ref": only the first is output.
        model.delete_adapter("ref")
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
        print(terminal_line(f"tunegate: {text}"), file=sys.stderr, flush=True)


class _Stages:
    """The clock of one training run: the stage lines say how long it has run and, once the plan is known,
    about how long is left (the `--check` estimate less the time spent)."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.expect: float | None = None

    def start(self) -> None:
        self.t0, self.expect = time.monotonic(), None

    def line(self, text: str) -> str:
        spent = time.monotonic() - self.t0
        clock = f"[{int(spent) // 60:d}:{int(spent) % 60:02d}"
        if self.expect is not None:
            left = max(0.0, self.expect - spent)
            clock += f", about {int(left) // 60:d}:{int(left) % 60:02d} left" if left else ", about done"
        return f"{clock}] {text}"


_STAGE = _Stages()


def _stage(progress: bool, text: str) -> None:
    """A stage line on stderr from the first second (checking, tokenising, loading, held-out loss, saving)."""
    _say(progress, _STAGE.line(text))


def run_estimate(recipe: LoadedRecipe, tokenizer: Any, data: Any, model_hash: str) -> tuple[Any, Any]:
    """The run's time estimate and the throughput it rests on (harness.train.estimate); what `--check` prints
    and what the stage lines count down from."""
    from harness.train.estimate import estimate, measured_rates, row_tokens  # start-up time

    spec, method = recipe.spec, recipe.method
    passes = 2 if (method.held_out_loss and spec.eval.held_out_loss and data.held_out) else 0
    measured = measured_rates(recipe.output_dir, model_hash, spec.peft.type == "full", spec.eval.batch_size)
    est = estimate(steps=spec.train.max_steps, batch_size=spec.train.batch_size, grad_accum=spec.train.grad_accum,
                   full=spec.peft.type == "full",
                   tokens_per_row=row_tokens(data.train, tokenizer, spec.train.max_length),
                   held_out_rows=len(data.held_out), held_out_passes=passes,
                   sequences_per_row=2 if method.data == "preference" else 1, measured=measured)
    return est, measured


def _expected_seconds(recipe: LoadedRecipe, plan: dict[str, Any]) -> float | None:
    """When the whole run should end, in seconds from its start (None for sampling methods)."""
    if recipe.method.data == "prompt":
        return None
    est, _ = run_estimate(recipe, plan["tokenizer"], plan["data"], plan["base"]["model_hash"])
    return time.monotonic() - _STAGE.t0 + float(est.total_seconds)

