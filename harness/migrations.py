"""The store's schema, as numbered migrations recorded in `schema_migrations` (one schema, both databases).

A migration is applied once, inside one transaction together with its row in `schema_migrations`, so a
store is always at a whole version. On PostgreSQL an advisory lock makes concurrent first runs (two CI
jobs on a new database) wait for each other. A store written by a newer tunegate is refused, not guessed at.
To change the schema: append a migration; never edit one that has shipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.api import UserError
from harness.db import Database
from harness.ledger import run_row

# Types both databases accept with the same meaning (SQLite maps them to its INTEGER / REAL / TEXT affinities).
CORE = [
    """CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, key TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, status TEXT NOT NULL,
  model_json TEXT NOT NULL, results_json TEXT)""",
    "CREATE INDEX IF NOT EXISTS runs_key ON runs(key, status)",
    """CREATE TABLE IF NOT EXISTS records (
  run_id TEXT NOT NULL, seq BIGINT NOT NULL, suite TEXT NOT NULL, task TEXT NOT NULL, sample_id TEXT NOT NULL,
  record_json TEXT NOT NULL, PRIMARY KEY (run_id, suite, task, sample_id))""",
    "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, response_json TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)",
    """CREATE TABLE IF NOT EXISTS baselines (
  name TEXT PRIMARY KEY, run_id TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, results_json TEXT NOT NULL,
  samples_json TEXT NOT NULL)""",
]

LEDGER = [
    # Every run the store has seen evaluated or gated, with what identifies it.
    """CREATE TABLE ledger_runs (
  run_id TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL, creator TEXT NOT NULL, label TEXT NOT NULL,
  model_hash TEXT, adapter_hash TEXT, recipe_hash TEXT, data_hash TEXT, suites_json TEXT NOT NULL,
  results_json TEXT NOT NULL, samples_json TEXT NOT NULL)""",
    "CREATE INDEX ledger_runs_created ON ledger_runs(created)",
    # Every gate verdict: which gate file (by content hash), which pair, what it decided and why.
    """CREATE TABLE ledger_verdicts (
  verdict_id TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL, creator TEXT NOT NULL, gate_hash TEXT NOT NULL,
  gate_file TEXT NOT NULL, baseline_run TEXT NOT NULL, candidate_run TEXT NOT NULL, verdict TEXT NOT NULL,
  on_inconclusive TEXT NOT NULL, reason TEXT, inconclusive_rules BIGINT NOT NULL, verdict_json TEXT NOT NULL)""",
    "CREATE INDEX ledger_verdicts_pair ON ledger_verdicts(candidate_run, baseline_run)",
    # A channel points at its current release; `number` is the release count, the compare-and-swap token.
    """CREATE TABLE ledger_channels (
  name TEXT PRIMARY KEY, gate_hash TEXT, gate_file TEXT, gate_text TEXT, created DOUBLE PRECISION NOT NULL,
  creator TEXT NOT NULL, number BIGINT NOT NULL, run_id TEXT)""",
    # Append-only: release N of a channel, how it got there (verdict, or forced with a reason).
    """CREATE TABLE ledger_releases (
  channel TEXT NOT NULL, number BIGINT NOT NULL, run_id TEXT NOT NULL, previous_run TEXT,
  created DOUBLE PRECISION NOT NULL, creator TEXT NOT NULL, verdict_id TEXT, forced BIGINT NOT NULL, reason TEXT,
  PRIMARY KEY (channel, number))""",
]


def _copy_baselines(db: Database) -> None:
    """Saved baselines of a store from before the ledger become channels without a gate, release 1 each."""
    rows = db.execute("SELECT name, run_id, created, results_json, samples_json FROM baselines").fetchall()
    for name, run_id, created, results_json, samples_json in rows:
        results = json.loads(results_json)
        row = run_row(run_id, results, json.loads(samples_json), "migrated from baselines")
        db.execute("INSERT INTO ledger_runs VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (run_id) DO NOTHING",
                   (row[0], created, *row[2:]))
        db.execute("INSERT INTO ledger_channels VALUES (?,NULL,NULL,NULL,?,?,1,?)",
                   (name, created, "migrated from baselines", run_id))
        db.execute("INSERT INTO ledger_releases VALUES (?,1,?,NULL,?,?,NULL,1,?)",
                   (name, run_id, created, "migrated from baselines", "saved baseline before the ledger"))


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: list[str]
    then: Callable[[Database], None] | None = None


MIGRATIONS = [
    Migration(1, "runs, records, response cache, baselines", CORE),
    Migration(2, "release ledger: runs, verdicts, channels, releases", LEDGER, _copy_baselines),
]
LATEST = MIGRATIONS[-1].version


def migrate(db: Database) -> int:
    """Bring the store to LATEST; returns the version it was at. Refuses a store from a newer tunegate."""
    with db.transaction():
        db.lock_schema()
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, "
                   "applied DOUBLE PRECISION NOT NULL)")
        done = {int(r[0]) for r in db.execute("SELECT version FROM schema_migrations").fetchall()}
        if done and max(done) > LATEST:
            raise UserError(f"the store is at schema version {max(done)}, newer than this tunegate knows ({LATEST}): "
                            "upgrade tunegate", source=db.location)
        for mig in MIGRATIONS:
            if mig.version in done:
                continue
            for sql in mig.statements:
                db.execute(sql)
            if mig.then is not None:
                mig.then(db)
            db.execute("INSERT INTO schema_migrations VALUES (?,?,?)", (mig.version, mig.name, time.time()))
    return max(done, default=0)
