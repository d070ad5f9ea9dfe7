"""Markdown and HTML reports: content, escaping of untrusted model text, self-containment."""

import json
import re

import pytest

from harness.data.runs import load_run
from harness.flows.gating import run_gate
from harness.report.html import json_for_script
from harness.report.markdown import esc
from harness.report.write import write_reports
from tests.unit.runfixtures import binary_scores, build_run, demo_pair

EVIL = ["<script>window.__xss=1</script>", '<img src=x onerror="window.__xss=1">', "</textarea>", "</script>",
        "@everyone see #1 [link](http://evil.example) | *bold*\n\nline"]
HUMAN = {"win_rates": [{"model": "medical-lora", "versus": "base", "win": 0.55, "tie": 0.15, "loss": 0.3,
                        "ci95": [0.45, 0.65], "n": 40}],
         "bradley_terry": [{"model": "medical-lora", "score": 0.4}, {"model": "base", "score": 0.0}],
         "rubric": [{"model": "medical-lora", "criterion": "factuality", "mean": 3.9, "n": 40, "scale": "1–5"}],
         "agreement": [{"statistic": "Krippendorff's alpha", "value": 0.61, "n_items": 40, "n_raters": 3}]}


@pytest.fixture()
def report(tmp_path):
    base, cand = demo_pair(tmp_path / "runs", cand_responses=EVIL)
    gate = run_gate(_gate(tmp_path), base, cand)
    html_path, md_path = tmp_path / "out" / "report.html", tmp_path / "out" / "report.md"
    write_reports([load_run(base), load_run(cand)], gate=gate, html_path=html_path, md_path=md_path,
                  human_eval=HUMAN, n_resamples=500)
    return html_path.read_text(), md_path.read_text()


def _gate(tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text("rules:\n  - {suite: medical, floor: 0.6}\n  - {suite: general, floor: 0.99}\n")
    return path


def test_markdown_verdict_first_then_table_then_collapsed_flips(report):
    _, md = report
    verdict, table, details = md.index("FAIL: 1 of 2 rules fail"), md.index("| **medical** | acc"), md.index("<details>")
    assert verdict < table < details
    assert "[+" in md and "exact McNemar" in md


def test_markdown_escapes_model_text(report):
    _, md = report
    for raw in ("<script>", "<img", "</textarea>", "@everyone", "[link](", "\n\nline"):
        assert raw not in md
    assert "&lt;script&gt;window.&#95;&#95;xss=1&lt;/script&gt;" in md
    assert "&#64;everyone" in md


def test_esc_keeps_html_block_intact():
    assert "\n" not in esc("a\n\nb") and esc("a|b") == "a&#124;b"
    assert esc("x" * 50, limit=10).startswith("x" * 10 + " …")


def test_html_is_self_contained_and_escaped(report):
    html, _ = report
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "@import" not in html and "url(" not in html
    assert "Content-Security-Policy" in html and "default-src &#39;none&#39;" in html
    data = html.split('<script type="application/json" id="samples-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and ">" not in data
    assert "window.__xss=1" in json.loads(data)["samples"][0]["responses"][1]
    body = html.split('<script type="application/json"', 1)[0]
    assert "<script>window.__xss" not in body and "<img src=x" not in body
    assert html.count("<script") == 2  # the JSON block and our own script, nothing else


def test_html_sections(report):
    html, _ = report
    for anchor in ('id="summary"', 'id="suites"', 'id="curves"', 'id="robustness"', 'id="human"', 'id="samples"'):
        assert anchor in html
    assert html.count("<svg") >= 4  # bars, forest, two curves, win chart
    assert "Krippendorff&#39;s alpha" in html and "factuality" in html


def test_method_comparison_with_several_candidates(tmp_path):
    scores = lambda p, s: {("medical", "m"): {"acc": binary_scores(40, p, s)}}  # noqa: E731
    runs = [build_run(tmp_path / "base", scores=scores(0.5, 1)),
            build_run(tmp_path / "lora", scores=scores(0.6, 2), adapter="lora"),
            build_run(tmp_path / "ia3", scores=scores(0.55, 3), adapter="ia3", method="ia3",
                      provenance={"method": "ia3", "trainable_params": 1234, "train_seconds": 30.0})]
    out = tmp_path / "r.html"
    data = write_reports([load_run(p) for p in runs], html_path=out, n_resamples=300)
    html = out.read_text()
    assert len(data.comparisons) == 2 and "Method comparison" in html
    assert "1.23k" in html and "30.0 s" in html and "No gate applied" in html


def test_single_run_report(tmp_path):
    run = build_run(tmp_path / "only", scores={("s", "t"): {"acc": [1.0, 0.0]}})
    md = tmp_path / "r.md"
    write_reports([load_run(run)], html_path=tmp_path / "r.html", md_path=md)
    assert "Single run" in md.read_text() and (tmp_path / "r.html").stat().st_size > 1000


def test_json_for_script_neutralises_closing_tags():
    text = str(json_for_script({"a": "</script><!-- & \u2028"}))
    assert "</" not in text and "&" not in text and json.loads(text)["a"] == "</script><!-- & \u2028"
