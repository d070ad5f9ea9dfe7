"""What both reports show: the runs, one comparison per candidate against the baseline, the gate."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from harness.core.api import UserError
from harness.core.config import Strict, parse_yaml
from harness.data.runs import Run
from harness.data.suite import SUITE_FILE, builtin_roots
from harness.decide.calibration import is_human_metric
from harness.decide.compare import Comparison, compare_runs
from harness.decide.gate import GateResult
from harness.decide.ranking import Key, Ranking, headline_keys, rank
from harness.inference.stats import ALPHA
from harness.report.judge_section import judge_section

Interval = tuple[float, float]


class WinRate(Strict):
    model: str
    versus: str
    win: float = Field(ge=0, le=1)
    tie: float = Field(default=0.0, ge=0, le=1)
    loss: float = Field(ge=0, le=1)
    ci95: Interval | None = None  # interval of the win rate (ties counted as half, say)
    n: int = Field(ge=0)


class BradleyTerry(Strict):
    model: str
    score: float  # log-strength (or Elo-like); larger is better
    ci95: Interval | None = None


class RubricScore(Strict):
    model: str
    criterion: str
    mean: float
    ci95: Interval | None = None
    n: int = Field(ge=0)
    scale: str | None = None  # e.g. "1–5"


class Agreement(Strict):
    statistic: str  # e.g. "Krippendorff's alpha", "Cohen's kappa"
    value: float
    ci95: Interval | None = None
    n_items: int | None = None
    n_raters: int | None = None


class HumanEval(Strict):
    """Human evaluation summary, fed by the review app (`write_reports(..., human_eval=dict)`)."""

    win_rates: list[WinRate] = []
    bradley_terry: list[BradleyTerry] = []
    rubric: list[RubricScore] = []
    agreement: list[Agreement] = []
    n_judgements: int | None = None
    note: str | None = None


@dataclass
class ReportData:
    runs: list[Run]
    labels: list[str]  # unique display names, parallel to runs
    baseline_index: int
    comparisons: list[Comparison]  # one per candidate, in run order
    gates: list[GateResult]  # one verdict per gated candidate
    human_eval: HumanEval | None
    history: Any = None  # harness.report.history.History: a channel's releases, when the report names one
    judging: dict[str, Any] | None = None  # model-graded scores, judge-human agreement, pairwise (judge_section)
    rankings: list[Ranking] = field(default_factory=list)  # which candidate is better, when there are two or more

    @property
    def gate(self) -> GateResult | None:
        """The first verdict (reports with one candidate have at most one)."""
        return self.gates[0] if self.gates else None

    @property
    def baseline(self) -> Run:
        return self.runs[self.baseline_index]

    @property
    def candidates(self) -> list[Run]:
        return [r for i, r in enumerate(self.runs) if i != self.baseline_index]

    def label(self, run: Run) -> str:
        return self.labels[next(i for i, r in enumerate(self.runs) if r is run)]


def unique_labels(runs: list[Run]) -> list[str]:
    """Run labels, made unique with the directory name where two runs share one."""
    labels = [r.label for r in runs]
    return [lab if labels.count(lab) == 1 else f"{lab} ({r.path.name})" for lab, r in zip(labels, runs)]


def build(runs: list[Run], *, baseline_index: int = 0, gate: GateResult | list[GateResult] | None = None,
          human_eval: dict[str, Any] | HumanEval | None = None, n_resamples: int = 10_000,
          seed: int = 0, store_path: Path | str | None = None,
          pairwise: list[dict[str, Any]] | None = None) -> ReportData:
    """Compare every candidate with the baseline; validate the human-evaluation summary."""
    if not runs:
        raise UserError("report needs at least one run")
    if not 0 <= baseline_index < len(runs):
        raise UserError(f"baseline index {baseline_index} is out of range for {len(runs)} runs")
    labels = unique_labels(runs)
    for run, label in zip(runs, labels):
        run.label = label
    baseline = runs[baseline_index]
    comps = [compare_runs(baseline, r, n_resamples=n_resamples, seed=seed)
             for i, r in enumerate(runs) if i != baseline_index]
    he = HumanEval.model_validate(human_eval) if isinstance(human_eval, dict) else human_eval
    gates = gate if isinstance(gate, list) else ([gate] if gate is not None else [])
    judging = judge_section(runs, labels, store_path=store_path, pairwise=pairwise)
    candidates = [r for i, r in enumerate(runs) if i != baseline_index]
    rankings = candidate_rankings(candidates, gates) if len(candidates) > 1 else []
    return ReportData(runs, labels, baseline_index, comps, gates, he, judging=judging, rankings=rankings)


def gate_keys(gates: list[GateResult], runs: list[Run]) -> list[Key]:
    """The (suite, task, metric) the first gate's rules judge, where every run has per-item scores to rank: a rule
    over a suite's tasks ranks the suite pooled on its headline metric."""
    keys: list[Key] = []
    for rule in gates[0].rules if gates else []:
        if rule.kind == "max_drift" or is_human_metric(rule.metric) or not all(rule.suite in r.suites for r in runs):
            continue
        entry = runs[0].suites[rule.suite]
        place = ((entry.get("tasks") or {}).get(rule.task) or {}) if rule.task else entry
        names = list(place.get("metrics") or {})
        metric = rule.metric if rule.metric in names else (names[0] if names and not rule.task else None)
        if metric and (rule.suite, rule.task, metric) not in keys:
            keys.append((rule.suite, rule.task, metric))
    return keys


def candidate_rankings(candidates: list[Run], gates: list[GateResult]) -> list[Ranking]:
    """Rankings of the candidates on each suite's headline metric and on the gate rules' metrics. A metric the runs
    cannot be ranked on (different prompts, a corpus-level or unbounded metric) is shown with the reason."""
    keys = headline_keys(candidates, tasks=False)
    keys += [k for k in gate_keys(gates, candidates) if k not in keys]
    out = []
    for suite, task, metric in keys:
        try:
            out.append(rank(candidates, suite, task, metric))
        except UserError as exc:
            out.append(Ranking(suite, task, metric, True, ALPHA, [], [], None, note=str(exc)))
    return out


@dataclass
class EvidenceRow:
    """How much data one task's figures rest on, and where its items come from."""

    suite: str
    task: str
    kind: str
    n: dict[str, int]  # per run label: items scored
    source: str  # the suite's declared licence / source line, or "unknown"
    zero: dict[str, str] = field(default_factory=dict)  # per run label with n 0: why no item was scored


def _suite_source(name: str) -> str:
    """The licence line of a built-in suite (which names original items versus public data)."""
    for root in builtin_roots():
        path = root / name / SUITE_FILE
        if path.is_file():
            try:
                doc = parse_yaml(path.read_text(encoding="utf-8"), str(path))[0] or {}
            except (OSError, yaml.YAMLError, UnicodeDecodeError, UserError, RecursionError):
                return "unknown"
            return str(doc.get("license") or "unknown") if isinstance(doc, dict) else "unknown"
    return "not a built-in suite: see its README"


def evidence_rows(data: ReportData) -> list[EvidenceRow]:
    """Per task: items scored in every run, and the suite's source line."""
    rows = []
    for suite, entry in data.baseline.suites.items():
        source = _suite_source(suite)
        for task, tres in entry["tasks"].items():
            n, zero = {}, {}
            for run, label in zip(data.runs, data.labels):
                t = run.suites.get(suite, {}).get("tasks", {}).get(task)
                if t is not None:
                    n[label] = int(t.get("n") or 0)
                    if n[label] == 0:
                        zero[label] = zero_reason(run, suite, task)
            rows.append(EvidenceRow(suite, task, str(tres.get("kind", "")), n, source, zero))
    return rows


def zero_reason(run: Run, suite: str, task: str) -> str:
    """Why a task of a run has no scored item: its figures are absent, not zero."""
    entry = run.suites.get(suite, {}).get("tasks", {}).get(task) or {}
    if entry.get("split_rows") == 0:
        return "its evaluated split has no rows"
    block = run.results.get("sequential") or {}
    if int((block.get("available") or {}).get(f"{suite}/{task}", 0)) > 0:
        return "the sequential run was decided before it reached this task's items"
    return "no item of it was scored in this run (no rows at this size, or none selected)"


@dataclass
class Selection:
    """How one run's items were chosen, and what that means for a claim resting on them."""

    label: str
    how: str  # "all", "first N", "suite default", "sequential", "active"
    text: str
    meaning: str


_MEANING = {
    "all": "no selection: the figures describe each task's items as they stand",
    "first N": "not a random sample: the figures describe these first rows only, and rows at the top of a file "
               "may differ from the rest, so a change seen here need not hold on the whole task",
    "suite default": "the first rows up to the suite's declared size, not a random sample: the figures describe "
                     "those rows only",
    "sequential": "items drawn in a seeded random order and evaluated until the gate was decided: a random "
                  "sample of each task, judged with intervals valid at the data-dependent stopping point",
    "active": "items drawn with replacement, more often where the baseline was near to answering otherwise, "
              "until the gate was decided: not a uniform sample, so the figures are unbiased estimates of each "
              "task's mean (importance-weighted, with a control variate from the baseline's answers for 0/1 "
              "scores), judged with intervals valid at the data-dependent stopping point",
}


def item_selection(run: Run, label: str) -> Selection:
    """Per run: all rows, the first N (--limit or the suite's size), or a sequential random order."""
    settings = run.results.get("settings") or {}
    block = run.results.get("sequential")
    if block:
        evaluated = sum(int(v) for v in (block.get("evaluated") or {}).values()) or len(block.get("items") or [])
        available = sum(int(v) for v in (block.get("available") or {}).values())
        of = f" of {available}" if available else ""
        stopped = f"; stopped: {block['stopped']}" if block.get("stopped") else ""
        if block.get("active"):
            info = block["active"]
            draws = sum(len(v) for v in (info.get("draws") or {}).values())
            return Selection(label, "active", f"active: {draws} seeded draws toward likely flips (floor "
                             f"{info.get('floor')}, seed {block.get('seed')}), {evaluated}{of} items evaluated until "
                             f"decided{stopped}", _MEANING["active"])
        return Selection(label, "sequential", f"sequential: seeded random order (seed {block.get('seed')}), "
                         f"{evaluated}{of} items evaluated until decided{stopped}", _MEANING["sequential"])
    if settings.get("limit"):
        n = int(settings["limit"])
        return Selection(label, "first N", f"first {n} rows of each task (--limit {n})", _MEANING["first N"])
    tasks = [t for suite in run.suites.values() for t in (suite.get("tasks") or {}).values()]
    short = [t for t in tasks if t.get("split_rows") is not None and int(t["n"]) < int(t["split_rows"])]
    if short:
        sizes = sorted({int(t["n"]) for t in short})
        size = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
        return Selection(label, "suite default", f"first {size} rows of {len(short)} of {len(tasks)} tasks (the "
                         "suite's declared size; --full evaluates every row)", _MEANING["suite default"])
    if settings.get("full") or (tasks and all(t.get("split_rows") is not None for t in tasks)):
        return Selection(label, "all", "all rows of each task", _MEANING["all"])
    return Selection(label, "suite default", "each task's declared size (first rows; this run did not record how "
                     "many rows its splits hold)", _MEANING["suite default"])


def selection_groups(runs: list[Run], labels: list[str]) -> list[tuple[list[str], Selection]]:
    """Runs whose items were chosen the same way, together: the statement once, with the runs it covers."""
    groups: list[tuple[list[str], Selection]] = []
    for run, label in zip(runs, labels):
        sel = item_selection(run, label)
        same = next((g for g in groups if g[1].text == sel.text), None)
        if same:
            same[0].append(label)
        else:
            groups.append(([label], sel))
    return groups
