"""Issue 18, the review app: the Host header, exact media types, reviewer names, no 500 on hostile input, a
start that fails writes nothing and exits 2, and a live queue keeps its settings."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.review.app import Session, create_app
from harness.review.queue import build_queue
from harness.storage.review import ReviewDB
from tests.unit.test_hardening_fuzz import DERANDOMIZE, EXAMPLES
from tests.unit.test_hardening_suites import one_line_error
from tests.unit.test_review_queue import make_runs

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path) -> Any:
    db = ReviewDB(tmp_path / "store.sqlite")
    queue = build_queue(make_runs(tmp_path), reviewers_per_item=2, db=db)
    session = Session()
    client = TestClient(create_app(db, queue, session, seed=1, hosts=["review.lan"]), base_url="http://127.0.0.1",
                        raise_server_exceptions=False)
    yield client, session, db
    client.close()
    db.close()


def auth(session: Session) -> dict[str, str]:
    return {"X-Review-Token": session.token, "X-CSRF-Token": session.csrf}


# ---- 3. Host header, media type, reviewer names -------------------------------------------------------

@pytest.mark.parametrize("host,status", [("127.0.0.1:8765", 200), ("localhost:8765", 200), ("[::1]:8765", 200),
                                         ("LOCALHOST.", 200), ("review.lan:9000", 200), ("evil.example", 400),
                                         ("evil.example:8765", 400), ("127.0.0.1.evil.example", 400), ("", 400)])
def test_only_the_servers_own_host_names_are_served(env: Any, host: str, status: int) -> None:
    client, session, _ = env
    r = client.post("/api/next", json={"reviewer": "ann"}, headers={**auth(session), "Host": host})
    assert r.status_code == status, r.text
    assert client.get("/healthz", headers={"Host": host}).status_code == status


@pytest.mark.parametrize("content_type,status", [
    ("application/json", 200), ("application/json; charset=utf-8", 200), ("Application/JSON", 200),
    ("text/plain; x=application/json", 415), ("application/jsonx", 415), ("text/application/json", 415),
    ("application/json-patch+json", 415)])
def test_the_media_type_is_matched_exactly(env: Any, content_type: str, status: int) -> None:
    client, session, _ = env
    r = client.post("/api/next", content=b'{"reviewer": "ann"}', headers={**auth(session), "Content-Type": content_type})
    assert r.status_code == status, r.text


def test_reviewer_names_are_normalised(env: Any) -> None:
    client, session, db = env
    composed, decomposed = "Zo\u00eb", unicodedata.normalize("NFD", "Zo\u00eb")
    assert composed != decomposed
    first = client.post("/api/next", json={"reviewer": composed}, headers=auth(session)).json()["item"]
    again = client.post("/api/next", json={"reviewer": f"  {decomposed} "}, headers=auth(session)).json()["item"]
    assert first["item_id"] == again["item_id"]  # one reviewer, one open assignment
    r = client.post("/api/judgments", json={"item_id": first["item_id"], "reviewer": decomposed, "choice": "A"},
                    headers=auth(session))
    assert r.status_code == 201 and db.judgments()[0]["reviewer"] == composed


@pytest.mark.parametrize("name", ["ann\u202egnp.exe", "\u2066ann\u2069", "an\u200bn", "ann\u200d", "\ufeffann",
                                  "ann\u200e", "a\x1b[31mnn", "\u202a", "\U000e0041ann"])
def test_bidi_and_zero_width_names_are_refused(env: Any, name: str) -> None:
    client, session, db = env
    r = client.post("/api/next", json={"reviewer": name}, headers=auth(session))
    assert r.status_code == 422 and "reviewer" in r.json()["error"]
    assert db.judgments() == []


# ---- 9. hostile input is 4xx, never 500 -----------------------------------------------------------------

def test_hostile_requests_are_4xx(env: Any) -> None:
    client, session, _ = env
    assert client.get("/static/" + "a" * 10_000 + ".js").status_code == 404
    assert client.get("/static/" + "a" * 65 + ".js").status_code == 404
    headers = {**auth(session), "Content-Type": "application/json"}
    assert client.post("/api/judgments", content=b"[" * 5000, headers=headers).status_code == 400
    assert client.post("/api/next", content=b"{\"reviewer\": " + b"[" * 5000, headers=headers).status_code == 400
    huge = b'{"item_id": ' + b"7" * 5000 + b', "reviewer": "ann", "choice": "A"}'
    assert client.post("/api/judgments", content=huge, headers=headers).status_code == 422
    as_text = {"item_id": "7" * 5000, "reviewer": "ann", "choice": "A"}
    assert client.post("/api/judgments", json=as_text, headers=auth(session)).status_code == 422
    ratings = b'{"item_id": "ab", "reviewer": "ann", "ratings": {"safety": ' + b"1" * 5000 + b"}}"
    assert client.post("/api/judgments", content=ratings, headers=headers).status_code == 422


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**40, max_value=10**60)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
FIELDS = st.sampled_from(["reviewer", "item_id", "choice", "ratings", "comment", "extra"])
VALUES = st.one_of(JSON, st.sampled_from(["ann", "A", "B", "tie", "both_bad", "ab" * 12, "\u202eann", "a" * 70]),
                   st.dictionaries(st.sampled_from(["helpfulness", "safety", "x"]), JSON, max_size=3))
BODIES = st.one_of(JSON, st.dictionaries(FIELDS, VALUES, max_size=5))


def test_fuzzed_json_bodies_never_get_a_500(env: Any) -> None:
    client, session, _ = env

    @settings(max_examples=EXAMPLES * 4, deadline=None, derandomize=DERANDOMIZE,
              suppress_health_check=[HealthCheck.too_slow])
    @given(body=BODIES, path=st.sampled_from(["/api/next", "/api/judgments"]))
    def check(body: Any, path: str) -> None:
        r = client.post(path, content=json.dumps(body).encode(), headers={**auth(session),
                                                                          "Content-Type": "application/json"})
        assert r.status_code < 500, (body, r.text)
        assert set(r.json()) <= {"error", "done", "item", "progress", "ok", "judgment_id"}

    check()


def test_fuzzed_raw_bodies_never_get_a_500(env: Any) -> None:
    client, session, _ = env

    @settings(max_examples=EXAMPLES * 2, deadline=None, derandomize=DERANDOMIZE)
    @given(body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
    def check(body: bytes) -> None:
        r = client.post("/api/judgments", content=body, headers={**auth(session), "Content-Type": "application/json"})
        assert r.status_code in (400, 404, 409, 413, 422), (body, r.text)

    check()


# ---- 5. and 9. a start that fails writes nothing; a live queue keeps its settings -------------------------

def _live_queue(tmp_path: Path, per_item: int = 4) -> tuple[list[Path], Path, str]:
    runs = make_runs(tmp_path / "runs", n=17)
    store = tmp_path / "store.sqlite"
    db = ReviewDB(store)
    queue = build_queue(runs, reviewers_per_item=per_item, db=db)
    db.close()
    return runs, store, queue.queue_id


def _per_item(store: Path, queue_id: str) -> int:
    db = ReviewDB(store)
    try:
        return int(db.queue_reviewers(queue_id) or 0)
    finally:
        db.close()


def _one_line(code: int, err: str, *needles: str) -> None:
    """Exit 2 and nothing on stderr but the one error line (no uvicorn log line)."""
    one_line_error(code, err, *needles)
    assert len(err.strip().splitlines()) == 1, err


def test_a_start_on_a_busy_port_is_one_line_and_changes_nothing(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    runs, store, queue_id = _live_queue(tmp_path)
    before = store.read_bytes()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["review", *map(str, runs), "--port", str(port), "--store", str(store)])
        _one_line(code, capsys.readouterr().err, "in use", "--port")
        fresh = tmp_path / "fresh.sqlite"
        code = main(["review", *map(str, runs), "--port", str(port), "--store", str(fresh)])
        _one_line(code, capsys.readouterr().err, "in use")
    assert not fresh.exists()  # nothing written before the port is bound
    assert store.read_bytes() == before and _per_item(store, queue_id) == 4


@pytest.mark.parametrize("host", ["no-such-host.invalid", "999.1.1.1", "bad host name"])
def test_a_bad_host_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, host: str) -> None:
    runs = make_runs(tmp_path / "runs")
    code = main(["review", *map(str, runs), "--host", host, "--port", "0", "--store", str(tmp_path / "s.sqlite")])
    _one_line(code, capsys.readouterr().err, "--host")
    assert not (tmp_path / "s.sqlite").exists()


def test_changing_a_live_queue_needs_reset_queue(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    runs, store, queue_id = _live_queue(tmp_path)
    code = main(["review", *map(str, runs), "--port", "0", "--reviewers-per-item", "2", "--store", str(store)])
    _one_line(code, capsys.readouterr().err, "live with 4 reviewer(s) per item", "--reset-queue")
    assert _per_item(store, queue_id) == 4


def _start(runs: list[Path], store: Path, *extra: str) -> str:
    """Start `tunegate review`, read what it prints up to the URL, stop it with Ctrl-C; returns the output."""
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "review", *map(str, runs), "--port", "0",
                             "--store", str(store), *extra], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "open http" not in seen and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
    time.sleep(0.3)
    proc.send_signal(2)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return seen + out


def test_a_second_start_keeps_the_live_queue(tmp_path: Path) -> None:
    runs, store, queue_id = _live_queue(tmp_path)
    assert re.search(r"16 pairwise items .*, 4 reviewer\(s\) each", _start(runs, store))
    assert _per_item(store, queue_id) == 4
    assert "2 reviewer(s) each" in _start(runs, store, "--reviewers-per-item", "2", "--reset-queue")
    assert _per_item(store, queue_id) == 2
