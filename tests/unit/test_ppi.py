"""Prediction-powered intervals (issue 27): closed-form cases of PPI and PPI++, and the gate judging a
judge_score rule on the human scale from the review app's ratings on a subset of the items."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from harness.flows.gating import run_gate
from harness.inference.ppi import METHOD, paired_ppi, power_tuned_lambda, ppi_mean
from harness.review.queue import build_queue
from harness.storage.review import ReviewDB
from tests.unit.runfixtures import build_run


def test_original_ppi_closed_form() -> None:
    # lambda = 1 (Angelopoulos et al. 2023): mean of the judge on the unrated items plus the mean rectifier
    y, f, unrated = [1, 0, 1, 1], [1, 0, 0, 1], [1, 1, 0, 0, 1, 0]
    res = ppi_mean(y, f, unrated, lam=1.0)
    assert res.estimate == pytest.approx(0.5 + 0.25)
    se = math.sqrt(0.25 / 4 + 0.3 / 6)  # Var(y - f) = 0.25, Var(unrated) = 0.3 (ddof 1)
    assert res.se == pytest.approx(se)
    half = sps.t.ppf(0.975, 3) * se
    assert (res.lo, res.hi) == pytest.approx((0.75 - half, 0.75 + half))


def test_lambda_zero_is_the_classical_t_interval_on_the_rated_items() -> None:
    y = [0.2, -0.1, 0.4, 0.0, 0.3, 0.1]
    res = ppi_mean(y, [0.9] * 6, [0.5, -0.5, 0.1], lam=0.0)
    lo, hi = sps.t.interval(0.95, 5, loc=np.mean(y), scale=sps.sem(y))
    assert res.estimate == pytest.approx(np.mean(y)) and (res.lo, res.hi) == pytest.approx((lo, hi))


def test_power_tuned_lambda_is_ppi_plus_plus_closed_form() -> None:
    y, f, unrated = np.array([1.0, 2.0, 3.0, 5.0]), np.array([1.0, 2.5, 2.5, 4.0]), np.array([0.0, 1.0, 4.0, 3.0])
    # PPI++ (Angelopoulos, Duchi, Zrnic 2023): Cov(Y, f) / ((1 + n/N) Var(f over all items)), clipped to [0, 1]
    cov = np.cov(y, f, ddof=1)[0, 1]
    var_all = np.var(np.concatenate([f, unrated]), ddof=1)
    assert power_tuned_lambda(y, f, unrated) == pytest.approx(min(cov / (2 * var_all), 1.0))
    assert power_tuned_lambda(y, -f, unrated) == 0.0  # a judge pointing the wrong way gets no weight
    res = ppi_mean(y, f, unrated)
    lam = res.lam
    assert res.estimate == pytest.approx(np.mean(y - lam * f) + lam * np.mean(unrated))


def test_a_biased_judge_is_corrected_and_a_good_one_narrows_the_interval() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(0.0, 0.3, 400)
    judge = y + 0.3 + rng.normal(0, 0.05, 400)  # a judge that says +0.3 where people see 0
    human = {str(i): float(y[i]) for i in range(40)}
    res = paired_ppi(human, {str(i): float(judge[i]) for i in range(400)})
    assert res.lo < 0.0 < res.hi and res.n_rated == 40 and res.n_unrated == 360
    only = ppi_mean(y[:40], judge[:40], [], lam=0.0)
    assert (res.hi - res.lo) < 0.75 * (only.hi - only.lo)
    with pytest.raises(ValueError):
        ppi_mean([1.0], [1.0], [0.0])


# ---- in the gate -----------------------------------------------------------------------------------------------

N_ITEMS, N_RATED = 60, 30


def _pair(tmp: Path, human_gain: int, judge_bias: float) -> tuple[Path, Path, dict[str, list[int]]]:
    """Base and candidate runs of medical/long whose judge_score follows hidden human ratings (1–5), the
    candidate's inflated by `judge_bias`; returns the runs and the ratings people would give."""
    rng = random.Random(7)
    human_base = [rng.randint(1, 4) for _ in range(N_ITEMS)]
    human_cand = [min(5, max(1, h + human_gain + rng.choice([-1, 0, 0, 1]))) for h in human_base]
    judge_base = [(h - 1) / 4 for h in human_base]
    judge_cand = [min(1.0, (h - 1) / 4 + judge_bias) for h in human_cand]
    runs = []
    for name, scores in (("base", judge_base), ("cand", judge_cand)):
        path = build_run(tmp / name, scores={("medical", "long"): {"judge_score": scores}}, kind="generate",
                         adapter=None if name == "base" else name,
                         responses={("medical", "long"): [f"{name} answer {i}" for i in range(N_ITEMS)]})
        rows = [json.loads(r) for r in (path / "samples.jsonl").read_text().splitlines()]
        for r in rows:  # as harness.scoring.judging records a judge's grade
            r["extra"]["judge"] = {"score": r["scores"]["judge_score"], "human_axis": "factuality", "scale": [1, 5],
                                   "role": "grader", "model": "fake:judge", "values": [r["scores"]["judge_score"]]}
        (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        runs.append(path)
    return runs[0], runs[1], {"run-base": human_base, "run-cand": human_cand}


def _rate_subset(tmp: Path, store: Path, human: dict[str, list[int]]) -> None:
    """People rate the first N_RATED items of both runs in the review app (queued from copies cut to them)."""
    cut = []
    for rid in human:
        adapter = None if rid == "run-base" else "cand"
        cut.append(build_run(tmp / "cut" / rid, scores={("medical", "long"): {"judge_score": [0.5] * N_RATED}},
                             kind="generate", adapter=adapter,
                             responses={("medical", "long"): [f"{rid} answer {i}" for i in range(N_RATED)]}))
    db = ReviewDB(store)
    try:
        queue = build_queue(cut, mode="rating", reviewers_per_item=1, db=db)
        rng = random.Random(1)
        while (found := db.next_for(queue.queue_id, "ann", rng)) is not None:
            item, _ = found
            rating = human[str(item.models[0]["run_id"])][int(item.sample_id.split("/")[1])]
            db.add_judgment(item.item_id, "ann", choice=None, ratings={"factuality": rating}, comment=None)
    finally:
        db.close()


def _gate(tmp: Path, store: Path, base: Path, cand: Path, rule: str):
    gate = tmp / "gate.yaml"
    gate.write_text(f"rules:\n  - {{suite: medical, task: long, metric: judge_score, {rule}}}\n")
    result = run_gate(gate, base, cand, store_path=str(store), verdict_path=tmp / "v.json")
    return result.rules[0], json.loads((tmp / "v.json").read_text())["rules"][0]


def test_the_gate_judges_the_human_scale_with_ppi_and_names_the_method(tmp_path: Path) -> None:
    base, cand, human = _pair(tmp_path, human_gain=0, judge_bias=0.3)
    store = tmp_path / "store.db"
    rule, _ = _gate(tmp_path, store, base, cand, "superiority: true, ppi: true")
    assert rule.verdict == "INCONCLUSIVE" and "people have not rated" in rule.detail
    # the judge alone is fooled: it sees the candidate +0.3 better
    plain, _ = _gate(tmp_path, store, base, cand, "superiority: true")
    assert plain.verdict == "PASS"
    _rate_subset(tmp_path, store, human)
    rule, shown = _gate(tmp_path, store, base, cand, "superiority: true, ppi: true")
    assert rule.verdict != "PASS" and rule.interval.lo < 0.0  # people see no gain: PPI does not pass it
    assert shown["method"] == METHOD and "prediction-powered" in shown["detail"]
    assert f"{N_RATED} items rated in both runs and {N_ITEMS - N_RATED} judged only" in shown["detail"]


def test_ppi_passes_a_real_gain_and_refuses_a_bad_rule(tmp_path: Path) -> None:
    base, cand, human = _pair(tmp_path, human_gain=1, judge_bias=0.0)
    store = tmp_path / "store.db"
    _rate_subset(tmp_path, store, human)
    rule, _ = _gate(tmp_path, store, base, cand, "superiority: true, ppi: true")
    assert rule.verdict == "PASS" and rule.interval.lo > 0
    with pytest.raises(Exception, match="ppi"):
        _gate(tmp_path, store, base, cand, "floor: 0.5, ppi: true")
    with pytest.raises(Exception, match="min_human_agreement"):
        _gate(tmp_path, store, base, cand, "superiority: true, ppi: true, min_human_agreement: 0.5")


def test_the_report_shows_the_prediction_powered_delta(tmp_path: Path) -> None:
    from harness.data.runs import load_run
    from harness.report.judge_section import judge_section, markdown_lines

    base, cand, human = _pair(tmp_path, human_gain=1, judge_bias=0.0)
    store = tmp_path / "store.db"
    runs = [load_run(base), load_run(cand)]
    (row,) = judge_section(runs, ["base", "cand"], store_path=store, n_boot=200)["ppi"]
    assert row["estimate"] is None and "0 items rated by people in both runs" in row["note"]
    _rate_subset(tmp_path, store, human)
    section = judge_section(runs, ["base", "cand"], store_path=store, n_boot=200)
    (row,) = section["ppi"]
    assert row["n_rated"] == N_RATED and row["n_judged_only"] == N_ITEMS - N_RATED and row["ci95"][0] > 0
    assert row["ci95"][1] - row["ci95"][0] <= row["human_only_ci95"][1] - row["human_only_ci95"][0]
    text = "\n".join(markdown_lines(section, str))
    assert "Human-scale Δ, prediction-powered" in text and METHOD in text


def test_the_review_app_can_queue_exactly_the_judged_items(tmp_path: Path) -> None:
    from harness.core.api import UserError
    from harness.review.queue import plan_queue

    scores = {("medical", "long"): {"judge_score": [0.5] * 4}, ("medical", "safety"): {"safe_refusal": [1.0] * 3}}
    responses = {("medical", "long"): [f"answer {i}" for i in range(4)], ("medical", "safety"): ["no"] * 3}
    run = build_run(tmp_path / "run", scores=scores, kind="generate", responses=responses)
    rows = [json.loads(r) for r in (run / "samples.jsonl").read_text().splitlines()]
    for r in rows:
        if r["task"] == "long":
            r["extra"]["judge"] = {"score": 0.5, "role": "grader", "model": "fake:judge"}
    (run / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert {it.task for it in plan_queue([run], mode="rating").items} == {"long", "safety"}
    judged = plan_queue([run], mode="rating", only_judged=True)
    assert {it.task for it in judged.items} == {"long"} and len(judged.items) == 4
    plain = build_run(tmp_path / "plain", scores={("medical", "safety"): {"safe_refusal": [1.0] * 3}}, kind="generate",
                      responses={("medical", "safety"): ["no"] * 3})
    with pytest.raises(UserError, match="judged-only"):
        plan_queue([plain], mode="rating", only_judged=True)
