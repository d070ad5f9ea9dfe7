"""The command line: `tunegate train`, `demo` and `cycle`. Each handler parses nothing and calls one flow."""

# Local imports: each command imports what it runs when it runs, so `tunegate --help` and a bad argument
# answer at once instead of after loading torch, transformers and the report stack.

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.common import (
    STORE_HELP,
    store_help,
)


def cmd_train(args: argparse.Namespace) -> int:
    from harness.train import check, train
    from harness.train.recipe import parse_overrides

    overrides = parse_overrides(args.set)
    if args.check:
        print(check(args.recipe, merge=args.merge, force=args.force, overrides=overrides))
        return 0
    from harness.core.quiet import library_output, log_path

    with library_output(log_path("train", Path(args.recipe).stem), verbose=args.verbose) as log:
        out = train(args.recipe, merge=args.merge, force=args.force, overrides=overrides)
    print(f"wrote {out}")
    if log is not None:
        print(f"library output (warnings, progress bars, trainer logs): {log}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from harness.core.quiet import library_output, log_path
    from harness.flows.demo import run_demo

    with library_output(log_path("demo", "quick" if args.quick else "default"), verbose=args.verbose):
        return run_demo(quick=args.quick, store_path=args.store)


def cmd_cycle(args: argparse.Namespace) -> int:
    from harness.flows.cycle import run_cycle

    result = run_cycle(Path(args.recipe), Path(args.data), args.channel, workdir=Path(args.workdir),
                       store_path=args.store, audit_threshold=args.threshold, progress=not args.quiet)
    if result.release is not None:
        print(f"promoted {result.run_dir} to {args.channel} as release {result.release}")
    else:
        print(f"not promoted: {result.verdict}" + (f" (see {result.run_dir}/verdict.json)" if result.run_dir else ""))
    return result.exit_code


def add(sub: Any) -> None:
    """Register this group's commands on the top-level subparsers."""
    tr = sub.add_parser("train", help="run a training recipe (adapters/NAME.yaml) into adapters/NAME/")
    tr.add_argument("recipe", help="recipe YAML file")
    tr.add_argument("--merge", action="store_true", help="also write a merged checkpoint (LoRA, IA3) under merged/")
    tr.add_argument("--force", action="store_true",
                    help="retrain even when the output is up to date; replaces only a folder tunegate train wrote")
    tr.add_argument("--check", action="store_true",
                    help="dry run: validate recipe, data, init_adapter and output without loading a model; print the plan")
    tr.add_argument("--verbose", action="store_true",
                    help="show the libraries' warnings, progress bars and loss logs (by default they go to a log file)")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a recipe field, validated by the recipe's schema (repeatable): train.max_steps=4 "
                         "(or steps=4), lr=1e-4, output=adapters/try, eval.held_out_loss=false; the output's "
                         "provenance records the recipe as run")
    tr.set_defaults(func=cmd_train)

    demo = sub.add_parser("demo", help="the main job on the embedded default model")
    demo.add_argument("--quick", action="store_true", help="smaller splits and fewer steps")
    demo.add_argument("--store", help=store_help("the demo's runs and cached responses go there"))
    demo.add_argument("--verbose", action="store_true",
                      help="show the libraries' warnings, progress bars and logs (by default they go to a log file)")
    demo.set_defaults(func=cmd_demo)

    cyc = sub.add_parser("cycle", help="one turn of the continuous-learning loop: audit new data, train, eval, gate "
                                       "against the channel's release (and its drift anchor), promote on a pass")
    cyc.add_argument("recipe", metavar="RECIPE", help="training recipe; `init_adapter: CHANNEL` continues from the "
                                                     "channel's current adapter")
    cyc.add_argument("--data", required=True, metavar="NEW.jsonl", help="the new training data")
    cyc.add_argument("--channel", required=True)
    cyc.add_argument("--workdir", default="cycles", help="where each cycle's adapter, run and verdict go (cycles/)")
    cyc.add_argument("--threshold", type=float, default=0.0, help="tolerated fraction of contaminated test rows (0)")
    cyc.add_argument("--store", help=STORE_HELP)
    cyc.add_argument("-q", "--quiet", action="store_true")
    cyc.set_defaults(func=cmd_cycle, interrupted="cycle stopped (the channel is unchanged unless it said promoted)")
