"""The command line: `tunegate metrics list` (the metric registry: kinds, direction, level, range, meaning)."""

# Local imports: each command imports what it runs when it runs, so `tunegate --help` answers at once.

from __future__ import annotations

import argparse
import json
from typing import Any

from harness.core.api import UserError


def cmd_metrics_list(args: argparse.Namespace) -> int:
    from harness.core.registry import KINDS
    from harness.scoring.metric_docs import metric_rows

    if args.kind and args.kind not in KINDS:
        raise UserError(KINDS.unknown(args.kind), field="--kind")
    rows = [r for r in metric_rows() if not args.kind or args.kind in r["kinds"].split(", ")]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="metrics (suite.yaml `metrics:`; docs/suite-reference.md)")
    for col in ("metric", "task kinds", "direction", "level", "range", "what it measures"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["kinds"], r["direction"], r["level"], r["range"], r["what"])
    Console(width=160, color_system=None).print(table)
    print("direction: which way is better (a task may reverse it with `direction:`); level: per-sample metrics are "
          "paired item by item, corpus-level ones have no paired test")
    return 0


def add(sub: Any) -> None:
    """Register this group's commands on the top-level subparsers."""
    metrics = sub.add_parser("metrics", help="the metrics suites can name").add_subparsers(
        dest="metrics_command", required=True)
    ml = metrics.add_parser("list", help="every registered metric: task kinds, direction, level, range, meaning")
    ml.add_argument("--kind", help="only the metrics of this task kind (multiple_choice, generate, ...)")
    ml.add_argument("--json", action="store_true", help="the same rows as JSON")
    ml.set_defaults(func=cmd_metrics_list)
