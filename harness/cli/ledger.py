"""The command line: `tunegate runs list/show`, `history`, `promote`, `channel create/list`, `store export/import`. Each handler parses nothing and calls one flow."""

# Local imports: each command imports what it runs when it runs, so `tunegate --help` and a bad argument
# answer at once instead of after loading torch, transformers and the report stack.

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.common import (
    STORE_HELP,
    _store,
)


def cmd_runs_list(args: argparse.Namespace) -> int:
    from harness.report.ledger import format_runs
    from harness.storage.ledger import list_runs

    store = _store(args)
    try:
        print(format_runs(list_runs(store.conn, args.suite, args.since)))
    finally:
        store.close()
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    from harness.flows.release import show_run
    from harness.report.ledger import format_run

    store = _store(args)
    try:
        print(format_run(show_run(store.conn, args.run)))
    finally:
        store.close()
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from harness.report.ledger import format_history
    from harness.storage.ledger import history

    store = _store(args)
    try:
        print(format_history(args.channel, args.metric, history(store.conn, args.channel, args.metric)))
    finally:
        store.close()
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from harness.flows.release import promote
    from harness.report.ledger import format_promotion

    store = _store(args)
    try:
        print(format_promotion(promote(store.conn, args.run, args.to, force=args.force, reason=args.reason)))
    finally:
        store.close()
    return 0


def cmd_channel_create(args: argparse.Namespace) -> int:
    from harness.flows.release import create_channel

    store = _store(args)
    try:
        ch = create_channel(store.conn, args.name, Path(args.gate), args.release, args.reason)
        print(f"created channel {ch.name}: gate {ch.gate_file}, release 1 = {str(ch.run_id)[:12]}")
    finally:
        store.close()
    return 0


def cmd_channel_list(args: argparse.Namespace) -> int:
    from harness.report.ledger import format_channels
    from harness.storage.ledger import channels

    store = _store(args)
    try:
        print(format_channels(channels(store.conn)))
    finally:
        store.close()
    return 0


def cmd_store_export(args: argparse.Namespace) -> int:
    from harness.core.fileio import check_outputs
    from harness.storage.store import default_store_ref
    from harness.storage.transfer import export_store

    check_outputs([("OUT", args.out)], [("--store", args.store or default_store_ref())])
    store = _store(args)
    try:
        counts = export_store(store.conn, Path(args.out))
    finally:
        store.close()
    print(f"wrote {args.out}: " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    return 0


def cmd_store_import(args: argparse.Namespace) -> int:
    from harness.storage.transfer import import_store

    store = _store(args)
    try:
        added = import_store(store.conn, Path(args.file))
    finally:
        store.close()
    print(f"imported into {store.location}: " + ", ".join(f"{n} {t}" for t, n in added.items()))
    return 0


def add(sub: Any) -> None:
    """Register this group's commands on the top-level subparsers."""
    runs = sub.add_parser("runs", help="runs kept in the release ledger").add_subparsers(dest="runs_command",
                                                                                         required=True)
    rl = runs.add_parser("list", help="runs, newest first")
    rl.add_argument("--suite", help="only runs evaluated on this suite")
    rl.add_argument("--since", help="only runs created on or after this date (YYYY-MM-DD, UTC)")
    rl.add_argument("--store", help=STORE_HELP)
    rl.set_defaults(func=cmd_runs_list)
    rsh = runs.add_parser("show", help="one run: fingerprints, provenance hashes, scores, verdicts, releases")
    rsh.add_argument("run", metavar="RUN", help="run id (or a unique prefix), run directory, or CHANNEL@N")
    rsh.add_argument("--store", help=STORE_HELP)
    rsh.set_defaults(func=cmd_runs_show)

    hist = sub.add_parser("history", help="a metric across a channel's releases: table, sparkline, intervals")
    hist.add_argument("--channel", required=True)
    hist.add_argument("--metric", required=True, metavar="SUITE/METRIC", help="suite/metric or suite/task/metric")
    hist.add_argument("--store", help=STORE_HELP)
    hist.set_defaults(func=cmd_history)

    pro = sub.add_parser("promote", help="make a run the channel's next release (needs a recorded passing verdict "
                                         "of the channel's gate against its current release)")
    pro.add_argument("run", metavar="RUN", help="run id (or a unique prefix), run directory, or CHANNEL@N")
    pro.add_argument("--to", required=True, metavar="CHANNEL")
    pro.add_argument("--force", action="store_true", help="promote without a passing verdict (needs --reason)")
    pro.add_argument("--reason", help="why; kept in the ledger")
    pro.add_argument("--store", help=STORE_HELP)
    pro.set_defaults(func=cmd_promote, interrupted="promote stopped (the channel is as it was, or promoted)")

    chan = sub.add_parser("channel", help="release channels").add_subparsers(dest="channel_command", required=True)
    cc = chan.add_parser("create", help="a channel bound to one gate file, with its first release")
    cc.add_argument("name")
    cc.add_argument("--gate", required=True, help="the gate file every promotion must pass (fixed)")
    cc.add_argument("--release", required=True, metavar="RUN", help="the first release: run id or run directory")
    cc.add_argument("--reason", help="a note kept with release 1")
    cc.add_argument("--store", help=STORE_HELP)
    cc.set_defaults(func=cmd_channel_create)
    cl = chan.add_parser("list", help="channels and their current releases")
    cl.add_argument("--store", help=STORE_HELP)
    cl.set_defaults(func=cmd_channel_list)

    st = sub.add_parser("store", help="move a store between SQLite and PostgreSQL").add_subparsers(
        dest="store_command", required=True)
    se = st.add_parser("export", help="write the store's runs, records, cache and ledger as JSON lines")
    se.add_argument("out", metavar="OUT.jsonl")
    se.add_argument("--store", help=STORE_HELP)
    se.set_defaults(func=cmd_store_export)
    si = st.add_parser("import", help="add an export's rows to this store (one transaction)")
    si.add_argument("file", metavar="EXPORT.jsonl")
    si.add_argument("--store", help=STORE_HELP)
    si.set_defaults(func=cmd_store_import)
