"""Reports and terminal tables say how the evidence was made: item selection per run, interval methods once
in a footnote, the MDE in words, metric direction, flips only for 0/1 scores (counted alike everywhere)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from harness.cli import main
from tests.unit.runfixtures import binary_scores, build_run
from tests.unit.test_gate_sequential import _make_sequential


def _set(run: Path, settings: dict | None = None, split_rows: int | None = None) -> None:
    results = json.loads((run / "results.json").read_text())
    if settings is not None:
        results["settings"].update(settings)
    if split_rows is not None:
        for suite in results["suites"].values():
            for task in suite["tasks"].values():
                task["split_rows"] = split_rows
    (run / "results.json").write_text(json.dumps(results))


def _report(tmp_path: Path, *runs: Path, gate: str | None = None) -> tuple[str, str, str]:
    html, md = tmp_path / "out" / "r.html", tmp_path / "out" / "r.md"
    args = ["report", *map(str, runs), "--html", str(html), "--md", str(md)]
    if gate:
        (tmp_path / "gate.yaml").write_text(gate)
        args += ["--gate", str(tmp_path / "gate.yaml")]
    assert main(args) == 0
    return html.read_text(), md.read_text(), md.read_text()


def _browser(html: str) -> dict:
    blob = re.search(r'<script type="application/json" id="samples-data">(.*?)</script>', html, re.S)
    assert blob, "the sample browser's data"
    return json.loads(blob.group(1))


def test_each_run_says_how_its_items_were_chosen_and_what_that_means(tmp_path, capsys):
    b = build_run(tmp_path / "b", scores={("s", "t"): {"acc": binary_scores(5, 0.5, 1)}})
    c = build_run(tmp_path / "c", scores={("s", "t"): {"acc": binary_scores(5, 0.6, 2)}}, adapter="lora")
    _set(b, split_rows=5)  # every row of the split
    _set(c, {"limit": 5}, split_rows=40)  # --limit 5: the first five rows
    html, md, _ = _report(tmp_path, b, c)
    assert "**base**: all rows of each task" in md
    assert "**lora**: first 5 rows of each task (--limit 5). Not a random sample" in md
    assert 'data-how="first N"' in html and 'data-how="all"' in html
    assert main(["compare", str(b), str(c)]) == 0
    out = capsys.readouterr().out
    assert "items of lora: first 5 rows of each task (--limit 5); not a random sample" in out


def test_the_suites_declared_size_and_a_sequential_run_are_named(tmp_path, capsys):
    rng = np.random.default_rng(0)
    base = rng.binomial(1, 0.6, 100).astype(float).tolist()
    b = build_run(tmp_path / "b", scores={("s", "t"): {"acc": base}})
    c = build_run(tmp_path / "c", scores={("s", "t"): {"acc": list(base)}}, adapter="cand")
    _set(b, split_rows=400)  # 100 of 400 rows, no --limit: the suite's declared size
    _make_sequential(c, [int(i) for i in rng.permutation(100)[:60]])
    _, md, _ = _report(tmp_path, b, c)
    assert "**base**: first 100 rows of 1 of 1 tasks (the suite's declared size; --full evaluates every row)" in md
    assert "**cand**: sequential: seeded random order (seed 0), 60 of 100 items evaluated until decided" in md
    assert "random sample of each task" in md


def test_methods_go_once_in_a_footnote_and_the_mde_is_explained(tmp_path, capsys):
    scores = {("s", f"t{i}"): {"acc": binary_scores(30, 0.6, i)} for i in range(3)}
    b = build_run(tmp_path / "b", scores=scores)
    c = build_run(tmp_path / "c", scores=scores, adapter="lora")
    gate = "rules:\n  - {suite: s, floor: 0.5}\n  - {suite: s, non_inferiority: 0.05}\n"
    html, md, _ = _report(tmp_path, b, c, gate=gate)
    assert md.count("Clopper-Pearson exact") == 1 and md.count("Tango score") == 1
    assert "¹ interval: Clopper-Pearson exact" in md and "the smallest change this n could detect" in md
    assert html.count("Clopper-Pearson exact") == 1
    assert "the smallest change this n could detect" in html
    (tmp_path / "g.yaml").write_text(gate)
    main(["gate", str(tmp_path / "g.yaml"), "--baseline", str(b), "--candidate", str(c)])
    out = capsys.readouterr().out
    assert out.count("Clopper-Pearson exact") == 1 and "¹ interval: Clopper-Pearson exact" in out
    assert "the smallest change this n could detect" in out


def test_direction_is_shown_wherever_a_metric_is(tmp_path, capsys):
    key = ("safety", "benign")
    b = build_run(tmp_path / "b", scores={key: {"refusal_rate_benign": binary_scores(20, 0.3, 1)}})
    c = build_run(tmp_path / "c", scores={key: {"refusal_rate_benign": binary_scores(20, 0.2, 2)}}, adapter="lora")
    html, md, _ = _report(tmp_path, b, c)
    assert "| refusal_rate_benign ↓ |" in md and "↓ lower is better" in md
    assert 'title="lower is better">↓</span>' in html
    assert "benign · refusal_rate_benign ↓" not in html  # cards name the suite: the headline is the suite's row
    assert "safety · refusal_rate_benign ↓" in html
    main(["compare", str(b), str(c)])
    out = capsys.readouterr().out
    assert "refusal_rate_benign ↓" in out and "↓ lower is better" in out
    _, md1, _ = _report(tmp_path / "one", b)
    assert "refusal_rate_benign ↓" in md1


def test_a_lower_is_better_flip_is_read_the_right_way_round(tmp_path):
    key = ("safety", "benign")
    b = build_run(tmp_path / "b", scores={key: {"refusal_rate_benign": [1.0, 1.0, 0.0]}})
    c = build_run(tmp_path / "c", scores={key: {"refusal_rate_benign": [0.0, 1.0, 0.0]}}, adapter="lora")
    html, md, _ = _report(tmp_path, b, c)
    assert "1 flipped wrong→right (improvements)" in md and "0 flipped right→wrong" in md
    assert _browser(html)["samples"][0]["flips"] == ["", "up"]


def test_flips_only_for_0_1_scores_and_the_card_and_browser_count_the_same(tmp_path):
    rouge_b = [0.32, 0.5, 0.1, 0.7, 0.31999999999999995]
    rouge_c = [0.4, 0.5, 0.05, 0.9, 0.32]
    b = build_run(tmp_path / "b", scores={("g", "sum"): {"rougeL": rouge_b}, ("m", "qa"): {"acc": [1.0, 0, 1, 0, 1]}})
    c = build_run(tmp_path / "c", scores={("g", "sum"): {"rougeL": rouge_c}, ("m", "qa"): {"acc": [0.0, 0, 1, 1, 1]}},
                  adapter="lora")
    html, md, _ = _report(tmp_path, b, c)
    card = re.search(r'<span class="pos">(\d+)↑</span> <span class="neg">(\d+)↓</span>', html)
    assert card and card.groups() == ("1", "1")
    samples = _browser(html)["samples"]
    flips = [s["flips"][1] for s in samples]
    assert flips.count("up") == 1 and flips.count("down") == 1
    assert all(s["flips"][1] == "" for s in samples if s["metric"] == "rougeL")  # continuous: no flips ...
    changes = [s["changes"][1] for s in samples if s["metric"] == "rougeL"]
    assert changes == [0.08, None, -0.05, 0.2, None]  # ... its change instead (0.32 vs 0.31999999999999995 is 0)
    assert all(s["changes"][1] is None for s in samples if s["metric"] == "acc")
    assert "1 flipped right→wrong" in md and "1 flipped wrong→right" in md
    assert "-0.000" not in md and "-0.000" not in html


def test_a_task_with_no_items_says_why(tmp_path):
    rng = np.random.default_rng(1)
    scores = {("s", "t"): {"acc": rng.binomial(1, 0.6, 50).astype(float).tolist()},
              ("s", "u"): {"acc": rng.binomial(1, 0.6, 50).astype(float).tolist()}}
    b = build_run(tmp_path / "b", scores=scores)
    c = build_run(tmp_path / "c", scores=scores, adapter="cand")
    _make_sequential(c, list(range(20)))  # decided on task t before it reached task u
    results = json.loads((c / "results.json").read_text())
    results["sequential"]["available"]["s/u"] = 50
    results["suites"]["s"]["tasks"]["u"]["n"] = 0
    (c / "results.json").write_text(json.dumps(results))
    html, md, _ = _report(tmp_path, b, c)
    why = "s / u has 0 items: the sequential run was decided before it reached this task's items"
    assert why in md and why.replace("'", "&#39;") in html
    assert "its figures are absent, not zero" in md


def test_a_single_run_has_no_baseline_and_no_empty_cost_columns(tmp_path):
    b = build_run(tmp_path / "b", scores={("s", "t"): {"acc": binary_scores(10, 0.5, 1)}},
                  timing={"wall_seconds": 1.0})  # no eval tok/s, no training: no cost figure at all
    html, md, _ = _report(tmp_path, b)
    section = html[html.index('<section id="methods">'):html.index('<section id="suites">')]
    assert "baseline" not in section and "<h2>Scores</h2>" in section
    assert "trainable params" not in section and "eval tok/s" not in section
    c = build_run(tmp_path / "c", scores={("s", "t"): {"acc": binary_scores(10, 0.5, 2)}}, adapter="lora")
    html2, _, _ = _report(tmp_path / "two", b, c)
    section = html2[html2.index('<section id="methods">'):html2.index('<section id="suites">')]
    assert "trainable params" in section and "change against the baseline (base)" in section


def test_multiple_choice_samples_carry_per_choice_loglikelihoods(tmp_path):
    b = build_run(tmp_path / "b", scores={("m", "qa"): {"acc": [1.0, 0.0]}})
    c = build_run(tmp_path / "c", scores={("m", "qa"): {"acc": [0.0, 0.0]}}, adapter="lora")
    for run, lls in ((b, [[-0.5, -2.0, -3.0, -4.0], [-3.0, -0.2, -2.5, -1.0]]),
                     (c, [[-2.0, -0.4, -3.0, -4.0], [-3.0, -0.3, -2.5, -1.0]])):
        rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
        for row, ll in zip(rows, lls):
            row["logliks"] = ll
            row["extra"] = {"pred": ll.index(max(ll))}
        (run / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    html, _, _ = _report(tmp_path, b, c)
    first = _browser(html)["samples"][0]
    assert first["choices"] == ["A", "B", "C", "D"] and first["gold"] == 0
    assert first["logliks"] == [[-0.5, -2.0, -3.0, -4.0], [-2.0, -0.4, -3.0, -4.0]]
    assert first["picks"] == [0, 1]
    assert "▶ the run's pick, ✓ the gold answer" in html


def test_markdown_reads_as_plain_text_and_stays_safe():
    from harness.report.markdown import esc

    assert esc("acc_norm") == "acc_norm" and esc("deciding: medqa") == "deciding: medqa"
    assert esc("_emph_") == "&#95;emph&#95;" and esc("a *b*") == "a &#42;b&#42;"
    assert esc("see http://evil.example") == "see http&#58;//evil.example"  # no autolink
    assert esc("@everyone #1 [x](y)") == "&#64;everyone &#35;1 &#91;x&#93;(y)"


def test_the_gate_table_keeps_our_own_code_marks(tmp_path):
    scores = {("s", "t"): {"acc": binary_scores(10, 0.6, 1)}}
    b = build_run(tmp_path / "b", scores=scores)
    c = build_run(tmp_path / "c", scores=scores, adapter="lora")
    _, md, _ = _report(tmp_path, b, c, gate="rules:\n  - {suite: s, non_inferiority: 0.05}\n")
    assert "(see `tunegate plan`)" in md and "&#96;" not in md


def test_a_metric_off_the_0_1_scale_says_its_scale(tmp_path, capsys):
    key = ("g", "sum")
    b = build_run(tmp_path / "b", scores={key: {"rougeL": [0.3, 0.5, 0.2]}}, corpus={key: {"bleu": 21.5}})
    c = build_run(tmp_path / "c", scores={key: {"rougeL": [0.4, 0.5, 0.1]}}, corpus={key: {"bleu": 24.0}},
                  adapter="lora")
    html, md, _ = _report(tmp_path, b, c)
    assert "| bleu (0–100) ↑ |" in md and "| rougeL ↑ |" in md
    assert "bleu (0–100) <span" in html
    main(["compare", str(b), str(c)])
    assert "bleu (0–100) ↑" in capsys.readouterr().out
