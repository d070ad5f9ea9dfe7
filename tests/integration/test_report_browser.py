"""The HTML report in a real browser (Debian's Chromium via Playwright): escaping, no network, plots, filter."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.runs import load_run
from harness.flows.gating import run_gate
from harness.report.screenshot import CHROMIUM, CHROMIUM_ARGS, render_screenshot
from harness.report.write import write_reports
from tests.unit.runfixtures import demo_pair

EVIL = ["<script>window.__xss=1</script>", '<img src=x onerror="window.__xss=1">', "</textarea>",
        "</script><script>window.__xss=1</script>", "<svg onload=window.__xss=1>"]


@pytest.fixture(scope="module")
def report_path(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    base, cand = demo_pair(tmp / "runs", cand_responses=EVIL)
    gate = tmp / "gate.yaml"
    gate.write_text("rules:\n  - {suite: medical, non_inferiority: 0.05}\n  - {suite: general, floor: 0.5}\n")
    result = run_gate(gate, base, cand)
    out = tmp / "report.html"
    write_reports([load_run(base), load_run(cand)], gate=result, html_path=out, n_resamples=500,
                  human_eval={"win_rates": [{"model": "medical-lora", "versus": "base", "win": 0.5, "loss": 0.3,
                                             "tie": 0.2, "n": 20}]})
    return out


@pytest.fixture(scope="module")
def page_and_requests(report_path):
    from playwright.sync_api import sync_playwright

    external: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()

        def route(r):
            if r.request.url.startswith("file:"):
                r.continue_()
            else:
                external.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(report_path.as_uri())
        page.wait_for_selector("#sample-body tr")
        yield page, external, errors
        browser.close()


def test_untrusted_text_renders_as_text_and_never_runs(page_and_requests):
    page, _, errors = page_and_requests
    page.fill("#f-search", "")
    page.select_option("#f-task", "medqa")
    body = page.inner_text("#sample-body")
    for text in EVIL:
        assert text in body
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("#sample-body img").count() == 0 and page.locator("#sample-body script").count() == 0
    assert errors == []


def test_no_request_leaves_the_page(page_and_requests):
    _, external, _ = page_and_requests
    assert external == []


def test_tables_and_svg_plots_render(page_and_requests):
    page, _, _ = page_and_requests
    # 60 independent items per task cannot show a 0.05 margin: the honest verdict is INCONCLUSIVE
    assert page.inner_text("#verdict") == "INCONCLUSIVE"
    assert page.locator("#gate-table > tbody > tr").count() == 3  # 2 rules + the medical rule's task table
    assert page.locator("#gate-table table.checks tbody tr").count() == 2  # medqa, pubmedqa
    assert "can and cannot show" in page.inner_text("#evidence")
    assert page.locator("#evidence-table > tbody > tr.suite").count() == 5  # one row per suite ...
    assert page.locator("#evidence-table table.inner tr").count() == 6  # ... and its tasks folded under it
    assert page.locator("table.suite-table tbody tr").count() >= 10
    plots = page.locator("svg.chart")
    assert plots.count() >= 4
    box = plots.first.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100
    assert page.locator("svg.chart rect").count() > 5 and page.locator("svg.chart polyline").count() >= 2
    assert "Robustness" in page.inner_text("#robustness") and page.locator("#human svg").count() == 1


def test_sample_filter_and_search(page_and_requests):
    page, _, _ = page_and_requests
    page.select_option("#f-suite", "")
    page.select_option("#f-task", "")
    page.fill("#f-search", "")
    total = page.inner_text("#sample-count")
    assert total == "1–25 of 480 matching samples"  # 7 tasks x 60 + 2 perturbations x 60, 25 a page
    page.select_option("#f-suite", "legal")
    rows = page.locator("#sample-body tr")
    assert rows.count() == 25 and all("legal /" in t for t in rows.all_inner_texts())
    page.click("#p-next")
    page.click("#p-next")
    assert page.inner_text("#sample-count") == "51–60 of 60 matching samples" and rows.count() == 10
    assert page.is_disabled("#p-next")
    page.select_option("#f-flip", "down")
    flips = rows.all_inner_texts()
    assert 0 < len(flips) < 25 and all("right→wrong" in t for t in flips)
    page.select_option("#f-flip", "")
    page.select_option("#f-suite", "")
    page.fill("#f-search", "</textarea>")
    found = rows.all_inner_texts()
    assert found and all("</textarea>" in t for t in found)
    page.fill("#f-search", "no such text anywhere")
    assert rows.count() == 0 and page.inner_text("#sample-count") == "0 matching samples"


def test_render_screenshot(report_path, page_and_requests, tmp_path):
    page, _, _ = page_and_requests
    png = render_screenshot(report_path, tmp_path / "shot.png", full_page=False, browser=page.context.browser)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
