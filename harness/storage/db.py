"""One connection to the store's database: an SQLite file, or a PostgreSQL server (`postgresql://...`).

Both speak the same SQL here: `?` placeholders (rewritten to `%s` for psycopg), `ON CONFLICT` upserts,
TEXT / BIGINT / DOUBLE PRECISION columns. `transaction()` is one write transaction: `BEGIN IMMEDIATE` on
SQLite (writers queue on the file lock), `BEGIN` on PostgreSQL (row locks decide, see ledger.promote).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from harness.core.api import UserError
from harness.core.redact import redact as redact_text

PG_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db", ".db3", ".sqlitedb")


def is_url(ref: str) -> bool:
    return ref.startswith(PG_SCHEMES)


def redact(url: str) -> str:
    """A store reference without its credentials (user-info, `password=` in the query or a libpq keyword
    string), fit for messages and logs: the shared rules of harness.core.redact."""
    return redact_text(url)


def check_url(url: str) -> None:
    """A UserError for a PostgreSQL URL that cannot be right: a port that is not a number in 1..65535, no host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UserError("the port is not a number from 1 to 65535", source=redact(url), field="--store") from None
    if port == 0:
        raise UserError("the port is not a number from 1 to 65535", source=redact(url), field="--store")
    if any(ord(ch) < 32 or ch.isspace() for ch in url):
        raise UserError("a PostgreSQL URL holds no whitespace or control characters", source=redact(url),
                        field="--store")


_LIBPQ_KEYWORD = re.compile(r"(?:^|\s)(host|hostaddr|port|dbname|user|password|passfile|sslmode|sslcert|sslkey|"
                            r"sslpassword|service|options|connect_timeout|application_name|target_session_attrs)"
                            r"\s*=", re.IGNORECASE)


def check_store_ref(ref: str) -> None:
    """A UserError unless `ref` is a supported URL or a path that ends in a known SQLite suffix (or names an
    existing SQLite file): a libpq keyword string or another URL must not silently become a new SQLite file
    whose name holds a password."""
    if is_url(ref):
        check_url(ref)
        return
    if "://" in ref:
        raise UserError(f"not a supported store: only postgresql:// URLs and SQLite files "
                        f"({', '.join(SQLITE_SUFFIXES)})", source=redact(ref), field="--store")
    if _LIBPQ_KEYWORD.search(ref):
        raise UserError("a libpq keyword string is not a store: pass postgresql://USER@HOST/DB (the password in "
                        "$PGPASSWORD or ~/.pgpass), or an SQLite file", source=redact(ref), field="--store")
    if ref.lower().endswith(SQLITE_SUFFIXES) or _is_sqlite_file(ref):
        return
    raise UserError(f"not a store: an SQLite file ends in {', '.join(SQLITE_SUFFIXES)}, a PostgreSQL store is "
                    "postgresql://...", source=redact(ref), field="--store")


def _is_sqlite_file(ref: str) -> bool:
    try:
        with open(ref, "rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


# Errors either driver raises for a constraint that did not hold / a database that went away.
def integrity_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.IntegrityError]
    try:
        import psycopg

        errors.append(psycopg.IntegrityError)
    except ImportError:
        pass
    return tuple(errors)


class Database:
    """A thin, dialect-neutral face over one DB-API connection (autocommit outside `transaction()`)."""

    def __init__(self, raw: Any, dialect: str, location: str) -> None:
        self.raw = raw
        self.dialect = dialect  # "sqlite" | "postgresql"
        self.location = location  # a path, or a URL without its password
        self._depth = 0

    @classmethod
    def sqlite(cls, conn: sqlite3.Connection, location: str) -> Database:
        return cls(conn, "sqlite", location)

    @classmethod
    def postgresql(cls, url: str) -> Database:
        try:
            import psycopg
        except ImportError:
            raise UserError("a PostgreSQL store needs psycopg: pip install 'psycopg[binary]'",
                            source=redact(url), field="--store") from None
        check_url(url)
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            first = redact((str(exc).strip().splitlines() or ["no answer"])[0])
            raise UserError(f"cannot reach the store: {first[:160]}", source=redact(url), field="--store") from None
        return cls(conn, "postgresql", redact(url))

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns a cursor (fetchone, fetchall, rowcount, iteration)."""
        if self.dialect == "postgresql":
            return self.raw.execute(self._sql(sql), tuple(params))
        return self.raw.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(r) for r in rows]
        if not rows:
            return
        if self.dialect == "postgresql":
            with self.raw.cursor() as cur:
                cur.executemany(self._sql(sql), rows)
        else:
            self.raw.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One write transaction, committed on exit and rolled back on an exception (nesting joins the outer)."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            if self.dialect == "postgresql":
                with self.raw.transaction():
                    yield self
            else:
                self.raw.execute("BEGIN IMMEDIATE")
                try:
                    yield self
                except BaseException:
                    self.raw.execute("ROLLBACK")
                    raise
                self.raw.execute("COMMIT")
        finally:
            self._depth = 0

    def lock_schema(self) -> None:
        """Inside a transaction: make concurrent migrators of one PostgreSQL database wait for each other."""
        if self.dialect == "postgresql":
            self.execute("SELECT pg_advisory_xact_lock(7243190)")

    def close(self) -> None:
        self.raw.close()
