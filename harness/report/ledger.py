"""Terminal views of the release ledger: runs, one run, a channel's history (table, sparkline, intervals)."""

from __future__ import annotations

import math
import time
from typing import Any

from harness.core.untrusted import excerpt
from harness.storage.ledger import Channel, HistoryPoint, Promotion, RunSummary

SPARKS = "▁▂▃▄▅▆▇█"
BAR = 40  # characters of the interval strip


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def _safe(text: Any, width: int = 60) -> str:
    """Stored text (a label, a reason, a path) for the terminal: escaped (excerpt) and cut to `width`."""
    shown = excerpt(str(text), 10_000)  # escapes control and bidirectional characters
    return shown if len(shown) <= width else shown[:width - 1] + "…"


def format_runs(rows: list[RunSummary]) -> str:
    if not rows:
        return "no runs in the ledger"
    lines = [f"{'run':<14} {'created (UTC)':<17} {'label':<20} {'suites':<30} creator"]
    for r in rows:
        suites = ", ".join(sorted(r.suites))
        lines.append(f"{r.run_id[:12]:<14} {_when(r.created):<17} {_safe(r.label, 20):<20} {_safe(suites, 30):<30} "
                     f"{_safe(r.creator, 50)}")
    return "\n".join(lines)


def format_run(info: dict[str, Any]) -> str:
    s: RunSummary = info["summary"]
    lines = [f"run       {s.run_id}", f"created   {_when(s.created)} UTC by {_safe(s.creator, 80)}",
             f"label     {_safe(s.label)}", f"model     {s.model_hash or '-'}", f"adapter   {s.adapter_hash or '-'}",
             f"recipe    {s.recipe_hash or '-'}", f"data      {s.data_hash or '-'}", "suites"]
    for name, fp in sorted(s.suites.items()):
        scores = ", ".join(f"{_safe(m, 30)} {v:.4f}" for m, v in (info["scores"].get(name) or {}).items()
                           if isinstance(v, (int, float)) and math.isfinite(v))
        lines.append(f"  {_safe(name, 30)} (suite {str(fp)[:12]}): {scores or '-'}")
    lines.append("verdicts" if info["verdicts"] else "verdicts  none recorded")
    for v in info["verdicts"]:
        why = f" ({_safe(v['reason'], 80)})" if v["on_inconclusive"] == "pass" and v["reason"] else ""
        lines.append(f"  {v['verdict']:<12} {_safe(v['gate_file'])} (gate {v['gate_hash'][:12]}) vs "
                     f"{v['baseline_run'][:12]}, {_when(v['created'])} by {_safe(v['creator'], 50)}{why}")
    lines.append("releases" if info["releases"] else "releases  none")
    for r in info["releases"]:
        how = f"forced: {_safe(r['reason'], 80)}" if r["forced"] else (r["reason"] and _safe(r["reason"], 80)) or "gated"
        lines.append(f"  {_safe(r['channel'], 30)} release {r['number']} ({how}), {_when(r['created'])}")
    return "\n".join(lines)


def format_channels(rows: list[Channel]) -> str:
    if not rows:
        return "no channels in the store"
    return "\n".join(f"{_safe(c.name, 20):<20} release {c.number:<4} {str(c.run_id)[:12]:<13} "
                     f"{_safe(c.gate_file, 80) if c.gate_file else '(no gate file: saved with --save-baseline)'}"
                     for c in rows)


def format_promotion(p: Promotion) -> str:
    how = f"forced: {_safe(p.reason, 200)}" if p.forced else "passing verdict recorded" + (
        f"; {_safe(p.reason, 200)}" if p.reason else "")
    prev = p.previous_run[:12] if p.previous_run else "none"
    return f"promoted {p.run_id[:12]} to {_safe(p.channel, 40)} as release {p.number} (was {prev}; {how})"


def sparkline(values: list[float | None]) -> str:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    span = hi - lo or 1.0
    return "".join(" " if v is None or not math.isfinite(v) else SPARKS[round((v - lo) / span * (len(SPARKS) - 1))]
                   for v in values)


def _strip(p: HistoryPoint, lo: float, hi: float) -> str:
    """The interval as ─ and the estimate as ● on a shared scale of BAR characters."""
    if p.value is None:
        return ""
    span = hi - lo or 1.0

    def col(x: float) -> int:
        return max(0, min(BAR - 1, round((x - lo) / span * (BAR - 1))))

    cells = [" "] * BAR
    if p.lo is not None and p.hi is not None:
        for i in range(col(p.lo), col(p.hi) + 1):
            cells[i] = "─"
        cells[col(p.lo)], cells[col(p.hi)] = "├", "┤"
    cells[col(p.value)] = "●"
    return "".join(cells).rstrip()


def format_history(channel: str, metric: str, points: list[HistoryPoint]) -> str:
    """A table of releases (value, 95% interval, n, suite version) with an interval strip, and a sparkline."""
    ends = [x for p in points for x in (p.lo, p.hi, p.value) if x is not None and math.isfinite(x)]
    lo, hi = (min(ends), max(ends)) if ends else (0.0, 1.0)
    lines = [f"{_safe(channel, 40)}: {_safe(metric, 60)} over {len(points)} release{'s' if len(points) != 1 else ''}   {sparkline([p.value for p in points])}",
             f"{'rel':>4} {'run':<13} {'label':<16} {'value':>7} {'95% interval':<17} {'n':>6}  "
             f"{lo:<{BAR // 2}.3f}{hi:>{BAR - BAR // 2}.3f}"]
    for p in points:
        value = f"{p.value:.4f}" if p.value is not None else "-"
        iv = f"[{p.lo:.3f}, {p.hi:.3f}]" if p.lo is not None and p.hi is not None else "-"
        mark = []
        if p.suite_changed:
            mark.append(f"◆ suite changed ({str(p.fingerprint)[:8]})")
        if p.forced:
            mark.append(f"forced: {_safe(p.reason, 40)}")
        lines.append(f"{p.number:>4} {p.run_id[:12]:<13} {_safe(p.label, 16):<16} {value:>7} {iv:<17} {p.n:>6}  "
                     f"{_strip(p, lo, hi):<{BAR}}  {'; '.join(mark)}".rstrip())
    if any(p.suite_changed for p in points):
        lines.append("◆: the suite's version changed at this release; values before and after are not comparable")
    return "\n".join(lines)
