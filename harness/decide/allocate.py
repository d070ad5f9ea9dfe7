"""Which tasks get the next look's items: expected progress toward a decision per CPU-second.

A sequential evaluation (`harness.flows.until`) judges every rule after each look. Round-robin gives every open
task its chunk at every look, so a rule three items from a verdict waits on tasks that cost a hundred times more
and are nowhere near one. Here each open check gets an index: the best, over look-ahead horizons, of the
predictive chance that its interval clears its thresholds after that many more items (no narrower than a
sequence can be after them), divided by what those items cost in measured CPU-seconds; a FAIL counts once more
while the gate's verdict is open, since it decides that too. A look's budget (what round-robin would have
spent) goes, a chunk at a time, to the unit with the highest marginal index. `benchmarks/bench_allocate.py`
measures it on simulated tasks, the demo's among them.

Validity: each task's items are still taken in its own seeded order, and a confidence sequence is valid at any
data-dependent stopping time, so choosing from the data which task to sample next changes no error rate. Tasks
that a pooled rule reads are one unit and always get their chunks together (as round-robin gives them), so the
data never decides which of a pool's tasks make up its stream.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from harness.decide.results import Check
from harness.inference.sequential import narrowest

Task = tuple[str, str]

NORMAL = statistics.NormalDist()
# A check whose best chance within its split is below this gets no items from the allocator (the same bar as
# `until.FUTILITY_CHANCE`: dropping it changes no error rate, it only stops spending time on it).
HOPELESS = 0.05
# CPU-seconds per model call before a task's first measurement (SmolLM2-135M on 2 cores, fp32: a scored choice
# set ~0.3 s, a short answer ~1 s, 64 generated tokens ~4 s, a sampled code item with its sandbox runs ~20 s).
PRIOR_SECONDS = {"multiple_choice": 0.3, "perplexity": 0.3, "generate": 1.0, "code": 20.0}
# A FAIL decides a rule and, with it, the candidate's gate verdict (every rule must pass): until one rule has
# failed, the allocator counts a FAIL as this many decisions more than a PASS, so that a check a few items from
# failing ("harmful requests are refused" at 0 refusals in 6) comes before one as near to passing. 1: the gate's
# verdict counts as one decision, like a rule's.
GATE_WEIGHT = 1.0
FLOOR_SECONDS = 1e-3  # an item answered from the cache costs almost nothing, never nothing
# The prior's weight in a task's price, in items. One measured item is a poor price for a task whose items vary:
# in the demo, LoRA's first HumanEval item cost about 2 CPU-s (every completion stopped at once), so the allocator
# took 16 more in a look sized for half a minute, and they cost 14 CPU-s each (the look ran 167 s for 45 planned).
PRIOR_ITEMS = 1.0


def prior_seconds(kind: str, max_new_tokens: int | None, samples: int, calls: int) -> float:
    """CPU-seconds per item before any is measured: the kind's prior, scaled by generated tokens (per 16),
    sampled completions and model calls per item (an item with 7 perturbed variants costs 8)."""
    base = PRIOR_SECONDS.get(kind, 1.0)
    if kind == "generate" and max_new_tokens:
        base *= max(1.0, max_new_tokens / 16)
    return base * max(1, samples) * max(1, calls)


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and its waited-for children (code sandboxes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Prices(Protocol):
    """What a look is priced by: CPU- and wall-seconds per item of each task (a `CostMeter`, or its
    `CostMeter.priced` view for one run that still lacks some of the baseline's answers)."""

    def per_item(self, task: Task) -> float: ...

    def wall_per_item(self, task: Task) -> float: ...

    def wall_per_cpu(self) -> float: ...


@dataclass
class CostMeter:
    """Measured CPU- and wall-seconds per item of each task (cumulative means), priced with a prior (`per_item`).
    The candidate's items and the baseline's answers computed on demand are measured apart (`base`): a run whose
    baseline answers are already there pays for its own items only, one that lacks them for both (`priced`).
    `shared`: a meter that every measurement is also added to (several runs price their looks by one meter, and
    each run file records its own)."""

    prior: dict[Task, float] = field(default_factory=dict)
    cpu: dict[Task, float] = field(default_factory=dict)
    wall: dict[Task, float] = field(default_factory=dict)
    items: dict[Task, int] = field(default_factory=dict)
    shared: CostMeter | None = None
    base_cpu: dict[Task, float] = field(default_factory=dict)
    base_wall: dict[Task, float] = field(default_factory=dict)
    base_items: dict[Task, int] = field(default_factory=dict)

    def record(self, task: Task, items: int, cpu: float, wall: float, base: bool = False) -> None:
        """Add a block's time for `items` items of task: the candidate's, or the baseline's answers (`base`)."""
        n, c, w = (self.base_items, self.base_cpu, self.base_wall) if base else (self.items, self.cpu, self.wall)
        n[task] = n.get(task, 0) + items
        c[task] = c.get(task, 0.0) + max(0.0, cpu)
        w[task] = w.get(task, 0.0) + max(0.0, wall)
        if self.shared is not None:
            self.shared.record(task, items, cpu, wall, base)

    def measure(self, task: Task, items: int, base: bool = False) -> _Timer:
        """`with meter.measure(task, n): ...` records the block's CPU and wall time for n items of task (the
        baseline's answers with `base`)."""
        return _Timer(self, task, items, base)

    def per_item(self, task: Task) -> float:
        """CPU-seconds per candidate item: the measured mean with the prior counted as PRIOR_ITEMS more items, so
        one item that happened to be cheap does not price the task (the prior alone before any is measured)."""
        prior = self.prior.get(task, 1.0)
        items = self.items.get(task, 0)
        return max(FLOOR_SECONDS, (self.cpu.get(task, 0.0) + PRIOR_ITEMS * prior) / (items + PRIOR_ITEMS))

    def base_per_item(self, task: Task) -> float:
        """CPU-seconds per baseline answer computed on demand: its measured mean, with the candidate's price as
        the prior (the same model, without the adapter) counted as PRIOR_ITEMS more items."""
        items = self.base_items.get(task, 0)
        return max(FLOOR_SECONDS, (self.base_cpu.get(task, 0.0) + PRIOR_ITEMS * self.per_item(task))
                   / (items + PRIOR_ITEMS))

    def priced(self, missing: Mapping[Task, float]) -> Priced:
        """The prices of one run: each task's candidate item plus, for the share `missing[task]` of its next
        items that lack the baseline's answer, that answer too (a task not named: none missing)."""
        return Priced(self, dict(missing))

    def wall_per_cpu(self) -> float:
        """Wall-seconds per CPU-second so far (below 1 on several cores, above on a busy machine); 1 unmeasured."""
        cpu = sum(self.cpu.values()) + sum(self.base_cpu.values())
        wall = sum(self.wall.values()) + sum(self.base_wall.values())
        return wall / cpu if cpu > 0 and wall > 0 else 1.0

    def wall_per_item(self, task: Task) -> float:
        return self.per_item(task) * self.wall_per_cpu()

    def to_json(self) -> dict[str, dict[str, float]]:
        """Per task ("suite/task"): the candidate's items measured and their mean CPU and wall seconds per item,
        and the baseline's answers computed on demand beside them where there were any."""
        out: dict[str, dict[str, float]] = {}
        for (s, t), n in sorted(self.items.items()):
            if n > 0:
                out[f"{s}/{t}"] = {"items": n, "cpu_seconds_per_item": round(self.cpu[(s, t)] / n, 4),
                                   "wall_seconds_per_item": round(self.wall[(s, t)] / n, 4)}
        for (s, t), n in sorted(self.base_items.items()):
            if n > 0 and f"{s}/{t}" in out:
                out[f"{s}/{t}"].update({"baseline_items": n,
                                        "baseline_cpu_seconds_per_item": round(self.base_cpu[(s, t)] / n, 4)})
        return out


@dataclass(frozen=True)
class Priced:
    """A `CostMeter`'s prices for one run (`CostMeter.priced`): a task's item costs the candidate's answer and,
    for the share of its next items still without one, the baseline's."""

    meter: CostMeter
    missing: dict[Task, float]

    def per_item(self, task: Task) -> float:
        share = min(1.0, max(0.0, self.missing.get(task, 0.0)))
        return self.meter.per_item(task) + share * self.meter.base_per_item(task)

    def wall_per_item(self, task: Task) -> float:
        return self.per_item(task) * self.meter.wall_per_cpu()

    def wall_per_cpu(self) -> float:
        return self.meter.wall_per_cpu()


class _Timer:
    def __init__(self, meter: CostMeter, task: Task, items: int, base: bool) -> None:
        self.meter, self.task, self.items, self.base = meter, task, items, base
        self.cpu = self.wall = 0.0

    def __enter__(self) -> _Timer:
        self.cpu, self.wall = cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.meter.record(self.task, self.items, cpu_seconds() - self.cpu, time.perf_counter() - self.wall, self.base)


def reach_chance(check: Check, extra: int) -> float | None:
    """Predictive probability that the check is decided after `extra` more items; None when it cannot be judged
    from its figures (no interval, no spread, no thresholds). See `chances`."""
    both = chances(check, extra)
    return None if both is None else min(1.0, both[0] + both[1])


def chances(check: Check, extra: int) -> tuple[float, float] | None:
    """Predictive probabilities that the check PASSes and that it FAILs after `extra` more items; None when it
    cannot be judged from its figures (no interval, no spread, no thresholds).

    The mean over n + extra items is normal around the current estimate with variance
    sd² · extra / (n (n + extra)): predictive power under a flat prior (Spiegelhalter, Freedman & Blackburn 1986,
    Controlled Clinical Trials 7:8-17), as `until.decide_chance`. Unlike that fixed-n bound, the interval here is
    the check's own (the confidence sequence's, asymmetric near 0 or 1), each side shrunk by √(n / (n + extra)),
    so a Clopper–Pearson-like bound about to cross its threshold (0 refusals in 5 items against a floor of 0.5)
    reads as nearly decided. sd² is floored at 1 / (n + 1), so that a first look of ties is not certainty.

    No side is projected narrower than a sequence can be after m = n + extra items (`_least_mean`): without that,
    a first look of one tie (the interval [-1, 1], shrunk by √(1/6)) read as a 53% chance that 5 more items
    decide a non-inferiority margin of 0.05, which no sequence on 6 items can do."""
    iv = check.interval
    if extra <= 0:
        return 0.0, 0.0
    if (check.n <= 0 or not check.bounds or check.sd is None or iv.lo is None or iv.hi is None
            or not math.isfinite(check.figure)):
        return None
    n, m = check.n, check.n + extra
    var = max(check.sd * check.sd if math.isfinite(check.sd) else 0.0, 1.0 / (n + 1))
    spread = math.sqrt(var * extra / (n * m))
    shrink = math.sqrt(n / m)
    down, up = max(0.0, check.figure - iv.lo) * shrink, max(0.0, iv.hi - check.figure) * shrink
    # the mean after m items that clears the upper (lower) threshold; None: no mean in the values' range does
    above_at, below_at = min(check.bounds) + down, max(check.bounds) - up
    need_above, need_below = (above_at, below_at) if check.extent is None else \
        _least_mean(above_at, below_at, check, m)
    above = 0.0 if need_above is None else 1.0 - NORMAL.cdf((need_above - check.figure) / spread)
    below = 0.0 if need_below is None else NORMAL.cdf((need_below - check.figure) / spread)
    return (above, below) if check.pass_above else (below, above)


def _least_mean(need_above: float, need_below: float, check: Check,
                m: int) -> tuple[float | None, float | None]:
    """The means after m items that clear the upper and the lower threshold, given that no sequence on m items is
    narrower than one on values that never vary: there each side spans `sequential.narrowest(m)` times the
    distance from the mean to that end of the values' range (`check.extent`; varying values only widen it). None
    for a side no mean within the range can clear: a floor of 0.25 on 22 items at 0 refusals, or an interval of
    Δ that must clear −0.05 on 6 items."""
    lower, upper = check.extent  # type: ignore[misc]
    nu = narrowest(m)
    if nu >= 1.0:
        return None, None
    # mean − ν (mean − lower) > t  ⇔  mean > (t − ν lower) / (1 − ν); mean + ν (upper − mean) < t likewise
    above = max(need_above, (min(check.bounds) - nu * lower) / (1.0 - nu))
    below = min(need_below, (max(check.bounds) - nu * upper) / (1.0 - nu))
    return (above if above < upper else None), (below if below > lower else None)


def _unknown_chance(check: Check, extra: int) -> float:
    """A check its figures cannot project (no interval yet): progress in proportion to the planner's items still
    needed (or as many again as it has), at half weight, so that projectable checks come first."""
    need = max(1, (check.plan_n or 2 * check.n + 1) - check.n)
    return 0.5 * min(1.0, extra / need)


def _project(check: Check, extra: int, gate: float) -> float:
    """Expected decisions after `extra` more items: the chance of a verdict, plus `gate` times the chance of a
    FAIL (which also decides the candidate's gate verdict, `GATE_WEIGHT`)."""
    both = chances(check, extra)
    if both is None:
        return _unknown_chance(check, extra)
    return min(1.0, both[0] + both[1]) + gate * both[1]


@dataclass
class Open:
    """An undecided check and where its items come from: `tasks` (one, or a pool's)."""

    check: Check
    tasks: frozenset[Task]


@dataclass
class Unit:
    """Tasks that take their chunks together: one task, or every task of a pooled check."""

    tasks: tuple[Task, ...]
    chunk: dict[Task, int]  # items per chunk, at most what the task has left
    seconds: float  # CPU-seconds of one chunk of every task

    def items_for(self, open_: Open) -> int:
        return sum(n for t, n in self.chunk.items() if t in open_.tasks)


def units_of(groups: Iterable[frozenset[Task]], tasks: Iterable[Task]) -> list[tuple[Task, ...]]:
    """Tasks joined into units: any two that one check reads together are in the same unit (union-find)."""
    parent: dict[Task, Task] = {t: t for t in tasks}

    def root(t: Task) -> Task:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for group in groups:
        members = [t for t in group if t in parent]
        for t in members[1:]:
            parent[root(t)] = root(members[0])
    out: dict[Task, list[Task]] = {}
    for t in parent:
        out.setdefault(root(t), []).append(t)
    return [tuple(sorted(v)) for v in sorted(out.values())]


def _index(unit: Unit, checks: Sequence[Open], given: int, room: Mapping[int, int], gate: float) -> float:
    """Expected progress per CPU-second of the unit's next chunk(s), given `given` chunks already this look: per
    check, the best over horizons of 1, 2, 4, ... chunks (up to its items left) of the gain in chance of being
    decided divided by the horizon's cost; summed over the unit's checks (one task's items can decide several
    rules). A check whose chance stays below HOPELESS even with every item left adds nothing."""
    total = 0.0
    for i, o in enumerate(checks):
        per_chunk = unit.items_for(o)
        if per_chunk <= 0 or room[i] <= given * per_chunk:
            continue
        at_most = reach_chance(o.check, room[i])
        if at_most is not None and at_most < HOPELESS:
            continue
        now = _project(o.check, given * per_chunk, gate)
        best, h = 0.0, 1
        while True:
            extra = min(room[i], (given + h) * per_chunk)
            best = max(best, (_project(o.check, extra, gate) - now) / (h * unit.seconds))
            if extra >= room[i]:
                break
            h *= 2
        total += best
    return total


@dataclass
class Look:
    """What one look takes: items per task, and the index each chosen unit had when first chosen."""

    items: dict[Task, int]
    index: dict[Task, float] = field(default_factory=dict)


def allocate(opens: Sequence[Open], active: Sequence[Task], left: Mapping[Task, int], chunk: Mapping[Task, int],
             meter: Prices, budget: float | None = None, gate_decided: bool = False) -> Look:
    """The next look's items per task.

    `active`: the tasks the loop may still sample (an undecided, not futile check reads them), in a stable order;
    `left`: items each has not evaluated; `chunk`: items per chunk; `budget`: CPU-seconds for this look (default:
    what round-robin would spend, a chunk of every active task). Chunks go, one at a time, to the unit with the
    highest marginal index (`_index`) until the budget is spent; a unit whose index is 0 gets nothing while any
    unit has progress to make. When none has (no check can be projected toward a verdict), every active task
    gets its chunk, as round-robin does, and futility or the budget ends the run. `gate_decided`: a rule has
    FAILed already, so no FAIL adds to the gate's verdict any more (`GATE_WEIGHT`)."""
    gate = 0.0 if gate_decided else GATE_WEIGHT
    live = [t for t in active if left.get(t, 0) > 0]
    if not live:
        return Look({})
    units = []
    for tasks in units_of((o.tasks for o in opens), live):
        sizes = {t: min(chunk.get(t, 1), left[t]) for t in tasks}
        units.append(Unit(tasks, sizes, sum(n * meter.per_item(t) for t, n in sizes.items())))
    if budget is None:
        budget = sum(u.seconds for u in units)
    per_unit = [[o for o in opens if o.tasks & set(u.tasks)] for u in units]
    rooms = [{i: sum(left.get(t, 0) for t in o.tasks if t in u.tasks) for i, o in enumerate(cs)}
             for u, cs in zip(units, per_unit)]
    given = [0] * len(units)
    # a chunk's size is fixed, so a unit's k-th chunk may ask for more than a task has left: capped below
    most = [max(math.ceil(left[t] / max(1, n)) for t, n in u.chunk.items()) for u in units]
    indices = [_index(u, cs, 0, r, gate) for u, cs, r in zip(units, per_unit, rooms)]
    if max(indices) <= 0:  # nothing can be projected toward a verdict: round-robin
        return Look({t: min(chunk.get(t, 1), left[t]) for t in live})
    look = Look({})
    spent = 0.0
    while True:  # at least one chunk, however small the budget: a look that takes nothing would never end
        best = max(range(len(units)), key=lambda k: indices[k])
        if indices[best] <= 0 or (look.items and spent >= budget):
            break
        unit = units[best]
        for t, n in unit.chunk.items():
            take = min(n, left[t] - look.items.get(t, 0))
            if take > 0:
                look.items[t] = look.items.get(t, 0) + take
                look.index.setdefault(t, indices[best])
        given[best] += 1
        spent += unit.seconds
        indices[best] = 0.0 if given[best] >= most[best] else _index(unit, per_unit[best], given[best], rooms[best], gate)
    return look
