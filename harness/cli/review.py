"""The command line: `tunegate review` (serve, export, summary). Each handler parses nothing and calls one flow."""

# Local imports: each command imports what it runs when it runs, so `tunegate --help` and a bad argument
# answer at once instead of after loading torch, transformers and the report stack.

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.common import (
    _DefaultSubcommand,
    _positive,
    store_help,
)


def cmd_review(args: argparse.Namespace) -> int:
    from harness.review.app import serve

    return serve(args.runs, mode=args.mode, reviewers_per_item=args.reviewers_per_item, host=args.host,
                 port=args.port, store_path=args.store, seed=args.seed, reset_queue=args.reset_queue,
                 allowed_hosts=args.allow_host or [], only_judged=args.judged_only)


def cmd_review_export(args: argparse.Namespace) -> int:
    from harness.core.fileio import check_outputs
    from harness.review.export import export
    from harness.storage.store import default_store_ref

    check_outputs([("OUT", args.out)], [("--store", args.store or default_store_ref())])
    print(export(args.out, fmt=args.format, store_path=args.store).line())
    return 0


def cmd_review_summary(args: argparse.Namespace) -> int:
    from harness.review.summary import human_eval_summary, summary_json, summary_text

    summary = human_eval_summary(args.store, args.runs or None)
    print(summary_json(summary) if args.json else summary_text(summary))
    return 0


def add(sub: Any) -> None:
    """Register this group's commands on the top-level subparsers."""
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
    rv.add_argument("--judged-only", action="store_true",
                    help="queue only the items of tasks a judge graded (what judge agreement and PPI rules need)")
    rv.add_argument("--store", help=store_help("the review queue and judgments go there"))
    rv.set_defaults(func=cmd_review, interrupted="review server stopped")
    rx = rsub.add_parser("export", help="write judgments as training data")
    rx.add_argument("out", metavar="OUT.jsonl")
    rx.add_argument("--format", choices=["preference"], default="preference",
                    help="preference: {prompt, chosen, rejected} rows; ties and both-bad are left out")
    rx.add_argument("--store", help=store_help("the judgments are read from it"))
    rx.set_defaults(func=cmd_review_export)
    rs = rsub.add_parser("summary", help="win rates, Bradley–Terry, rubric means, reviewer agreement")
    rs.add_argument("runs", nargs="*", metavar="RUN", help="only items from these runs (default: all)")
    rs.add_argument("--json", action="store_true", help="the dict the report takes, as JSON")
    rs.add_argument("--store", help=store_help("the judgments are read from it"))
    rs.set_defaults(func=cmd_review_summary)
