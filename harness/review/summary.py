"""Human-evaluation summary for the reports: win rates, Bradley–Terry strengths, rubric means, agreement.

The dict returned by `human_eval_summary` has exactly the shape `harness.report.write_reports(...,
human_eval=...)` validates (`harness.report.data.HumanEval`).
"""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from harness.review.db import Item, ReviewDB
from harness.review.queue import model_keys
from harness.runs import Run, load_runs

N_BOOT = 2000
SEED = 0
TIE = 0.5  # a tie or a both-bad answer counts as half a win for each side


# ---- statistics -------------------------------------------------------------------------------------------
def cluster_bootstrap_ci(values_by_cluster: list[list[float]], *, n_resamples: int = N_BOOT,
                         seed: int = SEED) -> tuple[float, float]:
    """Percentile 95% interval of the pooled mean, resampling clusters (items judged by several reviewers)."""
    sums = np.array([sum(v) for v in values_by_cluster], dtype=float)
    counts = np.array([len(v) for v in values_by_cluster], dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(sums), size=(n_resamples, len(sums)))
    means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def t_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """95% t interval of a mean (None for fewer than two values)."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        return None
    half = float(sps.t.ppf(0.975, arr.size - 1) * arr.std(ddof=1) / math.sqrt(arr.size))
    mean = float(arr.mean())
    return mean - half, mean + half


def bradley_terry(comparisons: Sequence[tuple[int, int, float]], n_models: int, *, prior: float = 0.5,
                  iterations: int = 500) -> np.ndarray:
    """Log-strengths (mean 0) from (i, j, score of i) comparisons by Hunter's MM algorithm.

    `prior` adds that many virtual wins each way to every compared pair, so a model that never lost
    still gets a finite strength.
    """
    wins = np.zeros((n_models, n_models))
    for i, j, s in comparisons:
        wins[i, j] += s
        wins[j, i] += 1.0 - s
    played = wins + wins.T
    wins = wins + prior * (played > 0)
    games = wins + wins.T
    p = np.ones(n_models)
    for _ in range(iterations):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1)
        new = np.where(denom > 0, wins.sum(axis=1) / np.where(denom > 0, denom, 1.0), p)
        new = new / math.exp(float(np.mean(np.log(new))))
        if np.max(np.abs(new - p)) < 1e-10:
            p = new
            break
        p = new
    logp = np.log(p)
    return logp - logp.mean()


def krippendorff_alpha(units: Sequence[Sequence[Hashable]], distance: Callable[[Any, Any], float]) -> float | None:
    """Krippendorff's alpha over units (each: the values its reviewers gave); None when undefined."""
    pairable = [list(u) for u in units if len(u) >= 2]
    coincidence: dict[tuple[Any, Any], float] = defaultdict(float)
    for values in pairable:
        for a, b in itertools.permutations(range(len(values)), 2):
            coincidence[(values[a], values[b])] += 1.0 / (len(values) - 1)
    totals: dict[Any, float] = defaultdict(float)
    for (c, _k), w in coincidence.items():
        totals[c] += w
    n = sum(totals.values())
    if n <= 1:
        return None
    observed = sum(w * distance(c, k) for (c, k), w in coincidence.items()) / n
    expected = sum(totals[c] * totals[k] * distance(c, k) for c in totals for k in totals) / (n * (n - 1))
    return None if expected == 0 else 1.0 - observed / expected


def nominal(a: Any, b: Any) -> float:
    return 0.0 if a == b else 1.0


def interval(a: Any, b: Any) -> float:
    return (float(a) - float(b)) ** 2


# ---- the summary ------------------------------------------------------------------------------------------
def _pair_score(j: dict[str, Any]) -> float:
    """Score of the item's second model (the candidate) in one pairwise judgment."""
    if j["choice"] in ("tie", "both_bad"):
        return TIE
    return 1.0 if int(j["winner"]) == 1 else 0.0


def win_rates(items: dict[str, Item], judgments: list[dict[str, Any]], label: Callable[[str], str]
              ) -> list[dict[str, Any]]:
    """Win / tie / loss of the item's second model against its first, per pair of runs."""
    by_pair: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for j in judgments:
        item = items[j["item_id"]]
        by_pair[(item.models[0]["run_id"], item.models[1]["run_id"])][item.item_id].append(j)
    out = []
    for (first, second), per_item in by_pair.items():
        flat = [j for js in per_item.values() for j in js]
        n = len(flat)
        win = sum(1 for j in flat if j["choice"] in ("A", "B") and int(j["winner"]) == 1) / n
        loss = sum(1 for j in flat if j["choice"] in ("A", "B") and int(j["winner"]) == 0) / n
        ci = cluster_bootstrap_ci([[_pair_score(j) for j in js] for js in per_item.values()])
        out.append({"model": label(second), "versus": label(first), "win": win, "tie": max(0.0, 1.0 - win - loss),
                    "loss": loss, "ci95": ci, "n": n})
    return out


def bt_strengths(items: dict[str, Item], judgments: list[dict[str, Any]], label: Callable[[str], str], *,
                 n_resamples: int = 200, seed: int = SEED) -> list[dict[str, Any]]:
    """Bradley–Terry log-strengths with a bootstrap interval, when more than two models were compared."""
    models = sorted({m["run_id"] for j in judgments for m in items[j["item_id"]].models})
    if len(models) <= 2:
        return []
    index = {m: k for k, m in enumerate(models)}
    comps = [(index[items[j["item_id"]].models[1]["run_id"]], index[items[j["item_id"]].models[0]["run_id"]],
              _pair_score(j)) for j in judgments]
    point = bradley_terry(comps, len(models))
    rng = np.random.default_rng(seed)
    boots = np.array([bradley_terry([comps[k] for k in rng.integers(0, len(comps), len(comps))], len(models))
                      for _ in range(n_resamples)])
    lo, hi = np.percentile(boots, [2.5, 97.5], axis=0)
    return [{"model": label(m), "score": float(point[k]), "ci95": (float(lo[k]), float(hi[k]))}
            for m, k in index.items()]


def rubric_means(items: dict[str, Item], judgments: list[dict[str, Any]], label: Callable[[str], str]
                 ) -> list[dict[str, Any]]:
    """Mean 1–5 score per model and rubric axis."""
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    for j in judgments:
        run_id = items[j["item_id"]].models[0]["run_id"]
        for axis, value in (j["ratings"] or {}).items():
            scores[(run_id, axis)].append(float(value))
    return [{"model": label(run_id), "criterion": axis, "mean": float(np.mean(v)), "ci95": t_interval(v),
             "n": len(v), "scale": "1–5"} for (run_id, axis), v in scores.items()]


def agreement(items: dict[str, Item], pairwise: list[dict[str, Any]], ratings: list[dict[str, Any]]
              ) -> list[dict[str, Any]]:
    """Krippendorff's alpha on double-judged items: nominal for preferences, interval per rubric axis."""
    out = []

    def row(name: str, per_item: dict[str, list[tuple[str, Any]]]) -> None:
        multi = {k: v for k, v in per_item.items() if len(v) >= 2}
        value = krippendorff_alpha([[x for _, x in v] for v in multi.values()], nominal if "nominal" in name
                                   else interval)
        if value is not None:
            out.append({"statistic": name, "value": value, "ci95": None, "n_items": len(multi),
                        "n_raters": len({who for v in multi.values() for who, _ in v})})

    prefs: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for j in pairwise:
        # Compare what reviewers preferred by model, not by side: sides were shuffled per reviewer.
        prefs[j["item_id"]].append((j["reviewer"], j["choice"] if j["choice"] in ("tie", "both_bad")
                                    else f"model{j['winner']}"))
    row("Krippendorff's alpha (nominal), preferences", prefs)
    axes = sorted({a for j in ratings for a in (j["ratings"] or {})})
    for axis in axes:
        per: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        for j in ratings:
            if axis in (j["ratings"] or {}):
                per[j["item_id"]].append((j["reviewer"], j["ratings"][axis]))
        row(f"Krippendorff's alpha (interval), {axis}", per)
    return out


def _selected(db: ReviewDB, runs: list[Run] | None) -> tuple[dict[str, Item], Callable[[str], str]]:
    """Items whose models all come from `runs` (all items when None), and a run id → label function."""
    items = {it.item_id: it for it in db.items()}
    labels = {m["run_id"]: m["label"] for it in items.values() for m in it.models}
    if runs is not None:
        keys = model_keys(runs)
        wanted = {k["run_id"] for k in keys}
        labels.update({k["run_id"]: k["label"] for k in keys})
        items = {k: it for k, it in items.items() if {m["run_id"] for m in it.models} <= wanted}
    return items, lambda run_id: labels.get(run_id, run_id)


def human_eval_summary(store_path: Path | str | None = None, runs: Sequence[Run | Path | str] | None = None
                       ) -> dict[str, Any]:
    """The human-evaluation dict for `write_reports(..., human_eval=...)`; `runs` limits it to those runs."""
    loaded = None if runs is None else [r if isinstance(r, Run) else load_runs([Path(r)])[0] for r in runs]
    db = ReviewDB(store_path)
    try:
        items, label = _selected(db, loaded)
        judgments = [j for j in db.judgments() if j["item_id"] in items]
    finally:
        db.close()
    pairwise = [j for j in judgments if j["mode"] == "pairwise"]
    ratings = [j for j in judgments if j["mode"] == "rating"]
    note = ("Win rate interval: ties and both-bad count as half a win; 95% bootstrap over items. "
            "Reviewers saw responses blind, in random order.") if pairwise else None
    return {"win_rates": win_rates(items, pairwise, label), "bradley_terry": bt_strengths(items, pairwise, label),
            "rubric": rubric_means(items, ratings, label), "agreement": agreement(items, pairwise, ratings),
            "n_judgements": len(judgments), "note": note}


def summary_text(summary: dict[str, Any]) -> str:
    """A short plain-text rendering for the terminal."""
    def ci(v: Any) -> str:
        return f"[{v[0]:.3f}, {v[1]:.3f}]" if v else "–"

    lines = [f"{summary['n_judgements']} judgments"]
    for w in summary["win_rates"]:
        lines.append(f"{w['model']} vs {w['versus']}: win {w['win']:.3f} tie {w['tie']:.3f} loss {w['loss']:.3f} "
                     f"(win rate CI {ci(w['ci95'])}, n={w['n']})")
    for b in sorted(summary["bradley_terry"], key=lambda b: -b["score"]):
        lines.append(f"Bradley–Terry {b['model']}: {b['score']:+.3f} {ci(b['ci95'])}")
    for r in summary["rubric"]:
        lines.append(f"{r['model']} {r['criterion']}: {r['mean']:.2f} {ci(r['ci95'])} (n={r['n']})")
    for a in summary["agreement"]:
        lines.append(f"{a['statistic']}: {a['value']:.3f} over {a['n_items']} items, {a['n_raters']} reviewers")
    return "\n".join(lines)


def summary_json(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2, ensure_ascii=False)
