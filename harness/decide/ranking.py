"""Which method is better: every pair of runs compared item by item, with simultaneous intervals, and the ranking
the data support (ties where they cannot separate two methods), per suite, task or gate rule's metric.

- Pairs: with k runs there are m = k(k − 1)/2 pairs. Each pair's paired interval of Δ (the same intervals the gate
  judges by: Tango's for 0/1 scores, the betting interval for bounded ones; the betting confidence sequence in
  evaluation order when a run was evaluated until decided) is taken at level 1 − α/m. By Bonferroni's inequality
  all m intervals cover together with probability ≥ 1 − α, so every "A > B" this module states holds with
  familywise error ≤ α. Bonferroni rather than Holm: Holm's step-down gives p-values, not intervals, and a
  ranking's reader needs Δ with an interval for each pair; simultaneous intervals also give rank intervals.
- Relations: A > B when the interval lies above 0, A < B below it, A ≈ B when it holds 0 (the data cannot
  separate them at this n) or is undefined.
- Rank intervals: a run's rank lies in [1 + #runs that beat it, k − #runs it beats] (Klein, Wright & Wieczorek
  2020, "A joint confidence region for an overall ranking of populations", JRSS C 69(3)); they hold jointly
  whenever the pairwise intervals do, so with probability ≥ 1 − α.
- Groups: when the relations form a weak order (ties transitive) the ranking is a chain of groups, "A > B ≈ C";
  otherwise (A > C, A ≈ B, B ≈ C) no total order is forced: the rank intervals and the pairs say it.
- The family is the pairs of one ranking: rankings of several metrics or tasks are each simultaneous on their
  own, not across each other.

`select_best` is the gate's best-of-k: each candidate judged at α/k (Bonferroni over the k candidates), so a PASS
of whichever one is picked is a false PASS with probability ≤ α; the pick among the passing ones uses the ranking.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.core.api import UserError
from harness.core.untrusted import excerpt
from harness.data.runfile import SampleRow
from harness.data.runs import Run
from harness.decide.calibration import is_human_metric
from harness.decide.compare import (
    Scores,
    _fail_value,
    item_scores,
    metric_bounds,
    metric_direction,
    originals,
    paired,
    task_samples,
)
from harness.decide.gatefile import GateSpec
from harness.decide.results import EXIT, GateResult, Verdict
from harness.inference import stats
from harness.inference.evidence import delta_interval, orient
from harness.inference.stats import Interval

Key = tuple[str, str | None, str]  # (suite, task or None for the pooled suite, metric)
SIMULTANEOUS = "Bonferroni: each of the m pairs at 1 − α/m, so all hold together with probability ≥ 1 − α"


@dataclass
class Pair:
    """A against B on the items both have: Δ = A − B oriented so that positive means A is better."""

    a: str
    b: str
    n: int
    delta: float
    interval: Interval  # of Δ, at the ranking's simultaneous level 1 − α/m
    relation: str  # ">" (A better), "<" (B better), "≈" (not separated at this n)


@dataclass
class Standing:
    """One run in a ranking: its own mean over its items, and the ranks the data allow."""

    label: str
    score: float
    n: int
    rank_lo: int
    rank_hi: int
    beats: list[str] = field(default_factory=list)
    beaten_by: list[str] = field(default_factory=list)


@dataclass
class Ranking:
    """The ranking of k runs on one metric of one task (or pooled suite)."""

    suite: str
    task: str | None
    metric: str
    higher_is_better: bool
    alpha: float  # familywise: every stated relation together
    standings: list[Standing]  # best first: by rank interval, then score
    pairs: list[Pair]
    groups: list[list[str]] | None  # a chain of tie groups, best first, when the relations form a weak order
    method: str = ""  # the per-pair interval
    note: str | None = None  # why there is no ranking (an unbounded or corpus-level metric)

    @property
    def m(self) -> int:
        """Pairs in the family."""
        k = len(self.standings)
        return k * (k - 1) // 2

    @property
    def level(self) -> float:
        """The confidence level of each pair's interval."""
        return 1 - self.alpha / max(1, self.m)

    def pair(self, a: str, b: str) -> Pair | None:
        """The pair read as a against b (either stored order)."""
        for p in self.pairs:
            if (p.a, p.b) == (a, b):
                return p
            if (p.a, p.b) == (b, a):
                iv = orient(p.interval, -1.0)
                rel = {">": "<", "<": ">"}.get(p.relation, p.relation)
                return Pair(a, b, p.n, -p.delta, iv, rel)
        return None


# ---------------------------------------------------------------- items


def _rows(run: Run, suite: str, tasks: Sequence[str]) -> list[SampleRow]:
    """Unperturbed rows of the tasks, with item ids made unique per task (pooled suites mix tasks)."""
    rows: list[SampleRow] = []
    for task in tasks:
        rows += [{**s, "source_id": f"{task}\x00{s.get('source_id') or s['sample_id']}"}  # type: ignore[typeddict-item]
                 for s in originals(task_samples(run, suite, task)).values()]
    return rows


def _tasks(runs: Sequence[Run], suite: str, task: str | None, metric: str) -> list[str]:
    if task is not None:
        return [task]
    names: list[str] = []
    for run in runs:
        for name in (run.suites.get(suite) or {}).get("tasks") or {}:
            if name not in names and any(metric in (s.get("scores") or {}) for s in task_samples(run, suite, name).values()):
                names.append(name)
    return names


def _order(run: Run, suite: str) -> dict[str, int] | None:
    """Evaluation order of a sequential run's items (ids as `_rows` makes them); None for a complete run."""
    block = run.results.get("sequential")
    if not block:
        return None
    pos = {(i["suite"], i["task"], i["sample_id"]): k for k, i in enumerate(block.get("items") or [])}
    out: dict[str, int] = {}
    for s in run.samples:
        at = pos.get((s["suite"], s["task"], s["sample_id"]))
        if s["suite"] == suite and at is not None:
            key = f"{s['task']}\x00{s.get('source_id') or s['sample_id']}"
            out[key] = min(at, out.get(key, at))
    return out


def _check_prompts(a: Run, b: Run, suite: str, tasks: Sequence[str]) -> None:
    """Two runs rank on one task only when they saw the same prompts (per item, so sequential runs that evaluated
    different subsets still pair on the items they share)."""
    for task in tasks:
        sa, sb = task_samples(a, suite, task), task_samples(b, suite, task)
        for sid, row in sa.items():
            other = sb.get(sid)
            if other is not None and (row.get("prompt") or "") != (other.get("prompt") or ""):
                raise UserError(f"the prompt of {excerpt(suite, 40)}/{excerpt(task, 40)}/{excerpt(sid, 40)} differs "
                                f"between {a.path} and {b.path}: runs rank only on the same items and prompts "
                                "(check chat template, few-shot and generation settings)")


# ---------------------------------------------------------------- one ranking


def _relation(iv: Interval) -> str:
    if not iv.defined:
        return "≈"
    if iv.lo > 0:  # type: ignore[operator]
        return ">"
    if iv.hi < 0:  # type: ignore[operator]
        return "<"
    return "≈"


def _groups(labels: list[str], rel: dict[tuple[str, str], str]) -> list[list[str]] | None:
    """Tie groups best first when the relations form a weak order (every cross-group pair decided the same way,
    every in-group pair ≈); None otherwise (a partial order: no chain is shown)."""
    beats = {x: frozenset(y for y in labels if rel[(x, y)] == ">") for x in labels}
    beaten = {x: frozenset(y for y in labels if rel[(x, y)] == "<") for x in labels}
    classes: dict[tuple[frozenset[str], frozenset[str]], list[str]] = {}
    for x in labels:
        classes.setdefault((beats[x], beaten[x]), []).append(x)
    chain = sorted(classes.values(), key=lambda g: len(beaten[g[0]]))
    for i, upper in enumerate(chain):
        if any(rel[(x, y)] != "≈" for x in upper for y in upper if x != y):
            return None
        for lower in chain[i + 1:]:
            if any(rel[(x, y)] != ">" for x in upper for y in lower):
                return None
    return chain


def rank(runs: Sequence[Run], suite: str, task: str | None, metric: str, *, alpha: float = stats.ALPHA,
         labels: Sequence[str] | None = None) -> Ranking:
    """Rank the runs on one metric of one task (None: the suite, its tasks' items pooled), every pair paired item by
    item at level 1 − α/m (see the module docstring). UserError when the runs cannot be paired."""
    if len(runs) < 2:
        raise UserError("a ranking needs at least two runs")
    names = list(labels) if labels is not None else [r.label for r in runs]
    if len(set(names)) != len(names):
        raise UserError(f"two runs share the label '{excerpt(next(n for n in names if names.count(n) > 1), 60)}': "
                        "rankings name runs by label")
    for run in runs:
        if suite not in run.suites:
            raise UserError(f"suite '{excerpt(suite, 60)}' is not in {run.path} (it has {', '.join(run.suites)})")
        fa, fb = runs[0].suites[suite].get("fingerprint"), run.suites[suite].get("fingerprint")
        if fa != fb:
            raise UserError(f"suite '{excerpt(suite, 60)}' differs between the runs (fingerprint {str(fa)[:12]} in "
                            f"{runs[0].path} vs {str(fb)[:12]} in {run.path}); rank runs of the same suite")
    hib = metric_direction((runs[0], runs[1]), suite, task, metric)
    tasks = _tasks(runs, suite, task, metric)
    raw = [item_scores(_rows(run, suite, tasks), metric, None, f"{run.path}/samples.jsonl") for run in runs]
    values = np.concatenate([s.values for s in raw]) if raw else np.array([])
    bounds = metric_bounds(metric, values)
    binary = bool(values.size) and stats.is_binary(values)
    fail = _fail_value(bounds, hib)
    scores: list[Scores] = [item_scores(_rows(run, suite, tasks), metric, fail) for run in runs]
    k = len(runs)
    m = k * (k - 1) // 2
    where = f"{suite}{'/' + task if task else ''}"
    if not values.size or bounds is None:
        why = (f"no per-item {metric} scores in {where}: a corpus-level metric has no paired interval" if not values.size
               else f"{metric} is unbounded: no paired interval holds its level at every n, so it is not ranked")
        standings = [Standing(n, float(s.values.mean()) if s.values.size else float("nan"), int(s.values.size), 1, k)
                     for n, s in zip(names, scores)]
        return Ranking(suite, task, metric, hib, alpha, standings, [], None, note=why)
    sign = 1.0 if hib else -1.0
    pairs: list[Pair] = []
    rel: dict[tuple[str, str], str] = {(x, x): "≈" for x in names}
    for i in range(k):
        for j in range(i + 1, k):
            a, b = runs[i], runs[j]
            _check_prompts(a, b, suite, tasks)
            order = _order(a, suite) or _order(b, suite)
            vb, va, common = paired(scores[j], scores[i])  # va: A's scores, vb: B's, on the items both have
            if order is not None:  # a sequential run: its confidence sequence takes the items in evaluation order
                idx = sorted(range(len(common)), key=lambda t: order.get(common[t], math.inf))
                va, vb = va[idx], vb[idx]
            if not va.size:
                iv = Interval(None, None, "none", 0, "no items in common")
            else:
                iv = orient(delta_interval(vb, va, binary, bounds, alpha=alpha / m, sequential=order is not None), sign)
            delta = float(sign * (va - vb).mean()) if va.size else float("nan")
            pair = Pair(names[i], names[j], int(va.size), delta, iv, _relation(iv))
            pairs.append(pair)
            rel[(pair.a, pair.b)] = pair.relation
            rel[(pair.b, pair.a)] = {">": "<", "<": ">"}.get(pair.relation, "≈")
    standings = []
    for name, s in zip(names, scores):
        beats = [y for y in names if rel[(name, y)] == ">"]
        beaten = [y for y in names if rel[(name, y)] == "<"]
        score = float(s.values.mean()) if s.values.size else float("nan")
        standings.append(Standing(name, score, int(s.values.size), 1 + len(beaten), k - len(beats), beats, beaten))
    standings.sort(key=lambda st: (st.rank_lo, st.rank_hi, -sign * st.score if math.isfinite(st.score) else math.inf))
    method = next((p.interval.method for p in pairs if p.interval.defined), "none")
    groups = _groups([st.label for st in standings], rel)
    return Ranking(suite, task, metric, hib, alpha, standings, pairs, groups, method)


# ---------------------------------------------------------------- what to rank


def headline_keys(runs: Sequence[Run], tasks: bool = True) -> list[Key]:
    """Each suite's headline metric pooled over its tasks, and (tasks) each task's headline metric where the suite
    has several tasks: the suites the runs share, in the first run's order."""
    first = runs[0]
    keys: list[Key] = []
    for suite, entry in first.suites.items():
        if not all(suite in r.suites for r in runs[1:]):
            continue
        task_names = list(entry.get("tasks") or {})
        suite_metrics = list(entry.get("metrics") or {})
        if suite_metrics:
            keys.append((suite, None, suite_metrics[0]))
        if tasks and len(task_names) > 1:
            for t in task_names:
                tm = list(((entry["tasks"][t] or {}).get("metrics")) or {})
                if tm:
                    keys.append((suite, t, tm[0]))
    return keys


def rule_keys(spec: GateSpec, runs: Sequence[Run]) -> list[Key]:
    """The (suite, task, metric) each rule of a gate judges, once each: a rule on a task ranks that task, a rule on a
    suite ranks the suite's items pooled. Rules on the review app's judgments or an anchor release have no
    per-run items to rank and are left out."""
    first = runs[0]
    keys: list[Key] = []
    for rule in spec.rules:
        if rule.kind == "max_drift" or rule.ppi or is_human_metric(rule.metric):
            continue
        suite = rule.suite or spec.general_suite
        entry = first.suites.get(suite)
        if entry is None or not all(suite in r.suites for r in runs):
            continue  # a suite some run lacks: nothing to pair
        if rule.metric:
            metric = rule.metric
        elif rule.task:
            metric = next(iter(((entry.get("tasks") or {}).get(rule.task) or {}).get("metrics") or {}), "")
        else:
            metric = next(iter(entry.get("metrics") or {}), "")
        key = (suite, rule.task, metric)
        if metric and key not in keys:
            keys.append(key)
    return keys


def rank_runs(runs: Sequence[Run], keys: Sequence[Key] | None = None, *, alpha: float = stats.ALPHA,
              labels: Sequence[str] | None = None) -> list[Ranking]:
    """One ranking per key (default: `headline_keys`)."""
    return [rank(runs, s, t, m, alpha=alpha, labels=labels) for s, t, m in (keys or headline_keys(runs))]


# ---------------------------------------------------------------- the gate's best of k


@dataclass
class Selection:
    """The gate's pick among k candidates judged on the same items against one baseline."""

    candidates: list[str]  # in declared order
    alpha: float  # familywise: the chance that the picked candidate's PASS is false
    verdicts: dict[str, Verdict]
    chosen: str | None
    why: str  # how the pick was made among the passing candidates
    rankings: list[Ranking] = field(default_factory=list)  # among the passing candidates, on the rules' metrics

    @property
    def k(self) -> int:
        return len(self.candidates)

    @property
    def alpha_each(self) -> float:
        return self.alpha / self.k

    @property
    def passing(self) -> list[str]:
        return [c for c in self.candidates if self.verdicts[c] == "PASS"]

    @property
    def verdict(self) -> Verdict:
        """PASS when one candidate passes; else INCONCLUSIVE when one is undecided (more items could make it pass),
        else FAIL."""
        if self.chosen is not None:
            return "PASS"
        return "INCONCLUSIVE" if "INCONCLUSIVE" in self.verdicts.values() else "FAIL"

    @property
    def exit_code(self) -> int:
        return EXIT[self.verdict]

    @property
    def adjustment(self) -> str:
        return (f"best of {self.k} on the same items: each judged at α/{self.k} = {self.alpha_each:.4g} "
                f"({100 * (1 - self.alpha_each):.4g}% intervals; Bonferroni over the {self.k} candidates), so the "
                f"picked one's PASS is false with probability ≤ {self.alpha:g} whichever is picked")

    def to_json(self, label: str | None = None) -> dict[str, Any]:
        """The `selection` block of each candidate's verdict.json."""
        out: dict[str, Any] = {
            "candidates": self.candidates, "k": self.k, "alpha": self.alpha, "alpha_each": self.alpha_each,
            "adjustment": self.adjustment, "verdicts": self.verdicts, "passing": self.passing,
            "chosen": self.chosen, "why": self.why, "verdict": self.verdict, "exit_code": self.exit_code}
        if label is not None:
            out["this_candidate_chosen"] = label == self.chosen
        return out


def _cost(run: Run) -> float | None:
    value = run.provenance.get("trainable_params")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def select_best(results: Sequence[GateResult], spec: GateSpec, *, alpha: float = stats.ALPHA) -> Selection:
    """Pick the best passing candidate. `results` are the candidates' gates, each judged at alpha/k, in declared
    order. Among the passing ones, each ranking on a rule's metric gives a candidate +1 per candidate it beats and
    −1 per candidate that beats it; the highest total wins. A tie goes to the fewest trainable parameters when every
    tied candidate records them, else to the one declared first."""
    runs = [r.comparison.candidate for r in results]
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):
        labels = [f"{r.label} ({r.path.name})" if labels.count(r.label) > 1 else r.label for r in runs]
    verdicts: dict[str, Verdict] = {lab: r.verdict for lab, r in zip(labels, results)}
    passing = [i for i, r in enumerate(results) if r.verdict == "PASS"]
    if not passing:
        return Selection(labels, alpha, verdicts, None, "no candidate passes")
    if len(passing) == 1:
        return Selection(labels, alpha, verdicts, labels[passing[0]], "the only candidate that passes")
    chosen_runs = [runs[i] for i in passing]
    names = [labels[i] for i in passing]
    keys = rule_keys(spec, chosen_runs)
    rankings = [r for r in rank_runs(chosen_runs, keys, alpha=alpha, labels=names) if r.note is None]
    net = {n: 0 for n in names}
    for ranking in rankings:
        for st in ranking.standings:
            net[st.label] += len(st.beats) - len(st.beaten_by)
    top = max(net.values())
    tied = [n for n in names if net[n] == top]
    basis = (f"ranked on the {len(rankings)} rule metric(s) among the {len(names)} passing candidates "
             f"(pairs simultaneous at {alpha:g}): net pairwise wins {', '.join(f'{n} {net[n]:+d}' for n in names)}")
    if len(tied) == 1:
        return Selection(labels, alpha, verdicts, tied[0], basis, rankings)
    costs = {n: _cost(runs[labels.index(n)]) for n in tied}
    if all(c is not None for c in costs.values()):
        pick = min(tied, key=lambda n: (costs[n], names.index(n)))
        how = f"; {', '.join(tied)} tie, so the one with the fewest trainable parameters"
    else:
        pick = tied[0]
        how = f"; {', '.join(tied)} tie, so the one declared first (not every tied candidate records its trainable parameters)"
    return Selection(labels, alpha, verdicts, pick, basis + how, rankings)
