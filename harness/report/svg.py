"""Small inline-SVG charts for the HTML report. Every text that reaches the SVG is escaped here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#8a94a6", "#2563eb", "#ea580c", "#16a34a", "#9333ea", "#db2777", "#0891b2", "#ca8a04")
FONT = "font-family=\"system-ui,-apple-system,'Segoe UI',Roboto,sans-serif\""


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    span = hi - lo or 1.0
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = math.floor(lo / step) * step
    ticks = [round(start, 10)]
    while ticks[-1] < hi - step * 1e-9:  # the last tick covers hi, so no point falls off the plot
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt_tick(v: float) -> str:
    return f"{v:g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


@dataclass
class Bar:
    value: float
    lo: float | None = None
    hi: float | None = None


def grouped_bars(groups: Sequence[str], series: Sequence[str], values: Sequence[Sequence[Bar | None]], *,
                 title: str, y_label: str = "", unit_range: bool = True) -> Markup:
    """Grouped vertical bars (one group per suite, one bar per run) with 95% error bars."""
    width, height, left, right, top, bottom = 760, 300, 52, 16, 34, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    flat = [b for row in values for b in row if b is not None]
    top_val = max([b.hi if b.hi is not None else b.value for b in flat] + [1e-9])
    y_max = 1.0 if unit_range and top_val <= 1.0 else top_val * 1.1
    y_min = min([0.0] + [b.lo if b.lo is not None else b.value for b in flat])
    ticks = _ticks(y_min, y_max)
    y_min, y_max = min(ticks[0], y_min), max(ticks[-1], y_max)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - y_min) / ((y_max - y_min) or 1))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart" '
             f'{FONT} font-size="12"><title>{escape(title)}</title>']
    for t in ticks:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#e5e7eb"/>'
                     f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end" fill="#6b7280">'
                     f'{escape(_fmt_tick(t))}</text>')
    if y_label:
        parts.append(f'<text transform="translate(14,{top + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle" '
                     f'fill="#374151">{escape(y_label)}</text>')
    group_w = plot_w / max(1, len(groups))
    bar_w = min(42.0, group_w * 0.8 / max(1, len(series)))
    for gi, group in enumerate(groups):
        gx = left + gi * group_w + (group_w - bar_w * len(series)) / 2
        for si in range(len(series)):
            bar = values[gi][si]
            if bar is None:
                continue
            x = gx + si * bar_w
            y0, y1 = y(max(0.0, y_min)), y(bar.value)
            parts.append(f'<rect x="{x + 2:.1f}" y="{min(y0, y1):.1f}" width="{bar_w - 4:.1f}" '
                         f'height="{abs(y0 - y1):.1f}" fill="{color(si)}" rx="2">'
                         f'<title>{escape(series[si])} · {escape(group)}: {bar.value:.3f}</title></rect>')
            if bar.lo is not None and bar.hi is not None:
                cx = x + bar_w / 2
                parts.append(f'<g stroke="#111827" stroke-width="1.3"><line x1="{cx:.1f}" x2="{cx:.1f}" '
                             f'y1="{y(bar.lo):.1f}" y2="{y(bar.hi):.1f}"/><line x1="{cx - 5:.1f}" '
                             f'x2="{cx + 5:.1f}" y1="{y(bar.lo):.1f}" y2="{y(bar.lo):.1f}"/><line '
                             f'x1="{cx - 5:.1f}" x2="{cx + 5:.1f}" y1="{y(bar.hi):.1f}" y2="{y(bar.hi):.1f}"/></g>')
        parts.append(f'<text x="{left + gi * group_w + group_w / 2:.1f}" y="{height - bottom + 18}" '
                     f'text-anchor="middle" fill="#111827">{escape(group)}</text>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(max(0.0, y_min)):.1f}" '
                 f'y2="{y(max(0.0, y_min)):.1f}" stroke="#9ca3af"/>')
    parts.append(_legend(series, left, height - 16))
    parts.append("</svg>")
    return Markup("".join(parts))


def _legend(series: Sequence[str], x0: float, y0: float, colors: Sequence[str] | None = None) -> str:
    out, x = [], x0
    for i, name in enumerate(series):
        c = colors[i] if colors else color(i)
        out.append(f'<rect x="{x:.0f}" y="{y0 - 10:.0f}" width="12" height="12" rx="2" fill="{c}"/>'
                   f'<text x="{x + 17:.0f}" y="{y0:.0f}" fill="#374151">{escape(name)}</text>')
        x += 30 + 7.2 * len(name)
    return "".join(out)


def forest(labels: Sequence[str], rows: Sequence[tuple[float, float | None, float | None]], *, title: str,
           colors: Sequence[str] | None = None) -> Markup:
    """Horizontal deltas with 95% intervals around a zero line (one row per suite × candidate)."""
    row_h, left, right, top = 26, 210, 24, 26
    width, height = 760, top + row_h * len(rows) + 34
    ends = [v for r in rows for v in (r[0], r[1], r[2]) if v is not None] + [0.0]
    span = max(abs(min(ends)), abs(max(ends)), 0.05) * 1.15
    plot_w = width - left - right

    def x(v: float) -> float:
        return left + plot_w * (v + span) / (2 * span)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart" '
             f'{FONT} font-size="12"><title>{escape(title)}</title>']
    for t in _ticks(-span, span, 6):
        if -span <= t <= span:
            parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top - 8}" y2="{height - 28}" stroke="#eef0f3"/>'
                         f'<text x="{x(t):.1f}" y="{height - 12}" text-anchor="middle" fill="#6b7280">'
                         f'{escape(f"{t:+g}" if t else "0")}</text>')
    parts.append(f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top - 8}" y2="{height - 28}" stroke="#6b7280" '
                 f'stroke-dasharray="4 3"/>')
    for i, (label, (d, lo, hi)) in enumerate(zip(labels, rows)):
        cy = top + i * row_h + row_h / 2
        c = colors[i] if colors else color(1)
        parts.append(f'<text x="{left - 10}" y="{cy + 4:.1f}" text-anchor="end" fill="#111827">{escape(label)}</text>')
        if lo is not None and hi is not None:
            parts.append(f'<line x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" stroke="{c}" '
                         f'stroke-width="2.5"/>')
        parts.append(f'<circle cx="{x(d):.1f}" cy="{cy:.1f}" r="5" fill="{c}"><title>{escape(label)}: '
                     f'{d:+.3f}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))


def lines(series: Sequence[tuple[str, Sequence[tuple[float, float]]]], *, title: str, x_label: str,
          y_label: str, colors: Sequence[str] | None = None) -> Markup:
    """Line chart (training curves): one polyline with point markers per series."""
    width, height, left, right, top, bottom = 560, 260, 56, 16, 30, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    pts = [p for _, s in series for p in s]
    xs, ys = [p[0] for p in pts] or [0.0, 1.0], [p[1] for p in pts] or [0.0, 1.0]
    xt, yt = _ticks(min(xs), max(xs)), _ticks(min(ys), max(ys))
    x0, x1, y0, y1 = xt[0], max(xt[-1], xt[0] + 1e-9), yt[0], max(yt[-1], yt[0] + 1e-9)

    def px(v: float) -> float:
        return left + plot_w * (v - x0) / (x1 - x0)

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - y0) / (y1 - y0))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart" '
             f'{FONT} font-size="12"><title>{escape(title)}</title>'
             f'<text x="{left}" y="18" fill="#111827" font-weight="600">{escape(title)}</text>']
    for t in yt:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#e5e7eb"/>'
                     f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end" fill="#6b7280">'
                     f'{escape(_fmt_tick(t))}</text>')
    for t in xt:
        parts.append(f'<text x="{px(t):.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="#6b7280">'
                     f'{escape(_fmt_tick(t))}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{top + plot_h + 32}" text-anchor="middle" '
                 f'fill="#374151">{escape(x_label)}</text>'
                 f'<text transform="translate(14,{top + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle" '
                 f'fill="#374151">{escape(y_label)}</text>')
    for i, (_name, s) in enumerate(series):
        c = colors[i] if colors else color(i + 1)
        path = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in sorted(s))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
        parts.extend(f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="2.5" fill="{c}"/>' for a, b in s)
    parts.append(_legend([n for n, _ in series], left, height - 8, colors or [color(i + 1) for i in range(len(series))]))
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_share(rows: Sequence[tuple[str, float, float, float]], *, title: str) -> Markup:
    """Win / tie / loss shares as horizontal stacked bars (human evaluation)."""
    row_h, left, right, top = 28, 210, 20, 10
    width, height = 760, top + row_h * len(rows) + 34
    plot_w = width - left - right
    colors = ("#16a34a", "#d1d5db", "#dc2626")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart" '
             f'{FONT} font-size="12"><title>{escape(title)}</title>']
    for i, (label, win, tie, loss) in enumerate(rows):
        cy, x = top + i * row_h, float(left)
        parts.append(f'<text x="{left - 10}" y="{cy + 17}" text-anchor="end" fill="#111827">{escape(label)}</text>')
        for share, c in zip((win, tie, loss), colors):
            w = plot_w * max(0.0, share)
            parts.append(f'<rect x="{x:.1f}" y="{cy + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{c}"/>')
            if w > 34:
                parts.append(f'<text x="{x + w / 2:.1f}" y="{cy + 18}" text-anchor="middle" fill="#111827">'
                             f'{share:.0%}</text>')
            x += w
    parts.append(_legend(["win", "tie", "loss"], left, height - 8, colors))
    parts.append("</svg>")
    return Markup("".join(parts))
