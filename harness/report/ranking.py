"""Which method is better, in words: the rankings of harness.decide.ranking for the terminal, Markdown and HTML,
with the cost of each run beside them. Formatting only; every figure comes from the ranking."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from harness.data.runs import Run
from harness.decide.ranking import Pair, Ranking, Selection
from harness.report.cost import Efficiency, efficiency
from harness.report.fmt import direction_mark, fmt_bytes, fmt_count, fmt_interval, fmt_num, fmt_signed

Escape = Callable[[Any], str]


def _plain(text: Any) -> str:
    return str(text)


def where(r: Ranking) -> str:
    """"medical (pooled) · acc ↑" or "medical/medqa · acc ↑"."""
    place = f"{r.suite}/{r.task}" if r.task else f"{r.suite} (tasks pooled)"
    return f"{place} · {r.metric} {direction_mark(r.higher_is_better)}"


def level_words(r: Ranking) -> str:
    """How the pairs' intervals hold together, in one phrase."""
    if r.m <= 1:
        return f"{100 * r.level:.4g}% interval"
    return (f"each pair at {100 * r.level:.4g}%, so all {r.m} pairs hold together with ≥ {100 * (1 - r.alpha):.4g}% "
            "confidence (Bonferroni)")


def chain(r: Ranking, esc: Escape = _plain) -> str:
    """"A > B ≈ C" for a weak order; rank intervals when the data support only a partial order."""
    if r.note:
        return f"not ranked: {esc(r.note)}"
    if r.groups is not None:
        return " > ".join(" ≈ ".join(esc(x) for x in group) for group in r.groups)
    ranks = ", ".join(f"{esc(s.label)} {s.rank_lo}" + (f"–{s.rank_hi}" if s.rank_hi != s.rank_lo else "")
                      for s in r.standings)
    return f"no single order; ranks the data allow: {ranks}"


def _oriented(r: Ranking, p: Pair) -> Pair:
    """The pair with its better run (or, when tied, the higher-ranked one) first."""
    order = [s.label for s in r.standings]
    if p.relation == "<" or (p.relation == "≈" and order.index(p.b) < order.index(p.a)):
        return r.pair(p.b, p.a) or p
    return p


def pair_line(r: Ranking, p: Pair, esc: Escape = _plain) -> str:
    """"lora > ia3: Δ +0.080 [+0.030, +0.130], n 120" or "lora ≈ ia3 at n 120: Δ …"."""
    p = _oriented(r, p)
    figures = f"Δ {fmt_signed(p.delta)} {fmt_interval(p.interval)}"
    if p.relation == ">":
        return f"{esc(p.a)} > {esc(p.b)}: {figures}, n {p.n}"
    return f"{esc(p.a)} ≈ {esc(p.b)} at n {p.n}: {figures} (not separated at this n)"


def all_tied(r: Ranking) -> bool:
    """No pair is separated: the ranking is one tie group."""
    return bool(r.pairs) and all(p.relation == "≈" for p in r.pairs)


def ns_words(r: Ranking) -> str:
    """"n 30" or "n 30–45": the items the pairs rest on."""
    ns = sorted({p.n for p in r.pairs})
    return f"n {ns[0]}" + (f"–{ns[-1]}" if ns and ns[-1] != ns[0] else "") if ns else "n 0"


def lines(r: Ranking, esc: Escape = _plain) -> tuple[str, list[str]]:
    """The ranking's headline and, unless no pair is separated (then the headline says so with its n), one line
    per pair."""
    if all_tied(r):
        return f"{esc(where(r))}: {chain(r, esc)} at {ns_words(r)}", []
    return f"{esc(where(r))}: {chain(r, esc)}", [pair_line(r, p, esc) for p in r.pairs]


def cost_rows(runs: Sequence[Run], labels: Sequence[str]) -> list[list[str]]:
    """Per run: method, training time, trainable parameters, adapter size, eval tokens/s ("–" where a run lacks
    the figure)."""
    def row(eff: Efficiency, label: str) -> list[str]:
        share = (f" ({100 * eff.trainable_params / eff.total_params:.2f}%)"
                 if eff.trainable_params and eff.total_params else "")
        return [label, eff.method, fmt_num(eff.train_seconds, 1), fmt_count(eff.trainable_params) + share,
                fmt_bytes(eff.adapter_bytes), fmt_num(eff.tokens_per_second, 1)]

    return [row(efficiency(run), label) for run, label in zip(runs, labels)]


COST_HEADER = ["run", "method", "train s", "trainable params", "adapter size", "eval tok/s"]
ABOUT = ("Every pair of runs is compared item by item on the items both have, with the interval the gate judges by "
         "(Tango's for 0/1 scores, a betting interval for bounded ones; the betting confidence sequence for runs "
         "evaluated until decided). With k runs there are m = k(k − 1)/2 pairs, each at 1 − 0.05/m, so every "
         "stated \"A > B\" holds together with the others at 95% (Bonferroni). ≈: the interval holds 0, so this n "
         "cannot separate the two; a chain is shown only when the ties are consistent, else the ranks each run can "
         "take. Each ranking is its own family: rankings of different metrics are not adjusted for each other.")


def selection_lines(sel: Selection, esc: Escape = _plain) -> list[str]:
    """What the gate picked among k candidates, and how the selection is accounted for."""
    verdicts = ", ".join(f"{esc(c)} {sel.verdicts[c]}" for c in sel.candidates)
    head = (f"picked {esc(sel.chosen)}" if sel.chosen else f"no candidate passes: {sel.verdict}")
    return [f"best of {sel.k}: {head} ({verdicts})", esc(sel.adjustment), f"pick: {esc(sel.why)}"]


def markdown_lines(rankings: Sequence[Ranking], runs: Sequence[Run], labels: Sequence[str], esc: Escape) -> list[str]:
    """The "Which method is better" section of the Markdown report."""
    if not rankings:
        return []
    out = ["## Which method is better", "", ABOUT, ""]
    for r in rankings:
        tied = all_tied(r)
        out.append(f"- **{esc(where(r))}**: {chain(r, esc)}" + (f" at {ns_words(r)}" if tied else ""))
        out += [] if tied else [f"  - {pair_line(r, p, esc)}" for p in r.pairs]
    out += ["", "| " + " | ".join(COST_HEADER) + " |", "|---|---|---:|---:|---:|---:|"]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in cost_rows(runs, labels)]
    return out + [""]


def html_context(rankings: Sequence[Ranking], runs: Sequence[Run], labels: Sequence[str]) -> dict[str, Any] | None:
    """Plain strings for the HTML template (which escapes them)."""
    if not rankings:
        return None
    return {"about": ABOUT, "header": COST_HEADER, "costs": cost_rows(runs, labels),
            "rankings": [{"where": where(r), "chain": chain(r) + (f" at {ns_words(r)}" if all_tied(r) else ""),
                          "level": level_words(r),
                          "pairs": [pair_line(r, p) for p in r.pairs]} for r in rankings]}
