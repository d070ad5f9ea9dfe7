"""The report's section on model-graded scores: judge metrics per run and task, how far the judge agrees
with people (harness.decide.calibration), and pairwise judge results (harness.decide.pairwise). Values only here and
in `markdown_lines`; the HTML lives in templates/judge_section.html.j2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.core.api import HumanJudgments
from harness.data.runs import Run
from harness.decide.calibration import calibrate, human_rating_delta_map, judge_deltas, judged_tasks
from harness.inference import ppi
from harness.storage.review import human_judgments


def _metric(run: Run, suite: str, task: str, name: str) -> dict[str, Any] | None:
    m = (run.suites.get(suite, {}).get("tasks", {}).get(task, {}).get("metrics") or {}).get(name)
    return m if isinstance(m, dict) else None


def _task_row(run: Run, label: str, suite: str, task: str) -> dict[str, Any]:
    rows = [s for s in run.samples if s["suite"] == suite and s["task"] == task and not s.get("perturbation")]
    infos = [(s.get("extra") or {}).get("judge") or {} for s in rows]
    answers = sum(len(i.get("answers") or []) for i in infos)
    unparsed = sum(sum(v is None for v in (i.get("values") or [])) for i in infos)
    flagged = [(s["sample_id"], i.get("injection_found") or []) for s, i in zip(rows, infos) if i.get("injection")]
    first = next((i for i in infos if i), {})
    return {"run": label, "suite": suite, "task": task, "judge": first.get("model"), "role": first.get("role"),
            "template_hash": first.get("template_hash"), "score": _metric(run, suite, task, "judge_score"),
            "n_items": len(rows), "n_answers": answers, "n_unparsed": unparsed,
            "errors": sorted({e for i in infos for e in (i.get("errors") or []) if e})[:5],
            "injections": [{"sample_id": sid, "found": found[:3]} for sid, found in flagged[:10]],
            "n_injections": len(flagged)}


def judge_section(runs: list[Run], labels: list[str], *, store_path: Path | str | None = None,
                  pairwise: list[dict[str, Any]] | None = None, n_boot: int = 2000) -> dict[str, Any] | None:
    """The section's data, or None when no run was judged and no pairwise result is given."""
    tasks, calibration = [], []
    human = None
    for run, label in zip(runs, labels):
        judged = judged_tasks(run)
        tasks += [_task_row(run, label, s, t) for s, t in judged]
        if judged:
            human = human if human is not None else human_judgments(store_path)  # the review app's ratings, read once
            calibration += [{"run": label, **row} for row in calibrate(run, human, n_boot=n_boot)]
    if not tasks and not pairwise:
        return None
    # no judged run, no PPI row: the ratings are read above only when some run was judged
    rows = [row for run, label in zip(runs[1:], labels[1:])
            for row in ppi_rows(runs[0], labels[0], run, label, human or HumanJudgments())]
    return {"tasks": tasks, "calibration": calibration, "pairwise": pairwise or [], "ppi": rows}


def ppi_rows(base: Run, base_label: str, cand: Run, label: str, human_all: HumanJudgments) -> list[dict[str, Any]]:
    """Per task judged in both runs: the prediction-powered estimate of the human-scale Δ (harness.inference.ppi), or a
    note saying why there is none (too few items rated by people in both runs)."""
    out = []
    in_base = set(judged_tasks(base))  # once, not per task: each call reads every sample of the run
    for suite, task in judged_tasks(cand):
        if (suite, task) not in in_base:
            continue
        judge = judge_deltas(base, cand, suite, task)
        human = {sid: v for (s, t, sid), v in human_rating_delta_map(human_all, base, cand, suite, task, None).items()
                 if s == suite and t == task}
        rated = [k for k in human if k in judge]
        row: dict[str, Any] = {"run": label, "against": base_label, "suite": suite, "task": task, "n_rated": len(rated),
                               "n_judged_only": len(judge) - len(rated), "estimate": None, "ci95": None,
                               "human_only_ci95": None, "lam": None, "method": ppi.METHOD, "note": None}
        if len(rated) < ppi.MIN_RATED:
            row["note"] = (f"{len(rated)} items rated by people in both runs (< {ppi.MIN_RATED}): no prediction-powered "
                           "interval yet")
        else:
            res = ppi.paired_ppi(human, judge)
            only = ppi.ppi_mean([human[k] for k in rated], [judge[k] for k in rated], [], lam=0.0)
            row.update(estimate=res.estimate, ci95=[res.lo, res.hi], human_only_ci95=[only.lo, only.hi], lam=res.lam)
        out.append(row)
    return out


# ---- Markdown ----------------------------------------------------------------------------------------------

def _ci(ci: Any) -> str:
    return "–" if not ci or ci[0] is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _num(v: Any) -> str:
    return "–" if v is None else f"{v:.3f}"


def markdown_lines(section: dict[str, Any], esc: Any) -> list[str]:
    """The section as Markdown lines; `esc` escapes untrusted text (model output, labels)."""
    out = ["## Model-graded scores", ""]
    if section["tasks"]:
        out += ["| run | suite / task | judge | judge score | 95% CI | n | unparsed answers | injection attempts |",
                "| --- | --- | --- | ---: | --- | ---: | ---: | ---: |"]
        for t in section["tasks"]:
            s = t["score"] or {}
            out.append(f"| {esc(t['run'])} | {esc(t['suite'])} / {esc(t['task'])} | {esc(t['judge'] or '–')} "
                       f"({esc(t['role'] or '')}) | {_num(s.get('value'))} | {_ci(s.get('ci95'))} | {s.get('n', 0)} | "
                       f"{t['n_unparsed']} of {t['n_answers']} | {t['n_injections']} |")
        out += ["", "A response none of whose judge answers parsed has no judge score: it is counted under unparsed "
                "answers, never given a default. Injection attempts are responses that imitate the judge's output "
                "format or its fences.", ""]
    if section["calibration"]:
        out += ["### Judge against people", "",
                "| run | suite / task | axis | items | ratings | Krippendorff's alpha | 95% CI | Cohen's kappa | 95% CI |",
                "| --- | --- | --- | ---: | ---: | ---: | --- | ---: | --- |"]
        for c in section["calibration"]:
            out.append(f"| {esc(c['run'])} | {esc(c['suite'])} / {esc(c['task'])} | {esc(c['axis'])} | {c['n_items']} | "
                       f"{c['n_ratings']} | {_num(c['alpha'])} | {_ci(c['alpha_ci95'])} | {_num(c['kappa'])} | "
                       f"{_ci(c['kappa_ci95'])} |")
        out.append("")
        for c in section["calibration"]:
            if c["n_ratings"]:
                labels = c["confusion"]["labels"]
                out += [f"Confusion, {esc(c['run'])} {esc(c['task'])} (rows: judge on the 1–5 grid; columns: people):", "",
                        "| judge \\ people | " + " | ".join(map(str, labels)) + " |",
                        "| --- | " + " | ".join("---:" for _ in labels) + " |"]
                out += [f"| {lab} | " + " | ".join(str(v) for v in row) + " |"
                        for lab, row in zip(labels, c["confusion"]["rows"])]
                out.append("")
        notes = [f"{esc(c['run'])} {esc(c['task'])}: {esc(c['note'])}" for c in section["calibration"] if c.get("note")]
        out += [("; ".join(notes) + "."), ""] if notes else []
        out += [esc(section["calibration"][0]["method"]) + ".", ""]
    if section.get("ppi"):
        out += ["### Human-scale Δ, prediction-powered", "",
                "| run vs | suite / task | rated in both | judged only | Δ (people's scale) | 95% CI | human-only 95% CI | judge weight λ |",
                "| --- | --- | ---: | ---: | ---: | --- | --- | ---: |"]
        for r in section["ppi"]:
            out.append(f"| {esc(r['run'])} vs {esc(r['against'])} | {esc(r['suite'])} / {esc(r['task'])} | {r['n_rated']} | "
                       f"{r['n_judged_only']} | {_num(r['estimate'])} | {_ci(r['ci95'])} | {_ci(r['human_only_ci95'])} | "
                       f"{_num(r['lam'])} |")
        notes = [f"{esc(r['run'])} {esc(r['task'])}: {esc(r['note'])}" for r in section["ppi"] if r.get("note")]
        out += ["", ("; ".join(notes) + ". ") if notes else "", esc(section["ppi"][0]["method"]) + ": the judge's Δ on "
                "every item and people's Δ (mean rating, candidate − baseline, / 4) on the rated ones; valid whatever "
                "the judge's bias.", ""]
    for p in section["pairwise"]:
        s = p["overall"]
        out += [f"### Pairwise: {esc(p['b'])} vs {esc(p['a'])} (judge {esc(p['judge'])})", "",
                f"{esc(p['b'])} win rate {_num(s['win_rate_b'])} {_ci(s['ci95'])} over {s['n_parsed']} items "
                f"(wins {s['wins_b']}, losses {s['wins_a']}, ties {s['ties']}; {s['n_unparsed']} unparseable). "
                f"Inconsistent when the order is swapped: {_num(s['inconsistent'])}; of those, the first slot won "
                f"{_num(s['position_bias_first'])}. Responses imitating the verdict format: {esc(p['a'])} "
                f"{s.get('injections_a', 0)}, {esc(p['b'])} {s.get('injections_b', 0)}. Interval: {esc(s['method'])}.", ""]
    return out
