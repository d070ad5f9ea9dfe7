"""Self-contained HTML report: one file, no network, inline SVG plots, a safe sample browser."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from harness.data.runs import Run
from harness.decide.compare import Comparison
from harness.report import svg
from harness.report.cost import efficiency
from harness.report.data import ReportData, evidence_rows, selection_groups
from harness.report.fmt import (
    DIRECTION_LEGEND,
    MDE_WORDS,
    direction_mark,
    fmt_bytes,
    fmt_count,
    fmt_interval,
    fmt_n_mde,
    fmt_num,
    fmt_sequential,
    fmt_signed,
    mark_of,
    method_marks,
    metric_scale,
    more_items,
    rule_detail,
)
from harness.report.history import history_html
from harness.report.ranking import html_context as ranking_html

MAX_SAMPLE_TEXT = 4000  # characters kept per prompt/response in the embedded browser data


def json_for_script(obj: Any) -> Markup:
    """JSON safe inside <script type="application/json">: no `<`, `>` or `&` survive, so no `</script>`."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    for ch, rep in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, rep)
    return Markup(text)


def _env() -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(str(resources.files("harness.report") / "templates"))
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=fmt_num, count=fmt_count, bytes=fmt_bytes, fmt_sequential=fmt_sequential,
                       more_items=more_items, signed=fmt_signed, dir=direction_mark, n_mde=fmt_n_mde, scale=metric_scale,
                       detail=rule_detail,
                       p=lambda v: "–" if v is None else ("<0.001" if v < 0.001 else f"{v:.3f}"),
                       ci=lambda ci: "–" if not ci or ci[0] is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]",
                       dci=lambda ci: "–" if not ci or ci[0] is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]",
                       iv=lambda iv: fmt_interval(iv, signed=False), div=fmt_interval,
                       secs=lambda v: "–" if v is None else (f"{v:.1f} s" if v < 120 else f"{v / 60:.1f} min"))
    return env


def _suite_metric(run: Run, suite: str, metric: str) -> svg.Bar | None:
    m = (run.suites.get(suite, {}).get("metrics") or {}).get(metric)
    if not m:
        return None
    ci = m.get("ci95") or (None, None)
    return svg.Bar(float(m["value"]), ci[0], ci[1])


def _primary(data: ReportData) -> list[tuple[str, str]]:
    """(suite, metric) pairs shown in plots: each suite's first metric."""
    if data.comparisons:
        comp = data.comparisons[0]
        return [(s, m) for s in comp.suites() if (m := comp.primary_metric(s))]
    return [(s, next(iter(v["metrics"]))) for s, v in data.baseline.suites.items() if v.get("metrics")]


def _bars(data: ReportData, primary: list[tuple[str, str]]) -> Markup | None:
    if not primary:
        return None
    groups = [f"{s} · {m}" for s, m in primary]
    values = [[_suite_metric(run, s, m) for run in data.runs] for s, m in primary]
    unit = all(b.value <= 1.0 for row in values for b in row if b)
    return svg.grouped_bars(groups, data.labels, values, title="Suite scores with 95% intervals",
                            y_label="score", unit_range=unit)


def _forest(data: ReportData) -> Markup | None:
    labels, rows, colors = [], [], []
    for _ci, comp in enumerate(data.comparisons):
        for row in comp.suite_rows():
            if row.metric == comp.primary_metric(row.suite):
                labels.append(f"{row.suite} · {comp.candidate.label}" if len(data.comparisons) > 1 else row.suite)
                rows.append((row.delta, row.lo, row.hi))
                colors.append(svg.color(data.runs.index(comp.candidate)))
    return svg.forest(labels, rows, title="Δ vs baseline with 95% paired-bootstrap intervals",
                      colors=colors) if rows else None


def _curves(data: ReportData) -> list[Markup]:
    """One chart per curve quantity (loss first), each with a line per adapter that has provenance."""
    series: dict[str, list[tuple[str, list[tuple[float, float]]]]] = {}
    colors: dict[str, list[str]] = {}
    for i, run in enumerate(data.runs):
        raw = run.provenance.get("curve")
        curve: list[Any] = raw if isinstance(raw, list) else []
        keys = sorted({k for p in curve if isinstance(p, dict) for k, v in p.items()
                       if k != "step" and isinstance(v, (int, float))}, key=lambda k: (k != "loss", k))
        for key in keys:
            pts = [(float(p["step"]), float(p[key])) for p in curve
                   if isinstance(p, dict) and isinstance(p.get("step"), (int, float))
                   and isinstance(p.get(key), (int, float))]
            if pts:
                series.setdefault(key, []).append((data.labels[i], pts))
                colors.setdefault(key, []).append(svg.color(i))
    return [svg.lines(s, title=key, x_label="step", y_label=key, colors=colors[key]) for key, s in series.items()]


_COST_COLUMNS: list[tuple[str, str]] = [
    ("trainable_params", "trainable params"), ("adapter_bytes", "adapter size"), ("train_seconds", "train time"),
    ("train_tokens_per_second", "train tok/s"), ("tokens_per_second", "eval tok/s")]


def _secs(v: float | None) -> str:
    return "–" if v is None else (f"{v:.1f} s" if v < 120 else f"{v / 60:.1f} min")


def _cost_cell(eff: Any, key: str) -> str:
    value = getattr(eff, key)
    if key == "trainable_params":
        share = eff.trainable_params / eff.total_params if eff.trainable_params and eff.total_params else None
        return fmt_count(value) + (f" ({share * 100:.2f}%)" if share else "")
    if key == "adapter_bytes":
        return fmt_bytes(value)
    if key == "train_seconds":
        return _secs(value)
    return fmt_num(value, 1)


def cost_columns(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Only the cost columns some run has a figure for: no column (or table) of dashes."""
    return [(key, head) for key, head in _COST_COLUMNS if any(getattr(r["eff"], key) is not None for r in rows)]


def _methods(data: ReportData, primary: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Method-comparison rows: per run, cost figures and per-suite score with delta vs the baseline."""
    by_cand = {id(c.candidate): c for c in data.comparisons}
    rows = []
    for run in data.runs:
        comp: Comparison | None = by_cand.get(id(run))
        eff = efficiency(run)
        cells = []
        for suite, metric in primary:
            bar = _suite_metric(run, suite, metric)
            row = comp.get(suite, None, metric) if comp else None
            cells.append({"score": bar.value if bar else None, "delta": row.delta if row else None,
                          "ci": (row.lo, row.hi) if row else None})
        rows.append({"label": run.label, "method": run.method, "eff": eff, "cells": cells,
                     "is_base": run is data.baseline})
    columns = cost_columns(rows)
    for entry in rows:
        entry["costs"] = [_cost_cell(entry["eff"], key) for key, _ in columns]
    return rows


def _robustness(data: ReportData) -> list[dict[str, Any]]:
    """Per robustness target: rows per run of clean, per-perturbation and worst-case scores."""
    targets: dict[tuple[str, str | None, str], dict[str, Any]] = {}
    for comp in data.comparisons:
        for rob in comp.robustness:
            key = (rob.suite, rob.task, rob.metric)
            t = targets.setdefault(key, {"suite": rob.suite, "task": rob.task, "metric": rob.metric,
                                         "perturbations": list(rob.perturbations), "rows": {}, "source": rob.source})
            for which, run in ((0, comp.baseline), (1, comp.candidate)):
                t["rows"][run.label] = {
                    "label": run.label, "clean": rob.clean[which],
                    "perts": [rob.perturbations.get(p, (None, None))[which] for p in t["perturbations"]],
                    "worst": rob.worst_case[which] if rob.worst_case else None, "drop": rob.drop(which)}
    out = []
    for t in targets.values():
        t["rows"] = [t["rows"][lab] for lab in data.labels if lab in t["rows"]]
        out.append(t)
    return out


def _suite_groups(comp: Comparison) -> list[dict[str, Any]]:
    """Per suite: its headline row, then the rest (other suite-level metrics and every task row), which the
    report folds under the headline so that five suites take a screen, not fifteen."""
    groups: dict[str, dict[str, Any]] = {}
    for row in comp.metrics:
        g = groups.setdefault(row.suite, {"suite": row.suite, "head": None, "metrics": [], "tasks": []})
        if row.task is None and g["head"] is None and row.metric == comp.primary_metric(row.suite):
            g["head"] = row
        else:
            g["metrics" if row.task is None else "tasks"].append(row)
    for g in groups.values():
        if g["head"] is None and g["metrics"]:
            g["head"] = g["metrics"].pop(0)
        g["n_tasks"] = len({r.task for r in g["tasks"]})
    return list(groups.values())


def _verdict_matrix(data: ReportData) -> dict[str, Any] | None:
    """Rules × candidates, one verdict per cell: the whole decision on one screen when several are gated."""
    if len(data.gates) < 2:
        return None
    names: list[str] = []
    for g in data.gates:
        names += [r.name for r in g.rules if r.name not in names]
    by_gate = [{r.name: r for r in g.rules} for g in data.gates]
    return {"names": names, "gates": data.gates,
            "cells": [[rules.get(name) for rules in by_gate] for name in names]}


def _evidence_groups(data: ReportData) -> list[dict[str, Any]]:
    """Evidence rows grouped by suite: tasks and items per run, the source line once."""
    groups: dict[str, dict[str, Any]] = {}
    for e in evidence_rows(data):
        g = groups.setdefault(e.suite, {"suite": e.suite, "source": e.source, "rows": [], "n": {}, "kinds": []})
        g["rows"].append(e)
        for lab, n in e.n.items():
            g["n"][lab] = g["n"].get(lab, 0) + n
        if e.kind not in g["kinds"]:
            g["kinds"].append(e.kind)
    return list(groups.values())


MAX_CHOICES = 26  # choices shown per sample in the browser's per-choice view
MAX_CHOICE_TEXT = 120


def _gold_index(sample: Mapping[str, Any], choices: list[Any]) -> int | None:
    """The gold choice: an index, or the text of one of the choices."""
    target = sample.get("target")
    if isinstance(target, int) and not isinstance(target, bool):
        return target if 0 <= target < len(choices) else None
    if isinstance(target, str) and target in choices:
        return choices.index(target)
    return None


def _choice_view(sample: Mapping[str, Any], others: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """A multiple-choice sample's choices with each run's loglikelihood per choice, its pick and the gold one."""
    choices = sample.get("choices")
    if not isinstance(choices, list) or not choices:
        return {}
    lls, picks = [], []
    for o in others:
        ll = (o or {}).get("logliks")
        ll = [round(float(v), 3) for v in ll[:MAX_CHOICES]] if isinstance(ll, list) and len(ll) == len(choices) else None
        pred = ((o or {}).get("extra") or {}).get("pred")
        if not isinstance(pred, int) and ll:
            pred = max(range(len(ll)), key=ll.__getitem__)  # the pick is the most likely choice
        lls.append(ll)
        picks.append(pred if isinstance(pred, int) else None)
    if not any(ll for ll in lls):
        return {}
    gold = _gold_index(sample, choices)
    texts = [str(c) if len(str(c)) <= MAX_CHOICE_TEXT else str(c)[:MAX_CHOICE_TEXT] + " …" for c in choices]
    return {"choices": texts[:MAX_CHOICES], "gold": gold, "logliks": lls, "picks": picks}


def _samples(data: ReportData) -> dict[str, Any]:
    """Browser data: one record per baseline sample, with every run's response and primary score."""
    def clip(v: Any) -> Any:
        if isinstance(v, str) and len(v) > MAX_SAMPLE_TEXT:
            return v[:MAX_SAMPLE_TEXT] + f" … [{len(v) - MAX_SAMPLE_TEXT} more characters]"
        return v if isinstance(v, (str, int, float, type(None))) else json.dumps(v, ensure_ascii=False)

    primary: dict[tuple[str, str], str | None] = {}
    comp0 = data.comparisons[0] if data.comparisons else None
    candidates = [i for i in range(len(data.runs)) if i != data.baseline_index]
    by_run = dict(zip(candidates, data.comparisons))
    # The browser's flips are the comparison's own (0/1 metrics only), so it counts what the summary card counts.
    flipped = {i: {(f.suite, f.task, f.sample_id): "up" if f.direction == "wrong→right" else "down"
                   for f in comp.flips} for i, comp in by_run.items()}
    binary = {i: {(r.suite, r.task): r.binary for r in comp.metrics if r.task is not None
                  and r.metric == (comp.primary_metric(r.suite, r.task) or r.metric)} for i, comp in by_run.items()}
    records = []
    for s in data.baseline.samples:
        key = (s["suite"], s["task"])
        if key not in primary:
            primary[key] = (comp0.primary_metric(*key) if comp0 else None) or next(iter(s.get("scores") or {}), None)
        metric = primary[key]
        others = [r.sample(s["suite"], s["task"], s["sample_id"]) if r is not data.baseline else s for r in data.runs]
        scores = [(o or {}).get("scores", {}).get(metric) if metric else None for o in others]
        flips, changes = [], []
        for i, _o in enumerate(others):
            comp = by_run.get(i)
            flips.append("" if comp is None else flipped[i].get((s["suite"], s["task"], s["sample_id"]), ""))
            b, c = scores[data.baseline_index], scores[i]
            # A continuous score shows its change; only a 0/1 score's change is a flip (as on the summary card).
            continuous = comp is not None and not binary[i].get((s["suite"], s["task"]), False)
            change = round(float(c) - float(b), 6) if continuous and isinstance(b, (int, float)) \
                and isinstance(c, (int, float)) else 0.0
            changes.append(change or None)  # float noise (0.32 against 0.31999999999999995) is no change
        records.append({"suite": s["suite"], "task": s["task"], "id": s["sample_id"],
                        "perturbation": s.get("perturbation"), "prompt": clip(s.get("prompt")),
                        "target": clip(s.get("target")), "metric": metric,
                        "responses": [clip((o or {}).get("response")) for o in others],
                        "scores": scores, "flips": flips, "changes": changes, **_choice_view(s, others)})
    return {"runs": data.labels, "baseline": data.baseline_index, "samples": records}


def render_html(data: ReportData) -> str:
    """The whole HTML report as one string."""
    env = _env()
    script = (resources.files("harness.report") / "templates" / "report.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    primary = _primary(data)
    methods = _methods(data, primary)
    he = data.human_eval
    context = {
        "data": data, "primary": primary, "bars": _bars(data, primary), "forest": _forest(data),
        "curves": _curves(data), "methods": methods, "cost_columns": cost_columns(methods), "robustness": _robustness(data),
        "samples_json": json_for_script(_samples(data)), "script": Markup(script),
        "csp": f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{digest}'",
        "colors": [svg.color(i) for i in range(len(data.runs))],
        "human": he, "evidence": _evidence_groups(data), "history": history_html(data.history),
        "matrix": _verdict_matrix(data), "selections": selection_groups(data.runs, data.labels),
        "marks": [method_marks(g.rules) for g in data.gates], "mark_of": mark_of,
        "mde_words": MDE_WORDS, "direction_legend": DIRECTION_LEGEND,
        "suite_groups": [_suite_groups(c) for c in data.comparisons],
        "judging": data.judging,
        "ranking": ranking_html(data.rankings, data.candidates, [data.label(r) for r in data.candidates]),
        "win_chart": svg.stacked_share([(f"{w.model} vs {w.versus}", w.win, w.tie, w.loss) for w in he.win_rates],
                                       title="win / tie / loss") if he and he.win_rates else None,
    }
    return env.get_template("report.html.j2").render(**context)
