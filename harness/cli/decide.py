"""The command line: `tunegate compare`, `gate`, `judge`, `plan` and `report`. Each handler parses nothing and calls one flow."""

# Local imports: each command imports what it runs when it runs, so `tunegate --help` and a bad argument
# answer at once instead of after loading torch, transformers and the report stack.

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from harness.cli.common import (
    _positive,
    _store,
    store_help,
)
from harness.core.api import UserError


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.decide.compare import compare_runs
    from harness.flows.refs import resolve_run
    from harness.report.terminal import format_comparison

    if len(args.runs) < 2:
        raise UserError("name at least two runs to compare", field="runs")
    runs = [resolve_run(r, args.store) for r in args.runs]
    if len(runs) == 2:
        print(format_comparison(compare_runs(runs[0], runs[1], n_resamples=args.resamples, seed=args.seed)))
        if not args.gate:
            return 0
    _print_ranking(runs, Path(args.gate) if args.gate else None)
    return 0


def _print_ranking(runs: list[Any], gate: Path | None) -> None:
    """Which run is better: every pair paired item by item with simultaneous intervals, and the cost table."""
    from harness.decide.gate import load_gate
    from harness.decide.ranking import headline_keys, rank_runs, rule_keys
    from harness.report.data import unique_labels
    from harness.report.terminal import format_rankings

    labels = unique_labels(runs)
    keys = headline_keys(runs)
    if gate is not None:
        spec, _ = load_gate(gate)
        keys += [k for k in rule_keys(spec, runs) if k not in keys]
    print(format_rankings(rank_runs(runs, keys, labels=labels), runs, labels))


def cmd_gate(args: argparse.Namespace) -> int:
    from harness.flows.gating import run_gate
    from harness.report.terminal import format_gate

    if len(args.candidate) > 1:
        return _gate_many(args)
    candidate = args.candidate[0]
    verdict = Path(args.verdict) if args.verdict else None
    if verdict is None and Path(candidate).is_dir():
        verdict = Path(candidate) / "verdict.json"
    _check_gate_outputs(args, [verdict] if verdict is not None else [])
    result = run_gate(Path(args.gate), args.baseline, candidate,
                      Path(args.junit) if args.junit else None, store_path=args.store, verdict_path=verdict,
                      record=True)
    print(format_gate(result))
    if verdict is not None:
        print(f"wrote {verdict}")
    if args.junit:
        print(f"wrote {args.junit} (JUnit: one testcase per rule)")
    return result.exit_code


def _gate_many(args: argparse.Namespace) -> int:
    """`gate --candidate A --candidate B …`: each judged at alpha/k, the best passing one picked."""
    from harness.flows.gating import run_gate_many
    from harness.report.terminal import format_gate, format_selection

    if len(set(args.candidate)) != len(args.candidate):
        raise UserError("a candidate is named twice", field="--candidate")
    verdict = Path(args.verdict) if args.verdict else None
    verdicts = [verdict] if verdict is not None else [Path(c) / "verdict.json" for c in args.candidate
                                                      if Path(c).is_dir()]
    _check_gate_outputs(args, verdicts)
    results, selection = run_gate_many(Path(args.gate), args.baseline, args.candidate,
                                       Path(args.junit) if args.junit else None, store_path=args.store,
                                       verdict_path=verdict, record=True)
    for result in results:
        print(format_gate(result))
    print(format_selection(selection))
    for path in verdicts:
        print(f"wrote {path}")
    if args.junit:
        print(f"wrote {args.junit} (JUnit: one testsuite per candidate, one testcase per rule)")
    return selection.exit_code


def _check_gate_outputs(args: argparse.Namespace, verdicts: list[Path]) -> None:
    """JUnit and verdict.json against the inputs and each other; an existing verdict.json that another gate
    file wrote is kept unless --force (two gates on one candidate must not silently replace each other)."""
    from harness.core.fileio import check_outputs
    from harness.storage.store import default_store_ref

    store = args.store or default_store_ref()
    check_outputs([("--junit", args.junit)] + [("--verdict", v) for v in verdicts],
                  [("gate file", args.gate), ("--baseline", args.baseline)]
                  + [("--candidate", c) for c in args.candidate] + [("--store", store)])
    for verdict in verdicts:
        _check_verdict_owner(args, verdict)


def _check_verdict_owner(args: argparse.Namespace, verdict: Path) -> None:
    import json

    if not verdict.is_file() or args.force:
        return
    try:
        old = json.loads(verdict.read_text(encoding="utf-8"))
        wrote = {str(v.get("gate_file")) for v in (old if isinstance(old, list) else [old]) if isinstance(v, dict)}
    except (OSError, ValueError, RecursionError):
        wrote = {"an unreadable file"}
    mine = os.path.realpath(args.gate)
    others = sorted(w for w in wrote if os.path.realpath(w) != mine)
    if others:
        raise UserError(f"holds the verdict of another gate file ({others[0][:200]}); pass --verdict FILE to write "
                        "this gate's verdict elsewhere, or --force to replace it", source=str(verdict),
                        field="--verdict")


def cmd_judge(args: argparse.Namespace) -> int:
    import json

    from harness.core.fileio import atomic_write_text, check_outputs
    from harness.decide.pairwise import format_pairwise, pairwise_report
    from harness.flows.refs import resolve_run
    from harness.models import load_backend
    from harness.scoring.judging import parse_bindings
    from harness.storage.store import Store

    check_outputs([("--out", args.out)], [("RUN_A", args.run_a), ("RUN_B", args.run_b), ("--store", args.store)])
    bindings = parse_bindings(args.judge)
    if len(bindings) != 1:
        raise UserError("pass exactly one --judge ROLE=SPEC for the pairwise judge", field="--judge")
    spec = next(iter(bindings.values()))
    run_a, run_b = resolve_run(args.run_a, args.store), resolve_run(args.run_b, args.store)
    judge = load_backend(spec)
    store = Store(args.store)
    try:
        result = pairwise_report(run_a, run_b, judge, spec, store, args.task)
    finally:
        store.close()
    print(format_pairwise(result))
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.out}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from harness.decide.plan import plan_gate
    from harness.flows.refs import resolve_run
    from harness.report.terminal import format_plan

    baseline = resolve_run(args.baseline, args.store)
    pilot = resolve_run(args.pilot, args.store) if args.pilot else None
    rows = plan_gate(Path(args.gate), baseline, pilot, args.discordance)
    print(format_plan(rows))
    return 0


def _read_pairwise(path: Path) -> dict[str, Any]:
    """A `tunegate judge --out` file; anything else is a one-line error."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read: {exc}", source=str(path), field="--pairwise") from None
    if not isinstance(data, dict) or data.get("format") != "tunegate.pairwise/1":
        raise UserError("not a `tunegate judge --out` file (format tunegate.pairwise/1)", source=str(path),
                        field="--pairwise")
    return data


def cmd_report(args: argparse.Namespace) -> int:
    from harness.flows.gating import gate_runs, human_of
    from harness.flows.refs import resolve_runs
    from harness.report.write import write_reports

    if not (args.html or args.md):
        raise UserError("nothing to write: pass --html FILE and/or --md FILE", field="report")
    from harness.core.fileio import check_outputs
    from harness.storage.store import default_store_ref

    store = args.store or (default_store_ref() if args.channel else None)
    check_outputs([("--html", args.html), ("--md", args.md)],
                  [("RUN", r) for r in args.runs] + [("--gate", args.gate), ("--store", store)]
                  + [("--pairwise", p) for p in args.pairwise or []])
    history = None
    if args.channel:
        from harness.report.history import build_history

        store = _store(args)
        try:
            history = build_history(store.conn, args.channel)
        finally:
            store.close()
    if not args.runs and not args.channel:
        raise UserError("name the runs to report on, or --channel CHANNEL for its current release", field="runs")
    runs = resolve_runs([Path(r) for r in args.runs], args.store) if args.runs else resolve_runs([Path(args.channel)], args.store)
    gate = gate_runs(Path(args.gate), runs[0], runs[1], human_of=human_of(args.store)) if args.gate and len(runs) > 1 else None
    pairwise = [_read_pairwise(Path(p)) for p in args.pairwise or []]
    write_reports(runs, gate=gate, html_path=Path(args.html) if args.html else None,
                  md_path=Path(args.md) if args.md else None, history=history, store_path=args.store,
                  pairwise=pairwise)
    for path in (args.html, args.md):
        if path:
            print(f"wrote {path}")
    return 0


def add(sub: Any) -> None:
    """Register this group's commands on the top-level subparsers."""
    cmp = sub.add_parser("compare", help="paired comparison of two runs; with three or more, which is better: "
                                         "every pair with simultaneous intervals, a ranking with ties, and costs")
    cmp.add_argument("runs", nargs="+", metavar="RUN",
                     help="run directories or saved baseline names: BASELINE CANDIDATE, or three or more to rank")
    cmp.add_argument("--gate", help="gate file: also rank on each rule's metric")
    cmp.add_argument("--resamples", type=_positive, default=10_000, help="paired-bootstrap resamples")
    cmp.add_argument("--seed", type=int, default=0)
    cmp.add_argument("--store", help=store_help("saved baselines and channels are read from it"))
    cmp.set_defaults(func=cmd_compare)

    gate = sub.add_parser("gate", help="judge a candidate against a baseline: exit 0 pass, 1 fail, "
                                       "2 bad input, 3 inconclusive (none fails), 4 internal error")
    gate.add_argument("gate", help="gate file (YAML)")
    gate.add_argument("--baseline", required=True, help="run directory or saved baseline name")
    gate.add_argument("--candidate", required=True, action="append",
                      help="run directory; repeat it to pick the best passing of several candidates (each is then "
                           "judged at alpha/k, k the number of candidates, so the pick keeps the gate's error rate)")
    gate.add_argument("--junit", help="write JUnit XML here (one testcase per rule)")
    gate.add_argument("--verdict", help="write verdict.json here (default: CANDIDATE/verdict.json for a run "
                                        "directory)")
    gate.add_argument("--store", help=store_help("saved baselines are read from it, the verdict is recorded in it"))
    gate.add_argument("--force", action="store_true", help="replace a verdict.json that another gate file wrote")
    gate.set_defaults(func=cmd_gate)

    jd = sub.add_parser("judge", help="a judge model compares two runs' responses in both orders: win rate, "
                        "consistency, position bias")
    jd.add_argument("run_a", help="run directory or saved baseline name (A)")
    jd.add_argument("run_b", help="run directory or saved baseline name (B; the win rate is B's)")
    jd.add_argument("--judge", action="append", required=True, metavar="ROLE=SPEC", help="the judge, e.g. grader=smollm2-135m")
    jd.add_argument("--task", action="append", help="only this task (SUITE/TASK or TASK; repeatable)")
    jd.add_argument("--out", help="write the result as JSON here")
    jd.add_argument("--store", help=store_help("judge answers are cached there"))
    jd.set_defaults(func=cmd_judge)

    pl = sub.add_parser("plan", help="items each gate rule needs for 80%% power, and what the current n can show")
    pl.add_argument("gate", help="gate file (YAML)")
    pl.add_argument("--baseline", required=True, help="run directory or saved baseline name")
    pl.add_argument("--pilot", help="a pilot candidate run: its discordance with the baseline plans paired rules")
    pl.add_argument("--discordance", type=float, default=0.15,
                    help="assumed share of items whose answer changes, without a pilot (default 0.15)")
    pl.add_argument("--store", help=store_help("saved baselines are read from it"))
    pl.set_defaults(func=cmd_plan)

    rep = sub.add_parser("report", help="Markdown and self-contained HTML reports; the first run is the baseline")
    rep.add_argument("runs", nargs="*", help="run directories or channel names (a sweep directory expands to its "
                                            "variants); none with --channel: the channel's current release")
    rep.add_argument("--html", help="HTML report path")
    rep.add_argument("--md", help="Markdown report path")
    rep.add_argument("--gate", help="gate file: judge the second run against the first and show the verdict")
    rep.add_argument("--channel", help="add a History section: every suite across this channel's releases")
    rep.add_argument("--store", help=store_help("the channel and the review app's ratings (judge-human agreement) "
                                                "are read from it"))
    rep.add_argument("--pairwise", action="append", metavar="FILE", help="a `tunegate judge --out` result to show (repeatable)")
    rep.set_defaults(func=cmd_report)
