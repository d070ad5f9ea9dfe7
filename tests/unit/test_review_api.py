"""Review HTTP API: session token, CSRF, size limits, and a clean 4xx for every bad request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harness.review.app import MAX_BODY, MAX_COMMENT, Session, create_app
from harness.review.queue import build_queue
from harness.storage.review import ReviewDB
from tests.unit.test_review_queue import make_runs


@pytest.fixture
def env(tmp_path: Path) -> Any:
    db = ReviewDB(tmp_path / "store.sqlite")
    queue = build_queue(make_runs(tmp_path, evil=True), reviewers_per_item=2, db=db)
    session = Session()
    client = TestClient(create_app(db, queue, session, seed=3), base_url="http://127.0.0.1",
                        raise_server_exceptions=False)
    yield client, session, db, queue
    client.close()
    db.close()


def auth(session: Session) -> dict[str, str]:
    return {"X-Review-Token": session.token, "X-CSRF-Token": session.csrf}


def stored(db: ReviewDB) -> list[tuple[Any, ...]]:
    return db.db.execute("SELECT item_id, reviewer, choice, comment FROM review_judgments ORDER BY judgment_id").fetchall()


def take(client: TestClient, session: Session, who: str = "ann") -> dict[str, Any]:
    r = client.post("/api/next", json={"reviewer": who}, headers=auth(session))
    assert r.status_code == 200
    return r.json()["item"]


def test_the_printed_link_sets_a_strict_cookie_and_drops_the_token(env: Any) -> None:
    client, session, _, _ = env
    assert client.get("/").status_code == 401
    assert client.get("/?token=wrong").status_code == 401
    r = client.get(f"/?token={session.token}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = client.get("/")
    assert page.status_code == 200 and session.csrf in page.text and session.token not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]


def test_a_judgment_is_stored_with_the_model_it_favours(env: Any) -> None:
    client, session, db, _ = env
    item = take(client, session)
    r = client.post("/api/judgments", json={"item_id": item["item_id"], "reviewer": "ann", "choice": "B",
                                            "comment": "B is <b>right</b>"}, headers=auth(session))
    assert r.status_code == 201 and r.json()["progress"]["reviewer_done"] == 1
    order = db.db.execute("SELECT order_json, winner FROM review_judgments").fetchone()
    assert order[1] == [int(x) for x in order[0].strip("[]").split(",")][1]
    assert stored(db) == [(item["item_id"], "ann", "B", "B is <b>right</b>")]


def test_model_names_never_reach_the_reviewer(env: Any) -> None:
    client, session, _, _ = env
    r = client.post("/api/next", json={"reviewer": "ann"}, headers=auth(session))
    assert set(r.json()["item"]) == {"item_id", "mode", "where", "prompt", "reference", "axes", "responses"}
    assert "run-med-lora" not in r.text and "run-base" not in r.text and "label" not in r.text


def test_missing_token_is_401_and_nothing_is_stored(env: Any) -> None:
    client, session, db, _ = env
    item = take(client, session)
    r = client.post("/api/judgments", json={"item_id": item["item_id"], "reviewer": "ann", "choice": "A"},
                    headers={"X-CSRF-Token": session.csrf})
    assert r.status_code == 401 and "traceback" not in r.text.lower()
    assert client.post("/api/next", json={"reviewer": "ann"}).status_code == 401
    assert stored(db) == []


def test_missing_or_wrong_csrf_is_403(env: Any) -> None:
    client, session, db, _ = env
    item = take(client, session)
    body = {"item_id": item["item_id"], "reviewer": "ann", "choice": "A"}
    assert client.post("/api/judgments", json=body, headers={"X-Review-Token": session.token}).status_code == 403
    bad = {"X-Review-Token": session.token, "X-CSRF-Token": "0" * 64}
    assert client.post("/api/judgments", json=body, headers=bad).status_code == 403
    evil_origin = {**auth(session), "Origin": "http://evil.example"}
    assert client.post("/api/judgments", json=body, headers=evil_origin).status_code == 403
    assert stored(db) == []


def test_unknown_item_is_404(env: Any) -> None:
    client, session, db, _ = env
    r = client.post("/api/judgments", json={"item_id": "ab" * 12, "reviewer": "ann", "choice": "A"},
                    headers=auth(session))
    assert r.status_code == 404 and r.json() == {"error": "unknown item"}
    assert stored(db) == []


def test_oversized_comment_and_body_are_refused(env: Any) -> None:
    client, session, db, _ = env
    item = take(client, session)
    body = {"item_id": item["item_id"], "reviewer": "ann", "choice": "A", "comment": "x" * (MAX_COMMENT + 1)}
    r = client.post("/api/judgments", json=body, headers=auth(session))
    assert r.status_code == 422 and "comment" in r.json()["error"]
    body["comment"] = "x" * (MAX_BODY + 10)
    assert client.post("/api/judgments", json=body, headers=auth(session)).status_code == 413
    assert stored(db) == []


def test_a_second_submission_is_409_and_stored_once(env: Any) -> None:
    client, session, db, _ = env
    item = take(client, session)
    body = {"item_id": item["item_id"], "reviewer": "ann", "choice": "tie"}
    assert client.post("/api/judgments", json=body, headers=auth(session)).status_code == 201
    assert client.post("/api/judgments", json=body, headers=auth(session)).status_code == 409
    body["choice"] = "A"
    assert client.post("/api/judgments", json=body, headers=auth(session)).status_code == 409
    assert stored(db) == [(item["item_id"], "ann", "tie", None)]


def test_malformed_json_and_wrong_types_are_4xx(env: Any) -> None:
    client, session, db, _ = env
    item = take(client, session)
    headers = {**auth(session), "Content-Type": "application/json"}
    assert client.post("/api/judgments", content=b'{"item_id": ', headers=headers).status_code == 400
    assert client.post("/api/judgments", content=b"\xff\xfe", headers=headers).status_code == 400
    form = {**auth(session), "Content-Type": "application/x-www-form-urlencoded"}
    assert client.post("/api/judgments", content=b"choice=A", headers=form).status_code == 415
    for body in ([1, 2], {"item_id": item["item_id"], "reviewer": "ann", "choice": "C"},
                 {"item_id": item["item_id"], "reviewer": "ann", "choice": "A", "extra": 1},
                 {"item_id": item["item_id"], "reviewer": "", "choice": "A"},
                 {"item_id": item["item_id"], "reviewer": "a\x00b", "choice": "A"},
                 {"item_id": "<script>", "reviewer": "ann", "choice": "A"},
                 {"item_id": item["item_id"], "reviewer": "ann", "ratings": {"safety": 3}}):
        r = client.post("/api/judgments", json=body, headers=auth(session))
        assert r.status_code == 422, body
        assert set(r.json()) == {"error"}
    assert stored(db) == []


def test_an_item_not_shown_to_the_reviewer_is_409(env: Any) -> None:
    client, session, db, _ = env
    item = take(client, session, "ann")
    r = client.post("/api/judgments", json={"item_id": item["item_id"], "reviewer": "bob", "choice": "A"},
                    headers=auth(session))
    assert r.status_code == 409 and stored(db) == []


def test_unknown_routes_and_static_paths_are_404(env: Any) -> None:
    client, _, _, _ = env
    assert client.get("/static/..%2Fapp.py").status_code == 404
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/nope").status_code == 404
    assert client.get("/api/judgments").status_code == 405


def test_rating_mode_needs_every_axis_from_1_to_5(tmp_path: Path) -> None:
    db = ReviewDB(tmp_path / "store.sqlite")
    queue = build_queue(make_runs(tmp_path), mode="rating", db=db)
    session = Session()
    with TestClient(create_app(db, queue, session, seed=0), base_url="http://127.0.0.1") as client:
        item = take(client, session)
        axes = item["axes"]
        base = {"item_id": item["item_id"], "reviewer": "ann"}
        for ratings in ({axes[0]: 3}, {a: 6 for a in axes}, {a: 0 for a in axes}):
            r = client.post("/api/judgments", json={**base, "ratings": ratings}, headers=auth(session))
            assert r.status_code == 422
        r = client.post("/api/judgments", json={**base, "choice": "A"}, headers=auth(session))
        assert r.status_code == 422
        r = client.post("/api/judgments", json={**base, "ratings": {a: 4 for a in axes}}, headers=auth(session))
        assert r.status_code == 201
    assert db.judgments()[0]["ratings"] == {a: 4 for a in axes}
