"""The review app in a real browser (Debian's Chromium via Playwright): judging by mouse and keys,
judgments in the store and the export, hostile model output shown as text, and the screenshot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.review.app import Session, create_app, serve_in_thread
from harness.review.export import export
from harness.review.queue import build_queue
from harness.review.screenshot import CHROMIUM, CHROMIUM_ARGS, render_review_screenshot
from harness.storage.review import ReviewDB
from tests.unit.test_review_queue import EVIL, make_runs


@pytest.fixture
def app_page(tmp_path: Path):
    from playwright.sync_api import sync_playwright

    db = ReviewDB(tmp_path / "store.sqlite")
    queue = build_queue(make_runs(tmp_path, n=6, evil=True), reviewers_per_item=1, db=db)
    session = Session()
    errors: list[str] = []
    external: list[str] = []
    with serve_in_thread(create_app(db, queue, session, seed=5)) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        def route(r):
            if r.request.url.startswith(base):
                r.continue_()
            else:
                external.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.goto(f"{base}/?token={session.token}")
        yield page, db, errors, external
        browser.close()
    db.close()


def stored(db: ReviewDB) -> list[tuple[str, str, str | None]]:
    return [(j["reviewer"], j["choice"], j["comment"]) for j in db.judgments()]


def wait_count(page, db: ReviewDB, n: int) -> None:
    """Wait until the page shows n judgments by this reviewer and has the next item loaded."""
    # A function, not a string expression: the app's CSP forbids eval.
    page.wait_for_function("(n) => document.getElementById('progress-text').textContent.startsWith(`You: ${n} `)"
                           " && document.getElementById('status').textContent === ''", arg=n)
    assert len(db.judgments()) == n


def test_reviewer_judges_with_mouse_and_keys_and_the_export_has_them(app_page, tmp_path: Path) -> None:
    page, db, errors, external = app_page
    assert page.url.endswith("/") and "token" not in page.url  # the token left the address bar
    page.fill("#name", "Ann Reviewer")
    page.click("#login-form button")
    page.wait_for_selector("#review:not([hidden])")
    wait_count(page, db, 0)
    assert page.is_disabled("#submit")
    # 1: mouse, with a comment
    page.click("button[data-choice='A']")
    page.fill("#comment", "A is clearer <b>really</b>")
    page.click("#submit")
    wait_count(page, db, 1)
    # 2: keys
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    wait_count(page, db, 2)
    # 3: tie by key, 4: both bad by mouse
    page.keyboard.press("t")
    page.keyboard.press("Enter")
    wait_count(page, db, 3)
    page.click("button[data-choice='both_bad']")
    page.click("#submit")
    wait_count(page, db, 4)
    # 5: the comment box takes letters without choosing; Ctrl+Enter submits from it
    page.keyboard.press("c")
    page.keyboard.type("bat")
    assert page.is_disabled("#submit")
    page.keyboard.press("Escape")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_selector("#done:not([hidden])")
    assert stored(db) == [("Ann Reviewer", "A", "A is clearer <b>really</b>"), ("Ann Reviewer", "B", None),
                          ("Ann Reviewer", "tie", None), ("Ann Reviewer", "both_bad", None),
                          ("Ann Reviewer", "B", "bat")]
    stats = export(tmp_path / "prefs.jsonl", store_path=db.path)
    rows = [json.loads(x) for x in (tmp_path / "prefs.jsonl").read_text().splitlines()]
    assert (stats.rows, stats.ties, stats.both_bad) == (3, 1, 1) and len(rows) == 3
    assert errors == [] and external == []


def test_script_in_a_response_shows_as_text_and_never_runs(app_page) -> None:
    page, db, errors, _ = app_page
    page.fill("#name", "Bob")
    page.click("#login-form button")
    page.wait_for_selector("#review:not([hidden])")
    for _ in range(6):  # bounded: five items, find the one holding the hostile response
        texts = [page.text_content("#resp-A"), page.text_content("#resp-B")]
        if EVIL in texts:
            break
        page.keyboard.press("t")
        page.keyboard.press("Enter")
        page.wait_for_function("(prev) => document.getElementById('resp-A').textContent !== prev", arg=texts[0])
    assert EVIL in texts
    assert page.evaluate("window.__xss") is None
    assert page.locator("#pair img").count() == 0 and page.locator("#pair script").count() == 0
    assert errors == []


def test_screenshot_renders(tmp_path: Path) -> None:
    png = render_review_screenshot(tmp_path / "shot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_rating_mode_by_keys(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    db = ReviewDB(tmp_path / "store.sqlite")
    queue = build_queue(make_runs(tmp_path, n=2, suite="no-such-suite"), mode="rating", db=db)
    session = Session()
    with serve_in_thread(create_app(db, queue, session, seed=2)) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{base}/?token={session.token}")
        page.fill("#name", "Cy")
        page.click("#login-form button")
        page.wait_for_selector(".rating-row")
        assert page.locator(".rating-row .axis").all_text_contents() == ["helpfulness", "factuality", "safety"]
        page.keyboard.press("4")
        page.keyboard.press("2")
        assert page.is_disabled("#submit")
        page.keyboard.press("5")
        page.keyboard.press("Enter")
        wait_count(page, db, 1)
        browser.close()
    assert db.judgments()[0]["ratings"] == {"helpfulness": 4, "factuality": 2, "safety": 5}
    db.close()
