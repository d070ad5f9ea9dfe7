"""Review tables in the shared store: items, queues, assignments and judgments.

The tables live in the same database as the runs (`harness.storage.store`): an SQLite file in WAL mode, or a
team's PostgreSQL database. Every judgment is one short transaction committed before the server answers
(SQLite: `BEGIN IMMEDIATE` with `synchronous=FULL`), so an acknowledged judgment survives a killed server.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.api import HumanJudgments
from harness.storage.db import Database, integrity_errors  # the tables: harness.storage.migrations
from harness.storage.store import Store

# An assignment nobody answered for this long no longer holds a reviewer slot of its item.
ASSIGNMENT_TTL_S = 30 * 60
CHOICES = ("A", "B", "tie", "both_bad")


class DuplicateJudgment(Exception):
    """The reviewer has already judged this item."""


class NotAssigned(Exception):
    """The item exists but was never shown to this reviewer."""


class UnknownItem(Exception):
    """No such item in the store."""


@dataclass
class Item:
    """One thing to judge: a prompt and one (rating) or two (pairwise) responses, with their models."""

    item_id: str
    mode: str
    suite: str
    task: str
    sample_id: str
    prompt: str
    reference: str | None
    models: list[dict[str, str]]  # [{"label", "run_id"}], parallel to responses
    responses: list[str]
    axes: list[str]


class ReviewDB:
    """The review tables over one connection to the shared store; a lock serialises this process's writers."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.store = Store(path)
        self.path = self.store.path
        self.db: Database = self.store.conn
        if self.db.dialect == "sqlite":
            # FULL: the WAL is synced at every commit, so an acknowledged judgment survives even a power cut.
            self.db.execute("PRAGMA synchronous=FULL")
        self.lock = threading.RLock()

    def close(self) -> None:
        self.store.close()

    def _write(self) -> _Tx:
        return _Tx(self)

    # ---- items and queues -------------------------------------------------------------------------------
    def queue_reviewers(self, queue_id: str) -> int | None:
        """Reviewers per item of a stored queue, None when there is no such queue."""
        with self.lock:
            row = self.db.execute("SELECT reviewers_per_item FROM review_queues WHERE queue_id=?",
                                  (queue_id,)).fetchone()
        return int(row[0]) if row else None

    def add_queue(self, queue_id: str, mode: str, reviewers_per_item: int, seed: int, runs: list[dict[str, Any]],
                  items: list[Item], reset: bool = False) -> None:
        """Store the items (once: ids are content hashes) and the queue's seeded order. A stored queue keeps
        its reviewers per item unless `reset`."""
        order = list(range(len(items)))
        random.Random(seed).shuffle(order)
        now = time.time()
        with self._write() as db:
            db.executemany("INSERT INTO review_items VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                           [(it.item_id, it.mode, it.suite, it.task, it.sample_id, it.prompt, it.reference,
                             json.dumps(it.models), json.dumps(it.responses), json.dumps(it.axes), now)
                            for it in items])
            db.execute("INSERT INTO review_queues VALUES (?,?,?,?,?,?) ON CONFLICT(queue_id) DO "
                       + ("UPDATE SET reviewers_per_item=excluded.reviewers_per_item" if reset else "NOTHING"),
                       (queue_id, mode, reviewers_per_item, seed, json.dumps(runs), now))
            db.executemany("INSERT INTO review_queue_items VALUES (?,?,?) ON CONFLICT DO NOTHING",
                           [(queue_id, pos, items[i].item_id) for pos, i in enumerate(order)])

    def item(self, item_id: str) -> Item | None:
        with self.lock:
            row = self.db.execute("SELECT * FROM review_items WHERE item_id=?", (item_id,)).fetchone()
        return _item(row) if row else None

    def items(self) -> Iterator[Item]:
        with self.lock:
            rows = self.db.execute("SELECT * FROM review_items ORDER BY created, item_id").fetchall()
        return (_item(r) for r in rows)

    # ---- the queue --------------------------------------------------------------------------------------
    def next_for(self, queue_id: str, reviewer: str, rng: random.Random) -> tuple[Item, list[int]] | None:
        """The reviewer's open assignment, else a new one on the first item that still needs reviewers."""
        with self._write() as db:
            row = db.execute(
                "SELECT a.item_id, a.order_json FROM review_assignments a JOIN review_queue_items q "
                "ON q.item_id=a.item_id AND q.queue_id=? WHERE a.reviewer=? AND NOT EXISTS (SELECT 1 FROM "
                "review_judgments j WHERE j.item_id=a.item_id AND j.reviewer=a.reviewer) ORDER BY q.position LIMIT 1",
                (queue_id, reviewer)).fetchone()
            if row:
                item = self.item(row[0])
                assert item is not None  # assignments only ever point at stored items
                return item, json.loads(row[1])
            need = db.execute("SELECT reviewers_per_item FROM review_queues WHERE queue_id=?", (queue_id,)).fetchone()
            stale = time.time() - ASSIGNMENT_TTL_S
            row = db.execute(
                "SELECT q.item_id FROM review_queue_items q WHERE q.queue_id=? AND NOT EXISTS (SELECT 1 FROM "
                "review_assignments a WHERE a.item_id=q.item_id AND a.reviewer=?) AND (SELECT count(*) FROM "
                "review_assignments a WHERE a.item_id=q.item_id AND (a.created>? OR EXISTS (SELECT 1 FROM "
                "review_judgments j WHERE j.item_id=a.item_id AND j.reviewer=a.reviewer))) < ? "
                "ORDER BY q.position LIMIT 1", (queue_id, reviewer, stale, need[0])).fetchone()
            if not row:
                return None
            item = self.item(row[0])
            assert item is not None
            # Blind and randomised: the reviewer sees the responses in this order, which is recorded.
            order = list(range(len(item.responses)))
            rng.shuffle(order)
            db.execute("INSERT INTO review_assignments VALUES (?,?,?,?)",
                       (item.item_id, reviewer, json.dumps(order), time.time()))
            return item, order

    def progress(self, queue_id: str, reviewer: str) -> dict[str, int]:
        """Judgments by this reviewer, by everyone, and how many the queue needs in all."""
        with self.lock:
            n_items, need = self.db.execute(
                "SELECT count(*), (SELECT reviewers_per_item FROM review_queues WHERE queue_id=?) "
                "FROM review_queue_items WHERE queue_id=?", (queue_id, queue_id)).fetchone()
            mine, total = self.db.execute(
                "SELECT coalesce(sum(CASE WHEN j.reviewer=? THEN 1 ELSE 0 END), 0), count(*) FROM review_judgments j JOIN review_queue_items q "
                "ON q.item_id=j.item_id AND q.queue_id=?", (reviewer, queue_id)).fetchone()
        return {"reviewer_done": int(mine), "reviewer_max": int(n_items), "done": int(total),
                "total": int(n_items) * int(need or 0)}

    # ---- judgments --------------------------------------------------------------------------------------
    def add_judgment(self, item_id: str, reviewer: str, *, choice: str | None, ratings: dict[str, int] | None,
                     comment: str | None) -> int:
        """Commit one judgment; the shown choice (A = left) is mapped to the model index it stands for."""
        with self._write() as db:
            if not db.execute("SELECT 1 FROM review_items WHERE item_id=?", (item_id,)).fetchone():
                raise UnknownItem(item_id)
            row = db.execute("SELECT order_json FROM review_assignments WHERE item_id=? AND reviewer=?",
                             (item_id, reviewer)).fetchone()
            if not row:
                raise NotAssigned(item_id)
            order = json.loads(row[0])
            winner = {"A": order[0], "B": order[1]}.get(choice or "") if len(order) == 2 else None
            if db.execute("SELECT 1 FROM review_judgments WHERE item_id=? AND reviewer=?",
                          (item_id, reviewer)).fetchone():
                raise DuplicateJudgment(item_id)
            try:
                cur = db.execute("INSERT INTO review_judgments (item_id, reviewer, choice, winner, ratings_json, "
                                 "comment, order_json, created) VALUES (?,?,?,?,?,?,?,?) RETURNING judgment_id",
                                 (item_id, reviewer, choice, winner, json.dumps(ratings) if ratings else None,
                                  comment, row[0], time.time()))
                return int(cur.fetchone()[0])
            except integrity_errors():  # another server process got there between the check and the insert
                raise DuplicateJudgment(item_id) from None

    def judgments(self, mode: str | None = None) -> list[dict[str, Any]]:
        """Every judgment joined with its item, oldest first."""
        sql = ("SELECT j.judgment_id, j.item_id, j.reviewer, j.choice, j.winner, j.ratings_json, j.comment, "
               "j.order_json, j.created, i.mode FROM review_judgments j JOIN review_items i ON i.item_id=j.item_id")
        args: tuple[Any, ...] = ()
        if mode:
            sql, args = sql + " WHERE i.mode=?", (mode,)
        with self.lock:
            rows = self.db.execute(sql + " ORDER BY j.judgment_id", args).fetchall()
        return [{"judgment_id": r[0], "item_id": r[1], "reviewer": r[2], "choice": r[3], "winner": r[4],
                 "ratings": json.loads(r[5]) if r[5] else None, "comment": r[6], "order": json.loads(r[7]),
                 "created": r[8], "mode": r[9]} for r in rows]

    def count_judgments(self) -> int:
        with self.lock:
            return int(self.db.execute("SELECT count(*) FROM review_judgments").fetchone()[0])


class _Tx:
    """`with db._write() as conn:` one write transaction under the process lock, committed on exit."""

    def __init__(self, owner: ReviewDB) -> None:
        self.owner = owner
        self._tx: Any = None

    def __enter__(self) -> Database:
        self.owner.lock.acquire()
        try:
            self._tx = self.owner.db.transaction()
            return self._tx.__enter__()
        except BaseException:
            self.owner.lock.release()
            raise

    def __exit__(self, *exc: Any) -> None:
        try:
            self._tx.__exit__(*exc)
        finally:
            self.owner.lock.release()


def _item(row: tuple[Any, ...]) -> Item:
    return Item(item_id=row[0], mode=row[1], suite=row[2], task=row[3], sample_id=row[4], prompt=row[5],
                reference=row[6], models=json.loads(row[7]), responses=json.loads(row[8]), axes=json.loads(row[9]))


def human_judgments(path: Path | str | None = None) -> HumanJudgments:
    """Everything people said in the review app of the store at `path`, as values for the gate and reports."""
    db = ReviewDB(path)
    try:
        return HumanJudgments(list(db.items()), db.judgments("rating"), db.judgments("pairwise"))
    finally:
        db.close()
