"""The store: runs, per-sample records and the response cache, over the database the ledger shares
(harness.storage.ledger works on `Store.conn`; the store itself knows no release policy).

An SQLite file by default (WAL mode), or a PostgreSQL database shared by a team (`--store postgresql://...`
or `$TUNEGATE_STORE`); both hold one schema (harness.storage.migrations). Records are committed as samples finish,
so a killed run resumes without losing or re-scoring a sample. The store knows nothing about reports.
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

from harness.core.api import Response, SampleRecord, UserError
from harness.core.fileio import tunegate_home
from harness.storage.db import Database, check_store_ref, is_url
from harness.storage.migrations import migrate


def default_store_ref() -> str:
    """`$TUNEGATE_STORE` (a file or a postgresql:// URL), else `store.sqlite` in the tunegate home."""
    env = os.environ.get("TUNEGATE_STORE")
    return env if env else str(tunegate_home() / "store.sqlite")


def default_store_path() -> Path:
    """The default store as a path (meaningful for an SQLite store)."""
    return Path(default_store_ref())


def store_error(path: Path, exc: sqlite3.Error) -> UserError:
    """A SQLite error of the store at `path` as one line that says what to do."""
    from harness.core.untrusted import excerpt  # the message may quote stored text: keep it short

    text = excerpt(str(exc), 120)
    if any(sign in text for sign in ("malformed", "not a database", "Could not decode")):
        return UserError(f"the store is damaged ({text}); recover what SQLite can read with "
                         f"`sqlite3 {path} .recover | sqlite3 {path}.recovered` and pass --store {path}.recovered, "
                         "or move the file aside to start an empty store", source=str(path))
    if "readonly" in text or "read-only" in text:
        return UserError(f"cannot write the store ({text}): make the file and its folder writable, or pass "
                         "--store with another file", source=str(path))
    return UserError(f"cannot use the store: {text}", source=str(path))


class Store:
    """A thin layer over one database; every write is its own short transaction."""

    def __init__(self, path: Path | str | None = None) -> None:
        ref = str(path) if path else default_store_ref()
        check_store_ref(ref)
        self.db: Any  # the driver's own connection (sqlite3.Connection for SQLite)
        if is_url(ref):
            self.conn = Database.postgresql(ref)
            self.path = Path(self.conn.location)  # for messages only: a PostgreSQL store has no file
            self.db = self.conn.raw
        else:
            self.path = Path(ref)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"cannot create the store's folder {self.path.parent}: {exc.strerror}",
                                source=str(self.path), field="--store") from None
            self.db = self._open()
            self.conn = Database.sqlite(self.db, str(self.path))
        self.location = self.conn.location
        try:
            migrate(self.conn)
        except sqlite3.OperationalError as exc:
            self.close()
            raise store_error(self.path, exc) from None
        except BaseException:
            self.close()
            raise

    @property
    def dialect(self) -> str:
        return self.conn.dialect

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
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a damaged file fails here
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
        self.conn.close()

    # ---- runs -------------------------------------------------------------------------------------------
    def start_run(self, key: str, model: dict[str, Any], resume: bool) -> tuple[str, bool]:
        """A run id for `key`: the latest unfinished run with that key when resuming, else a new one."""
        if resume:
            row = self.conn.execute("SELECT run_id FROM runs WHERE key=? AND status='running' ORDER BY created DESC "
                                    "LIMIT 1", (key,)).fetchone()
            if row:
                return row[0], True
        run_id = uuid.uuid4().hex
        self.conn.execute("INSERT INTO runs VALUES (?,?,?,?,?,NULL)",
                          (run_id, key, time.time(), "running", json.dumps(model)))
        return run_id, False

    def finish_run(self, run_id: str, results: dict[str, Any]) -> None:
        self.conn.execute("UPDATE runs SET status='done', results_json=? WHERE run_id=?",
                          (json.dumps(results), run_id))

    def run_results(self, run_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT results_json FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    # ---- records ----------------------------------------------------------------------------------------
    def add_records(self, run_id: str, records: Iterable[tuple[int, SampleRecord]],
                    cache: Iterable[tuple[str, Response]] = ()) -> None:
        """Commit scored records and new cache entries together, in one transaction."""
        now = time.time()
        with self.conn.transaction() as db:
            db.executemany("INSERT INTO cache VALUES (?,?,?) ON CONFLICT (key) DO UPDATE SET "
                           "response_json=excluded.response_json, created=excluded.created",
                           [(k, json.dumps(r.to_json()), now) for k, r in cache])
            # DO NOTHING: a record is written once; a resumed run never scores a sample twice.
            db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                           [(run_id, seq, r.suite, r.task, r.sample_id, json.dumps(r.to_json()))
                            for seq, r in records])

    def records(self, run_id: str) -> list[SampleRecord]:
        rows = self.conn.execute("SELECT record_json FROM records WHERE run_id=? ORDER BY seq", (run_id,))
        return [SampleRecord.from_json(json.loads(r[0])) for r in rows]

    def done_ids(self, run_id: str) -> set[tuple[str, str, str]]:
        rows = self.conn.execute("SELECT suite, task, sample_id FROM records WHERE run_id=?", (run_id,))
        return {(r[0], r[1], r[2]) for r in rows}

    # ---- response cache (harness.core.api.ResponseCache) -------------------------------------------------
    def add_cached(self, entries: list[tuple[str, Response]]) -> None:
        """Keep new cache entries (a judge's answers, a generation) without any record."""
        self.add_records("", [], entries)

    def cached(self, keys: list[str]) -> dict[str, Response]:
        out: dict[str, Response] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in self.conn.execute(f"SELECT key, response_json FROM cache WHERE key IN ({marks})", chunk):
                out[key] = Response.from_json(json.loads(value))
        return out
