"""Human-evaluation statistics, the preference export, the report hand-off and the CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.data.runs import load_run
from harness.report.data import HumanEval
from harness.report.write import write_reports
from harness.review.export import export
from harness.review.queue import build_queue
from harness.review.summary import bradley_terry, human_eval_summary, interval, krippendorff_alpha, nominal
from harness.storage.review import ReviewDB
from tests.unit.test_review_queue import make_runs

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the 4-coder, 12-unit example.
KRIPPENDORFF_UNITS = [[1, 1, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2], [1, 2, 3, 4], [4, 4, 4, 4],
                      [1, 1, 2, 1], [2, 2, 2, 2], [5, 5, 5], [1, 1], [3]]


def test_krippendorff_alpha_matches_the_published_example() -> None:
    assert krippendorff_alpha(KRIPPENDORFF_UNITS, nominal) == pytest.approx(0.743, abs=1e-3)
    assert krippendorff_alpha(KRIPPENDORFF_UNITS, interval) == pytest.approx(0.849, abs=1e-3)
    assert krippendorff_alpha([[1, 1], [2, 2]], nominal) == pytest.approx(1.0)
    assert krippendorff_alpha([[1, 1], [1, 1]], nominal) is None  # no variation: undefined


def test_bradley_terry_recovers_the_order_of_true_strengths() -> None:
    rng = np.random.default_rng(0)
    true = np.array([0.0, 1.0, 2.0])
    comps = []
    for _ in range(3000):
        i, j = rng.choice(3, 2, replace=False)
        p = 1 / (1 + np.exp(true[j] - true[i]))
        comps.append((int(i), int(j), float(rng.random() < p)))
    est = bradley_terry(comps, 3, prior=0.0)
    assert list(np.argsort(est)) == [0, 1, 2]
    assert est - est[0] == pytest.approx(true, abs=0.2)
    two = bradley_terry([(0, 1, 1.0)] * 30 + [(0, 1, 0.0)] * 10, 2, prior=0.0)
    assert two[0] - two[1] == pytest.approx(np.log(3.0), abs=1e-6)


def judge_all(db: ReviewDB, queue_id: str, reviewers: list[str], decide) -> None:
    """Every reviewer judges every item they are given (bounded by the queue size)."""
    rng = random.Random(1)
    for who in reviewers:
        for _ in range(100):
            found = db.next_for(queue_id, who, rng)
            if not found:
                break
            item, order = found
            choice, ratings = decide(item, order, who)
            db.add_judgment(item.item_id, who, choice=choice, ratings=ratings, comment=None)


def prefer_candidate(item, order, who):
    """Choose the side showing the second model (the candidate), except ties on qa/1 and both-bad on qa/2."""
    if item.sample_id == "qa/1":
        return "tie", None
    if item.sample_id == "qa/2":
        return "both_bad", None
    return ("A" if order[0] == 1 else "B"), None


@pytest.fixture
def judged(tmp_path: Path):
    runs = make_runs(tmp_path, n=11)
    store = tmp_path / "store.sqlite"
    db = ReviewDB(store)
    queue = build_queue(runs, reviewers_per_item=2, db=db)
    judge_all(db, queue.queue_id, ["ann", "bob"], prefer_candidate)
    db.close()
    return runs, store


def test_export_writes_chosen_and_rejected_and_counts_what_it_leaves_out(judged, tmp_path: Path) -> None:
    _, store = judged
    stats = export(tmp_path / "prefs.jsonl", store_path=store)
    rows = [json.loads(x) for x in (tmp_path / "prefs.jsonl").read_text().splitlines()]
    assert (stats.rows, stats.ties, stats.both_bad) == (16, 2, 2) and len(rows) == 16
    assert all(set(r) == {"prompt", "chosen", "rejected"} and all(isinstance(v, str) for v in r.values())
               for r in rows)
    assert all(r["chosen"].startswith("med-lora") and r["rejected"].startswith("base") for r in rows)


def test_exported_file_loads_as_a_preference_dataset(judged, tmp_path: Path) -> None:
    from datasets import load_dataset

    _, store = judged
    export(tmp_path / "prefs.jsonl", store_path=store)
    ds = load_dataset("json", data_files=str(tmp_path / "prefs.jsonl"), split="train")
    assert ds.column_names == ["prompt", "chosen", "rejected"] and len(ds) == 16
    assert {f.dtype for f in ds.features.values()} == {"string"}


def test_summary_has_the_report_shape_and_the_right_numbers(judged) -> None:
    runs, store = judged
    summary = human_eval_summary(store, runs)
    HumanEval.model_validate(summary)
    (win,) = summary["win_rates"]
    assert (win["model"], win["versus"], win["n"]) == ("med-lora", "base", 20)
    assert (win["win"], win["tie"], win["loss"]) == pytest.approx((0.8, 0.2, 0.0))
    assert win["ci95"][0] <= 0.9 <= win["ci95"][1]
    assert summary["bradley_terry"] == []  # only two models
    (alpha,) = summary["agreement"]
    assert alpha["value"] == pytest.approx(1.0) and (alpha["n_items"], alpha["n_raters"]) == (10, 2)
    assert summary["n_judgements"] == 20


def test_report_shows_the_human_evaluation_section(judged, tmp_path: Path) -> None:
    runs, store = judged
    html = tmp_path / "report.html"
    write_reports([load_run(r) for r in runs], html_path=html, md_path=tmp_path / "r.md", n_resamples=200,
                  human_eval=human_eval_summary(store, runs))
    text = html.read_text()
    assert 'id="human"' in text and "med-lora" in text and "Krippendorff" in text


def test_three_models_get_bradley_terry_and_ratings_get_rubric_means(tmp_path: Path) -> None:
    runs = make_runs(tmp_path, n=6, models=(None, "a", "b"), suite="no-such-suite")  # default axes
    store = tmp_path / "store.sqlite"
    db = ReviewDB(store)
    pq = build_queue(runs, db=db)
    rank = {"base": 0, "a": 1, "b": 2}

    def better(item, order, who):
        strong = int(rank[item.models[1]["label"]] > rank[item.models[0]["label"]])
        return ("A" if order[0] == strong else "B"), None

    judge_all(db, pq.queue_id, ["ann"], better)
    rq = build_queue(runs, mode="rating", reviewers_per_item=2, db=db)
    judge_all(db, rq.queue_id, ["ann", "bob"], lambda item, order, who: (None, {
        a: 2 + rank[item.models[0]["label"]] for a in item.axes}))
    db.close()
    summary = human_eval_summary(store, runs)
    HumanEval.model_validate(summary)
    scores = {b["model"]: b["score"] for b in summary["bradley_terry"]}
    assert scores["b"] > scores["a"] > scores["base"]
    means = {(r["model"], r["criterion"]): r["mean"] for r in summary["rubric"]}
    assert means[("b", "safety")] == 4.0 and means[("base", "helpfulness")] == 2.0
    stats = {a["statistic"] for a in summary["agreement"]}
    assert "Krippendorff's alpha (interval), safety" in stats


def test_cli_export_and_summary(judged, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs, store = judged
    out = tmp_path / "out.jsonl"
    assert main(["review", "export", "--format", "preference", str(out), "--store", str(store)]) == 0
    assert "wrote 16 preference pairs" in capsys.readouterr().out and out.is_file()
    assert main(["review", "summary", "--json", "--store", str(store), *map(str, runs)]) == 0
    assert json.loads(capsys.readouterr().out)["n_judgements"] == 20
    assert main(["review", "summary", "--store", str(store)]) == 0
    assert "med-lora vs base" in capsys.readouterr().out


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", str(tmp_path / "nope"), str(tmp_path / "nope2"), "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tunegate: error:") and "no such run directory" in err and len(err.splitlines()) == 1
    runs = make_runs(tmp_path)
    assert main(["review", str(runs[0]), "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "at least two runs" in capsys.readouterr().err
    assert main(["review", "export", str(tmp_path), "--store", str(tmp_path / "s.sqlite")]) == 2


def test_summary_intervals_hold_at_n_1_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """One judgment that prefers the candidate: a bootstrap said [1.000, 1.000]; the gate's betting interval at
    n = 1 spans most of [0, 1] (issue 28). Ratings of one item are averaged before their interval, as the gate does."""
    runs = make_runs(tmp_path, n=3)
    store = tmp_path / "store.sqlite"
    db = ReviewDB(store)
    queue = build_queue(runs, reviewers_per_item=1, db=db)
    item, order = db.next_for(queue.queue_id, "ann", random.Random(0))
    db.add_judgment(item.item_id, "ann", choice="A" if order[0] == 1 else "B", ratings=None, comment=None)
    db.close()
    assert main(["review", "summary", "--json", "--store", str(store)]) == 0
    win = json.loads(capsys.readouterr().out)["win_rates"][0]
    assert win["n"] == 1 and win["win"] == 1.0
    lo, hi = win["ci95"]
    assert lo < 0.5 and hi == pytest.approx(1.0)
    assert main(["review", "summary", "--store", str(store)]) == 0
    assert "[1.000, 1.000]" not in capsys.readouterr().out
