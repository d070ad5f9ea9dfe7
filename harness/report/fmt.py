"""Number formatting shared by the terminal, Markdown and HTML renderers."""

from __future__ import annotations

import math
from typing import Any

from harness.inference.stats import Interval


def fmt_num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def fmt_ci(lo: float | None, hi: float | None, signed: bool = True) -> str:
    if lo is None or hi is None:
        return "n/a"
    f = "+.3f" if signed else ".3f"
    return f"[{lo:{f}}, {hi:{f}}]"


def fmt_interval(iv: Interval | None, signed: bool = True) -> str:
    """An interval, or why there is none: a method undefined at this n never prints as [v, v]."""
    if iv is None:
        return "–"
    if not iv.defined:
        return f"undefined: {iv.note}" if iv.note else "undefined"
    return fmt_ci(iv.lo, iv.hi, signed)


def fmt_p(p: float | None) -> str:
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_count(n: int | None) -> str:
    if n is None:
        return "–"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "–"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def fmt_figure(rule: Any) -> str:
    """A score plainly; deltas and drops with their sign."""
    if rule.figure is None or not math.isfinite(rule.figure):
        return "–"
    return f"{rule.figure:.3f}" if rule.kind in ("floor", "max_robustness_drop") else fmt_signed(rule.figure)


def fmt_rule_interval(rule: Any) -> str:
    """Scores (floor rules) unsigned; deltas and drops signed."""
    return fmt_interval(rule.interval, signed=rule.kind not in ("floor", "max_robustness_drop"))


def fmt_plan(rule: Any) -> str:
    """What would decide an inconclusive rule: a fresh, pre-planned evaluation of this many items."""
    if rule.verdict != "INCONCLUSIVE":
        return ""
    if rule.plan_n:
        more = more_items(rule)
        extra = f", ≈{more} more than evaluated here" if more else ""
        return f"a fresh run of ≈{rule.plan_n} items per task decides it at 80% power{extra} (see `tunegate plan`)"
    return "no plan: see `tunegate plan`"


def more_items(rule: Any) -> int | None:
    """Items per task beyond those evaluated that the planner's n asks for: the largest gap over the rule's
    undecided checks (a rule's n sums its tasks, its planned n is the largest task's), None without a plan."""
    gaps = [c.plan_n - c.n for c in getattr(rule, "checks", []) if c.verdict == "INCONCLUSIVE" and c.plan_n]
    if gaps:
        return max(0, max(gaps))
    return max(0, rule.plan_n - rule.n) if rule.plan_n else None


def fmt_sequential(summary: dict[str, Any] | None) -> str:
    """One line for a gate judged on a sequential run: method and items evaluated of those available."""
    if not summary:
        return ""
    evaluated, available = summary.get("evaluated") or {}, summary.get("available") or {}
    by_suite: dict[str, list[str]] = {}
    for task in evaluated:
        by_suite.setdefault(task.split("/", 1)[0], []).append(task)
    parts = []
    for suite, tasks in by_suite.items():
        if len(tasks) > 6:  # many small tasks (legal has 27): one total for the suite
            have = [available.get(t) for t in tasks]
            total = sum(int(a) for a in have if a is not None) if None not in have else "?"
            parts.append(f"{suite} ({len(tasks)} tasks) {sum(evaluated[t] for t in tasks)} of {total}")
        else:
            parts += [f"{task} {evaluated[task]} of {available.get(task, '?')}" for task in tasks]
    stopped = f"; stopped: {summary['stopped']}" if summary.get("stopped") else ""
    design = summary.get("design") or {}
    tuned = ""
    if design:  # the bets' horizons, fixed before the first look (one total when there are many tasks)
        horizons = [f"{task} {d.get('horizon')}" for task, d in design.items()]
        tuned = (f"; bets tuned before the first look to {', '.join(horizons)} items" if len(horizons) <= 6 else
                 f"; bets tuned before the first look to horizons of {len(horizons)} tasks")
    drawn = ""
    if summary.get("active"):  # an active run: its floor and the draws behind the distinct items
        info = summary["active"]
        drawn = (f"; active: floor {info.get('floor')}, signal {', '.join(sorted(set(info.get('signals', {}).values())))}"
                 f", {sum(info.get('draws', {}).values())} draws"
                 + (f" over {sum(info['distinct_items'].values())} distinct items" if info.get("distinct_items") else "")
                 + (f", {' and '.join(sorted(set(info['estimators'].values())))} estimator"
                    if info.get("estimators") else ""))
    article = "an" if str(summary["method"])[:1].lower() in "aeiou" else "a"
    return (f"sequential run, judged with {article} {summary['method']} (valid at the data-dependent stopping point, "
            f"no fixed-n test); items evaluated: {', '.join(parts)}{tuned}{drawn}{stopped}")


MDE_WORDS = ("MDE (minimum detectable effect): the smallest change this n could detect, 80% of the time, with a "
             "95% interval; a smaller true change would mostly go unseen")
DIRECTION_LEGEND = "↑ higher is better, ↓ lower is better"
_MARKS = "¹²³⁴⁵⁶⁷⁸⁹"


def direction_mark(higher_is_better: bool | None) -> str:
    """↑ or ↓ after a metric's name, so that a lower-is-better metric is never read the wrong way round."""
    if higher_is_better is None:
        return ""
    return "↑" if higher_is_better else "↓"


def metric_scale(metric: str) -> str:
    """` (0–100)` after a metric not on 0–1 (BLEU, chrF, perplexity), so it is not read beside ROUGE's 0–1."""
    # first use only: the metric registry loads every metric function
    from harness.scoring.metric_docs import value_range
    from harness.scoring.metrics import REGISTRY

    known = REGISTRY.get(metric)
    scale = value_range(known) if known is not None else "0–1"
    return "" if scale == "0–1" else f" ({scale})"


def metric_with_direction(metric: str, higher_is_better: bool | None) -> str:
    """`acc ↑`, `bleu (0–100) ↑`."""
    mark = direction_mark(higher_is_better)
    name = metric + metric_scale(metric)
    return f"{name} {mark}" if mark else name


def _rule_intervals(rule: Any) -> list[Any]:
    return [iv for iv in [rule.interval, *(c.interval for c in getattr(rule, "checks", []))] if iv is not None]


def method_marks(rules: list[Any]) -> dict[str, str]:
    """Each interval method the rules use, once, with its footnote mark (¹, ², …) in order of first use."""
    methods: list[str] = []
    for rule in rules:
        for iv in _rule_intervals(rule):
            if iv.method and iv.method not in methods:
                methods.append(iv.method)
    return {m: _MARKS[i] if i < len(_MARKS) else f"[{i + 1}]" for i, m in enumerate(methods)}


def mark_of(interval: Any, marks: dict[str, str]) -> str:
    method = getattr(interval, "method", None)
    return marks.get(method, "") if method else ""


def rule_detail(rule: Any) -> str:
    """A rule's detail without its interval methods: those go once, in the footnote."""
    methods = {iv.method for iv in _rule_intervals(rule) if iv.method}
    return "; ".join(p for p in (rule.detail or "").split("; ") if p and p not in methods)


def fmt_n_mde(n: int, mde: float | None) -> str:
    """n and the MDE, the column's footnote saying in words what the MDE is."""
    return f"n {n}" + (f"; MDE {mde:.3f}" if mde is not None and math.isfinite(mde) else "")


def footnotes(marks: dict[str, str]) -> list[str]:
    """The methods, once each, then the MDE in words."""
    return [f"{mark} interval: {method}" for method, mark in marks.items()] + [MDE_WORDS]


def fmt_signed(value: float | None, digits: int = 3) -> str:
    """A change with its sign; one that rounds to zero prints as 0.000, never -0.000."""
    if value is None or not math.isfinite(value):
        return "–"
    if round(value, digits) == 0:
        return f"{0:.{digits}f}"
    return f"{value:+.{digits}f}"
