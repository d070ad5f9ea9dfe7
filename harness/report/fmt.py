"""Number formatting shared by the terminal, Markdown and HTML renderers."""

from __future__ import annotations

import math
from typing import Any

from harness.stats import Interval


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
    return f"{rule.figure:.3f}" if rule.kind in ("floor", "max_robustness_drop") else f"{rule.figure:+.3f}"


def fmt_rule_interval(rule: Any) -> str:
    """Scores (floor rules) unsigned; deltas and drops signed."""
    return fmt_interval(rule.interval, signed=rule.kind not in ("floor", "max_robustness_drop"))


def fmt_evidence(rule: Any) -> str:
    """n, and the smallest effect this n detects with 80% power."""
    mde = f"; MDE {rule.mde:.3f}" if rule.mde is not None and math.isfinite(rule.mde) else ""
    return f"n {rule.n}{mde}"


def fmt_plan(rule: Any) -> str:
    """What would decide an inconclusive rule: a fresh, pre-planned evaluation of this many items."""
    if rule.verdict != "INCONCLUSIVE":
        return ""
    if rule.plan_n:
        return f"a fresh run of ≈{rule.plan_n} items decides it at 80% power (see `tunegate plan`)"
    return "no plan: see `tunegate plan`"


def fmt_sequential(summary: dict[str, Any] | None) -> str:
    """One line for a gate judged on a sequential run: method and items evaluated of those available."""
    if not summary:
        return ""
    evaluated, available = summary.get("evaluated") or {}, summary.get("available") or {}
    parts = [f"{task} {n} of {available.get(task, '?')}" for task, n in evaluated.items()]
    stopped = f"; stopped: {summary['stopped']}" if summary.get("stopped") else ""
    return (f"sequential run, judged with a {summary['method']} (valid at the data-dependent stopping point, "
            f"no fixed-n test); items evaluated: {', '.join(parts)}{stopped}")
