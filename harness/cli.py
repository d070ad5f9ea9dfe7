"""The command line: parse, call one function, print. Work lives in the modules it calls."""

# Local imports: each command imports what it runs when it runs, so `tunegate --help` and a bad argument
# answer at once instead of after loading torch, transformers and the report stack.

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from harness.api import RunIncomplete, UserError


def _quiet_libraries(verbose: bool = False) -> None:
    # Our own progress bars carry the ETA; the libraries' per-file bars and warnings only add noise.
    if not verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")


def cmd_eval(args: argparse.Namespace) -> int:
    from harness.engine import EvalSettings, evaluate
    from harness.judging import parse_bindings
    from harness.report.terminal import markdown_table

    settings = EvalSettings(limit=args.limit, full=args.full, batch_size=args.batch_size, resume=args.resume,
                            progress=not args.quiet, allow_unisolated=args.allow_unisolated)
    _check_eval_outputs(args)
    if args.until_decided or args.baseline:
        return _eval_until_decided(args, settings)
    results = evaluate(args.model, args.adapter or [], args.suite, Path(args.out) if args.out else None, settings,
                       store_path=args.store, include_base=args.include_base, dtype=args.dtype,
                       save_baseline=args.save_baseline, judge_bindings=parse_bindings(args.judge),
                       device=args.device, backend_options=_endpoint_args(args))
    for res in results:
        print(markdown_table(res))
        print()
    if args.out and results:
        print(f"wrote {args.out}")
    return 0


def _check_eval_outputs(args: argparse.Namespace) -> None:
    """The files eval writes (per variant when there are several) against the store and each other."""
    from harness.fileio import check_outputs
    from harness.store import default_store_ref

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
    from harness.report.terminal import format_gate
    from harness.until import UntilSettings, evaluate_until_decided, summary

    if not (args.until_decided and args.baseline):
        raise UserError("--until-decided GATE and --baseline RUN go together", field="--until-decided")
    if args.resume or args.save_baseline or args.include_base:
        raise UserError("--until-decided takes no --resume, --save-baseline or --include-base", field="--until-decided")
    until = UntilSettings(Path(args.until_decided), args.baseline, args.max_items, args.max_minutes, args.chunk,
                          args.seed)
    outcome = evaluate_until_decided(args.model, args.adapter or [], args.suite, Path(args.out) if args.out else None,
                                     settings, until, store_path=args.store, dtype=args.dtype, device=args.device,
                                     backend_options=_endpoint_args(args))
    print(format_gate(outcome.gate))
    print(summary(outcome))
    if args.out:
        print(f"wrote {args.out} (results.json with the sequential record, samples.jsonl, verdict.json)")
    return outcome.gate.exit_code


def cmd_suites_list(args: argparse.Namespace) -> int:
    from harness.suite import SUITE_FILE, builtin_roots, load_suite

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


def cmd_suites_validate(args: argparse.Namespace) -> int:
    from harness.suite import load_suite

    failed = 0
    for ref in args.paths:
        try:
            suite = load_suite(ref)  # every row's columns; the rows an eval renders are rendered next
            for task in suite.tasks:
                task.samples(args.limit, args.full)
            rows = sum(len(r) for t in suite.tasks for r in t.rows.values())
            print(f"ok  {ref}: {len(suite.tasks)} tasks, {rows} rows")
        except UserError as exc:
            _say(f"tunegate: error: {exc}")
            failed += 1
    return 2 if failed else 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.compare import compare_runs
    from harness.report.terminal import format_comparison
    from harness.runs import resolve_run

    comp = compare_runs(resolve_run(args.baseline, args.store), resolve_run(args.candidate, args.store),
                        n_resamples=args.resamples, seed=args.seed)
    print(format_comparison(comp))
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from harness.gate import run_gate
    from harness.report.terminal import format_gate

    verdict = Path(args.verdict) if args.verdict else None
    if verdict is None and Path(args.candidate).is_dir():
        verdict = Path(args.candidate) / "verdict.json"
    _check_gate_outputs(args, verdict)
    result = run_gate(Path(args.gate), args.baseline, args.candidate,
                      Path(args.junit) if args.junit else None, store_path=args.store, verdict_path=verdict,
                      record=True)
    print(format_gate(result))
    if verdict is not None:
        print(f"wrote {verdict}")
    return result.exit_code


def _check_gate_outputs(args: argparse.Namespace, verdict: Path | None) -> None:
    """JUnit and verdict.json against the inputs and each other; an existing verdict.json that another gate
    file wrote is kept unless --force (two gates on one candidate must not silently replace each other)."""
    import json

    from harness.fileio import check_outputs
    from harness.store import default_store_ref

    store = args.store or default_store_ref()
    check_outputs([("--junit", args.junit), ("--verdict", verdict)],
                  [("gate file", args.gate), ("--baseline", args.baseline), ("--candidate", args.candidate),
                   ("--store", store)])
    if verdict is None or not verdict.is_file() or args.force:
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

    from harness.fileio import atomic_write_text, check_outputs
    from harness.judging import parse_bindings
    from harness.models import load_backend
    from harness.pairwise import format_pairwise, pairwise_report
    from harness.runs import resolve_run
    from harness.store import Store

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
    from harness.plan import run_plan
    from harness.report.terminal import format_plan

    rows = run_plan(Path(args.gate), args.baseline, args.pilot, args.discordance, args.store)
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
    from harness.gate import gate_runs
    from harness.report.write import write_reports
    from harness.runs import load_runs

    if not (args.html or args.md):
        raise UserError("nothing to write: pass --html FILE and/or --md FILE", field="report")
    from harness.fileio import check_outputs
    from harness.store import default_store_ref

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
    runs = load_runs([Path(r) for r in args.runs]) if args.runs else load_runs([Path(args.channel)], args.store)
    gate = gate_runs(Path(args.gate), runs[0], runs[1], store_path=args.store) if args.gate and len(runs) > 1 else None
    pairwise = [_read_pairwise(Path(p)) for p in args.pairwise or []]
    write_reports(runs, gate=gate, html_path=Path(args.html) if args.html else None,
                  md_path=Path(args.md) if args.md else None, history=history, store_path=args.store,
                  pairwise=pairwise)
    for path in (args.html, args.md):
        if path:
            print(f"wrote {path}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from harness.train import check, train

    if args.check:
        print(check(args.recipe, merge=args.merge, force=args.force))
        return 0
    from harness.quiet import library_output, log_path

    with library_output(log_path("train", Path(args.recipe).stem), verbose=args.verbose) as log:
        out = train(args.recipe, merge=args.merge, force=args.force)
    print(f"wrote {out}")
    if log is not None:
        print(f"library output (warnings, progress bars, trainer logs): {log}")
    return 0


def cmd_data_audit(args: argparse.Namespace) -> int:
    from harness.audit import AuditSettings, run_audit

    settings = AuditSettings(threshold=args.threshold, near_threshold=args.near_threshold, max_chars=args.max_chars,
                             text_fields=args.field, label_field=args.label)
    from harness.fileio import check_outputs

    check_outputs([("--json", args.json)], [("DATA", d) for d in ([args.data] if isinstance(args.data, str)
                                                                  else args.data or [])])
    return run_audit(args.data, args.against or [], settings, Path(args.json) if args.json else None)


def cmd_code_check(args: argparse.Namespace) -> int:
    import json

    from harness.code_scoring import check_samples_file
    from harness.fileio import check_outputs

    if args.out:
        check_outputs([("--out", Path(args.out) / name) for name in ("results.jsonl", "summary.json")],
                      [("SAMPLES.jsonl", args.samples)])
    summary = check_samples_file(Path(args.samples), args.suite, Path(args.out) if args.out else None,
                                 allow_unisolated=args.allow_unisolated)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from harness.demo import run_demo
    from harness.quiet import library_output, log_path

    with library_output(log_path("demo", "quick" if args.quick else "default"), verbose=args.verbose):
        return run_demo(quick=args.quick, store_path=args.store)


def cmd_review(args: argparse.Namespace) -> int:
    from harness.review.app import serve

    return serve(args.runs, mode=args.mode, reviewers_per_item=args.reviewers_per_item, host=args.host,
                 port=args.port, store_path=args.store, seed=args.seed, reset_queue=args.reset_queue,
                 allowed_hosts=args.allow_host or [])


def cmd_review_export(args: argparse.Namespace) -> int:
    from harness.fileio import check_outputs
    from harness.review.export import export
    from harness.store import default_store_ref

    check_outputs([("OUT", args.out)], [("--store", args.store or default_store_ref())])
    print(export(args.out, fmt=args.format, store_path=args.store).line())
    return 0


def cmd_review_summary(args: argparse.Namespace) -> int:
    from harness.review.summary import human_eval_summary, summary_json, summary_text

    summary = human_eval_summary(args.store, args.runs or None)
    print(summary_json(summary) if args.json else summary_text(summary))
    return 0


def cmd_cycle(args: argparse.Namespace) -> int:
    from harness.cycle import run_cycle

    result = run_cycle(Path(args.recipe), Path(args.data), args.channel, workdir=Path(args.workdir),
                       store_path=args.store, audit_threshold=args.threshold, progress=not args.quiet)
    if result.release is not None:
        print(f"promoted {result.run_dir} to {args.channel} as release {result.release}")
    else:
        print(f"not promoted: {result.verdict}" + (f" (see {result.run_dir}/verdict.json)" if result.run_dir else ""))
    return result.exit_code


def _store(args: argparse.Namespace) -> Any:
    from harness.store import Store

    return Store(getattr(args, "store", None))


def cmd_runs_list(args: argparse.Namespace) -> int:
    from harness.ledger import list_runs
    from harness.report.ledger import format_runs

    store = _store(args)
    try:
        print(format_runs(list_runs(store.conn, args.suite, args.since)))
    finally:
        store.close()
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    from harness.ledger import show_run
    from harness.report.ledger import format_run

    store = _store(args)
    try:
        print(format_run(show_run(store.conn, args.run)))
    finally:
        store.close()
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from harness.ledger import history
    from harness.report.ledger import format_history

    store = _store(args)
    try:
        print(format_history(args.channel, args.metric, history(store.conn, args.channel, args.metric)))
    finally:
        store.close()
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from harness.ledger import promote
    from harness.report.ledger import format_promotion

    store = _store(args)
    try:
        print(format_promotion(promote(store.conn, args.run, args.to, force=args.force, reason=args.reason)))
    finally:
        store.close()
    return 0


def cmd_channel_create(args: argparse.Namespace) -> int:
    from harness.ledger import create_channel

    store = _store(args)
    try:
        ch = create_channel(store.conn, args.name, Path(args.gate), args.release, args.reason)
        print(f"created channel {ch.name}: gate {ch.gate_file}, release 1 = {str(ch.run_id)[:12]}")
    finally:
        store.close()
    return 0


def cmd_channel_list(args: argparse.Namespace) -> int:
    from harness.ledger import channels
    from harness.report.ledger import format_channels

    store = _store(args)
    try:
        print(format_channels(channels(store.conn)))
    finally:
        store.close()
    return 0


def cmd_store_export(args: argparse.Namespace) -> int:
    from harness.fileio import check_outputs
    from harness.store import default_store_ref
    from harness.store_transfer import export_store

    check_outputs([("OUT", args.out)], [("--store", args.store or default_store_ref())])
    store = _store(args)
    try:
        counts = export_store(store.conn, Path(args.out))
    finally:
        store.close()
    print(f"wrote {args.out}: " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    return 0


def cmd_store_import(args: argparse.Namespace) -> int:
    from harness.store_transfer import import_store

    store = _store(args)
    try:
        added = import_store(store.conn, Path(args.file))
    finally:
        store.close()
    print(f"imported into {store.location}: " + ", ".join(f"{n} {t}" for t, n in added.items()))
    return 0


class _DefaultSubcommand(argparse._SubParsersAction):
    """Subcommands where any other first word starts the default one: `review RUN...` is `review serve RUN...`."""

    class _AnyWord(dict):  # argparse checks the first word against `choices` before calling the action
        def __contains__(self, key: object) -> bool:
            return True

    def __init__(self, *args: Any, default_command: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_command = default_command
        self.choices = self._AnyWord(self._name_parser_map)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if values and values[0] not in self._name_parser_map:
            values = [self.default_command, *values]
        super().__call__(parser, namespace, values, option_string)


class _Parser(argparse.ArgumentParser):
    """argparse with a bad option as one line (`tunegate eval: error: argument --timeout: ...`), exit 2: the
    usage block would bury the one line that says what is wrong (`--help` shows it)."""

    def error(self, message: str) -> Any:
        from harness.untrusted import strip_controls

        self.exit(2, f"{self.prog}: error: {strip_controls(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tunegate", description="Evaluate fine-tuned models and gate releases.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

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
    _endpoint_options(ev)
    ev.add_argument("--resume", action="store_true", help="continue the latest unfinished identical run")
    ev.add_argument("--include-base", action="store_true", help="with adapters, evaluate the bare base too")
    ev.add_argument("--store", help="SQLite store (default: $TUNEGATE_STORE or ~/.cache/tunegate/store.sqlite)")
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

    cmp = sub.add_parser("compare", help="paired comparison of two runs")
    cmp.add_argument("baseline", help="run directory or saved baseline name")
    cmp.add_argument("candidate", help="run directory or saved baseline name")
    cmp.add_argument("--resamples", type=_positive, default=10_000, help="paired-bootstrap resamples")
    cmp.add_argument("--seed", type=int, default=0)
    cmp.add_argument("--store", help="SQLite store holding saved baselines")
    cmp.set_defaults(func=cmd_compare)

    gate = sub.add_parser("gate", help="judge a candidate against a baseline: exit 0 pass, 1 fail, "
                                       "2 bad input, 3 inconclusive (none fails), 4 internal error")
    gate.add_argument("gate", help="gate file (YAML)")
    gate.add_argument("--baseline", required=True, help="run directory or saved baseline name")
    gate.add_argument("--candidate", required=True, help="run directory")
    gate.add_argument("--junit", help="write JUnit XML here (one testcase per rule)")
    gate.add_argument("--verdict", help="write verdict.json here (default: CANDIDATE/verdict.json for a run "
                                        "directory)")
    gate.add_argument("--store", help="SQLite store holding saved baselines")
    gate.add_argument("--force", action="store_true", help="replace a verdict.json that another gate file wrote")
    gate.set_defaults(func=cmd_gate)

    jd = sub.add_parser("judge", help="a judge model compares two runs' responses in both orders: win rate, "
                        "consistency, position bias")
    jd.add_argument("run_a", help="run directory or saved baseline name (A)")
    jd.add_argument("run_b", help="run directory or saved baseline name (B; the win rate is B's)")
    jd.add_argument("--judge", action="append", required=True, metavar="ROLE=SPEC", help="the judge, e.g. grader=smollm2-135m")
    jd.add_argument("--task", action="append", help="only this task (SUITE/TASK or TASK; repeatable)")
    jd.add_argument("--out", help="write the result as JSON here")
    jd.add_argument("--store", help="SQLite store (judge answers are cached there)")
    jd.set_defaults(func=cmd_judge)

    pl = sub.add_parser("plan", help="items each gate rule needs for 80%% power, and what the current n can show")
    pl.add_argument("gate", help="gate file (YAML)")
    pl.add_argument("--baseline", required=True, help="run directory or saved baseline name")
    pl.add_argument("--pilot", help="a pilot candidate run: its discordance with the baseline plans paired rules")
    pl.add_argument("--discordance", type=float, default=0.15,
                    help="assumed share of items whose answer changes, without a pilot (default 0.15)")
    pl.add_argument("--store", help="SQLite store holding saved baselines")
    pl.set_defaults(func=cmd_plan)

    rep = sub.add_parser("report", help="Markdown and self-contained HTML reports; the first run is the baseline")
    rep.add_argument("runs", nargs="*", help="run directories or channel names (a sweep directory expands to its "
                                            "variants); none with --channel: the channel's current release")
    rep.add_argument("--html", help="HTML report path")
    rep.add_argument("--md", help="Markdown report path")
    rep.add_argument("--gate", help="gate file: judge the second run against the first and show the verdict")
    rep.add_argument("--channel", help="add a History section: every suite across this channel's releases")
    rep.add_argument("--store", help="store holding the channel and the review app's ratings (judge-human "
                     "agreement); default: $TUNEGATE_STORE")
    rep.add_argument("--pairwise", action="append", metavar="FILE", help="a `tunegate judge --out` result to show (repeatable)")
    rep.set_defaults(func=cmd_report)

    tr = sub.add_parser("train", help="run a training recipe (adapters/NAME.yaml) into adapters/NAME/")
    tr.add_argument("recipe", help="recipe YAML file")
    tr.add_argument("--merge", action="store_true", help="also write a merged checkpoint (LoRA, IA3) under merged/")
    tr.add_argument("--force", action="store_true",
                    help="retrain even when the output is up to date; replaces only a folder tunegate train wrote")
    tr.add_argument("--check", action="store_true",
                    help="dry run: validate recipe, data, init_adapter and output without loading a model; print the plan")
    tr.add_argument("--verbose", action="store_true",
                    help="show the libraries' warnings, progress bars and loss logs (by default they go to a log file)")
    tr.set_defaults(func=cmd_train)

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

    demo = sub.add_parser("demo", help="the main job on the embedded default model")
    demo.add_argument("--quick", action="store_true", help="smaller splits and fewer steps")
    demo.add_argument("--store", help="SQLite store")
    demo.add_argument("--verbose", action="store_true",
                      help="show the libraries' warnings, progress bars and logs (by default they go to a log file)")
    demo.set_defaults(func=cmd_demo)

    review = sub.add_parser("review", help="the human-feedback review app (serve RUN..., export, summary)")
    rsub = review.add_subparsers(dest="review_command", required=True, action=_DefaultSubcommand,  # type: ignore[call-overload]
                                 default_command="serve", metavar="{RUN... | serve RUN... | export | summary}")
    rv = rsub.add_parser("serve", help="serve the review app on the runs (the default: `review RUN...`)")
    rv.add_argument("runs", nargs="+", metavar="RUN", help="run directories (sweep directories expand)")
    rv.add_argument("--mode", choices=["pairwise", "rating"], default="pairwise")
    rv.add_argument("--reviewers-per-item", type=_positive, default=None,
                    help="how many reviewers judge each item (default 1; a live queue keeps its own)")
    rv.add_argument("--reset-queue", action="store_true",
                    help="apply this start's --reviewers-per-item to a queue that already exists (judgments are kept)")
    rv.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    rv.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1 only)")
    rv.add_argument("--allow-host", action="append", metavar="NAME",
                    help="another Host name reviewers reach the server by (repeatable); requests naming any other "
                         "host than these, --host, localhost and 127.0.0.1 are refused")
    rv.add_argument("--seed", type=int, default=0, help="seed of the queue order")
    rv.add_argument("--store", help="SQLite store (default: $TUNEGATE_STORE or ~/.cache/tunegate/store.sqlite)")
    rv.set_defaults(func=cmd_review, interrupted="review server stopped")
    rx = rsub.add_parser("export", help="write judgments as training data")
    rx.add_argument("out", metavar="OUT.jsonl")
    rx.add_argument("--format", choices=["preference"], default="preference",
                    help="preference: {prompt, chosen, rejected} rows; ties and both-bad are left out")
    rx.add_argument("--store", help="SQLite store")
    rx.set_defaults(func=cmd_review_export)
    rs = rsub.add_parser("summary", help="win rates, Bradley–Terry, rubric means, reviewer agreement")
    rs.add_argument("runs", nargs="*", metavar="RUN", help="only items from these runs (default: all)")
    rs.add_argument("--json", action="store_true", help="the dict the report takes, as JSON")
    rs.add_argument("--store", help="SQLite store")
    rs.set_defaults(func=cmd_review_summary)

    store_help = "store: an SQLite file or postgresql://... (default: $TUNEGATE_STORE or ~/.cache/tunegate/store.sqlite)"
    runs = sub.add_parser("runs", help="runs kept in the release ledger").add_subparsers(dest="runs_command",
                                                                                         required=True)
    rl = runs.add_parser("list", help="runs, newest first")
    rl.add_argument("--suite", help="only runs evaluated on this suite")
    rl.add_argument("--since", help="only runs created on or after this date (YYYY-MM-DD, UTC)")
    rl.add_argument("--store", help=store_help)
    rl.set_defaults(func=cmd_runs_list)
    rsh = runs.add_parser("show", help="one run: fingerprints, provenance hashes, scores, verdicts, releases")
    rsh.add_argument("run", metavar="RUN", help="run id (or a unique prefix), run directory, or CHANNEL@N")
    rsh.add_argument("--store", help=store_help)
    rsh.set_defaults(func=cmd_runs_show)

    hist = sub.add_parser("history", help="a metric across a channel's releases: table, sparkline, intervals")
    hist.add_argument("--channel", required=True)
    hist.add_argument("--metric", required=True, metavar="SUITE/METRIC", help="suite/metric or suite/task/metric")
    hist.add_argument("--store", help=store_help)
    hist.set_defaults(func=cmd_history)

    pro = sub.add_parser("promote", help="make a run the channel's next release (needs a recorded passing verdict "
                                         "of the channel's gate against its current release)")
    pro.add_argument("run", metavar="RUN", help="run id (or a unique prefix), run directory, or CHANNEL@N")
    pro.add_argument("--to", required=True, metavar="CHANNEL")
    pro.add_argument("--force", action="store_true", help="promote without a passing verdict (needs --reason)")
    pro.add_argument("--reason", help="why; kept in the ledger")
    pro.add_argument("--store", help=store_help)
    pro.set_defaults(func=cmd_promote, interrupted="promote stopped (the channel is as it was, or promoted)")

    cyc = sub.add_parser("cycle", help="one turn of the continuous-learning loop: audit new data, train, eval, gate "
                                       "against the channel's release (and its drift anchor), promote on a pass")
    cyc.add_argument("recipe", metavar="RECIPE", help="training recipe; `init_adapter: CHANNEL` continues from the "
                                                     "channel's current adapter")
    cyc.add_argument("--data", required=True, metavar="NEW.jsonl", help="the new training data")
    cyc.add_argument("--channel", required=True)
    cyc.add_argument("--workdir", default="cycles", help="where each cycle's adapter, run and verdict go (cycles/)")
    cyc.add_argument("--threshold", type=float, default=0.0, help="tolerated fraction of contaminated test rows (0)")
    cyc.add_argument("--store", help=store_help)
    cyc.add_argument("-q", "--quiet", action="store_true")
    cyc.set_defaults(func=cmd_cycle, interrupted="cycle stopped (the channel is unchanged unless it said promoted)")

    chan = sub.add_parser("channel", help="release channels").add_subparsers(dest="channel_command", required=True)
    cc = chan.add_parser("create", help="a channel bound to one gate file, with its first release")
    cc.add_argument("name")
    cc.add_argument("--gate", required=True, help="the gate file every promotion must pass (fixed)")
    cc.add_argument("--release", required=True, metavar="RUN", help="the first release: run id or run directory")
    cc.add_argument("--reason", help="a note kept with release 1")
    cc.add_argument("--store", help=store_help)
    cc.set_defaults(func=cmd_channel_create)
    cl = chan.add_parser("list", help="channels and their current releases")
    cl.add_argument("--store", help=store_help)
    cl.set_defaults(func=cmd_channel_list)

    st = sub.add_parser("store", help="move a store between SQLite and PostgreSQL").add_subparsers(
        dest="store_command", required=True)
    se = st.add_parser("export", help="write the store's runs, records, cache and ledger as JSON lines")
    se.add_argument("out", metavar="OUT.jsonl")
    se.add_argument("--store", help=store_help)
    se.set_defaults(func=cmd_store_export)
    si = st.add_parser("import", help="add an export's rows to this store (one transaction)")
    si.add_argument("file", metavar="EXPORT.jsonl")
    si.add_argument("--store", help=store_help)
    si.set_defaults(func=cmd_store_import)
    return parser


def _endpoint_args(args: argparse.Namespace) -> dict[str, Any]:
    """The endpoint options the user set (an in-process backend refuses any of them)."""
    given = {"base_url": args.base_url, "api_key_env": args.api_key_env, "concurrency": args.concurrency,
             "timeout": args.timeout, "budget": args.budget, "retries": args.retries, "revision": args.revision,
             "max_response_mb": args.max_response_mb}
    return {k: v for k, v in given.items() if v is not None}


def _endpoint_options(parser: argparse.ArgumentParser) -> None:
    """Options of `-m openai:MODEL`: only here and in the environment, never in a suite file."""
    group = parser.add_argument_group("endpoint models (-m openai:MODEL)")
    group.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 "
                                          "(default: $OPENAI_BASE_URL)")
    group.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key "
                                                            "(default: OPENAI_API_KEY; the key is never stored)")
    group.add_argument("--concurrency", type=_positive, help="requests in flight (default 8)")
    group.add_argument("--timeout", type=_positive_float, help="seconds per request attempt, connect to last byte "
                                                               "(default 120)")
    group.add_argument("--retries", type=_non_negative, help="retries of a request on 429, 5xx, timeouts and lost "
                                                   "connections, with exponential backoff and jitter (default 5)")
    group.add_argument("--max-response-mb", type=_positive_float, help="largest response body read, checked while "
                                                                       "it streams (default 4)")
    group.add_argument("--budget", type=_positive_float, help="seconds for all requests of a run, retries included "
                                                    "(default: none); what is left fails and can be resumed")
    group.add_argument("--revision", help="what you call the served weights (part of the cache key: an endpoint "
                                          "cannot be fingerprinted by its weights)")


def _allow_outside_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-outside-data", action="store_true",
                        help="let suites read data files outside their own folder (symlinks, ../, absolute paths)")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    import math

    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError("must be a positive, finite number")
    return value


def _version() -> str:
    from harness import __version__

    return f"tunegate {__version__}"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it stops a command the way Ctrl-C does."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tunegate` console script."""
    import signal
    import sqlite3
    import threading

    from harness.untrusted import SafeTextStream, allowing_outside_data

    args = build_parser().parse_args(argv)
    stdout = sys.stdout
    sys.stdout = SafeTextStream(stdout)  # type: ignore[assignment]  # no raw control character from a file
    _quiet_libraries(verbose=getattr(args, "verbose", False))
    in_main_thread = threading.current_thread() is threading.main_thread()  # only there can signals be handled
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        with allowing_outside_data(getattr(args, "allow_outside_data", False)):
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader that went away (`| head`) is a BrokenPipeError here
        return code
    except UserError as exc:
        _say(f"tunegate: error: {exc}")
        return exc.exit_code
    except RunIncomplete as exc:
        _say(f"tunegate: incomplete: {exc}")
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print(f"tunegate: {getattr(args, 'interrupted', 'interrupted')}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except BrokenPipeError:
        # The reader of our output stopped reading: say nothing more, as `cat` would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except sqlite3.DatabaseError as exc:  # a store that went bad after it opened (a damaged page, read-only)
        from harness.store import default_store_path, store_error

        _say(f"tunegate: error: {store_error(Path(getattr(args, 'store', None) or default_store_path()), exc)}")
        return 2
    except Exception as exc:  # noqa: BLE001 - a crash must never read as 1 (gate failed) or 3 (inconclusive)
        if type(exc).__module__.startswith("psycopg"):  # a PostgreSQL store that failed mid-command: one line
            from harness.db import redact
            from harness.store import default_store_ref

            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            _say(f"tunegate: error: {redact(getattr(args, 'store', None) or default_store_ref())}: the store failed: "
                 f"{first}")
            return 2
        log = _crash_log()
        print(f"tunegate: internal error ({exc.__class__.__name__}); the traceback is in {log}", file=sys.stderr)
        return 4
    finally:
        sys.stdout = stdout
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _say(line: str) -> None:
    """An error line on stderr: secrets redacted, control characters escaped."""
    from harness.untrusted import terminal_line

    print(terminal_line(line), file=sys.stderr)


def _crash_log() -> str:
    """Write the current traceback to a log file and return its path."""
    import tempfile
    import time
    import traceback

    from harness.redact import redact

    text = redact(traceback.format_exc())  # a traceback may quote a key, a header or a store URL
    home = Path(os.environ.get("TUNEGATE_HOME") or Path.home() / ".cache" / "tunegate") / "logs"
    try:
        home.mkdir(parents=True, exist_ok=True)
        path = home / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        path.write_text(text, encoding="utf-8")
    except OSError:
        fd, name = tempfile.mkstemp(prefix="tunegate-crash-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        path = Path(name)
    return str(path)


if __name__ == "__main__":
    sys.exit(main())
