"""SFT-LoRA throughput: our SFT batching vs TRL SFTTrainer's default padding, same examples and settings.

    .venv/bin/python benchmarks/bench_sft_packing.py [--examples 64] [--batch-size 8] [--max-length 512]
        [--suites legal medical] [--model smollm2-135m] [--modes padded packed padding-free]

Every mode trains the same recipe (LoRA r=8 on q,v; completion-only loss; same seed) on the same examples
(the first `--examples` rows of the split's train rows, cut to max_length as training cuts them), each
example exactly once (one epoch), and differs only in how examples become forwards:

- padded: TRL's default, right-padded batches of `batch_size` rows, one optimizer step per batch;
- packed: ours on CPU (what `tunegate train` chooses there): rows packed best-fit decreasing into at most
  max_length tokens, one packed row per forward, position_ids restarting per example (block-diagonal
  attention), about `batch_size` examples per optimizer step through gradient accumulation;
- padding-free: each batch of `batch_size` examples flattened into one row (ours before; it pays with
  FlashAttention only).

The first optimizer step is a warm-up and is not timed. tokens/s counts real (non-pad) tokens through the
model per second after it; "pad %" is the share of computed positions that were padding (all steps). Counts
come from a hook on the model's forward, so they are exactly what was trained. Prints every figure and the
ratios against TRL's default padding.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import tempfile
import time
from pathlib import Path

import yaml

LABELS = {"padded": "TRL padding", "packed": "ours: packed", "padding-free": "padding-free"}


def recipe_for(folder: Path, suite: str, args: argparse.Namespace) -> Path:
    recipe = {"base": args.model, "method": "sft",
              "peft": {"type": "lora", "r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]},
              "data": {"suites": [suite], "eval_fraction": 0.0, "limit": args.examples},
              "train": {"max_steps": 1, "batch_size": args.batch_size, "max_length": args.max_length,
                        "logging_steps": 1000}, "seed": 1234}
    path = folder / f"bench-{suite}.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=64, help="examples trained on, once each, per mode")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--suites", nargs="+", default=["legal", "medical"])
    parser.add_argument("--modes", nargs="+", choices=list(LABELS), default=["padded", "packed"])
    args = parser.parse_args()
    print(f"SFT-LoRA r=8 q,v | {args.examples} examples once each, ~{args.batch_size} per optimizer step | "
          f"max_length {args.max_length} | model {args.model} | first step untimed (warm-up)")
    print(f"{'split':<9} {'mode':<14} {'steps':>5} {'fwd/step':>8} {'real tok':>9} {'run tok':>9} {'pad %':>6} "
          f"{'timed tok':>9} {'s':>7} {'tok/s':>7}")
    summary = []
    with tempfile.TemporaryDirectory() as folder:
        for suite in args.suites:
            recipe = recipe_for(Path(folder), suite, args)
            figures = {}
            for mode in args.modes:
                f = figures[mode] = run_one(recipe, mode)
                print(f"{suite:<9} {LABELS[mode]:<14} {f['steps']:>5} {f['forwards_per_step']:>8} "
                      f"{f['real_tokens']:>9} {f['computed_tokens']:>9} {100 * f['pad_share']:>5.1f}% "
                      f"{f['timed_tokens']:>9} {f['seconds']:>7.1f} {f['tokens_per_second']:>7.1f}", flush=True)
            if "padded" in figures:
                for mode in figures:
                    if mode != "padded":
                        ratio = figures[mode]["tokens_per_second"] / figures["padded"]["tokens_per_second"]
                        summary.append(f"{suite:<9} {LABELS[mode]} / TRL default padding: {ratio:.2f}x tokens/s")
    print("\n".join(summary))


def run_one(recipe_path: Path, mode: str) -> dict[str, float]:
    """Build the trainer, train one epoch over the examples, time everything after the first step."""
    from transformers import TrainerCallback, set_seed

    from harness.models.registry import resolve_model
    from harness.train.common import Context, load_tokenizer
    from harness.train.data import load_rows
    from harness.train.recipe import load_recipe
    from harness.train.sft import build_trainer

    recipe = load_recipe(recipe_path)
    source = resolve_model(recipe.spec.base)
    tokenizer = load_tokenizer(source)
    set_seed(recipe.spec.seed)
    counts = {"real": 0, "computed": 0}
    marks: list[tuple[float, int]] = []  # (time, real tokens so far) at the end of each optimizer step

    def count(_module, _args, kwargs):
        ids = kwargs["input_ids"]
        counts["computed"] += ids.numel()
        mask = kwargs.get("attention_mask")
        counts["real"] += int(mask.sum()) if mask is not None else ids.numel()  # padding-free rows hold no pads

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            marks.append((time.perf_counter(), counts["real"]))

    with tempfile.TemporaryDirectory() as work:
        ctx = Context(recipe, source, tokenizer, load_rows(recipe, tokenizer), Path(work), progress=False)
        options = {"padded": dict(padding_free=False, packing=False), "packed": dict(packing=True),
                   "padding-free": dict(padding_free=True, packing=False)}[mode]
        trainer = build_trainer(ctx, **options)
        rows, per_step = len(trainer.train_dataset), trainer.args.gradient_accumulation_steps
        per_forward = trainer.args.per_device_train_batch_size
        trainer.args.max_steps = math.ceil(rows / (per_forward * per_step))  # one epoch: each example once
        trainer.add_callback(Clock())
        trainer.model.register_forward_pre_hook(count, with_kwargs=True)
        with contextlib.redirect_stdout(io.StringIO()):  # the trainer's own summary line
            trainer.train()
    (t0, r0), (t1, r1) = marks[0], marks[-1]
    return {"steps": len(marks), "forwards_per_step": per_step, "real_tokens": counts["real"],
            "computed_tokens": counts["computed"], "timed_tokens": r1 - r0, "seconds": t1 - t0,
            "tokens_per_second": (r1 - r0) / (t1 - t0),
            "pad_share": 1 - counts["real"] / counts["computed"] if counts["computed"] else 0.0}


if __name__ == "__main__":
    main()
