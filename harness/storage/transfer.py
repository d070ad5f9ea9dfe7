"""`tunegate store export/import`: move a store (runs, records, response cache, ledger) between databases.

The file is JSON lines: a header, then one {"table", "row"} per row, so SQLite ↔ PostgreSQL needs no
shared driver. Import is one transaction and adds only what the target lacks; a channel that exists on
both sides with different releases is refused, since merging two histories would rewrite one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.core.api import UserError
from harness.core.fileio import atomic_write_text
from harness.storage.db import Database
from harness.storage.migrations import LATEST

FORMAT = "tunegate.store/1"
TABLES = {  # table: (columns, conflict target)
    "runs": ("run_id, key, created, status, model_json, results_json", "run_id"),
    "records": ("run_id, seq, suite, task, sample_id, record_json", "run_id, suite, task, sample_id"),
    "cache": ("key, response_json, created", "key"),
    "ledger_runs": ("run_id, created, creator, label, model_hash, adapter_hash, recipe_hash, data_hash, suites_json, "
                    "results_json, samples_json", "run_id"),
    "ledger_verdicts": ("verdict_id, created, creator, gate_hash, gate_file, baseline_run, candidate_run, verdict, "
                        "on_inconclusive, reason, inconclusive_rules, verdict_json", "verdict_id"),
    "ledger_releases": ("channel, number, run_id, previous_run, created, creator, verdict_id, forced, reason",
                        "channel, number"),
    "ledger_channels": ("name, gate_hash, gate_file, gate_text, created, creator, number, run_id", "name"),
    "review_items": ("item_id, mode, suite, task, sample_id, prompt, reference, models_json, responses_json, axes_json, "
                     "created", "item_id"),
    "review_queues": ("queue_id, mode, reviewers_per_item, seed, runs_json, created", "queue_id"),
    "review_queue_items": ("queue_id, position, item_id", "queue_id, item_id"),
    "review_assignments": ("item_id, reviewer, order_json, created", "item_id, reviewer"),
    "review_judgments": ("judgment_id, item_id, reviewer, choice, winner, ratings_json, comment, order_json, created",
                         "item_id, reviewer"),
}


def export_store(db: Database, out: Path) -> dict[str, int]:
    """Write every row of the store's tables to `out`; returns rows per table."""
    counts: dict[str, int] = {}
    lines = [json.dumps({"format": FORMAT, "schema": LATEST})]
    for table, (columns, _) in TABLES.items():
        counts[table] = 0
        for row in db.execute(f"SELECT {columns} FROM {table}"):
            lines.append(json.dumps({"table": table, "row": list(row)}))
            counts[table] += 1
    atomic_write_text(out, "\n".join(lines) + "\n")
    return counts


def _read(path: Path) -> dict[str, list[list[Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", source=str(path)) from None
    rows: dict[str, list[list[Any]]] = {t: [] for t in TABLES}
    for number, line in enumerate(text.splitlines(), 1):
        try:
            item = json.loads(line)
        except ValueError:
            raise UserError("not valid JSON", source=str(path), line=number) from None
        if number == 1:
            if not isinstance(item, dict) or item.get("format") != FORMAT:
                raise UserError(f"not a {FORMAT} export", source=str(path), line=1, field="format")
            if int(item.get("schema", 0)) > LATEST:
                raise UserError(f"exported from a newer schema ({item.get('schema')} > {LATEST}): upgrade tunegate",
                                source=str(path), line=1, field="schema")
            continue
        table = item.get("table") if isinstance(item, dict) else None
        row = item.get("row") if isinstance(item, dict) else None
        if table not in TABLES or not isinstance(row, list) or len(row) != len(TABLES[table][0].split(",")):
            raise UserError("expected {table, row} of a known table", source=str(path), line=number)
        rows[table].append(row)
    return rows


def import_store(db: Database, path: Path) -> dict[str, int]:
    """Add the export's rows the target lacks, in one transaction; returns rows added per table."""
    rows = _read(path)
    added: dict[str, int] = {}
    with db.transaction():
        for row in rows["ledger_channels"]:
            have = db.execute("SELECT number, run_id FROM ledger_channels WHERE name=?", (row[0],)).fetchone()
            if have is not None and (int(have[0]), have[1]) != (int(row[6]), row[7]):
                raise UserError(f"channel '{row[0]}' exists in both stores with different releases (here release "
                                f"{have[0]}, in the export release {row[6]}); import into a store without it",
                                source=str(path), field="ledger_channels")
        for table, (columns, key) in TABLES.items():
            marks = ",".join("?" * len(columns.split(",")))
            before = int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            db.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT ({key}) DO NOTHING",
                           rows[table])
            added[table] = int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) - before
        if db.dialect == "postgresql":  # explicit ids do not move the identity sequence: move it past them
            db.execute("SELECT setval(pg_get_serial_sequence('review_judgments', 'judgment_id'), "
                       "coalesce((SELECT max(judgment_id) FROM review_judgments), 0) + 1, false)")
    return added
