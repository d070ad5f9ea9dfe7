"""Evaluate until the gate is decided (`tunegate eval ... --until-decided GATE --baseline RUN`).

The candidate's items are evaluated in a seeded random order per task: a chunk of every task at the first look,
then where a decision is nearest per CPU-second (`harness.decide.allocate`). After each look
every gate rule is judged with the betting confidence sequence of `harness.inference.sequential`, which stays valid
when the decision to stop depends on the data seen so far. The run stops when every rule is PASS or FAIL, or
when the items or a declared budget (`--max-items`, `--max-minutes`) run out.

The baseline's answers on the same items come from the baseline run where it has them; the rest are evaluated
on demand with the baseline's own variant (the base model, or its adapter) on the loaded base, through the
response cache. The candidate's results.json records the `sequential` block (method, alpha, seed, chunk, the
evaluated samples in order with their prompt hashes), so compare and gate pair on those ids and judge it
with the confidence sequence, never a fixed-n test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from harness.core import distributed
from harness.core.api import Backend, SampleRecord, UserError, sha256_json
from harness.core.config import line_of
from harness.data.runfile import SampleRow
from harness.data.runs import Run
from harness.data.suite import Suite, load_suites
from harness.decide import allocate
from harness.decide.compare import compare_runs, prompt_sha
from harness.decide.gate import (
    Check,
    GateResult,
    GateSpec,
    Rule,
    RuleResult,
    evaluate_gate,
    load_gate,
    sequential_summary,
    superiority_design,
)
from harness.decide.verdict import verdict_json, write_verdict
from harness.flows import active as active_draws
from harness.flows.refs import resolve_run
from harness.inference import power, sequential
from harness.inference.active import DEFAULT_FLOOR
from harness.inference.stats import ALPHA
from harness.models import load_backend
from harness.run import canary
from harness.run.engine import (
    EvalSettings,
    WorkItem,
    assemble_results,
    build_items,
    check_capabilities,
    check_out_dir,
    execute,
    say,
    write_run_dir,
)
from harness.scoring import judging
from harness.storage import ledger
from harness.storage.store import Store

DEFAULT_CHUNK = 10  # items per task between two looks; every look is valid, so small chunks stop sooner
# The discordance the horizon design plans paired rules at when none is given: `tunegate plan`'s default.
DEFAULT_DISCORDANCE = 0.15

Group = tuple[str, str, str]  # (suite, task, source id): an item with its perturbed variants


@dataclass
class UntilSettings:
    """What `--until-decided` adds to an evaluation."""

    gate: Path
    baseline: str
    max_items: int | None = None
    max_minutes: float | None = None
    chunk: int = DEFAULT_CHUNK
    seed: int = 0
    # Per task ("suite/task"): items per look instead of `chunk`, e.g. more of a cheap multiple-choice task than of
    # a sampled code task. Fixed before any answer is seen, so every look stays valid (the CS allows any looks).
    task_chunk: dict[str, int] = field(default_factory=dict)
    # The share of paired items expected to change (as `tunegate plan --discordance`; a pilot's is best): with
    # the rule's margin it gives the planner's n, the horizon the bets are tuned to (see `plan_design`).
    discordance: float = DEFAULT_DISCORDANCE
    # `--active`: draw each task's items toward likely flips, importance-weighted (harness.flows.active), with
    # every item's probability at least floor / N
    active: bool = False
    floor: float = DEFAULT_FLOOR

    def chunk_of(self, task: tuple[str, str]) -> int:
        return self.task_chunk.get(f"{task[0]}/{task[1]}", self.chunk)


@dataclass
class RuleProgress:
    """Per rule: its verdict now, the items it judged, the items it could have, and when it was decided."""

    name: str
    verdict: str
    n: int
    available: int
    decided_at: int | None = None  # items the candidate had evaluated (all tasks) when it was first decided
    futile: bool = False  # undecided, and every item of the split would not decide it (see `futile`)
    # undecided: why ("budget", "items", "futile", "people") and what deciding would take (`undecided_reason`)
    reason: str | None = None
    need: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a sequential evaluation did and decided."""

    gate: GateResult
    results: dict[str, Any]
    rules: list[RuleProgress]
    evaluated: int
    available: int
    baseline_evaluated: int
    stopped: str
    looks: list[int] = field(default_factory=list)
    baseline_dir: Path | None = None
    seconds: float = 0.0
    samples: list[SampleRow] = field(default_factory=list)  # the candidate's samples, as written

    @property
    def saved(self) -> float:
        return 1.0 - self.evaluated / self.available if self.available else 0.0


# ---------------------------------------------------------------- the evaluation order


def _groups(items: list[WorkItem]) -> dict[Group, list[WorkItem]]:
    """Items grouped by source item (the original first, then its perturbed variants), in build order."""
    out: dict[Group, list[WorkItem]] = {}
    for item in items:
        key = (item.task.suite.name, item.task.name, str(item.sample.source_id or item.sample.sample_id))
        out.setdefault(key, []).append(item)
    for group in out.values():
        group.sort(key=lambda i: i.sample.perturbation is not None)
    return out


def seeded_order(groups: Sequence[Group], seed: int) -> dict[tuple[str, str], list[Group]]:
    """Each task's items in one seeded random order, fixed before any answer is seen (the CS needs that).

    Each task draws from its own generator, seeded by the seed and the task's name, so that adding, removing or
    reordering other tasks leaves a task's order (and the answers cached for it) as it was."""
    by_task: dict[tuple[str, str], list[Group]] = {}
    for g in groups:
        by_task.setdefault((g[0], g[1]), []).append(g)
    return {task: [members[i] for i in _task_rng(seed, task).permutation(len(members))]
            for task, members in by_task.items()}


def _task_rng(seed: int, task: tuple[str, str]) -> np.random.Generator:
    name = int.from_bytes(hashlib.sha256(f"{task[0]}/{task[1]}".encode()).digest()[:8], "big")
    return np.random.default_rng([seed, name])


def rule_tasks(spec: GateSpec, suites: list[Suite], source: str) -> list[set[tuple[str, str]]]:
    """The tasks each rule reads; UserError for a rule whose suite or task is not evaluated."""
    by_suite = {s.name: [t.name for t in s.tasks] for s in suites}
    out = []
    for i, rule in enumerate(spec.rules):
        suite = rule.suite or spec.general_suite
        if suite not in by_suite:
            raise UserError(f"rule {i + 1} reads suite '{suite}', which this evaluation does not include "
                            f"(suites: {', '.join(by_suite)})", field=f"rules.{i}", source=source)
        if rule.task and rule.task not in by_suite[suite]:
            raise UserError(f"rule {i + 1} reads task '{rule.task}', which suite '{suite}' does not have",
                            field=f"rules.{i}", source=source)
        out.append({(suite, rule.task)} if rule.task else {(suite, t) for t in by_suite[suite]})
    return out


def refuse_estimates(spec: GateSpec, root: Any, source: str) -> None:
    """A rule decided on its point estimate is no stopping rule: judged after every look, the first estimate on
    the passing side would end the run (20 of 20 runs stopped after 10 items at a true 0.45 against a 0.5
    floor, 12 of them PASS). Such a rule belongs to a gate of a complete run."""
    for i, rule in enumerate(spec.rules):
        if rule.decide_on == "estimate":
            raise UserError("'decide_on: estimate' cannot decide an evaluation until decided (a point estimate has "
                            "no error rate at a data-dependent stop); remove it from this gate file, or gate it on "
                            "a complete run", source=source, field=f"rules.{i}.decide_on",
                            line=line_of(root, ["rules", i, "decide_on"]) or line_of(root, ["rules", i]))


Task = tuple[str, str]


def _planned(rule: Rule, discordance: float) -> tuple[float, int] | None:
    """(threshold of the improvement, the planner's n) of a paired rule before any item is seen, as `tunegate
    plan` computes it (paired 0/1 scores, 80% power, one-sided 2.5%; the gate's plan_n later moves to the run's
    safeguarded estimate); None for other kinds."""
    kind = rule.kind
    if kind in ("non_inferiority", "max_general_drop"):
        margin = float(rule.non_inferiority or rule.max_general_drop or 0.0)
        effect = 0.0
    elif kind == "superiority":
        margin, effect = superiority_design(rule)
    else:
        return None
    try:
        return -margin, power.paired_binary_n(margin, effect, max(discordance, effect, margin, 1e-3))
    except (ValueError, OverflowError):
        return -margin, 0  # no n below ten million (or max_general_drop 0): tune to the split


def plan_design(spec: GateSpec, reads: list[set[Task]], available: Mapping[str, int],
                discordance: float) -> dict[str, dict[str, Any]]:
    """Per task ("suite/task"): the horizon design its sequence bets with, fixed before the first look.

    The first paired rule (gate order) that reads a task sets it: horizon = the planner's n for that rule at
    `discordance` (for a pooled rule, its share of the pooled n by the tasks' split sizes), at most the task's
    split, never below 1; center = the rule's threshold on the improvement. A wrong plan costs items, never
    validity (the bets stay predictable). Tasks no paired rule reads get no design (the LIL schedule)."""
    out: dict[str, dict[str, Any]] = {}
    for rule, tasks in zip(spec.rules, reads):
        plan = _planned(rule, discordance)
        if plan is None:
            continue
        center, n = plan
        keys = sorted(f"{s}/{t}" for s, t in tasks)
        total = sum(available.get(k, 0) for k in keys) or 1
        pooled = rule.pool == "micro" and not rule.task
        for key in keys:
            split = available.get(key, 0)
            if key in out or split <= 0:
                continue
            share = math.ceil(n * split / total) if pooled else n
            out[key] = {"horizon": max(1, min(split, share or split)), "center": center, "planned_n": n,
                        "discordance": discordance}
    return out

# Futility is judged from this many paired items of a check on: a first small look's estimate and width say little.
FUTILITY_MIN_N = 10


def _check_tasks(rule: RuleResult, check: Check, tasks: set[Task]) -> set[Task]:
    """The tasks one check of a rule reads: its own task for a per-task rule, every task of a pooled one."""
    if rule.pool == "per task" and len(rule.checks) > 1:
        return {t for t in tasks if t[1] == check.label}
    return tasks


# Futility stops a check only when its chance of being decided within the split's items is below this.
FUTILITY_CHANCE = 0.05
NORMAL = statistics.NormalDist()


def decide_chance(estimate: float, sd: float, n: int, n_full: int, thresholds: Sequence[float]) -> float:
    """Predictive probability that an interval on all `n_full` items excludes the thresholds, given n seen.

    Predictive power under a flat prior (Spiegelhalter, Freedman & Blackburn 1986, Controlled Clinical Trials
    7:8-17): the mean over all n_full items is normal around the estimate with variance
    sd² (n_full − n) / (n · n_full). Only the interval at n_full is modelled (a decision at an earlier look stays
    in the sequence's running intersection, so it is one at n_full too), and it is taken as the fixed-n normal
    one, estimate ± z sd / √n_full, narrower than the confidence sequence's, so the chance is overstated:
    futility errs toward going on. sd² is floored at 1 / (n + 1) so that a first look of ties does not read as
    certainty. benchmarks/bench_sequential.py (section 4) measures what it costs."""
    if n <= 0:
        return 1.0
    n_full = max(n_full, n)
    var = max(sd * sd if math.isfinite(sd) else 0.0, 1.0 / (n + 1))
    spread = math.sqrt(var * (n_full - n) / (n * n_full))
    half = NORMAL.inv_cdf(1 - ALPHA / 2) * math.sqrt(var / n_full)
    lo_t, hi_t = min(thresholds), max(thresholds)
    if spread == 0:
        return float(estimate - half > lo_t or estimate + half < hi_t)
    above = 1.0 - NORMAL.cdf((lo_t + half - estimate) / spread)
    below = NORMAL.cdf((hi_t - half - estimate) / spread)
    return float(min(1.0, above + below))


def futile(check: Check, taken: int, available: int) -> bool:
    """True when the check's chance of being decided within the split's items (`decide_chance`, at the n all
    of them give: `check.n` scaled from the items taken to those available) is below FUTILITY_CHANCE.

    Dropping a check changes no error rate (a confidence sequence is valid at any stopping time); it only spends
    the time on checks that can be decided. Its cost in power is measured by benchmarks/bench_sequential.py."""
    if check.n < FUTILITY_MIN_N or taken <= 0 or not check.bounds or check.sd is None:
        return False
    n_full = int(round(check.n * max(available, taken) / taken))
    return decide_chance(check.figure, check.sd, check.n, n_full, check.bounds) < FUTILITY_CHANCE


def _active(result: GateResult | None, reads: list[set[Task]], taken: Mapping[Task, int],
            available: Mapping[Task, int]) -> tuple[set[Task], set[int]]:
    """Tasks that an undecided, not futile check still needs, and the indices of rules left undecided only by
    futile checks.

    A task whose every check is decided or futile gets no more items: its confidence sequence stays where it is."""
    if result is None:
        return (set().union(*reads) if reads else set()), set()
    active: set[Task] = set()
    hopeless: set[int] = set()
    for i, (rule, tasks) in enumerate(zip(result.rules, reads)):
        if rule.verdict in ("PASS", "FAIL"):
            continue
        if rule.awaits_people:  # only people's ratings can decide it, not more items
            hopeless.add(i)
            continue
        open_tasks: set[Task] = set()
        for check in rule.checks:
            if check.verdict in ("PASS", "FAIL"):
                continue
            span = _check_tasks(rule, check, tasks)
            if not futile(check, sum(taken.get(t, 0) for t in span), sum(available.get(t, 0) for t in span)):
                open_tasks |= span
        if open_tasks or not rule.checks:
            active |= open_tasks or tasks
        else:
            hopeless.add(i)
    return active, hopeless


# ---------------------------------------------------------------- where the next look's items go

ALLOCATION = "progress toward a decision per CPU-second (decide.allocate); the first look a chunk of every task"


def prior_costs(suites: list[Suite]) -> dict[Task, float]:
    """CPU-seconds per item of each task before it is measured, by its kind, tokens and model calls per item."""
    out = {}
    for suite in suites:
        for task in suite.tasks:
            gen = task.spec.generation
            out[(suite.name, task.name)] = allocate.prior_seconds(
                task.spec.kind, gen.max_new_tokens if gen else None, gen.samples if gen else 1,
                1 + len(task.spec.perturbations))
    return out


def _opens(result: GateResult, reads: list[set[Task]]) -> list[allocate.Open]:
    """The checks more items can still decide: undecided, judged, of a rule that does not wait on people."""
    out = []
    for rule, tasks in zip(result.rules, reads):
        if rule.verdict in ("PASS", "FAIL") or rule.awaits_people:
            continue
        out += [allocate.Open(c, frozenset(_check_tasks(rule, c, tasks))) for c in rule.checks
                if c.verdict == "INCONCLUSIVE"]
    return out


# The first look takes at most this share of `--max-minutes` (at the cost per item known before it: measured by an
# earlier run sharing the meter, else the prior by task kind); the looks after it go where a decision is nearest,
# and a first look that spent the whole budget would leave them nothing.
FIRST_LOOK_SHARE = 0.5
# A later look takes at most this share of the minutes left (and at least the best chunk, `allocate`): looks get
# shorter toward the end of the budget, so that what a look shows can redirect the next one before time is out.
LOOK_SHARE = 0.5


def first_look(active: Sequence[Task], until: UntilSettings, meter: allocate.Prices,
               seconds_left: float | None = None) -> dict[Task, int]:
    """The first look's items per task: each its chunk, all scaled down alike (at least one each) when they would
    cost more than FIRST_LOOK_SHARE of the `seconds_left` (None: no time budget). Fixed before any answer, like
    the chunks: every look stays valid, and the tasks of a pool keep equal chunks."""
    items = {t: until.chunk_of(t) for t in active}
    if seconds_left is None:
        return items
    cost = sum(n * meter.wall_per_item(t) for t, n in items.items())
    cap = FIRST_LOOK_SHARE * max(0.0, seconds_left)
    if cost <= cap:
        return items
    return {t: max(1, int(n * cap / cost)) for t, n in items.items()}


def _allocate(result: GateResult, reads: list[set[Task]], active: list[Task], taken: Mapping[Task, int],
              order: Mapping[Task, list[Group]], until: UntilSettings, meter: allocate.Prices,
              seconds_left: float | None) -> allocate.Look:
    """The next look: what round-robin would spend (at most LOOK_SHARE of the seconds left), given where it helps
    most."""
    left = {t: len(order[t]) - taken[t] for t in active}
    chunk = {t: until.chunk_of(t) for t in active}
    budget = sum(min(chunk[t], left[t]) * meter.per_item(t) for t in active)
    if seconds_left is not None:  # at most half the time left: the look after it can still change course
        budget = min(budget, LOOK_SHARE * max(0.0, seconds_left) / meter.wall_per_cpu())
    failed = any(rule.verdict == "FAIL" for rule in result.rules)  # the gate's verdict is FAIL already
    return allocate.allocate(_opens(result, reads), active, left, chunk, meter, budget, failed)


def undecided_reason(rule: RuleResult, tasks: set[Task], hopeless: bool, taken: Mapping[Task, int],
                     split: Mapping[Task, int], meter: allocate.Prices) -> tuple[str, dict[str, Any]]:
    """Why an INCONCLUSIVE rule stayed so, and what deciding it would take.

    "people" (only ratings decide it), "items" (every item its open checks read was evaluated; `planned_n`: what
    the planner asks for), "futile" (every item of the split would very likely not) or "budget" (items were left:
    `more_items` per task by the planner and, at the cost per item measured, about `minutes` of wall time)."""
    from harness.report.fmt import more_items  # flows may import report; the planner's gap, as the demo shows it

    if rule.awaits_people:
        return "people", {}
    open_tasks = set().union(*(_check_tasks(rule, c, tasks) for c in rule.checks if c.verdict == "INCONCLUSIVE")) \
        if rule.checks else set(tasks)
    open_tasks = open_tasks or set(tasks)
    need: dict[str, Any] = {"planned_n": rule.plan_n,
                            "split": sum(split.get(t, 0) for t in open_tasks),
                            "evaluated": sum(taken.get(t, 0) for t in open_tasks)}
    if all(taken.get(t, 0) >= split.get(t, 0) for t in open_tasks):
        return "items", need
    if hopeless:
        return "futile", need
    if rule.n == 0 and need["evaluated"]:
        need["unscored"] = True  # items were evaluated, none gave this rule a score (its detail says why)
    more = more_items(rule)
    if more is not None:
        need["more_items"] = more
        # wall time at the measured cost: each undecided check's planner gap (at most its items left) times the
        # mean cost per item of its tasks
        seconds, short, priced, projected = 0.0, False, 0, []
        for check in rule.checks or []:
            if check.verdict != "INCONCLUSIVE" or not check.plan_n:
                continue
            span = _check_tasks(rule, check, tasks)
            left = sum(split.get(t, 0) - taken.get(t, 0) for t in span)
            gap = max(0, check.plan_n - check.n)
            if gap == 0:  # the planner's n is reached, the interval is not yet clear of the threshold
                gap = projected_gap(check, left)
                projected.append(gap)
            short, take = short or gap > left, min(gap, left)
            priced += take
            seconds += take * sum(meter.wall_per_item(t) for t in span) / max(1, len(span))
        need["minutes"] = round(seconds / 60, 1)
        need["split_short"] = short  # the planner asks for more than the split has left
        need["priced"] = priced  # the items the minutes are for: the planner's gap, at most what the split has left
        if projected and need["more_items"] == 0:
            need["more_items"] = max(projected)
            need["projected"] = True  # from the interval's own projection, not the planner's fixed-n figure
    return "budget", need


def projected_gap(check: Check, left: int) -> int:
    """For a check past the planner's n but undecided: the fewest more items (1, 2, 4, ... at most `left`) after
    which the allocator's projection of its own interval (`allocate.reach_chance`) gives a decision at least
    even odds; `left` when none does. The planner's n is a fixed-n figure; the anytime-valid interval is wider."""
    extra = 1
    while extra < left:
        chance = allocate.reach_chance(check, extra)
        if chance is not None and chance >= 0.5:
            return extra
        extra *= 2
    return max(0, left)


# ---------------------------------------------------------------- the baseline


def _baseline_index(samples: Sequence[SampleRow]) -> dict[tuple[str, str, str], SampleRow]:
    return {(s["suite"], s["task"], s["sample_id"]): s for s in samples}


def _baseline_variant(run: Run, backend: Backend) -> str | None:
    """The adapter (None: the bare base) that reproduces the baseline run on this backend, or UserError."""
    adapter = run.adapter
    variant = None
    if adapter:
        variant = adapter.get("path")
        if not variant or not Path(str(variant)).is_dir():
            raise UserError(f"the baseline {run.path} lacks some of the items to evaluate and its adapter "
                            f"({adapter.get('name')}) is not on this machine to evaluate them; evaluate the "
                            "baseline on the whole split first (eval --full)", field="--baseline")
    backend.set_adapter(str(variant) if variant else None)
    want = (run.results.get("model") or {}).get("fingerprint_hash")
    if sha256_json(backend.fingerprint()) != want:
        raise UserError(f"the baseline {run.path} lacks some of the items to evaluate and was made with another "
                        f"model or settings (fingerprint {str(want)[:12]}, this backend "
                        f"{sha256_json(backend.fingerprint())[:12]}), so they cannot be evaluated on demand; "
                        "evaluate the baseline on the whole split first (eval --full)", field="--baseline")
    return str(variant) if variant else None


def _record_json(sample: Mapping[str, Any]) -> SampleRecord:
    names = {f.name for f in dataclasses.fields(SampleRecord)}
    return SampleRecord.from_json({k: v for k, v in sample.items() if k in names})


# ---------------------------------------------------------------- the loop


def _timed(meter: allocate.CostMeter | None, work: list[WorkItem], run: Callable[[list[WorkItem]], object],
           base: bool = False) -> None:
    """run(work) a task at a time (one adapter switch for all), each task's time added to `meter` per source item
    (an item with its perturbed variants): the candidate's, or the baseline's answers computed on demand (`base`)."""
    by_task: dict[Task, list[WorkItem]] = {}
    for item in work:
        by_task.setdefault((item.task.suite.name, item.task.name), []).append(item)
    for task, part in by_task.items():
        if meter is None:
            run(part)
            continue
        with meter.measure(task, len(_groups(part)), base):
            run(part)


class _Loop:
    """The state of one sequential evaluation: both variants' runs in the store and what was evaluated."""

    def __init__(self, backend: Backend, store: Store, suites: list[Suite], settings: EvalSettings,
                 until: UntilSettings, model_spec: str, candidate: str | None, baseline: Run,
                 judges: dict[str, Backend] | None = None) -> None:
        self.backend, self.store, self.suites, self.settings, self.until = backend, store, suites, settings, until
        self.judges = judges or {}  # the backends bound to the suites' judge roles (judged tasks)
        self.candidate, self.baseline = candidate, baseline
        self.quiet = dataclasses.replace(settings, progress=False)
        check = canary.check_adapter(backend, candidate) if candidate else None  # leaves the candidate set
        backend.set_adapter(candidate)
        if distributed.is_main():
            canary.warn(Path(candidate).name if candidate else "base", check)
        self.items = build_items(backend, suites, settings, store)
        self.groups = _groups(self.items)
        self.fp = backend.fingerprint()
        self.fp_hash = sha256_json(self.fp)
        adapter = backend.adapter
        self.model_info = {"spec": model_spec, "adapter": adapter.to_json() if adapter else None,
                           "fingerprint": self.fp, "fingerprint_hash": self.fp_hash,
                           **({"adapter_check": check} if check is not None else {})}
        key = sha256_json({"fp": self.fp_hash, "suites": [s.fingerprint() for s in suites], "until": str(until),
                           "time": time.time()})  # a sequential run is never resumed: the cache makes reruns cheap
        self.run_id, _ = store.start_run(key, self.model_info, False)
        self.base_index = _baseline_index(baseline.samples)
        self.base_seen = len(baseline.samples)  # the baseline's samples indexed (another run may add to a shared one)
        self.base_extra: list[SampleRecord] = []  # baseline samples evaluated on demand
        self.base_run_id: str | None = None
        self.base_variant: str | None = None
        self.base_fp_hash = ""
        self.done: list[WorkItem] = []
        self.order: list[Group] = []

    def evaluate_chunk(self, groups: list[Group], meter: allocate.CostMeter | None = None) -> None:
        """Evaluate the groups' items (the baseline's where missing); `meter` gets each task's time per item."""
        work = [item for g in groups for item in self.groups[g]]
        self.backend.set_adapter(self.candidate)
        _timed(meter, work, lambda part: execute(self.backend, self.store, self.run_id, self.fp_hash, part,
                                                 self.quiet, self.judges))
        missing = []
        for item in work:
            have = self._base_answer(item)
            if have is None:
                missing.append(item)
            elif prompt_sha(have.get("prompt")) != prompt_sha(item.prompt):
                key = (item.task.suite.name, item.task.name, item.sample.sample_id)
                raise UserError(f"the baseline's prompt of {'/'.join(key)} differs from the candidate's: check chat "
                                "template, few-shot and generation settings", field="--baseline")
        if missing:
            self._evaluate_baseline(missing, meter)
        self.done += work
        self.order += groups

    def _base_answer(self, item: WorkItem) -> SampleRow | None:
        """The baseline's answer to the item, if it has one (answers another run sharing the baseline evaluated
        since the last call included)."""
        if len(self.baseline.samples) != self.base_seen:
            self.base_index.update(_baseline_index(self.baseline.samples[self.base_seen:]))
            self.base_seen = len(self.baseline.samples)
        return self.base_index.get((item.task.suite.name, item.task.name, item.sample.sample_id))

    def missing_share(self, groups: Sequence[Group]) -> float:
        """The share of these items whose baseline answers would be computed on demand (0 for none)."""
        if not groups:
            return 0.0
        return sum(any(self._base_answer(i) is None for i in self.groups[g]) for g in groups) / len(groups)

    def _evaluate_baseline(self, work: list[WorkItem], meter: allocate.CostMeter | None = None) -> None:
        if self.base_run_id is None:
            self.base_variant = _baseline_variant(self.baseline, self.backend)
            self.base_fp_hash = sha256_json(self.backend.fingerprint())
            self.base_run_id, _ = self.store.start_run(sha256_json(["baseline", self.run_id]),
                                                       self.baseline.results.get("model") or {}, False)
        self.backend.set_adapter(self.base_variant)
        _timed(meter, work, lambda part: execute(self.backend, self.store, self.base_run_id or "",
                                                 self.base_fp_hash, part, self.quiet, self.judges), base=True)
        wanted = {(i.task.suite.name, i.task.name, i.sample.sample_id) for i in work}
        fresh = [r for r in self.store.records(self.base_run_id) if (r.suite, r.task, r.sample_id) in wanted]
        for rec in fresh:
            sample = cast(SampleRow, rec.to_json())
            self.base_index[(rec.suite, rec.task, rec.sample_id)] = sample
            self.baseline.samples.append(sample)
        self.base_seen = len(self.baseline.samples)
        self.base_extra += fresh

    def block(self, stopped: str | None, available: dict[str, int], looks: list[int],
              design: dict[str, dict[str, Any]]) -> dict[str, Any]:
        method = sequential.HORIZON_METHOD if design else sequential.CS_METHOD
        return {"method": method, "alpha": ALPHA, "seed": self.until.seed, "chunk": self.until.chunk,
                "task_chunk": dict(self.until.task_chunk), "design": design,
                "gate": str(self.until.gate), "baseline": str(self.until.baseline), "stopped": stopped,
                "available": available, "looks": looks, "evaluated": self.evaluated(),
                "items": [{"suite": i.task.suite.name, "task": i.task.name, "sample_id": i.sample.sample_id,
                           "prompt_hash": prompt_sha(i.prompt)} for i in self.done]}

    def evaluated(self) -> dict[str, int]:
        """Items (not counting perturbed variants) evaluated per task."""
        out: dict[str, int] = {}
        for suite, task, _ in self.order:
            out[f"{suite}/{task}"] = out.get(f"{suite}/{task}", 0) + 1
        return out

    def candidate_run(self, block: dict[str, Any], out: Path | None) -> tuple[Run, list[SampleRecord]]:
        wanted = {(i.task.suite.name, i.task.name, i.sample.sample_id) for i in self.done}
        records = [r for r in self.store.records(self.run_id) if (r.suite, r.task, r.sample_id) in wanted]
        results = assemble_results(self.run_id, self.model_info, self.suites, self.done, records, self.settings)
        results["sequential"] = block
        label = Path(self.candidate).name if self.candidate else "base"
        return Run(results, [cast(SampleRow, r.to_json()) for r in records], out or Path(label), label), records

    def baseline_records(self) -> list[SampleRecord]:
        keys = [(i.task.suite.name, i.task.name, i.sample.sample_id) for i in self.done]
        return [_record_json(self.base_index[k]) for k in keys]


class UntilRun:
    """One sequential evaluation, a look at a time: `next_look` says what the next look would take (and how near
    a decision per CPU-second it gets), `take` evaluates it and judges every rule, `finish` writes the run.

    `run_until_decided` drives one run to its own budget; the demo drives several, each look to the run whose
    next look is nearest a decision (`harness.flows.demo`). Either way every look is valid: a confidence sequence
    holds at any data-dependent stopping time, and each task's items keep their seeded order."""

    def __init__(self, backend: Backend, suites: list[Suite], store: Store, settings: EvalSettings,
                 until: UntilSettings, model_spec: str, candidate: str | None, baseline: Run,
                 out: Path | None = None, judges: dict[str, Backend] | None = None,
                 meter: allocate.CostMeter | None = None, label: str = "", deadline: float | None = None) -> None:
        """`label` prefixes its progress lines (the demo's adapter name); `deadline` (a `time.perf_counter()`
        value) is the budget its progress lines count down to when several runs share one."""
        self.started = time.perf_counter()
        self.label, self.deadline = label, deadline
        self.seconds = 0.0  # this run's own time (its set-up and looks; the demo interleaves several runs)
        self.settings, self.until, self.baseline, self.out = settings, until, baseline, out
        self.spec, self.root = load_gate(until.gate)
        refuse_estimates(self.spec, self.root, str(until.gate))
        self.reads = rule_tasks(self.spec, suites, str(until.gate))
        say(settings, f"{self._prefix}until decided: preparing the prompts of {sum(len(x.tasks) for x in suites)} "
                      "tasks")
        self.loop = _Loop(backend, store, suites, settings, until, model_spec, candidate, baseline, judges)
        self.order = seeded_order(list(self.loop.groups), until.seed)
        needed = set().union(*self.reads)
        self.available = {f"{s}/{t}": len(self.order.get((s, t), [])) for s, t in sorted(needed)}
        self.total = sum(self.available.values())
        self.design = plan_design(self.spec, self.reads, self.available, until.discordance)  # fixed before any look
        self.plan = None
        if until.active:  # draws with replacement toward likely flips, fixed before the first look
            self.plan = active_draws.plan(self.spec, self.reads, self.order, baseline, until.floor, until.seed,
                                          str(until.gate))
            self.order = self.plan.order
        self.taken = {task: 0 for task in self.order}
        self.result: GateResult | None = None
        self.decided_at: dict[int, int] = {}
        self.looks: list[int] = []
        self.stopped: str | None = None
        self.hopeless: set[int] = set()
        self.per_task = {task: len(groups) for task, groups in self.order.items()}  # items per task, for futility
        self.meter = meter or allocate.CostMeter()  # what looks are priced by (shared by the demo's runs)
        self.own = allocate.CostMeter(shared=self.meter)  # this run's own costs, for its run file
        self.meter.prior.update(prior_costs(suites))
        budget = "".join(x for x in (f", at most {until.max_items} items" if until.max_items else "",
                                     f", at most {until.max_minutes:.1f} min" if until.max_minutes else ""))
        say(settings, f"{self._prefix}until decided: {len(self.spec.rules)} rules over {self.total} items available in "
                      f"{len(needed)} tasks, looked at after every chunk of {until.chunk} items per task{budget}")
        self.seconds += time.perf_counter() - self.started

    @property
    def _prefix(self) -> str:
        return f"{self.label}: " if self.label else ""

    def budget_left(self) -> float | None:
        """Seconds left of the budget: to the shared deadline, else of `--max-minutes`; None without either."""
        if self.deadline is not None:
            return self.deadline - time.perf_counter()
        if self.until.max_minutes is not None:
            return 60 * self.until.max_minutes - (time.perf_counter() - self.started)
        return None

    def _block(self, stopped: str | None) -> dict[str, Any]:
        made = self.loop.block(stopped, self.available, self.looks, self.design)
        return self.plan.extend(made) if self.plan is not None else made

    def next_look(self, seconds_left: float | None) -> allocate.Look | None:
        """The next look's items per task (and the index of each task's unit), or None when the run is over
        (`stopped` says why). The first look gives every task its chunk (nothing to project from yet), scaled to
        FIRST_LOOK_SHARE of `seconds_left` (`first_look`); later looks go where a decision is nearest per
        CPU-second (`decide.allocate`), each at most LOOK_SHARE of `seconds_left` (None: no time budget)."""
        if self.stopped is not None:
            return None
        wanted, self.hopeless = _active(self.result, self.reads, self.taken, self.per_task)
        active = [t for t in self.order if t in wanted and self.taken[t] < len(self.order[t])]
        if not active:
            self.stopped = "decided" if self.result is not None and all(
                r.verdict in ("PASS", "FAIL") for r in self.result.rules) else "futile" if self.hopeless else "data"
            return None
        if self.until.max_items and len(self.loop.order) >= self.until.max_items:
            self.stopped = "max_items"
            return None
        prices = self._prices(active, next_chunk=True)
        if self.result is None:
            return allocate.Look(first_look(active, self.until, prices, seconds_left))
        return _allocate(self.result, self.reads, active, self.taken, self.order, self.until, prices, seconds_left)

    def _prices(self, tasks: Sequence[Task], next_chunk: bool) -> allocate.Priced:
        """The shared meter's prices for this run: a task's item also costs the baseline's answer for the share of
        its next chunk (`next_chunk`; else of all its items left) that has none yet. A run after another on the
        same baseline mostly finds them there, the first computes them: one price for both was either run's
        wrong (the demo's first adapter overran its first look by 15%, the later ones were priced up to twice)."""
        def share(task: Task) -> float:
            end = self.taken[task] + self.until.chunk_of(task) if next_chunk else None
            return self.loop.missing_share(self.order[task][self.taken[task]:end])
        return self.meter.priced({t: share(t) for t in tasks})

    def take(self, look: allocate.Look) -> None:
        """Evaluate the look's items (the baseline's where missing) and judge every rule on all items so far."""
        begun = time.perf_counter()
        chunk: list[Group] = []
        for task in self.order:
            step = self.order[task][self.taken[task]:self.taken[task] + look.items.get(task, 0)]
            chunk += step
            self.taken[task] += len(step)
        room = self.until.max_items - len(self.loop.order) if self.until.max_items else None
        if room is not None and len(chunk) > room:
            for g in chunk[room:]:
                self.taken[(g[0], g[1])] -= 1
            chunk = chunk[:room]
        say(self.settings, self._prefix + progress_line(len(self.loop.order), len(chunk), self.total, self.result,
                                                        self.seconds, self.budget_left()))
        fresh = self.plan.record(chunk) if self.plan is not None else chunk  # an item drawn again: not re-evaluated
        if fresh:
            self.loop.evaluate_chunk(fresh, self.own)
        self.looks.append(len(self.loop.order))
        cand, _ = self.loop.candidate_run(self._block(None), self.out)
        comp = compare_runs(self.baseline, cand, n_resamples=self.spec.n_resamples, seed=self.spec.seed)
        self.result = evaluate_gate(self.spec, comp, source=str(self.until.gate), root=self.root)
        for i, rule in enumerate(self.result.rules):
            if rule.verdict in ("PASS", "FAIL") and i not in self.decided_at:
                self.decided_at[i] = len(self.loop.order)
        say(self.settings, f"{self._prefix}{len(self.loop.order)} of {self.total} items: " + ", ".join(
            f"{v} {sum(r.verdict == v for r in self.result.rules)}" for v in ("PASS", "FAIL", "INCONCLUSIVE")))
        self.seconds += time.perf_counter() - begun

    def finish(self, stopped: str | None = None) -> Outcome:
        """Write the run (its directory, the baseline's answers evaluated on demand, the verdict) and return what
        it did and decided; `stopped` names why it ended when it was not over by itself (e.g. "max_minutes")."""
        begun = time.perf_counter()
        result = self.result
        if result is None:
            raise UserError("no item to evaluate: the gate's rules read no task with samples", source=str(self.until.gate))
        if self.stopped is None and all(r.verdict in ("PASS", "FAIL") for r in result.rules):
            self.stopped = "decided"  # its last look decided every rule, whatever ended the loop after it
        self.stopped = self.stopped or stopped or "data"
        rules = [RuleProgress(r.name, r.verdict, r.n, sum(self.available[f"{s}/{t}"] for s, t in self.reads[i]),
                              self.decided_at.get(i), i in self.hopeless) for i, r in enumerate(result.rules)]
        prices = self._prices(list(self.order), next_chunk=False)
        for i, (progress, rule) in enumerate(zip(rules, result.rules)):
            if rule.verdict == "INCONCLUSIVE":
                progress.reason, progress.need = undecided_reason(rule, self.reads[i], i in self.hopeless, self.taken,
                                                                  self.per_task, prices)
        final = self._block(self.stopped)
        final["allocation"] = ALLOCATION
        final["cost"] = self.own.to_json()
        final["undecided"] = {p.name: {"reason": p.reason, **p.need} for p in rules if p.reason}
        result.sequential = sequential_summary(final)
        loop, out = self.loop, self.out
        cand, records = loop.candidate_run(final, out)
        loop.store.finish_run(loop.run_id, cand.results)
        base_dir = None
        if out is not None:
            write_run_dir(out, cand.results, records)
            if loop.base_extra:
                base_dir = out / "baseline"
                base_records = loop.baseline_records()
                base_results = assemble_results(loop.base_run_id or "", self.baseline.results.get("model") or {},
                                                loop.suites, loop.done, base_records, self.settings)
                base_results["sequential"] = final
                write_run_dir(base_dir, base_results, base_records)
            write_verdict(result, out / "verdict.json")
        self.seconds += time.perf_counter() - begun
        return Outcome(result, cand.results, rules, len(loop.order), self.total, len(loop.base_extra), self.stopped,
                       self.looks, base_dir, self.seconds, cand.samples)


def run_until_decided(backend: Backend, suites: list[Suite], store: Store, settings: EvalSettings,
                      until: UntilSettings, model_spec: str, candidate: str | None, baseline: Run,
                      out: Path | None = None, judges: dict[str, Backend] | None = None,
                      meter: allocate.CostMeter | None = None) -> Outcome:
    """The sequential loop on a loaded backend: look, judge every rule, stop when decided or out of budget.
    `judges` are the backends bound to the suites' judge roles (needed when a task declares a judge); `meter`
    the cost per item measured so far (a new one by default)."""
    run = UntilRun(backend, suites, store, settings, until, model_spec, candidate, baseline, out, judges, meter)
    while (look := run.next_look(run.budget_left())) is not None:
        run.take(look)
        if (left := run.budget_left()) is not None and left <= 0:
            return run.finish("max_minutes")
    return run.finish()


def progress_line(done: int, chunk: int, total: int, result: GateResult | None, spent: float,
                  budget_left: float | None) -> str:
    """Before each look: the items so far and those now evaluated, the rules decided, and the time left (seconds
    of the budget, or at this pace for every item still available: an upper bound, as deciding stops sooner)."""
    rules = ("no rule judged yet" if result is None else
             f"rules decided: {sum(r.verdict in ('PASS', 'FAIL') for r in result.rules)} of {len(result.rules)}")
    if budget_left is not None:
        left = f"{max(0.0, budget_left) / 60:.1f} min of the budget left"
    elif done:
        left = f"at most {(total - done) * spent / done / 60:.1f} min left at this pace"
    else:
        left = "time left known after the first look"
    return (f"evaluating items {done + 1}–{done + chunk} of {total} ({done} so far, {spent:.0f} s); {rules}; "
            f"{left}")


def evaluate_until_decided(model: str | None, adapters: list[str], suite_refs: list[str], out: Path | None,
                           settings: EvalSettings, until: UntilSettings, store_path: str | None = None,
                           dtype: str = "auto", device: str = "auto",
                           backend_options: Mapping[str, Any] | None = None,
                           judge_bindings: dict[str, str] | None = None) -> Outcome:
    """`tunegate eval --until-decided`: one candidate (the base, or one adapter) against a baseline run."""
    if len(adapters) > 1:
        raise UserError("--until-decided evaluates one candidate: give at most one --adapter", field="-a/--adapter")
    if until.max_items is not None and until.max_items < 1:
        raise UserError("--max-items must be at least 1", field="--max-items")
    if until.max_minutes is not None and not 0 < until.max_minutes < float("inf"):
        raise UserError("--max-minutes must be a positive number of minutes", field="--max-minutes")
    if not 0 <= until.seed < 2**32:
        raise UserError("--seed must lie in [0, 2**32)", field="--seed")
    if not 0 < until.discordance <= 1:  # also refuses nan
        raise UserError("--discordance must lie in (0, 1]", field="--discordance")
    if out is not None:
        check_out_dir(out)
    refuse_estimates(*load_gate(until.gate), str(until.gate))  # bad gate files fail before any model loads
    if until.active:
        active_draws.check(load_gate(until.gate)[0], until.floor, str(until.gate))
    baseline = resolve_run(until.baseline, store_path)
    suites = load_suites(list(suite_refs))
    for suite in suites:
        have = baseline.suites.get(suite.name)
        if have is None:
            raise UserError(f"the baseline {baseline.path} has no suite '{suite.name}'", field="--baseline")
        if have.get("fingerprint") != suite.fingerprint():
            raise UserError(f"suite '{suite.name}' differs from the one the baseline {baseline.path} was evaluated on "
                            "(fingerprint); re-evaluate the baseline on this suite", field="--baseline")
    say(settings, f"until decided: loading {model or 'smollm2-135m'}" + (f" with {adapters[0]}" if adapters else ""))
    backend = load_backend(model, dtype=dtype, device=device, batch_size=settings.batch_size,
                           **dict(backend_options or {}))
    candidate = adapters[0] if adapters else None
    check_capabilities(backend, suites, adapters)
    if candidate:
        backend.check_adapter(candidate)
    judges, _ = judging.bind(suites, judge_bindings or {}, dtype=dtype, batch_size=settings.batch_size)
    store = Store(store_path)
    try:
        outcome = run_until_decided(backend, suites, store, settings, until, model or "smollm2-135m", candidate,
                                    baseline, out, judges)
        # the run and its verdict go to the ledger, as `tunegate gate` records them, so that `promote` finds it
        ledger.record_verdict(store.conn, until.gate, verdict_json(outcome.gate),
                              (baseline.results, baseline.samples), (outcome.results, outcome.samples))
        return outcome
    finally:
        store.close()
        distributed.shutdown()


def _design_lines(design: dict[str, Any], each: int = 3) -> list[str]:
    """The horizon design: a line per task for a few tasks; for many, one line per planner setting with the
    range of horizons (the demo's 43 tasks would otherwise print 43 lines per adapter)."""
    if len(design) <= each:
        return [f"  bets tuned to {d['horizon']} items of {task} (the planner's n {d['planned_n']} at discordance "
                f"{d['discordance']:g}, at most the split), threshold {d['center']:+.3f}"
                for task, d in sorted(design.items())]
    groups: dict[tuple[Any, Any, Any], list[int]] = {}
    for d in design.values():
        groups.setdefault((d["planned_n"], d["discordance"], d["center"]), []).append(int(d["horizon"]))
    return [f"  bets tuned to {len(h)} tasks' horizons of {min(h)}–{max(h)} items (the planner's n {n} at discordance "
            f"{disc:g}, at most each split), threshold {center:+.3f}" for (n, disc, center), h in sorted(groups.items())]


def reason_text(reason: str | None, need: Mapping[str, Any]) -> str:
    """Why a rule is undecided and what would decide it, in words (`undecided_reason`'s values)."""
    planned = f"≈{need['planned_n']}" if need.get("planned_n") else "no n it finds"
    if reason == "people":
        return "only people's ratings can decide it (tunegate review), not more items"
    if reason == "futile":
        return (f"its chance to be decided within the split's items is below {FUTILITY_CHANCE:.0%}, so it got no more "
                f"(the planner asks for {planned} items per task; the split has {need.get('split')})")
    if reason == "items":
        return (f"ran out of items: all {need.get('split')} of its split evaluated; the planner asks for {planned} "
                "per task at 80% power")
    if reason == "budget":
        if need.get("more_items") is None:
            head = f"ran out of budget with {need.get('split', 0) - need.get('evaluated', 0)} items left; "
            if need.get("unscored"):  # e.g. a judge whose answers never parsed: nothing for a planner to go on
                return head + "no evaluated item has the score it reads yet (the gate's detail says why)"
            return head + "the planner finds no n that decides it"
        minutes = f"≈{need['minutes']:g} min" if need.get("minutes") else "under 0.1 min"
        how = ("by its interval's projection (the planner's fixed-n figure is reached; the anytime-valid interval is "
               "wider)" if need.get("projected") else "by the planner")
        head = f"ran out of budget: ≈{need['more_items']} more items per task would decide it {how}"
        if need.get("split_short"):  # the minutes price only what is left, so say so beside them
            left = f" for the {need['priced']} items the split has left" if need.get("priced") is not None else ""
            return (f"{head}, more than the split has left ({minutes}{left}, at the cost measured here), so more "
                    "budget alone may not decide it")
        return f"{head} ({minutes} at the cost measured here)"
    return "undecided"


def summary(outcome: Outcome) -> str:
    """Per rule: verdict, items judged of those available, where it was decided; then the compute saved."""
    block = outcome.results.get("sequential") or {}
    lines = [f"sequential evaluation ({block.get('method', sequential.CS_METHOD)}): stopped: {outcome.stopped}, "
             f"after {len(outcome.looks)} looks"]
    lines += _design_lines(block.get("design") or {})
    lines += active_draws.summary_lines(block)
    width = max(len(r.name) for r in outcome.rules)
    for r in outcome.rules:
        at = f"decided at {r.decided_at} items" if r.decided_at else f"not decided: {reason_text(r.reason, r.need)}"
        judged = f"draws {r.n} over" if block.get("active") else f"items {r.n} of"  # active: n counts draws
        lines.append(f"  {r.verdict:<12} {r.name:<{width}}  {judged} {r.available} available; {at}")
    # Items left unevaluated are a saving only when the gate was decided; a budget stop leaves rules open.
    saving = (f"{100 * outcome.saved:.0f}% saved: every rule decided" if outcome.stopped == "decided" else
              f"stopped by {outcome.stopped} with rules undecided, {100 * outcome.saved:.0f}% not evaluated")
    lines.append(f"items evaluated: {outcome.evaluated} of {outcome.available} available ({saving}); baseline "
                 f"items evaluated on demand: {outcome.baseline_evaluated}; {outcome.seconds:.0f} s")
    lines.append(f"gate: {outcome.gate.verdict}")
    if outcome.baseline_dir is not None:
        lines.append(f"the baseline's answers on these items: {outcome.baseline_dir} (gate against it)")
    return "\n".join(lines)
