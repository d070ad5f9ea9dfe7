"""`tunegate store export/import`: move a store (runs, records, response cache, ledger) between databases.

The file is JSON lines: a header, then one {"table", "row"} per row, so SQLite ↔ PostgreSQL needs no
shared driver. Import is one transaction and adds only what the target lacks; a channel that exists on
both sides with different releases is refused, since merging two histories would rewrite one.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from harness.core.api import UserError
from harness.core.fileio import atomic_write_text, require_file
from harness.core.untrusted import excerpt
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


# Column types of the export (the schema's NOT NULL TEXT / BIGINT / DOUBLE PRECISION): what a row must hold
# before it reaches the database, where SQLite would store anything and PostgreSQL would fail mid-transaction.
_INTEGER = {"seq", "number", "forced", "inconclusive_rules", "reviewers_per_item", "seed", "position", "winner",
            "judgment_id"}
_REAL = {"created"}
_NULLABLE = {"results_json", "model_hash", "adapter_hash", "recipe_hash", "data_hash", "reason", "previous_run",
             "verdict_id", "gate_hash", "gate_file", "gate_text", "run_id", "reference", "choice", "winner",
             "ratings_json", "comment", "judgment_id"}
_KEYS_NOT_NULL = {"runs": {"run_id"}, "ledger_channels": {"name"}, "ledger_releases": {"run_id"}}


def _check_row(table: str, row: list[Any], source: str, number: int) -> None:
    """Each value of the right type for its column; a one-line UserError naming the column otherwise."""
    for name, value in zip((c.strip() for c in TABLES[table][0].split(",")), row):
        problem = None
        if value is None:
            if name not in _NULLABLE or name in _KEYS_NOT_NULL.get(table, ()):
                problem = "is missing (null)"
        elif name in _INTEGER:
            if not isinstance(value, int) or isinstance(value, bool) or abs(value) >= 2**63:
                problem = "is not an integer"
        elif name in _REAL:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                problem = "is not a finite number"
        elif not isinstance(value, str):
            problem = "is not text"
        if problem:
            raise UserError(f"{table}.{name} {problem}", source=source, line=number, field=f"{table}.{name}")


def _read(path: Path) -> dict[str, list[list[Any]]]:
    require_file(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise UserError(f"not valid UTF-8 (byte {exc.start})", source=str(path)) from None
    rows: dict[str, list[list[Any]]] = {t: [] for t in TABLES}
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            raise UserError("not valid JSON (or nested too deep)", source=str(path), line=number) from None
        if number == 1:
            if not isinstance(item, dict) or item.get("format") != FORMAT:
                raise UserError(f"not a {FORMAT} export", source=str(path), line=1, field="format")
            schema = item.get("schema", 0)
            if not isinstance(schema, int) or isinstance(schema, bool):
                raise UserError("the schema version is not an integer", source=str(path), line=1, field="schema")
            if schema > LATEST:
                raise UserError(f"exported from a newer schema ({item.get('schema')} > {LATEST}): upgrade tunegate",
                                source=str(path), line=1, field="schema")
            continue
        table = item.get("table") if isinstance(item, dict) else None
        row = item.get("row") if isinstance(item, dict) else None
        if table not in TABLES or not isinstance(row, list) or len(row) != len(TABLES[table][0].split(",")):
            raise UserError("expected {table, row} of a known table", source=str(path), line=number)
        _check_row(table, row, str(path), number)
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
        rows["ledger_verdicts"] = [_mark_imported(row, path) for row in rows["ledger_verdicts"]]
        for table, (columns, key) in TABLES.items():
            marks = ",".join("?" * len(columns.split(",")))
            before = int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            db.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT ({key}) DO NOTHING",
                           rows[table])
            added[table] = int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) - before
        _check_continuity(db, sorted({row[0] for row in rows["ledger_releases"] + rows["ledger_channels"]}), path)
        if db.dialect == "postgresql":  # explicit ids do not move the identity sequence: move it past them
            db.execute("SELECT setval(pg_get_serial_sequence('review_judgments', 'judgment_id'), "
                       "coalesce((SELECT max(judgment_id) FROM review_judgments), 0) + 1, false)")
    return added


def _mark_imported(row: list[Any], path: Path) -> list[Any]:
    """A verdict row as imported: its verdict_json says so, and `promote` does not trust it (harness.storage.ledger)
    until the gate is run here on the imported runs. Whatever the file claims, the mark is set here."""
    try:
        verdict = json.loads(row[-1])
    except (ValueError, RecursionError):
        verdict = None
    if not isinstance(verdict, dict):
        raise UserError("ledger_verdicts.verdict_json is not a JSON object", source=str(path),
                        field="ledger_verdicts.verdict_json")
    verdict["imported"] = {"from": str(path), "at": time.time()}
    return [*row[:-1], json.dumps(verdict)]


def _check_continuity(db: Database, names: list[str], path: Path) -> None:
    """Each channel the import touched: releases 1..N without a gap, each following the one before, every
    release's run in the ledger, and the channel pointing at release N (else the import is refused whole)."""
    for name in names:
        shown = excerpt(name, 60)
        have = db.execute("SELECT number, run_id FROM ledger_channels WHERE name=?", (name,)).fetchone()
        found = db.execute("SELECT number, run_id, previous_run FROM ledger_releases WHERE channel=? ORDER BY number",
                           (name,)).fetchall()
        if have is None:
            raise UserError(f"the export holds releases of channel '{shown}' but not the channel", source=str(path),
                            field="ledger_releases")
        numbers = [int(r[0]) for r in found]
        if numbers != list(range(1, len(numbers) + 1)) or int(have[0]) != len(numbers):
            raise UserError(f"channel '{shown}' would have releases {numbers[:10]} with the channel at release "
                            f"{have[0]}: releases must run 1..N without a gap and the channel point at N",
                            source=str(path), field="ledger_releases")
        for (number, run_id, previous), before in zip(found, [None, *found]):
            if (previous or None) != (before[1] if before else None):
                raise UserError(f"release {number} of channel '{shown}' does not follow release {int(number) - 1}",
                                source=str(path), field="ledger_releases")
            if db.execute("SELECT 1 FROM ledger_runs WHERE run_id=?", (run_id,)).fetchone() is None:
                raise UserError(f"release {number} of channel '{shown}' names a run the ledger lacks",
                                source=str(path), field="ledger_releases")
        if found and found[-1][1] != have[1]:
            raise UserError(f"channel '{shown}' points at another run than its release {have[0]}", source=str(path),
                            field="ledger_channels")
