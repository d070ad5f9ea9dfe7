"""Markdown report for a GitHub step summary or a pull-request comment."""

from __future__ import annotations

import html
from typing import Any

from harness.decide.compare import Comparison, Flip, mixed_direction_notes
from harness.decide.gate import GateResult
from harness.report.data import ReportData, evidence_rows, selection_groups
from harness.report.fmt import (
    DIRECTION_LEGEND,
    fmt_ci,
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
    more_items,
    rule_detail,
)
from harness.report.judge_section import markdown_lines as judge_markdown
from harness.report.ranking import markdown_lines as ranking_markdown

MAX_FLIPS = 40  # per direction and comparison: step summaries are capped at 1 MiB
MAX_TEXT = 600

# Characters that markdown, GitHub autolinking (@mentions, #refs) or tables would interpret.
_MD_ENTITIES = {"|": "&#124;", "*": "&#42;", "_": "&#95;", "`": "&#96;", "[": "&#91;", "]": "&#93;",
                "\\": "&#92;", "~": "&#126;", "@": "&#64;", "#": "&#35;", "!": "&#33;", ":": "&#58;"}


def _entity(s: str, i: int) -> str:
    """One character escaped; an intraword `_` (acc_norm: GFM never emphasises it) and a `:` that starts no
    URL scheme stay as they are, so the report reads as plain text too."""
    ch = s[i]
    if ch == "_" and 0 < i < len(s) - 1 and s[i - 1].isalnum() and s[i + 1].isalnum():
        return ch
    if ch == ":" and not s.startswith("//", i + 1):
        return ch
    return _MD_ENTITIES.get(ch) or html.escape(ch, quote=True)


def esc(text: Any, limit: int | None = None) -> str:
    """Escape any text (model output included) for both HTML and markdown; newlines become <br>."""
    s = "" if text is None else str(text)
    if limit is not None and len(s) > limit:
        s = s[:limit] + f" … [{len(s) - limit} more characters]"
    # One pass over the text: escaping HTML first would turn the `#` of `&#x27;` into `&#35;`.
    s = "".join(_entity(s, i) for i in range(len(s)))
    # A blank line would end the HTML block on GitHub; carriage returns and tabs are normalised too.
    return s.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>").replace("\t", "&#9;")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    aligns = ["---" if i == 0 or not h or h in ("suite", "metric", "rule", "test", "condition") else "---:"
              for i, h in enumerate(header)]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(aligns) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


_ICON = {"PASS": "✅", "FAIL": "❌", "INCONCLUSIVE": "⚠️"}


def _verdict(gate: GateResult | None) -> list[str]:
    if gate is None:
        return ["**Verdict: no gate applied.**", ""]
    comp = gate.comparison
    n = len(gate.rules)
    head = {"PASS": f"## ✅ PASS: all {n} rules pass",
            "FAIL": f"## ❌ FAIL: {len(gate.failures)} of {n} rules fail",
            "INCONCLUSIVE": f"## ⚠️ INCONCLUSIVE: {len(gate.inconclusive)} of {n} rules cannot be decided on "
                            "this data; none fails"}[gate.verdict]
    lines = [head, "", f"Gate `{esc(gate.gate_file)}`: **{esc(comp.candidate.label)}** vs "
             f"**{esc(comp.baseline.label)}** (95% intervals that hold at small n, seed {gate.seed}).", ""]
    if gate.inconclusive and gate.on_inconclusive == "pass":
        lines += [f"Inconclusive rules are accepted by the gate file: {esc(gate.reason)}", ""]
    rows = []
    marks = method_marks(gate.rules)
    for r in gate.rules:
        # the detail names tasks (user text): escaped; the plan and the estimate note are ours, and read as written
        note = "; ".join(x for x in (esc(rule_detail(r)), fmt_plan(r),
                                     "decided on the point estimate" if r.decided_on == "estimate" else "") if x)
        rows.append([_ICON[r.verdict] + " " + r.verdict, esc(r.name), fmt_figure(r), esc(r.threshold),
                     fmt_rule_interval(r) + mark_of(r.interval, marks), fmt_n_mde(r.n, r.mde), note])
    notes = footnotes(marks)  # our own words and method names: plain, so they read as text too
    return (lines + _table(["", "rule", "figure", "condition", "95% CI", "evidence", "detail"], rows) + [""]
            + ["<sub>" + "<br>".join(notes) + "</sub>", ""])


def _evidence(data: ReportData) -> list[str]:
    """What this evaluation can and cannot show: n per task, inconclusive rules, where items come from."""
    lines = ["## What this evaluation can and cannot show", "",
             "A rule is INCONCLUSIVE when its 95% interval reaches both sides of its threshold; a fresh, "
             "pre-planned evaluation of the stated size would decide it.", ""]
    rows = [[f"{esc(e.suite)} / {esc(e.task)}", esc(e.kind)] + [str(e.n.get(lab, "–")) for lab in data.labels]
            + [esc(e.source)] for e in evidence_rows(data)]
    lines += _table(["suite", "kind"] + [f"n ({esc(lab)})" for lab in data.labels]
                    + ["licence (source of the items)"], rows)
    lines += [""] + [f"- {esc(lab)}: {esc(e.suite)} / {esc(e.task)} has 0 items: {why}; its figures are absent, not zero."
                     for e in evidence_rows(data) for lab, why in e.zero.items()]
    lines += ["", "How the items were chosen, per run:", ""]
    # The statement is ours (no model or user text): written plainly, only the run labels escaped.
    lines += [f"- **{esc(', '.join(labels))}**: {sel.text}. {sel.meaning[:1].upper() + sel.meaning[1:]}."
              for labels, sel in selection_groups(data.runs, data.labels)]
    lines.append("")
    for gate in data.gates:
        for r in gate.rules:
            if r.verdict == "INCONCLUSIVE":
                lines.append(f"- {esc(gate.comparison.candidate.label)}: **{esc(r.name)}** is inconclusive "
                             f"on n {r.n}" + (f"; needs ≈{r.plan_n} fresh items per task" if r.plan_n else "")
                             + (f", ≈{more} more than evaluated here" if (more := more_items(r)) else "") + ".")
        if gate.sequential:
            lines.append(f"- {esc(gate.comparison.candidate.label)}: {esc(fmt_sequential(gate.sequential))}.")
        for task, (ob, oc) in gate.partial.items():
            lines.append(f"- {esc(gate.comparison.candidate.label)}: {esc(task)} judged on shared samples only "
                         f"({ob} baseline-only and {oc} candidate-only samples left out).")
    return lines + [""]


def _suite_table(comp: Comparison) -> list[str]:
    base, cand = comp.baseline.label, comp.candidate.label
    rows = []
    for r in comp.metrics:
        name = f"**{esc(r.suite)}**" if r.task is None else f"&nbsp;&nbsp;{esc(r.task)}"
        test = esc(r.test) if r.paired else "corpus-level, no paired test"
        rows.append([name, esc(metric_with_direction(r.metric, r.higher_is_better)), str(r.n or "–"),
                     fmt_num(r.base), fmt_num(r.cand), fmt_signed(r.delta),
                     fmt_interval(r.interval), esc(fmt_p(r.p_value)), esc(fmt_p(r.p_holm)), test])
    header = ["suite", "metric", "n", esc(base), esc(cand), "Δ", "95% CI", "p", "p (Holm)", "test"]
    return _table(header, rows)


def _flip_rows(flips: list[Flip], base: str, cand: str) -> list[str]:
    out = ["<table>", f"<tr><th>sample</th><th>prompt</th><th>target</th><th>{esc(base)}</th>"
           f"<th>{esc(cand)}</th></tr>"]
    for f in flips[:MAX_FLIPS]:
        out.append(f"<tr><td>{esc(f.suite)}/{esc(f.sample_id)}</td><td>{esc(f.prompt, MAX_TEXT)}</td>"
                   f"<td>{esc(f.target, MAX_TEXT)}</td><td>{esc(f.base_response, MAX_TEXT)}</td>"
                   f"<td>{esc(f.cand_response, MAX_TEXT)}</td></tr>")
    out.append("</table>")
    if len(flips) > MAX_FLIPS:
        out.append(f"<p>… and {len(flips) - MAX_FLIPS} more (see the HTML report).</p>")
    return out


def _flips(comp: Comparison) -> list[str]:
    out = []
    for direction, word in (("right→wrong", "regressions"), ("wrong→right", "improvements")):
        flips = [f for f in comp.flips if f.direction == direction]
        out += ["<details>", f"<summary>{len(flips)} flipped {direction} ({word})</summary>", ""]
        out += _flip_rows(flips, comp.baseline.label, comp.candidate.label) if flips else ["<p>none</p>"]
        out += ["", "</details>", ""]
    return out


def render_markdown(data: ReportData) -> str:
    """The whole Markdown report: verdict, suite tables with intervals, flipped samples (collapsed)."""
    lines = ["# tunegate report", ""]
    if len(data.gates) > 1:
        passed = sum(g.passed for g in data.gates)
        lines += [f"**{passed} of {len(data.gates)} candidates pass the gate.**", ""]
    for gate in data.gates or [None]:  # type: ignore[list-item]
        lines += _verdict(gate)
    if not data.comparisons:
        lines += [f"Single run **{esc(data.baseline.label)}**: no comparison.", ""]
        rows = [[esc(s), esc(metric_with_direction(m, v.get("higher_is_better"))), fmt_num(v.get("value")), fmt_ci(*(v.get("ci95") or (None, None)))]
                for s, suite in data.baseline.suites.items() for m, v in (suite.get("metrics") or {}).items()]
        lines += _table(["suite", "metric", "score", "95% CI"], rows) + ["", DIRECTION_LEGEND + ".", ""]
    lines += ranking_markdown(data.rankings, data.candidates, [data.label(r) for r in data.candidates], esc)
    lines += _evidence(data)
    for run in data.runs:
        weights = ((run.results.get("model") or {}).get("fingerprint") or {}).get("weights")
        if weights:  # an endpoint: say plainly what its identity rests on
            lines += [f"**{esc(data.label(run))}** was evaluated through an endpoint: {esc(weights)}.", ""]
    for comp in data.comparisons:
        lines += [f"## {esc(comp.candidate.label)} vs {esc(comp.baseline.label)}", ""]
        lines += _suite_table(comp) + [""]
        lines.append(f"{DIRECTION_LEGEND}. Δ = candidate − baseline on items aligned by id; 95% intervals that hold at small n (Tango's "
                     "score interval for 0/1 metrics, a betting interval for bounded ones); exact McNemar for "
                     "binary metrics; Holm–Bonferroni across suites.")
        if comp.unmatched:
            lines.append(f"{comp.unmatched} samples present in only one run were left out.")
        if comp.backends_note:
            lines.append(f"Note: {esc(comp.backends_note)}.")
        lines += [f"Note: {esc(line)}." for line in mixed_direction_notes(comp)]
        lines.append("")
        lines += _flips(comp)
    if data.judging:
        lines += judge_markdown(data.judging, esc)
    return "\n".join(lines).rstrip() + "\n"
