"""The SQLite store: runs, per-sample records, the response cache and named baselines.

Records are committed as samples finish (WAL mode), so a killed run resumes without losing or
re-scoring a sample. The store knows nothing about reports.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.api import Response, SampleRecord, UserError
from harness.fileio import tunegate_home

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, key TEXT NOT NULL, created REAL NOT NULL, status TEXT NOT NULL,
  model_json TEXT NOT NULL, results_json TEXT
);
CREATE INDEX IF NOT EXISTS runs_key ON runs(key, status);
CREATE TABLE IF NOT EXISTS records (
  run_id TEXT NOT NULL, seq INTEGER NOT NULL, suite TEXT NOT NULL, task TEXT NOT NULL, sample_id TEXT NOT NULL,
  record_json TEXT NOT NULL, PRIMARY KEY (run_id, suite, task, sample_id)
);
CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, response_json TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS baselines (
  name TEXT PRIMARY KEY, run_id TEXT NOT NULL, created REAL NOT NULL, results_json TEXT NOT NULL,
  samples_json TEXT NOT NULL
);
"""


def default_store_path() -> Path:
    """`$TUNEGATE_STORE`, else `store.sqlite` in the tunegate home."""
    env = os.environ.get("TUNEGATE_STORE")
    return Path(env) if env else tunegate_home() / "store.sqlite"


def store_error(path: Path, exc: sqlite3.Error) -> UserError:
    """A SQLite error of the store at `path` as one line that says what to do."""
    from harness.untrusted import excerpt  # the message may quote stored text: keep it short

    text = excerpt(str(exc), 120)
    if any(sign in text for sign in ("malformed", "not a database", "Could not decode")):
        return UserError(f"the store is damaged ({text}); recover what SQLite can read with "
                         f"`sqlite3 {path} .recover | sqlite3 {path}.recovered` and pass --store {path}.recovered, "
                         f"or move {path} aside to start an empty store", source=str(path))
    if "readonly" in text or "read-only" in text:
        return UserError(f"cannot write the store ({text}): make the file and its folder writable, or pass "
                         "--store with another file", source=str(path))
    return UserError(f"cannot use the store: {text}", source=str(path))


class Store:
    """A thin layer over one SQLite file; every write is its own short transaction."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else default_store_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the store's folder {self.path.parent}: {exc.strerror}",
                            source=str(self.path), field="--store") from None
        self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        # A new store holds prompts and judgments: readable by its owner only (the WAL files follow it).
        if not self.path.exists():
            try:
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except FileExistsError:
                pass  # another process created it first
            except OSError as exc:
                raise UserError(f"cannot create the store: {exc.strerror}", source=str(self.path)) from None
        # Switching a new file to WAL needs an exclusive lock and SQLite answers "locked" at once, without
        # its busy timeout, when another process (a second torchrun rank) is creating the same store.
        for attempt in range(100):
            db = None
            try:
                db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(SCHEMA)
                return db
            except sqlite3.OperationalError as exc:
                if db is not None:
                    db.close()
                if "locked" not in str(exc) or attempt == 99:
                    raise store_error(self.path, exc) from None
                time.sleep(0.1)
            except sqlite3.DatabaseError as exc:
                if db is not None:
                    db.close()
                raise store_error(self.path, exc) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.db.close()

    # ---- runs -------------------------------------------------------------------------------------------
    def start_run(self, key: str, model: dict[str, Any], resume: bool) -> tuple[str, bool]:
        """A run id for `key`: the latest unfinished run with that key when resuming, else a new one."""
        if resume:
            row = self.db.execute("SELECT run_id FROM runs WHERE key=? AND status='running' ORDER BY created DESC "
                                  "LIMIT 1", (key,)).fetchone()
            if row:
                return row[0], True
        run_id = uuid.uuid4().hex
        self.db.execute("INSERT INTO runs VALUES (?,?,?,?,?,NULL)",
                        (run_id, key, time.time(), "running", json.dumps(model)))
        return run_id, False

    def finish_run(self, run_id: str, results: dict[str, Any]) -> None:
        self.db.execute("UPDATE runs SET status='done', results_json=? WHERE run_id=?", (json.dumps(results), run_id))

    def run_results(self, run_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT results_json FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    # ---- records ----------------------------------------------------------------------------------------
    def add_records(self, run_id: str, records: Iterable[tuple[int, SampleRecord]],
                    cache: Iterable[tuple[str, Response]] = ()) -> None:
        """Commit scored records and new cache entries together, in one transaction."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO cache VALUES (?,?,?)",
                                [(k, json.dumps(r.to_json()), time.time()) for k, r in cache])
            # OR IGNORE: a record is written once; a resumed run never scores a sample twice.
            self.db.executemany("INSERT OR IGNORE INTO records VALUES (?,?,?,?,?,?)",
                                [(run_id, seq, r.suite, r.task, r.sample_id, json.dumps(r.to_json()))
                                 for seq, r in records])

    def records(self, run_id: str) -> list[SampleRecord]:
        rows = self.db.execute("SELECT record_json FROM records WHERE run_id=? ORDER BY seq", (run_id,))
        return [SampleRecord.from_json(json.loads(r[0])) for r in rows]

    def done_ids(self, run_id: str) -> set[tuple[str, str, str]]:
        rows = self.db.execute("SELECT suite, task, sample_id FROM records WHERE run_id=?", (run_id,))
        return {tuple(r) for r in rows}

    # ---- response cache ---------------------------------------------------------------------------------
    def cached(self, keys: list[str]) -> dict[str, Response]:
        out: dict[str, Response] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in self.db.execute(f"SELECT key, response_json FROM cache WHERE key IN ({marks})", chunk):
                out[key] = Response.from_json(json.loads(value))
        return out

    # ---- baselines --------------------------------------------------------------------------------------
    def save_baseline(self, name: str, run_id: str, results: dict[str, Any], samples: list[dict[str, Any]]) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO baselines VALUES (?,?,?,?,?)",
                            (name, run_id, time.time(), json.dumps(results), json.dumps(samples)))

    def load_baseline(self, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        row = self.db.execute("SELECT results_json, samples_json FROM baselines WHERE name=?", (name,)).fetchone()
        return (json.loads(row[0]), json.loads(row[1])) if row else None

    def baselines(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM baselines ORDER BY name")]
