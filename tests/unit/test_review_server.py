"""The real server over HTTP on 127.0.0.1: 20 concurrent reviewers, and a SIGKILL that loses nothing."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from harness.review.app import Session, create_app, free_port, serve_in_thread
from harness.review.queue import build_queue
from harness.storage.review import ReviewDB
from tests.unit.test_review_queue import make_runs

REPO = Path(__file__).resolve().parents[2]


def reviewer_loop(base: str, session: Session, who: str, limit: int, acked: list[tuple[str, str]],
                  errors: list[str]) -> None:
    """Take items and judge them until the queue is empty for `who` (at most `limit` rounds)."""
    headers = {"X-Review-Token": session.token, "X-CSRF-Token": session.csrf}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for _ in range(limit):
            try:
                nxt = client.post("/api/next", json={"reviewer": who})
                if nxt.status_code != 200 or nxt.json()["done"]:
                    errors.extend([f"next {nxt.status_code}"] if nxt.status_code != 200 else [])
                    return
                item_id = nxt.json()["item"]["item_id"]
                r = client.post("/api/judgments", json={"item_id": item_id, "reviewer": who,
                                                        "choice": "AB"[len(acked) % 2]})
            except httpx.TransportError as exc:  # the server went away (the kill test)
                errors.append(f"transport {type(exc).__name__}")
                return
            if r.status_code != 201:
                errors.append(f"judge {r.status_code}")
                return
            acked.append((item_id, who))


@pytest.mark.slow
def test_twenty_reviewers_post_a_thousand_judgments_each_stored_once(tmp_path: Path) -> None:
    db = ReviewDB(tmp_path / "store.sqlite")
    queue = build_queue(make_runs(tmp_path, n=51), reviewers_per_item=20, db=db)
    assert len(queue.items) == 50
    session = Session()
    acked: list[tuple[str, str]] = []
    errors: list[str] = []
    with serve_in_thread(create_app(db, queue, session)) as base:
        threads = [threading.Thread(target=reviewer_loop, args=(base, session, f"reviewer-{k}", 60, acked, errors))
                   for k in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(acked) == 1000 and len(set(acked)) == 1000
    check = sqlite3.connect(tmp_path / "store.sqlite")
    rows = check.execute("SELECT item_id, reviewer FROM review_judgments").fetchall()
    assert len(rows) == 1000 and set(rows) == set(acked)
    per_item = check.execute("SELECT count(*) FROM review_judgments GROUP BY item_id").fetchall()
    assert {c for (c,) in per_item} == {20} and len(per_item) == 50
    check.close()
    db.close()


def test_a_killed_server_loses_no_acknowledged_judgment(tmp_path: Path) -> None:
    runs = make_runs(tmp_path, n=201)
    store = tmp_path / "store.sqlite"
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "harness.cli", "review", *map(str, runs), "--port", str(port),
           "--store", str(store), "--reviewers-per-item", "3"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    acked: list[tuple[str, str]] = []
    try:
        url = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not url:
            line = proc.stdout.readline() if proc.stdout else ""
            match = re.search(r"open (http://\S+/\?token=(\S+))", line)
            if match:
                url, token = match.group(1), match.group(2)
            elif not line and proc.poll() is not None:
                break
        assert url, "the server printed no URL"
        assert url.startswith(f"http://127.0.0.1:{port}/")
        base = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:  # bounded wait for the socket
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        session = Session(token)
        errors: list[str] = []
        threads = [threading.Thread(target=reviewer_loop, args=(base, session, f"r{k}", 200, acked, errors))
                   for k in range(3)]
        for t in threads:
            t.start()
        while len(acked) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # mid-session: reviewers are still posting
        still_posting = any(t.is_alive() for t in threads)
        for t in threads:
            t.join(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
    assert still_posting and 30 <= len(acked) < 600
    reopened = ReviewDB(store)
    rows = {(j["item_id"], j["reviewer"]) for j in reopened.judgments()}
    reopened.close()
    assert set(acked) <= rows
