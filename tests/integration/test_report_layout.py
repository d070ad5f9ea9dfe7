"""The report's layout in Chromium at 1280 px, on a report shaped like the quick demo's (a base and three adapters
over the five built-in suites, with the suites' own prompts): compact sections, readable sample columns, folding,
paging. Section screenshots go to $TUNEGATE_REPORT_SHOTS when it is set (docs/report-*.png come from there)."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import pytest

from harness.data.runs import load_run
from harness.flows.gating import run_gate
from harness.report.screenshot import CHROMIUM, CHROMIUM_ARGS
from harness.report.write import write_reports
from tests.unit.runfixtures import demo_runs

EVIL = ["<script>window.__xss=1</script>", '<img src=x onerror="window.__xss=1">',
        "</script><script>window.__xss=1</script>"]
# The shipped gate plans a fresh evaluation for every inconclusive task (slow on 40 tasks); this one is quick.
GATE = """rules:
  - {name: medical does not regress, suite: medical, non_inferiority: 0.05, pool: micro}
  - {name: legal accuracy floor, suite: legal, floor: 0.3, pool: micro, decide_on: estimate}
  - {name: code accuracy floor, suite: code, floor: 0.3, pool: micro, decide_on: estimate}
"""
WIDTH = 1280
SECTIONS = ("summary", "evidence", "methods", "ranking", "suites", "curves", "robustness", "samples")


def _with_logliks(run: Path, seed: int) -> None:
    """Multiple-choice samples with choices (the gold one first) and a loglikelihood per choice, as the engine
    writes them: the sample browser's per-choice view."""
    rng = random.Random(seed)
    kinds = {(s, t): e.get("kind") for s, suite in json.loads((run / "results.json").read_text())["suites"].items()
             for t, e in suite["tasks"].items()}
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    for row in rows:
        if kinds.get((row["suite"], row["task"])) == "multiple_choice":
            row["choices"] = [str(row["target"]), "a distractor", "another distractor", "a third one"]
            row["logliks"] = [round(-rng.uniform(0.1, 6.0), 4) for _ in row["choices"]]
            row["extra"] = {"pred": row["logliks"].index(max(row["logliks"]))}
    (run / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("layout")
    paths = demo_runs(tmp / "runs", n=3, evil=EVIL)
    for i, p in enumerate(paths):
        _with_logliks(p, i)
    gate = tmp / "gate.yaml"
    gate.write_text(GATE)
    gates = [run_gate(gate, paths[0], p) for p in paths[1:]]
    out = tmp / "report.html"
    write_reports([load_run(p) for p in paths], gate=gates, html_path=out, n_resamples=200)
    return out


@pytest.fixture(scope="module")
def page(report):
    from playwright.sync_api import sync_playwright

    external: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": WIDTH, "height": 900}, device_scale_factor=1)
        pg.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else (
            external.append(r.request.url), r.abort()))
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.goto(report.as_uri())
        pg.wait_for_selector("#sample-body tr")
        pg.errors, pg.external = errors, external  # type: ignore[attr-defined]
        yield pg
        browser.close()


def _box(page, selector: str) -> dict[str, float]:
    """The element's box in page coordinates (independent of scrolling)."""
    return page.eval_on_selector(selector, "e => { const r = e.getBoundingClientRect();"
                                           " return {x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height}; }")


def test_first_screens_are_compact(page):
    # the verdict, the evidence, the method comparison and five suites come before the sample browser
    assert _box(page, "#samples")["y"] < 6000
    assert _box(page, "#suites")["h"] < 2500  # three comparisons of five suites, tasks folded
    assert _box(page, "#summary")["h"] < 1500  # three candidates' verdicts in one matrix
    assert page.locator("#verdict-matrix thead th").count() == 4  # rule + three candidates
    assert page.locator("#verdict-matrix tbody tr").count() == 4  # the verdict row + three rules
    # which method is better: one row per suite's headline metric (the rules' metrics are those), pairs folded
    assert page.locator("#ranking-table tbody tr").count() == 5
    assert _box(page, "#ranking")["h"] < 900
    assert not page.locator("#ranking-table details").first.evaluate("d => d.open")
    # tasks are folded under their suite, and open on request with columns aligned to the suite row
    legal = page.locator("table.suite-table").first.locator("details").nth(1)
    from harness.data.suite import load_suite

    n_legal = len(load_suite("legal").tasks)  # the suite's own count (27, then 28 with a task added on main)
    assert f"legal: {n_legal} tasks" in legal.inner_text()
    assert not legal.evaluate("d => d.open")
    legal.locator("summary").click()
    inner = legal.locator("table.inner tr.task")
    assert len(set(inner.locator("td:first-child").all_inner_texts())) == n_legal  # a row per task and metric
    outer_delta = page.locator("table.suite-table").first.locator("> tbody > tr.suite").nth(1).locator("td").nth(5)
    inner_delta = inner.first.locator("td").nth(5)
    assert abs(outer_delta.bounding_box()["x"] - inner_delta.bounding_box()["x"]) < 2
    legal.locator("summary").click()


def test_no_section_scrolls_sideways(page):
    for sec in SECTIONS:
        over = page.eval_on_selector(f"#{sec}", "e => e.scrollWidth - e.clientWidth")
        assert over <= 1, f"#{sec} is {over} px too wide at {WIDTH} px"


def test_sample_browser_has_readable_columns(page):
    heads = page.locator("#sample-head th")
    widths = {heads.nth(i).inner_text(): heads.nth(i).bounding_box()["width"] for i in range(heads.count())}
    assert list(widths)[:3] == ["sample", "prompt", "target"] and len(widths) == 7  # 3 + four runs
    assert widths["prompt"] >= 200
    assert widths["sample"] >= 120 and all(widths[run] >= 100 for run in list(widths)[3:])
    # folded rows stay short; the folded prompt shows its end, where the question is
    heights = [b["height"] for b in (r.bounding_box() for r in page.locator("#sample-body tr").all())]
    assert len(heights) == 25 and max(heights) < 450


def test_show_all_unfolds_the_row_and_fold_folds_it(page):
    page.select_option("#f-suite", "medical")
    page.select_option("#f-task", "pubmedqa_gen")
    row = page.locator("#sample-body tr").first
    prompt = row.locator("td").nth(1)
    folded_text, folded_h = prompt.inner_text(), row.bounding_box()["height"]
    assert folded_text.startswith("… ")
    prompt.locator("button.more").click()
    full_text = prompt.inner_text()
    assert len(full_text) > len(folded_text) + 200 and row.bounding_box()["height"] > folded_h + 200
    assert row.locator("button.more").first.inner_text() == "fold"
    prompt.locator("button.more").click()
    assert prompt.inner_text() == folded_text
    page.select_option("#f-suite", "")


def test_paging_and_filters(page):
    page.fill("#f-search", "")
    suites = page.evaluate("JSON.parse(document.getElementById('samples-data').textContent).samples.map(s => s.suite)")
    total, legal = len(suites), suites.count("legal")
    assert total > 100 and 25 < legal < total
    assert page.inner_text("#sample-count") == f"1–25 of {total} matching samples"
    assert page.is_disabled("#p-prev")
    page.click("#p-next")
    assert page.inner_text("#sample-count") == f"26–50 of {total} matching samples"
    first = page.locator("#sample-body tr").first.inner_text()
    page.select_option("#f-suite", "legal")  # a filter starts again at the first page
    assert page.inner_text("#sample-count") == f"1–25 of {legal} matching samples"
    assert all("legal /" in t for t in page.locator("#sample-body tr").all_inner_texts())
    page.select_option("#f-suite", "")
    assert page.locator("#sample-body tr").first.inner_text() != first


def test_model_text_stays_text(page):
    page.select_option("#f-suite", "")
    page.fill("#f-search", "__xss")
    body = page.inner_text("#sample-body")
    for text in EVIL:
        assert text in body
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("#sample-body img").count() == 0 and page.locator("#sample-body script").count() == 0
    page.fill("#f-search", "")
    assert page.errors == [] and page.external == []  # type: ignore[attr-defined]


def test_flip_counts_agree_between_the_card_and_the_sample_browser(page):
    """Issue 28: the summary card and the browser count the same flips (0/1 scores only)."""
    page.fill("#f-search", "")
    page.select_option("#f-suite", "")
    cards = page.locator("#summary .card", has_text="flipped samples")
    candidates = page.locator("#f-cand option")
    assert cards.count() == candidates.count() == 3
    for i in range(3):
        up, down = re.findall(r"(\d+)↑\s*(\d+)↓", cards.nth(i).inner_text())[0]
        page.select_option("#f-cand", candidates.nth(i).get_attribute("value"))
        for want, count in (("up", up), ("down", down)):
            page.select_option("#f-flip", want)
            shown = page.inner_text("#sample-count")
            found = re.search(r"(\d+) matching samples$", shown)
            assert (found.group(1) if found else "0") == count, (want, shown, count)
    page.select_option("#f-flip", "")


def test_numbers_directions_and_the_per_choice_view(page):
    text = page.inner_text("body")
    assert "-0.000" not in text and not re.search(r"\d\.\d{7,}", text)  # no negative zero, no float noise
    marks = page.locator("table.suite-table span.dir")
    assert marks.count() > 0 and set(marks.evaluate_all("es => es.map(e => e.textContent)")) <= {"↑", "↓"}
    assert "↑ higher is better, ↓ lower is better" in page.inner_text("#suites")
    assert page.locator("#selection li").count() >= 1 and "rows" in page.inner_text("#selection")
    assert "the smallest change this n could detect" in page.text_content("#summary")
    page.select_option("#f-suite", "medical")
    page.select_option("#f-task", "pubmedqa_mc")
    table = page.locator("#sample-body div.choices").first
    assert table.locator("div.choice").count() == 4
    assert table.locator("div.gold").count() == 1 and table.locator("div.picked").count() == 1
    assert re.search(r"-\d\.\d{3}", table.inner_text())
    page.select_option("#f-suite", "")


def test_section_screenshots(page, tmp_path):
    """One PNG per section (its first 1400 px): the images docs/report-*.png were looked at from."""
    out = Path(os.environ.get("TUNEGATE_REPORT_SHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    for sec in SECTIONS:
        box = _box(page, f"#{sec}")
        png = out / f"report-{sec}.png"
        page.screenshot(path=str(png), full_page=True,
                        clip={"x": box["x"], "y": box["y"], "width": box["w"], "height": min(box["h"], 1400)})
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
