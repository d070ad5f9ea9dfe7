"""The report's History section: each suite across a channel's releases, with intervals, forgetting and gains.

Each release's score is shown with its recorded 95% interval. Whether a step lost or gained is decided on
the paired comparison of the release with the one before (harness.decide.compare: the same intervals the gate
uses), not on overlapping score intervals: a step is marked when its whole 95% interval of Δ lies on one
side of zero. A loss on the general suite is forgetting; a gain on a domain suite is what the release was for.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from markupsafe import Markup

from harness.core.api import UserError
from harness.data.runs import Run, stored_run
from harness.decide.compare import compare_runs
from harness.report import svg
from harness.report.markdown import esc
from harness.storage.db import Database
from harness.storage.ledger import releases, run_data

RESAMPLES = 1_000  # only bounded non-binary metrics resample; the marks need no more


@dataclass
class Step:
    number: int
    label: str
    value: float | None
    lo: float | None
    hi: float | None
    n: int
    suite_changed: bool
    delta: float | None = None  # improvement over the release before (positive is better)
    delta_lo: float | None = None
    delta_hi: float | None = None
    mark: str | None = None  # "forgetting", "gain", "loss", "general gain"


@dataclass
class SuiteHistory:
    suite: str
    metric: str
    general: bool
    steps: list[Step] = field(default_factory=list)


@dataclass
class Release:
    number: int
    label: str
    forced: bool
    reason: str | None  # why it was promoted: a forced one's --reason, the first release's note


@dataclass
class History:
    channel: str
    suites: list[SuiteHistory]
    releases: list[Release] = field(default_factory=list)


def _metric(results: dict, suite: str) -> str | None:
    metrics = (results.get("suites") or {}).get(suite, {}).get("metrics") or {}
    return next(iter(metrics), None)


def build_history(db: Database, channel: str, *, general_suite: str = "general") -> History:
    """Every suite of the channel's current release, across all its releases (oldest first)."""
    runs: list[tuple[int, Run]] = []
    notes: list[Release] = []
    for number, rid, _created, forced, reason in releases(db, channel):
        results, samples = run_data(db, rid)
        runs.append((number, stored_run(f"{channel}@{number}", results, samples)))
        notes.append(Release(number, runs[-1][1].label, forced, reason))
    if not runs:
        raise UserError(f"channel '{channel}' has no releases", field="--channel")
    latest = runs[-1][1]
    out = [SuiteHistory(s, m, s == general_suite) for s in latest.suites if (m := _metric(latest.results, s))]
    previous: Run | None = None
    for number, run in runs:
        comp = None
        if previous is not None:
            try:
                comp = compare_runs(previous, run, n_resamples=RESAMPLES)
            except UserError:
                comp = None  # another suite version, or no shared items: no paired step to show
        for sh in out:
            entry = (run.suites.get(sh.suite) or {}).get("metrics", {}).get(sh.metric)
            prev_fp = (previous.suites.get(sh.suite) or {}).get("fingerprint") if previous else None
            fp = (run.suites.get(sh.suite) or {}).get("fingerprint")
            ci = (entry or {}).get("ci95") or [None, None]
            step = Step(number, run.label, (entry or {}).get("value"), ci[0], ci[1], int((entry or {}).get("n") or 0),
                        previous is not None and prev_fp is not None and fp != prev_fp)
            row = comp.get(sh.suite, None, sh.metric) if comp is not None and not step.suite_changed else None
            if row is not None and row.interval is not None and row.interval.defined:
                sign = 1.0 if row.higher_is_better else -1.0
                a, b = sign * float(row.interval.lo), sign * float(row.interval.hi)  # type: ignore[arg-type]
                step.delta, step.delta_lo, step.delta_hi = row.improvement, min(a, b), max(a, b)
                if step.delta_hi < 0:
                    step.mark = "forgetting" if sh.general else "loss"
                elif step.delta_lo > 0:
                    step.mark = "general gain" if sh.general else "gain"
            sh.steps.append(step)
        previous = run
    return History(channel, out, notes)


# ---------------------------------------------------------------- Markdown


def _num(x: float | None, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if x is not None and math.isfinite(x) else "–"


def _md(text: str) -> str:
    return esc(text)


def history_markdown(history: History | None) -> list[str]:
    """A compact table per channel: one row per release, one column per suite (score [interval], mark)."""
    if history is None or not history.suites:
        return []
    header = ["release"] + [f"{_md(s.suite)}/{_md(s.metric)}" for s in history.suites]
    lines = [f"## History of {_md(history.channel)}", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    for i, step in enumerate(history.suites[0].steps):
        cells = [f"{step.number} ({_md(step.label)})"]
        for sh in history.suites:
            st = sh.steps[i]
            cell = f"{_num(st.value)} [{_num(st.lo)}, {_num(st.hi)}]"
            if st.suite_changed:
                cell += " ◆ suite changed"
            if st.mark:
                cell += f" **{'▼' if st.mark in ('forgetting', 'loss') else '▲'} {st.mark}**"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Score [95% interval] as recorded per release. ▼/▲: the paired 95% interval of the change from the "
              "release before lies wholly below/above zero (forgetting on the general suite). ◆: the suite's version "
              "changed, so that step is not compared.", ""]
    lines += [f"- {line}" for line in forced_lines(history, _md)]
    return lines + ([""] if forced_lines(history, _md) else [])


def forced_lines(history: History, escape: Callable[[str], str]) -> list[str]:
    """One line per release promoted with --force: it skipped its gate, and the ledger kept why."""
    return [f"Release {r.number} ({escape(r.label)}) was forced past its gate: "
            f"{escape(r.reason or 'no reason recorded')}" for r in history.releases if r.forced]


# ---------------------------------------------------------------- HTML (an inline SVG per suite)

W, H, PAD = 560, 190, 40


def _chart(sh: SuiteHistory) -> Markup:
    pts = [s for s in sh.steps if s.value is not None and math.isfinite(s.value)]
    ends = [x for s in pts for x in (s.lo, s.hi, s.value) if x is not None and math.isfinite(x)]
    lo, hi = (min(ends), max(ends)) if ends else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    n = max(len(sh.steps), 2)

    def x(i: int) -> float:
        return PAD + i * (W - 2 * PAD) / (n - 1)

    def y(v: float) -> float:
        return H - PAD + (v - lo) / (hi - lo) * (2 * PAD - H)

    color = svg.color(0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
             f'aria-label="{html.escape(sh.suite)} across releases">',
             f'<text x="{PAD}" y="16" font-size="12">{html.escape(sh.suite)} / {html.escape(sh.metric)}</text>',
             f'<text x="4" y="{y(hi) + 4:.1f}" font-size="10">{hi:.3f}</text>',
             f'<text x="4" y="{y(lo) + 4:.1f}" font-size="10">{lo:.3f}</text>']
    path = []
    for i, s in enumerate(sh.steps):
        cx = x(i)
        parts.append(f'<text x="{cx:.1f}" y="{H - 12}" font-size="10" text-anchor="middle">{s.number}</text>')
        if s.suite_changed:
            parts.append(f'<line class="suite-change" x1="{cx - 6:.1f}" x2="{cx - 6:.1f}" y1="24" y2="{H - PAD}" '
                         'stroke="#888" stroke-dasharray="3,3"><title>suite version changed</title></line>')
        if s.value is None or not math.isfinite(s.value):
            continue
        if s.lo is not None and s.hi is not None:
            parts.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(s.lo):.1f}" y2="{y(s.hi):.1f}" stroke="{color}" '
                         'stroke-width="2" opacity="0.5"/>')
        path.append(f"{cx:.1f},{y(s.value):.1f}")
        title = html.escape(f"release {s.number} ({s.label}): {_num(s.value, 4)} [{_num(s.lo)}, {_num(s.hi)}]"
                            + (f"; Δ {_num(s.delta, 4)} [{_num(s.delta_lo)}, {_num(s.delta_hi)}]" if s.delta is not None
                               else ""))
        parts.append(f'<circle cx="{cx:.1f}" cy="{y(s.value):.1f}" r="3.5" fill="{color}"><title>{title}</title></circle>')
        if s.mark:
            down = s.mark in ("forgetting", "loss")
            fill = "#c0392b" if down else "#1e8449"
            glyph = "▼" if down else "▲"
            parts.append(f'<text class="mark-{html.escape(s.mark.replace(" ", "-"))}" x="{cx:.1f}" '
                         f'y="{y(s.value) + (16 if down else -8):.1f}" font-size="12" fill="{fill}" '
                         f'text-anchor="middle">{glyph}<title>{html.escape(s.mark)}</title></text>')
    if len(path) > 1:
        parts.insert(4, f'<polyline points="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="1.5"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def history_html(history: History | None) -> Markup | None:
    """The History section's inner HTML (the template only places it)."""
    if history is None or not history.suites:
        return None
    charts = "".join(f'<figure class="history-chart">{_chart(sh)}</figure>' for sh in history.suites)
    marks = sum(1 for sh in history.suites for s in sh.steps if s.mark == "forgetting")
    gains = sum(1 for sh in history.suites for s in sh.steps if s.mark == "gain")
    note = (f"<p>{len(history.suites[0].steps)} releases of <code>{html.escape(history.channel)}</code>: "
            f"{marks} step(s) of forgetting on the general suite, {gains} domain gain(s). Bars are 95% intervals of "
            "each release's score; ▼/▲ mark a step whose paired 95% interval of Δ against the release before lies "
            "wholly below/above zero; a dashed line marks a new suite version.</p>")
    forced = "".join(f'<li class="forced">{line}</li>' for line in forced_lines(history, html.escape))
    return Markup(note + (f"<ul>{forced}</ul>" if forced else "") + f'<div class="history">{charts}</div>')
