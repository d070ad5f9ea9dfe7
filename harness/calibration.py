"""How far a judge agrees with people on the same items: Krippendorff's alpha and Cohen's kappa with
intervals, the confusion table and the number of items.

The judge's scores come from a run's records (`extra.judge`, written by harness.judging); the people's from
the review app's rating judgments on the same run, suite, task and sample, in the same store. Both are put
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
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.compare import originals, task_samples
from harness.review.db import ReviewDB
from harness.review.summary import interval, krippendorff_alpha
from harness.runs import Run

N_BOOT = 2000
SEED = 0
GRID = (1, 2, 3, 4, 5)  # the review app's rating scale


def cohen_kappa(pairs: Sequence[tuple[int, int]], categories: Sequence[int] = GRID) -> float | None:
    """Cohen's unweighted kappa of (rater 1, rater 2) category pairs; None when chance agreement is 1."""
    from statsmodels.stats.inter_rater import cohens_kappa  # start-up time: statsmodels loads slowly

    table = confusion(pairs, categories)
    if not pairs or _chance(table) >= 1.0:
        return None
    return float(cohens_kappa(table, return_results=False))


def _chance(table: np.ndarray) -> float:
    n = table.sum()
    return float((table.sum(axis=0) * table.sum(axis=1)).sum() / (n * n)) if n else 1.0


def confusion(pairs: Sequence[tuple[int, int]], categories: Sequence[int] = GRID) -> np.ndarray:
    """Counts: rows the first rater's category, columns the second's."""
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)), dtype=int)
    for a, b in pairs:
        table[index[a], index[b]] += 1
    return table


def bootstrap(units: list[Any], statistic: Any, *, n_boot: int = N_BOOT, seed: int = SEED) -> tuple[float, float] | None:
    """BCa 95% interval (Efron 1987) of `statistic(units)`, resampling whole units, by scipy.stats.bootstrap.

    Where the statistic is undefined on some resamples (no variation), BCa is too; then the percentile
    interval of the defined resamples, if at least half are; else None."""
    from scipy.stats import bootstrap as scipy_bootstrap  # start-up time: scipy.stats loads slowly

    def stat(idx: np.ndarray) -> float:
        value = statistic([units[int(i)] for i in idx])
        return float("nan") if value is None else float(value)

    with warnings.catch_warnings():  # degenerate resamples warn; they are handled below
        warnings.simplefilter("ignore")
        res = scipy_bootstrap((np.arange(len(units)),), stat, vectorized=False, n_resamples=n_boot, method="BCa",
                              random_state=np.random.default_rng(seed))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if math.isfinite(lo) and math.isfinite(hi):
        return lo, hi
    draws = res.bootstrap_distribution[np.isfinite(res.bootstrap_distribution)]
    if draws.size < n_boot // 2:
        return None
    plo, phi = np.percentile(draws, [2.5, 97.5])
    return float(plo), float(phi)


def alpha_of(units: list[tuple[float, list[float]]]) -> float | None:
    """Interval-metric alpha with the judge as one coder: units are (judge value, human values)."""
    return krippendorff_alpha([[j, *h] for j, h in units], interval)


def kappa_of(units: list[tuple[float, list[float]]]) -> float | None:
    return cohen_kappa([(_grid(j), _grid(h)) for j, hs in units for h in hs])


def _grid(value: float) -> int:
    """A [0, 1] value on the 1–5 grid."""
    return int(1 + round(4 * min(max(value, 0.0), 1.0)))


def agreement(units: list[tuple[float, list[float]]], *, n_boot: int = N_BOOT, seed: int = SEED) -> dict[str, Any]:
    """Alpha and kappa with bootstrap intervals, the confusion table (judge rows × human columns) and counts."""
    pairs = [(_grid(j), _grid(h)) for j, hs in units for h in hs]
    return {"n_items": len(units), "n_ratings": sum(len(h) for _, h in units),
            "alpha": alpha_of(units) if units else None,
            "alpha_ci95": bootstrap(units, alpha_of, n_boot=n_boot, seed=seed) if len(units) >= 2 else None,
            "kappa": kappa_of(units) if units else None,
            "kappa_ci95": bootstrap(units, kappa_of, n_boot=n_boot, seed=seed) if len(units) >= 2 else None,
            "confusion": {"labels": list(GRID), "rows": confusion(pairs).tolist()},
            "method": "Krippendorff's alpha (interval) and Cohen's kappa (1–5 grid); 95% BCa bootstrap "
                      f"over items ({n_boot} resamples)"}


# ---- the run's judge scores against the review app's ratings ------------------------------------------------

def run_id(run: Run) -> str:
    """The id the review app files the run's responses under (harness.review.queue.model_keys)."""
    return str(run.results.get("run_id") or run.results.get("model", {}).get("fingerprint_hash") or run.path)


def human_ratings(store_path: Path | str | None, run: Run) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """(suite, task, sample_id) -> the rating judgments of this run's responses, from the store's review tables."""
    db = ReviewDB(store_path)
    try:
        items = {it.item_id: it for it in db.items() if it.mode == "rating" and it.models
                 and it.models[0].get("run_id") == run_id(run)}
        out: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for j in db.judgments("rating"):
            item = items.get(j["item_id"])
            if item is not None and j["ratings"]:
                out[(item.suite, item.task, item.sample_id)].append(j["ratings"])
        return out
    finally:
        db.close()


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


def calibrate(run: Run, store_path: Path | str | None, *, n_boot: int = N_BOOT) -> list[dict[str, Any]]:
    """Per judged task of the run: agreement of its judge with the review app's ratings of the same responses."""
    ratings = human_ratings(store_path, run)
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


def human_win_values(store_path: Path | str | None, baseline: Run, candidate: Run, suite: str,
                     task: str | None) -> list[float]:
    """Per pairwise-reviewed item of the two runs: the candidate's mean score over its reviewers (a win 1, a
    tie or both-bad 0.5, a loss 0), in item order. Items, not judgments, are the unit."""
    base, cand = run_id(baseline), run_id(candidate)
    db = ReviewDB(store_path)
    try:
        items = {it.item_id: it for it in db.items() if it.mode == "pairwise" and _in_scope(it, suite, task)
                 and {m.get("run_id") for m in it.models} == {base, cand}}
        per_item: dict[str, list[float]] = defaultdict(list)
        for j in db.judgments("pairwise"):
            item = items.get(j["item_id"])
            if item is None:
                continue
            side = next(k for k, m in enumerate(item.models) if m.get("run_id") == cand)
            per_item[j["item_id"]].append(0.5 if j["choice"] in ("tie", "both_bad") or j["winner"] is None
                                          else float(int(j["winner"]) == side))
    finally:
        db.close()
    return [sum(v) / len(v) for _, v in sorted(per_item.items())]


def human_rating_deltas(store_path: Path | str | None, baseline: Run, candidate: Run, suite: str, task: str | None,
                        axis: str | None) -> list[float]:
    """Per sample rated in both runs: (candidate's mean rating − baseline's) / 4, in [−1, 1] on the 1–5 scale."""
    return list(human_rating_delta_map(store_path, baseline, candidate, suite, task, axis).values())


def human_rating_delta_map(store_path: Path | str | None, baseline: Run, candidate: Run, suite: str,
                           task: str | None, axis: str | None) -> dict[tuple[str, str, str], float]:
    """`human_rating_deltas` keyed by (suite, task, sample id), in sample order: what PPI pairs with the judge."""
    db = ReviewDB(store_path)
    try:
        items = {it.item_id: it for it in db.items() if it.mode == "rating" and _in_scope(it, suite, task)}
        means: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
        for j in db.judgments("rating"):
            item = items.get(j["item_id"])
            ratings = j["ratings"] or {}
            values = [float(ratings[axis])] if axis and axis in ratings else [] if axis else \
                [float(v) for v in ratings.values()]
            if item is not None and values and item.models:
                key = (str(item.models[0].get("run_id")), item.suite, item.task, item.sample_id)
                means[key].append(sum(values) / len(values))
    finally:
        db.close()
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
