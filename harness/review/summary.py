"""Human-evaluation summary for the reports: win rates, Bradley–Terry strengths, rubric means, agreement.

The dict returned by `human_eval_summary` has exactly the shape `harness.report.write_reports(...,
human_eval=...)` validates (`harness.report.data.HumanEval`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.runs import Run, load_runs
from harness.inference.agreement import (  # noqa: F401 - re-exported: the summary's statistics live there
    N_BOOT,
    SEED,
    bradley_terry,
    cluster_bootstrap_ci,
    interval,
    krippendorff_alpha,
    nominal,
    t_interval,
)
from harness.inference.stats import bounded_mean_interval
from harness.review.queue import model_keys
from harness.storage.review import Item, ReviewDB

TIE = 0.5  # a tie or a both-bad answer counts as half a win for each side
RATING_SCALE = (1.0, 5.0)


def item_interval(per_item: dict[str, list[float]], lower: float, upper: float) -> tuple[float, float] | None:
    """The gate's interval for a bounded mean (betting, valid at every n) over per-item means, in item-id order.

    A bootstrap at n = 1 gives [v, v]; this interval at n = 1 spans most of the range, as it should. The item is
    the unit: several judgments of one item are averaged first, as the gate does."""
    means = [float(np.mean(per_item[key])) for key in sorted(per_item)]
    iv = bounded_mean_interval(means, lower, upper)
    return (float(iv.lo), float(iv.hi)) if iv.lo is not None and iv.hi is not None else None

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
        ci = item_interval({key: [_pair_score(j) for j in js] for key, js in per_item.items()}, 0.0, 1.0)
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
    per_item: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for j in judgments:
        run_id = items[j["item_id"]].models[0]["run_id"]
        for axis, value in (j["ratings"] or {}).items():
            scores[(run_id, axis)].append(float(value))
            per_item[(run_id, axis)][j["item_id"]].append(float(value))
    return [{"model": label(run_id), "criterion": axis, "mean": float(np.mean(v)),
             "ci95": item_interval(per_item[(run_id, axis)], *RATING_SCALE), "n": len(v), "scale": "1–5"}
            for (run_id, axis), v in scores.items()]


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
    note = ("Win rate interval: ties and both-bad count as half a win; 95% betting interval over items "
            "(Waudby-Smith & Ramdas 2024), the gate's interval for a bounded mean, valid at every n. "
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
