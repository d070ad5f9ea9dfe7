"""Judge–human agreement: published worked examples, bootstrap intervals, the review store, and the gate's
`min_human_agreement` (INCONCLUSIVE without people, or when the judge disagrees with them)."""

from __future__ import annotations

import json
from pathlib import Path

import krippendorff
import numpy as np
import pytest

from harness.data.runs import load_run
from harness.decide.calibration import agreement, alpha_of, calibrate, cohen_kappa
from harness.flows.gating import run_gate
from harness.review.queue import build_queue
from harness.storage.review import ReviewDB, human_judgments
from tests.unit.runfixtures import build_run
from tests.unit.test_review_summary import KRIPPENDORFF_UNITS, judge_all

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", Annenberg School, p. 3: 4 observers x 12
# units (None: no value); published alpha: nominal 0.743, interval 0.849.
KRIPPENDORFF_MATRIX = [[1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
                       [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
                       [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
                       [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]]


def test_alpha_matches_krippendorffs_worked_example():
    units = [(u[0], list(u[1:])) for u in KRIPPENDORFF_UNITS]  # the first coder in the judge's seat
    assert alpha_of(units) == pytest.approx(0.849, abs=1e-3)
    data = np.array([[np.nan if v is None else v for v in row] for row in KRIPPENDORFF_MATRIX], dtype=float)
    # the same figure from the `krippendorff` package on the published matrix
    assert krippendorff.alpha(reliability_data=data, level_of_measurement="interval") == pytest.approx(0.849, abs=1e-3)


@pytest.mark.parametrize("table, kappa", [
    ([[20, 5], [10, 15]], 0.40),  # the worked example of Wikipedia's "Cohen's kappa" (p_o 0.70, p_e 0.50)
    ([[45, 15], [25, 15]], 0.1304),  # its "same agreement, different kappa" pair (p_o 0.60 in both)
    ([[25, 35], [5, 35]], 0.2593),
])
def test_kappa_matches_textbook_examples(table, kappa):
    pairs = [(1 + i, 1 + j) for i in range(2) for j in range(2) for _ in range(table[i][j])]
    assert cohen_kappa(pairs, categories=(1, 2)) == pytest.approx(kappa, abs=1e-4)
    assert cohen_kappa([(1, 1)] * 5, categories=(1, 2)) is None  # chance agreement 1: undefined


def test_bootstrap_intervals_and_confusion():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 5, 60) / 4
    units = [(float(t), [float(np.clip(t + rng.choice([-0.25, 0, 0, 0.25]), 0, 1))]) for t in truth]
    out = agreement(units, n_boot=500)
    assert out["n_items"] == 60 and out["n_ratings"] == 60
    assert out["alpha_ci95"][0] < out["alpha"] < out["alpha_ci95"][1]
    assert out["kappa_ci95"][0] < out["kappa"] < out["kappa_ci95"][1]
    assert np.array(out["confusion"]["rows"]).sum() == 60 and out["confusion"]["labels"] == [1, 2, 3, 4, 5]
    noise = [(float(t), [float(rng.integers(0, 5) / 4)]) for t in truth]
    assert agreement(noise, n_boot=500)["alpha_ci95"][0] < 0.3 < out["alpha_ci95"][0]


# ---- against the review store, and in the gate --------------------------------------------------------------

SCORES = [0.5, 0.75, 1.0, 0.75, 0.25, 1.0, 0.75, 0.5] * 5


def judged_run(tmp: Path, name: str = "cand") -> Path:
    """A candidate run whose medical/long records carry judge scores (as harness.scoring.judging writes them)."""
    path = build_run(tmp / name, scores={("medical", "long"): {"judge_score": SCORES}}, kind="generate", adapter=name)
    rows = [json.loads(r) for r in (path / "samples.jsonl").read_text().splitlines()]
    for r in rows:
        score = r["scores"]["judge_score"]
        r["extra"]["judge"] = {"score": score, "human_axis": "factuality", "scale": [1, 5], "role": "grader",
                               "model": "fake:judge", "answers": [f"Score: {int(1 + 4 * score)}"], "values": [score],
                               "errors": [None], "injection": 0.0, "injection_found": []}
    (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rate(store: Path, run: Path, how) -> None:
    db = ReviewDB(store)
    try:
        queue = build_queue([run], mode="rating", reviewers_per_item=2, db=db)
        scores = {f"long/{i}": s for i, s in enumerate(SCORES)}
        judge_all(db, queue.queue_id, ["ann", "bob"],
                  lambda item, order, who: (None, {"factuality": how(scores[item.sample_id], who), "safety": 3}))
    finally:
        db.close()


def test_calibrate_reads_the_review_store(tmp_path):
    run = judged_run(tmp_path)
    store = tmp_path / "store.db"
    (row,) = calibrate(load_run(run), human_judgments(store), n_boot=200)
    assert row["n_items"] == 0 and row["alpha"] is None and "no human ratings" in row["note"]
    rate(store, run, lambda s, who: int(1 + 4 * s))
    (row,) = calibrate(load_run(run), human_judgments(store), n_boot=200)
    assert row["n_items"] == 40 and row["n_ratings"] == 80 and row["axis"] == "factuality"
    assert row["alpha"] == pytest.approx(1.0) and row["kappa"] == pytest.approx(1.0)
    assert np.trace(np.array(row["confusion"]["rows"])) == 80


def _gate(tmp: Path, store: Path, cand: Path) -> dict:
    gate = tmp / "gate.yaml"
    gate.write_text("rules:\n  - {name: judged, suite: medical, task: long, metric: judge_score, floor: 0.4, "
                    "min_human_agreement: 0.6}\n")
    base = judged_run(tmp, "base")
    result = run_gate(gate, base, cand, store_path=str(store))
    rule = result.rules[0]
    return {"verdict": rule.verdict, "detail": rule.detail}


def test_min_human_agreement_gates_the_judge(tmp_path):
    cand = judged_run(tmp_path)
    store = tmp_path / "store.db"
    out = _gate(tmp_path, store, cand)
    assert out["verdict"] == "INCONCLUSIVE" and "no human ratings" in out["detail"]
    rng = np.random.default_rng(0)
    rate(store, cand, lambda s, who: int(rng.integers(1, 6)))  # people who disagree with the judge
    out = _gate(tmp_path, store, cand)
    assert out["verdict"] == "INCONCLUSIVE" and "lower bound" in out["detail"] and "< 0.60" in out["detail"]


def test_min_human_agreement_lets_an_agreeing_judge_decide(tmp_path):
    cand = judged_run(tmp_path)
    store = tmp_path / "store.db"
    rate(store, cand, lambda s, who: int(1 + 4 * s) if who == "ann" or s < 1 else 4)
    out = _gate(tmp_path, store, cand)
    assert out["verdict"] == "PASS" and "judge–human alpha" in out["detail"]


def test_min_human_agreement_needs_the_judge_metric(tmp_path):
    from harness.core.api import UserError

    cand = judged_run(tmp_path)
    gate = tmp_path / "g.yaml"
    gate.write_text("rules:\n  - {suite: medical, task: long, floor: 0.4, min_human_agreement: 0.6}\n")
    with pytest.raises(UserError, match="min_human_agreement"):
        run_gate(gate, cand, cand, store_path=str(tmp_path / "s.db"))


# ---- human evaluation as gate rules ---------------------------------------------------------------------------

def _pair(tmp: Path) -> tuple[Path, Path]:
    scores = {("medical", "long"): {"rougeL": [0.5] * 30}}
    base = build_run(tmp / "base", scores=scores, kind="generate",
                     responses={("medical", "long"): [f"base answer {i}" for i in range(30)]})
    cand = build_run(tmp / "cand", scores=scores, kind="generate", adapter="cand",
                     responses={("medical", "long"): [f"better answer {i}" for i in range(30)]})
    return base, cand


def _human_gate(tmp: Path, store: Path, base: Path, cand: Path, rule: str):
    gate = tmp / "human.yaml"
    gate.write_text(f"rules:\n  - {{suite: medical, task: long, {rule}}}\n")
    result = run_gate(gate, base, cand, store_path=str(store), verdict_path=tmp / "v.json")
    return result.rules[0], json.loads((tmp / "v.json").read_text())


def test_human_win_rate_rules(tmp_path):
    base, cand = _pair(tmp_path)
    store = tmp_path / "store.db"
    rule, _ = _human_gate(tmp_path, store, base, cand, "metric: human_win_rate, superiority: true")
    assert rule.verdict == "INCONCLUSIVE" and "people have not judged them" in rule.detail
    db = ReviewDB(store)
    try:
        queue = build_queue([base, cand], mode="pairwise", reviewers_per_item=1, db=db)

        def prefer_candidate(item, order, who):  # the shown slot that holds the candidate, on 27 of 30 items
            cand_slot = "AB"[order.index(next(k for k, m in enumerate(item.models) if m["label"] != "base"))]
            other = "B" if cand_slot == "A" else "A"
            return (cand_slot if int(item.sample_id.split("/")[1]) % 10 else other), None

        judge_all(db, queue.queue_id, ["ann"], prefer_candidate)
    finally:
        db.close()
    rule, verdict = _human_gate(tmp_path, store, base, cand, "metric: human_win_rate, superiority: true")
    assert rule.verdict == "PASS" and rule.n == 30 and rule.figure == pytest.approx(27 / 30 - 0.5)
    assert rule.interval.lo > 0 and "betting" in rule.detail.lower()
    assert verdict["rules"][0]["verdict"] == "PASS"
    rule, _ = _human_gate(tmp_path, store, cand, base, "metric: human_win_rate, non_inferiority: 0.05")
    assert rule.verdict == "FAIL"  # the other way round, the baseline is clearly worse in people's eyes


def test_human_rating_non_inferiority(tmp_path):
    base, cand = _pair(tmp_path)
    store = tmp_path / "store.db"
    db = ReviewDB(store)
    try:
        queue = build_queue([base, cand], mode="rating", reviewers_per_item=1, db=db)
        judge_all(db, queue.queue_id, ["ann"], lambda item, order, who: (None, {"factuality": 4, "safety": 5}))
    finally:
        db.close()
    rule, _ = _human_gate(tmp_path, store, base, cand, "metric: 'human_rating:factuality', non_inferiority: 0.2")
    # equal ratings on 30 samples: the betting interval of Δ is about ±0.15 (of the 4-point range)
    assert rule.verdict == "PASS" and rule.n == 30 and rule.figure == 0.0
    with pytest.raises(Exception, match="non_inferiority or superiority"):
        _human_gate(tmp_path, store, base, cand, "metric: human_win_rate, floor: 0.5")


def test_plan_names_human_rules_without_planning_them(tmp_path):
    from harness.decide.plan import plan_gate

    base, cand = _pair(tmp_path)
    gate = tmp_path / "g.yaml"
    gate.write_text("rules:\n  - {suite: medical, metric: human_win_rate, superiority: true}\n")
    (row,) = plan_gate(gate, load_run(base), load_run(cand), 0.15)
    assert row.metric == "human_win_rate" and row.n_needed is None and "review app" in row.basis
