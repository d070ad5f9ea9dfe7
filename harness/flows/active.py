"""`eval --until-decided --active`: each task's items drawn toward likely flips instead of in a uniform order.

Before the first look, per task: the baseline's stored rows give each item a flip score
(`harness.decide.proposal.flip_scores`: its choice margin, or its generation's length), mixed with the uniform
distribution under the floor (`harness.inference.active.proposal`); MAX_DRAWS_X × N draws with replacement are
fixed from a seeded generator. The loop then takes them a chunk at a time like the uniform order; an item drawn
again is not evaluated again (its term counts again). The run's `sequential` block records the method, the
floor, each task's population, signal and weight bound, and the draws taken with their q, from which compare
and gate rebuild the importance-weighted confidence sequence (harness.decide.compare.sequential_design).
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
from harness.decide.proposal import active_refusal, flip_scores
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
        return {**block, "method": active.ACTIVE_METHOD,
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
    base = {(s["suite"], s["task"], str(s.get("source_id") or s["sample_id"])): s for s in baseline.samples
            if not s.get("perturbation")}
    out = ActivePlan(floor, {}, {}, {})
    for task in sorted(order):
        groups = sorted(order[task])  # population order: independent of the uniform order's seed
        scores, signal = flip_scores([base.get(g) for g in groups])
        q = active.proposal(scores, floor)
        idx = active.draw(q, MAX_DRAWS_X * len(groups), _rng(seed, task))
        out.order[task] = [groups[i] for i in idx]
        out.q.update({g: float(p) for g, p in zip(groups, q)})
        out.tasks[f"{task[0]}/{task[1]}"] = {"population": len(groups), "signal": signal,
                                             "bound": active.weight_bound(q)}
    return out


def summary_lines(block: Mapping[str, Any]) -> list[str]:
    """For an active run: the floor, the signals, and draws against the distinct items they evaluated."""
    info = block.get("active")
    if not info:
        return []
    draws = info.get("draws") or {}
    n_draws = sum(len(v) for v in draws.values())
    distinct = sum(len({src for src, _ in v}) for v in draws.values())
    signals = sorted({t.get("signal", "?") for t in (info.get("tasks") or {}).values()})
    return [f"  active: floor {info.get('floor')}, signal {', '.join(signals)}; {n_draws} draws over {distinct} "
            "distinct items (importance-weighted, each term in [-B, B] with B <= 1/floor)"]
