"""How far a judge agrees with people on the same items: Krippendorff's alpha and Cohen's kappa with
intervals, the confusion table and the number of items.

The judge's scores come from a run's records (`extra.judge`, written by harness.scoring.judging); the people's from
the review app's rating judgments on the same run, suite, task and sample, handed in as values
(`HumanJudgments`, read from the store by the caller: deciding never opens a database). Both are put
on [0, 1]: a judge score is already normalised, a 1–5 rating r becomes (r − 1) / 4. The judge is one coder
and each reviewer another.

- alpha: Krippendorff's alpha with the interval metric (harness.review.summary.krippendorff_alpha, tested
  on Krippendorff's 2011 worked example).
- kappa: Cohen's (1960) unweighted kappa between the judge's score put on the 1–5 grid and each rating,
  via statsmodels (tested on a textbook example).
- Intervals: BCa bootstrap over items (Efron 1987, JASA 82:171–185; scipy.stats.bootstrap), resampling
  whole items with all their ratings, so the dependence between the ratings of one item is kept. Coverage
  is checked by simulation in benchmarks/bench_gate_validity.py (section 7): from 30 items it holds about
  95%; at 10 items it falls to about 0.91, so read a 10-item figure as a sketch.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from harness.core.api import HumanJudgments
from harness.data.runs import Run
from harness.decide.compare import originals, task_samples
from harness.inference.agreement import (  # noqa: F401 - re-exported: calibration's statistics live there
    GRID,
    N_BOOT,
    SEED,
    agreement,
    alpha_of,
    bootstrap,
    cohen_kappa,
    confusion,
    kappa_of,
)

# ---- the run's judge scores against the review app's ratings ------------------------------------------------

def run_id(run: Run) -> str:
    """The id the review app files the run's responses under (harness.review.queue.model_keys)."""
    return str(run.results.get("run_id") or run.results.get("model", {}).get("fingerprint_hash") or run.path)


def human_ratings(human: HumanJudgments, run: Run) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """(suite, task, sample_id) -> the rating judgments of this run's responses, from the review app's tables."""
    items = {it.item_id: it for it in human.items if it.mode == "rating" and it.models
             and it.models[0].get("run_id") == run_id(run)}
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for j in human.ratings:
        item = items.get(j["item_id"])
        if item is not None and j["ratings"]:
            out[(item.suite, item.task, item.sample_id)].append(j["ratings"])
    return out


def judge_units(run: Run, ratings: dict[tuple[str, str, str], list[dict[str, Any]]], suite: str,
                task: str) -> tuple[list[tuple[float, list[float]]], str | None]:
    """(judge score, human scores on [0, 1]) per item of one task, and the rubric axis compared (None: the
    mean of the reviewer's axes)."""
    units, axis = [], None
    for s in run.samples:
        if s["suite"] != suite or s["task"] != task or s.get("perturbation"):
            continue
        info = (s.get("extra") or {}).get("judge") or {}
        if info.get("score") is None:
            continue
        axis = info.get("human_axis")
        humans = []
        for r in ratings.get((suite, task, s["sample_id"]), []):
            values = [float(r[axis])] if axis and axis in r else [] if axis else [float(v) for v in r.values()]
            if values:
                humans.append((sum(values) / len(values) - 1) / 4)
        if humans:
            units.append((float(info["score"]), humans))
    return units, axis


def judged_tasks(run: Run) -> list[tuple[str, str]]:
    """(suite, task) of every task whose records carry judge scores."""
    return sorted({(s["suite"], s["task"]) for s in run.samples if (s.get("extra") or {}).get("judge")})


def calibrate(run: Run, human: HumanJudgments, *, n_boot: int = N_BOOT) -> list[dict[str, Any]]:
    """Per judged task of the run: agreement of its judge with the review app's ratings of the same responses."""
    ratings = human_ratings(human, run)
    out = []
    for suite, task in judged_tasks(run):
        units, axis = judge_units(run, ratings, suite, task)
        row = {"suite": suite, "task": task, "axis": axis or "mean of the rated axes", **agreement(units, n_boot=n_boot)}
        if not units:
            row["note"] = "no human ratings of these responses in the review store"
        out.append(row)
    return out


# ---- human evaluation as gate evidence: the candidate against the baseline ----------------------------------

HUMAN_WIN_RATE = "human_win_rate"
HUMAN_RATING = "human_rating"  # the mean of the rated axes; `human_rating:AXIS` for one axis


def is_human_metric(name: str | None) -> bool:
    return bool(name) and (name == HUMAN_WIN_RATE or name == HUMAN_RATING or str(name).startswith(HUMAN_RATING + ":"))


def _in_scope(item: Any, suite: str, task: str | None) -> bool:
    return bool(item.suite == suite and (task is None or item.task == task))


def human_win_values(human: HumanJudgments, baseline: Run, candidate: Run, suite: str,
                     task: str | None) -> list[float]:
    """Per pairwise-reviewed item of the two runs: the candidate's mean score over its reviewers (a win 1, a
    tie or both-bad 0.5, a loss 0), in item order. Items, not judgments, are the unit."""
    base, cand = run_id(baseline), run_id(candidate)
    items = {it.item_id: it for it in human.items if it.mode == "pairwise" and _in_scope(it, suite, task)
             and {m.get("run_id") for m in it.models} == {base, cand}}
    per_item: dict[str, list[float]] = defaultdict(list)
    for j in human.pairwise:
        item = items.get(j["item_id"])
        if item is None:
            continue
        side = next(k for k, m in enumerate(item.models) if m.get("run_id") == cand)
        per_item[j["item_id"]].append(0.5 if j["choice"] in ("tie", "both_bad") or j["winner"] is None
                                      else float(int(j["winner"]) == side))
    return [sum(v) / len(v) for _, v in sorted(per_item.items())]


def human_rating_deltas(human: HumanJudgments, baseline: Run, candidate: Run, suite: str, task: str | None,
                        axis: str | None) -> list[float]:
    """Per sample rated in both runs: (candidate's mean rating − baseline's) / 4, in [−1, 1] on the 1–5 scale."""
    return list(human_rating_delta_map(human, baseline, candidate, suite, task, axis).values())


def human_rating_delta_map(human: HumanJudgments, baseline: Run, candidate: Run, suite: str,
                           task: str | None, axis: str | None) -> dict[tuple[str, str, str], float]:
    """`human_rating_deltas` keyed by (suite, task, sample id), in sample order: what PPI pairs with the judge."""
    items = {it.item_id: it for it in human.items if it.mode == "rating" and _in_scope(it, suite, task)}
    means: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    for j in human.ratings:
        item = items.get(j["item_id"])
        ratings = j["ratings"] or {}
        values = [float(ratings[axis])] if axis and axis in ratings else [] if axis else \
            [float(v) for v in ratings.values()]
        if item is not None and values and item.models:
            key = (str(item.models[0].get("run_id")), item.suite, item.task, item.sample_id)
            means[key].append(sum(values) / len(values))
    base, cand = run_id(baseline), run_id(candidate)
    out = {}
    for (rid, s, t, sample), values in sorted(means.items()):
        other = means.get((base, s, t, sample))
        if rid == cand and other:
            out[(s, t, sample)] = (sum(values) / len(values) - sum(other) / len(other)) / 4
    return out


def judge_deltas(baseline: Run, candidate: Run, suite: str, task: str) -> dict[str, float]:
    """Per item the judge scored in both runs: the candidate's judge_score minus the baseline's, in [−1, 1]."""
    base = originals(task_samples(baseline, suite, task))
    out = {}
    for sid, sample in originals(task_samples(candidate, suite, task)).items():
        c = (sample.get("scores") or {}).get("judge_score")
        b = ((base.get(sid) or {}).get("scores") or {}).get("judge_score")
        if isinstance(c, (int, float)) and isinstance(b, (int, float)) and math.isfinite(c) and math.isfinite(b):
            out[sid] = float(c) - float(b)
    return out
