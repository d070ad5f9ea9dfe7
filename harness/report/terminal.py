"""Terminal tables (rich) for compare, gate, plan and eval: formatting only, no analysis."""

from __future__ import annotations

import io
from typing import Any

from harness.data.runs import Run
from harness.decide.compare import Comparison, mixed_direction_notes
from harness.decide.gate import GateResult
from harness.decide.plan import PlanRow
from harness.decide.ranking import Ranking, Selection
from harness.report.cost import run_costs
from harness.report.data import selection_groups
from harness.report.fmt import (
    DIRECTION_LEGEND,
    fmt_bytes,
    fmt_count,
    fmt_figure,
    fmt_interval,
    fmt_n_mde,
    fmt_num,
    fmt_p,
    fmt_plan,
    fmt_rule_interval,
    fmt_sequential,
    fmt_signed,
    footnotes,
    mark_of,
    method_marks,
    metric_with_direction,
    rule_detail,
)
from harness.report.ranking import COST_HEADER, cost_rows, selection_lines
from harness.report.ranking import lines as ranking_lines


def _console(width: int = 140) -> tuple[Any, io.StringIO]:
    from rich.console import Console

    buf = io.StringIO()
    return Console(file=buf, width=width, force_terminal=False, color_system=None), buf


def format_comparison(comp: Comparison) -> str:
    """The comparison: metrics with their intervals and tests, flips, left-out samples, efficiency."""
    from rich.table import Table

    console, buf = _console(150)
    table = Table(title=f"{comp.candidate.label} vs {comp.baseline.label} (per-item paired 95% intervals)")
    for col in ("suite / task", "metric", "n", comp.baseline.label, comp.candidate.label, "Δ", "95% CI",
                "p", "p (Holm)", "test"):
        table.add_column(col, justify="left" if col in ("suite / task", "metric", "test") else "right")
    methods: list[str] = []
    for row in comp.metrics:
        if row.interval is not None and row.interval.method and row.interval.method not in methods:
            methods.append(row.interval.method)
    marks = {m: mark for m, mark in zip(methods, "¹²³⁴⁵⁶⁷⁸⁹")}
    for row in comp.metrics:
        name = row.suite if row.task is None else f"  {row.task}"
        test = row.test if row.paired else "corpus-level: no paired test"
        if row.binary:
            test += f" ({row.b}↓ {row.c}↑)"
        table.add_row(name, metric_with_direction(row.metric, row.higher_is_better), str(row.n or "–"),
                      fmt_num(row.base), fmt_num(row.cand), fmt_signed(row.delta),
                      fmt_interval(row.interval) + mark_of(row.interval, marks), fmt_p(row.p_value),
                      fmt_p(row.p_holm), test)
    console.print(table)
    console.print(DIRECTION_LEGEND + "; " + "; ".join(f"{mark} interval: {m}" for m, mark in marks.items()),
                  markup=False)
    for labels, sel in selection_groups([comp.baseline, comp.candidate], [comp.baseline.label, comp.candidate.label]):
        console.print(f"items of {', '.join(labels)}: {sel.text}; {sel.meaning}", markup=False)
    down = sum(f.direction == "right→wrong" for f in comp.flips)
    console.print(f"flipped samples: {down} right→wrong, {len(comp.flips) - down} wrong→right")
    if comp.backends_note:
        console.print(f"note: {comp.backends_note}")
    for line in mixed_direction_notes(comp):
        console.print(f"note: {line}", markup=False)
    for (suite, task), (ob, oc) in comp.incomplete.items():
        console.print(f"note: {suite}/{task}: {ob} samples only in the baseline, {oc} only in the candidate "
                      "(left out of paired statistics)")
    for label, suites in (("baseline", comp.only_in_baseline), ("candidate", comp.only_in_candidate)):
        if suites:
            console.print(f"note: suites only in the {label}: {', '.join(suites)} (not compared)")
    eff = Table(title="efficiency")
    for col in ("run", "method", "eval wall s", "eval tok/s", "trainable params", "adapter size",
                "train s", "train tok/s"):
        eff.add_column(col, justify="left" if col in ("run", "method") else "right")
    for e in run_costs(comp.baseline, comp.candidate):
        eff.add_row(e.label, e.method, fmt_num(e.wall_seconds, 1), fmt_num(e.tokens_per_second, 1),
                    fmt_count(e.trainable_params), fmt_bytes(e.adapter_bytes), fmt_num(e.train_seconds, 1),
                    fmt_num(e.train_tokens_per_second, 1))
    console.print(eff)
    return buf.getvalue()


def format_rankings(rankings: list[Ranking], runs: list[Run], labels: list[str]) -> str:
    """Which run is better: per metric a chain (or the ranks allowed), each pair's Δ with its interval and n; the
    cost of each run below."""
    from rich.table import Table

    console, buf = _console(150)
    k = len(runs)
    m = k * (k - 1) // 2
    console.print(f"Which run is better ({k} runs, {m} pair{'s' if m != 1 else ''}; each pair at {100 * (1 - 0.05 / max(1, m)):.4g}%, "
                  "so every stated order holds together at 95%: Bonferroni)", markup=False)
    for r in rankings:
        head, pairs = ranking_lines(r)
        console.print(head, markup=False)
        for line in pairs:
            console.print(f"    {line}", markup=False)
    console.print(DIRECTION_LEGEND + "; Δ: the first run minus the second, positive = the first is better; "
                  "≈: the interval holds 0, so this n cannot separate them", markup=False)
    cost = Table(title="cost")
    for col in COST_HEADER:
        cost.add_column(col, justify="left" if col in ("run", "method") else "right")
    for row in cost_rows(runs, labels):
        cost.add_row(*row)
    console.print(cost)
    return buf.getvalue()


def format_selection(selection: Selection) -> str:
    """The gate's pick among several candidates, and how picking is accounted for."""
    return "\n".join(selection_lines(selection)) + "\n"


def verdict_line(result: GateResult) -> str:
    n = len(result.rules)
    if result.verdict == "PASS":
        extra = (f" ({len(result.inconclusive)} inconclusive accepted: {result.reason})"
                 if result.inconclusive else "")
        return f"PASS: all {n} rules pass{extra}"
    if result.verdict == "FAIL":
        return f"FAIL: {len(result.failures)} of {n} rules fail"
    return f"INCONCLUSIVE: {len(result.inconclusive)} of {n} rules cannot be decided on this data; none fails"


def format_gate(result: GateResult) -> str:
    """The verdict as a terminal table, one row per rule and one indented row per judged task."""
    from rich.table import Table

    console, buf = _console(160)
    comp = result.comparison
    table = Table(title=f"gate {result.gate_file}: {comp.candidate.label} vs {comp.baseline.label} — "
                        f"{verdict_line(result)}")
    ci = f"{result.level} CI"
    for col in ("", "rule", "figure", "condition", ci, "evidence", "detail"):
        table.add_column(col, justify="right" if col in ("figure", ci) else "left")
    marks = method_marks(result.rules)
    for r in result.rules:
        table.add_row(r.verdict, r.name, fmt_figure(r), r.threshold, fmt_rule_interval(r) + mark_of(r.interval, marks),
                      fmt_n_mde(r.n, r.mde), "; ".join(x for x in (rule_detail(r), fmt_plan(r)) if x))
        if len(r.checks) > 1:
            for c in r.checks:
                shown = f"{c.figure:.3f}" if r.kind in ("floor", "max_robustness_drop") else fmt_signed(c.figure)
                table.add_row(f"  {c.verdict or 'shown'}", f"  {c.label}", shown, c.metric,
                              fmt_interval(c.interval, signed=r.kind not in ("floor", "max_robustness_drop"))
                              + mark_of(c.interval, marks), fmt_n_mde(c.n, c.mde), c.note or "")
    console.print(table)
    for warning in result.warnings:
        console.print(f"WARNING: {warning}", markup=False)
    for line in footnotes(marks):
        console.print(line, markup=False)
    for labels, sel in selection_groups([comp.baseline, comp.candidate], [comp.baseline.label, comp.candidate.label]):
        console.print(f"items of {', '.join(labels)}: {sel.text}; {sel.meaning}", markup=False)
    if comp.backends_note:
        console.print(f"note: {comp.backends_note}")
    if result.sequential:
        console.print(fmt_sequential(result.sequential), markup=False)
    for task, (ob, oc) in result.partial.items():
        console.print(f"partial (allow_partial): {task}: {ob} samples only in the baseline, {oc} only in the "
                      "candidate were left out of paired rules")
    return buf.getvalue()


def markdown_table(results: dict[str, Any]) -> str:
    """The per-task results of one run as a Markdown table (printed after every eval)."""
    adapter = results["model"].get("adapter")
    title = results["model"]["spec"] + (f" + {adapter['name']}" if adapter else "")
    lines = [f"### {title}", "", "| suite | task | metric | value | 95% CI | n |", "|---|---|---|---:|---|---:|"]

    def ci(m: dict[str, Any]) -> str:
        c = m.get("ci95")
        return fmt_interval_pair(c) if c else "–"

    for suite_name, suite in results["suites"].items():
        for task_name, task in suite["tasks"].items():
            for metric, m in list(task["metrics"].items()) + list(task.get("robustness", {}).items()):
                lines.append(f"| {suite_name} | {task_name} | {metric} | {fmt_num(m['value'], 4)} | {ci(m)} | "
                             f"{m['n']} |")
    timing = results.get("timing", {})
    lines += ["", f"wall {timing.get('wall_seconds')} s, {timing.get('tokens_processed')} tokens, "
                  f"cache hits {timing.get('cache_hits')}, misses {timing.get('cache_misses')}"]
    return "\n".join(lines)


def fmt_interval_pair(ci: list[Any]) -> str:
    lo, hi = ci[0], ci[1]
    if lo is None or hi is None:
        return "undefined at this n"
    return f"[{float(lo):.4f}, {float(hi):.4f}]"


def format_plan(rows: list[PlanRow]) -> str:
    """The plan: per rule and task, n now, n needed for 80% power, and the effect n now can detect."""
    from rich.table import Table

    console, buf = _console(160)
    table = Table(title="evidence plan (80% power, 95% intervals)")
    for col in ("rule", "suite / task", "metric", "n now", "n needed", "MDE now", "basis"):
        table.add_column(col, justify="right" if col in ("n now", "n needed", "MDE now") else "left")
    for r in rows:
        table.add_row(r.rule, f"{r.suite}/{r.task}", r.metric, str(r.n_now),
                      str(r.n_needed) if r.n_needed is not None else "–", fmt_num(r.mde_now), r.basis)
    console.print(table)
    console.print("Evaluate a fresh set of the needed size, decided before it runs. Adding items to a run "
                  "and testing again at a fixed n inflates false passes.")
    return buf.getvalue()
