"""`eval --until-decided --active`: each task's items drawn toward likely flips instead of in a uniform order.

Before the first look, per task: the baseline's stored rows give each item a flip score
(`harness.decide.proposal.flip_scores`: its choice margin, or its generation's length), mixed with the uniform
distribution under the floor (`harness.inference.active.proposal`); MAX_DRAWS_X × N draws with replacement are
fixed from a seeded generator. The loop then takes them a chunk at a time like the uniform order; an item drawn
again is not evaluated again (its term counts again). The run's `sequential` block records the method, the
floor, each task's population, signal, weight bound and estimator, and the draws taken with their q.

The estimator is the difference estimator (`harness.inference.active.difference_design`) where the baseline
holds every item of the task: the block then also records each item's flip score (the flip model's features)
and the fingerprint of the baseline's per-item scores (the signs), from which compare and gate rebuild the same
control variate (harness.decide.activerun) and refuse another baseline. A baseline that lacks items (evaluated
on demand) leaves those items without a sign: the task is then judged by importance weights alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.core.api import UserError
from harness.data.runs import Run
from harness.decide.gatefile import GateSpec
from harness.decide.proposal import active_refusal, baseline_rows, fingerprint, flip_scores
from harness.inference import active

MAX_DRAWS_X = 3  # draws per task at most this many times its items (later draws mostly repeat evaluated items)

Task = tuple[str, str]
Group = tuple[str, str, str]


@dataclass
class ActivePlan:
    """The draws of every task, fixed before the first look, and those taken so far."""

    floor: float
    order: dict[Task, list[Group]]
    q: dict[Group, float]
    tasks: dict[str, dict[str, Any]]
    drawn: dict[str, list[list[Any]]] = field(default_factory=dict)
    seen: set[Group] = field(default_factory=set)

    def record(self, chunk: Sequence[Group]) -> list[Group]:
        """Take a chunk of draws; the groups among them never drawn before (the ones to evaluate), once each."""
        fresh: list[Group] = []
        for g in chunk:
            if g not in self.seen:
                self.seen.add(g)
                fresh.append(g)
            self.drawn.setdefault(f"{g[0]}/{g[1]}", []).append([g[2], self.q[g]])
        return fresh

    def extend(self, block: dict[str, Any]) -> dict[str, Any]:
        """The `sequential` block of an active run: method, floor, per task population/signal/bound, draws."""
        difference = any(t.get("estimator") == "difference" for t in self.tasks.values())
        return {**block, "method": active.DIFFERENCE_METHOD if difference else active.ACTIVE_METHOD,
                "active": {"floor": self.floor, "max_draws_x": MAX_DRAWS_X, "tasks": self.tasks,
                           "draws": {k: [list(x) for x in v] for k, v in self.drawn.items()}}}


def check(spec: GateSpec, floor: float, source: str, reads: Sequence[set[Task]] | None = None) -> None:
    """UserError for a floor outside (0, 1] or a rule an active run cannot judge (before any model loads:
    without `reads`, a micro rule without a task counts as pooled over several tasks)."""
    if not 0 < floor <= 1:  # also refuses nan
        raise UserError(f"--floor must lie in (0, 1], got {floor:g}", field="--floor")
    for i, rule in enumerate(spec.rules):
        pooled = rule.pool == "micro" and not rule.task and (reads is None or len(reads[i]) > 1)
        problem = active_refusal(rule.kind, pooled)
        if problem:
            raise UserError(f"--active cannot decide rule {i + 1}: {problem}; evaluate until decided without --active",
                            field=f"rules.{i}", source=source)


def _rng(seed: int, task: Task) -> np.random.Generator:
    name = int.from_bytes(hashlib.sha256(f"active/{task[0]}/{task[1]}".encode()).digest()[:8], "big")
    return np.random.default_rng([seed, name])


def plan(spec: GateSpec, reads: Sequence[set[Task]], order: Mapping[Task, list[Group]], baseline: Run, floor: float,
         seed: int, source: str) -> ActivePlan:
    """The active plan over the tasks the gate reads; UserError for a rule an active run cannot judge."""
    check(spec, floor, source, reads)
    base = baseline_rows(baseline)
    out = ActivePlan(floor, {}, {}, {})
    for task in sorted(order):
        groups = sorted(order[task])  # population order: independent of the uniform order's seed
        rows = [base.get(g) for g in groups]
        scores, signal = flip_scores(rows)
        q = active.proposal(scores, floor)
        idx = active.draw(q, MAX_DRAWS_X * len(groups), _rng(seed, task))
        out.order[task] = [groups[i] for i in idx]
        out.q.update({g: float(p) for g, p in zip(groups, q)})
        entry: dict[str, Any] = {"population": len(groups), "signal": signal, "bound": active.weight_bound(q),
                                 "estimator": "importance", "bets": dict(active.BETS)}
        if all(r is not None for r in rows):  # every item's sign known: the difference estimator can judge
            items = [g[2] for g in groups]
            entry.update(estimator="difference", scores={i: float(r) for i, r in zip(items, scores)},
                         baseline=fingerprint(items, rows))
        out.tasks[f"{task[0]}/{task[1]}"] = entry
    return out


def summary_lines(block: Mapping[str, Any]) -> list[str]:
    """For an active run: the floor, the signals, and draws against the distinct items they evaluated."""
    info = block.get("active")
    if not info:
        return []
    draws = info.get("draws") or {}
    n_draws = sum(len(v) for v in draws.values())
    distinct = sum(len({src for src, _ in v}) for v in draws.values())
    tasks = (info.get("tasks") or {}).values()
    signals = sorted({t.get("signal", "?") for t in tasks})
    how = " or ".join(sorted({t.get("estimator", "importance") for t in tasks})) or "importance"
    return [f"  active: floor {info.get('floor')}, signal {', '.join(signals)}; {n_draws} draws over {distinct} "
            f"distinct items ({how} estimator: importance-weighted terms in [-B, B] with B <= 1/floor"
            + (", less a control variate refitted on earlier draws" if "difference" in how else "") + ")"]
