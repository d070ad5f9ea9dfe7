"""`tunegate plan`: how many items each gate rule needs before the evaluation runs.

Per rule and task: the items needed for 80% power at the declared margin (a true Δ of 0 for
non-inferiority and general-drop rules, min_effect + 0.05 for superiority), and the minimum
detectable effect of the n the baseline has now. Paired binary rules use the discordance seen in a pilot
run (the baseline against a candidate-like run), or a declared assumption when there is no pilot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.core.api import UserError
from harness.data.runs import Run
from harness.decide.calibration import is_human_metric
from harness.decide.compare import Comparison, compare_runs
from harness.decide.gate import GateSpec, Rule, load_gate, superiority_design
from harness.inference import power
from harness.inference.evidence import one_sample_mde, one_sample_n

PAIRED = ("non_inferiority", "superiority", "max_general_drop")


@dataclass
class PlanRow:
    """One rule on one task: what n it has, what n it needs, and what that n can detect."""

    rule: str
    kind: str
    suite: str
    task: str
    metric: str
    n_now: int
    n_needed: int | None  # None: cannot be planned (say why in basis)
    mde_now: float | None
    basis: str


def _tasks(rule: Rule, spec: GateSpec, comp: Comparison) -> list[tuple[str, str, str]]:
    suite = rule.suite or spec.general_suite
    if suite not in comp.baseline.suites:
        raise UserError(f"suite '{suite}' is not in the baseline run ({comp.baseline.path})")
    tasks = [rule.task] if rule.task else comp.tasks(suite)
    out = []
    for task in tasks:
        metric = rule.metric or comp.primary_metric(suite, task)
        if metric and comp.get(suite, task, metric) is not None:
            out.append((suite, task, metric))
    return out


def _paired_row(rule: Rule, name: str, comp: Comparison, key: tuple[str, str, str], pilot: bool,
                discordance: float) -> PlanRow:
    suite, task, metric = key
    row = comp.get(suite, task, metric)
    assert row is not None
    n = len(comp.pairs.get((suite, task, metric), (np.empty(0),))[0])
    if (suite, task, metric) not in comp.pairs:  # e.g. a judge whose answers never parsed: no per-item values
        return PlanRow(name, rule.kind, suite, task, metric, 0, None, None,
                       f"no paired per-item values of {metric} in these runs (a judge whose answers did not parse, or "
                       "none bound): nothing to plan from")
    if not row.binary:
        b, c = comp.pairs[(suite, task, metric)]
        sd = float(np.std(c - b, ddof=1)) if pilot and n > 1 else float("nan")
        if not math.isfinite(sd):
            return PlanRow(name, rule.kind, suite, task, metric, n, None, None,
                           "bounded metric: needs a pilot run to estimate the spread of per-item deltas")
        margin, effect = _margin_effect(rule)
        try:
            bounded: int | None = power.bounded_n(margin, effect, sd)
        except (ValueError, OverflowError, ZeroDivisionError):
            bounded = None
        return PlanRow(name, rule.kind, suite, task, metric, n, bounded,
                       power.bounded_mde(n, sd) if n > 1 else None, f"pilot sd of per-item Δ {sd:.3f}")
    if pilot:
        disc = ((row.b or 0) + (row.c or 0) + 1) / (n + 2)
        basis = f"pilot discordance {disc:.3f} ({(row.b or 0) + (row.c or 0)} of {n} items changed)"
    else:
        disc, basis = discordance, f"assumed discordance {discordance:.3f} (no pilot)"
    margin, effect = _margin_effect(rule)
    try:
        needed: int | None = power.paired_binary_n(margin, effect, max(disc, margin, effect))
    except ValueError as exc:  # no n below ten million reaches 80% power
        needed, basis = None, f"{basis}; {exc}"
    return PlanRow(name, rule.kind, suite, task, metric, n, needed,
                   power.paired_binary_mde(n, disc) if n else None, basis)


def _margin_effect(rule: Rule) -> tuple[float, float]:
    if rule.kind == "superiority":
        return superiority_design(rule)
    return float(rule.non_inferiority or rule.max_general_drop or 0.0), 0.0


def _split_words(comp: Comparison, suite: str, n: int) -> str:
    """How many items the task has, in words: the split's when the baseline evaluated all of it."""
    settings = comp.baseline.results.get("settings") or {}
    if settings.get("full") or settings.get("limit") is None:
        return f"the suite has {n} items of this task"
    return f"the baseline holds {n} items of this task (evaluated with --limit {settings.get('limit')}; the split may hold more)"


def _beyond_the_split(row: PlanRow, rule: Rule, comp: Comparison) -> PlanRow:
    """Say so when a rule needs more items than the task has, and what the task's items could decide."""
    if row.n_needed is None or row.n_now <= 0 or row.n_needed <= row.n_now:
        return row
    have = _split_words(comp, row.suite, row.n_now)
    if row.mde_now is None or not math.isfinite(row.mde_now):
        could = "no margin below 1 could be decided with 80% power"
    elif rule.kind == "superiority":
        could = f"a true improvement of {float(rule.min_effect or 0.0) + row.mde_now:.3f} or more could be shown"
    elif rule.kind in ("floor", "max_robustness_drop"):
        could = f"a score {row.mde_now:.3f} or more from the threshold could be decided"
    else:
        could = f"margins of {row.mde_now:.3f} or more could be decided"
    row.basis += (f"; {have}: this rule cannot be decided on it (≈{row.n_needed} needed for 80% power); "
                  f"{could}")
    return row


def _own_row(rule: Rule, name: str, comp: Comparison, key: tuple[str, str, str]) -> PlanRow:
    suite, task, metric = key
    row = comp.get(suite, task, metric)
    assert row is not None
    if rule.kind == "floor":
        own = row.cand_own
        if own is None:
            return PlanRow(name, rule.kind, suite, task, metric, 0, None, None, "no per-item scores")
        p, threshold, n = own.value, float(rule.floor), own.n  # type: ignore[arg-type]
    else:
        rob = comp.robustness_row(suite, task, metric)
        if rob is None or rob.drops is None:
            return PlanRow(name, rule.kind, suite, task, metric, 0, None, None, "no perturbed samples")
        drops = rob.drops[1]
        p, threshold, n = float(drops.mean()), float(rule.max_robustness_drop), int(drops.size)  # type: ignore[arg-type]
    sd = math.sqrt(max(p * (1 - p), 0.0)) if row.binary else 0.5
    needed = one_sample_n(abs(p - threshold), sd)
    basis = f"expected score {p:.3f} (the run's own) against {threshold:.3f}"
    if needed is None:
        basis += ": exactly at the threshold, no n decides it"
    return PlanRow(name, rule.kind, suite, task, metric, n, needed, one_sample_mde(n, sd), basis)


def plan_gate(gate_file: Path, baseline: Run, pilot: Run | None, discordance: float) -> list[PlanRow]:
    """Plan every rule of a gate against a baseline (and an optional pilot candidate run)."""
    if not 0 < discordance <= 1:
        raise UserError("must lie in (0, 1]", field="--discordance")
    spec, _ = load_gate(gate_file)
    comp = compare_runs(baseline, pilot or baseline, n_resamples=spec.n_resamples, seed=spec.seed)
    rows = []
    for i, rule in enumerate(spec.rules):
        name = rule.name or f"rules[{i}] {rule.kind}"
        if is_human_metric(rule.metric):  # people's judgments, not the runs' scores: nothing to plan from here
            rows.append(PlanRow(name, rule.kind, str(rule.suite), rule.task or "all tasks", str(rule.metric), 0, None, None,
                                "human evidence: the review app's judgments decide it, not planned here"))
            continue
        planned, note = rule, ""
        if rule.kind == "max_drift" and rule.max_drift is not None:
            # the drift against an anchor release is a non-inferiority test paired item by item: planned as one
            # against the baseline (the anchor's own answers are not at hand before the gate runs)
            suite, task, metric = rule.max_drift.parts
            planned = Rule(name=name, suite=suite, task=task, metric=metric,
                           non_inferiority=rule.max_drift.margin, pool=rule.pool, min_n=rule.min_n)
            note = f"; max_drift from {rule.max_drift.from_}, planned as non-inferiority against the baseline"
        for key in _tasks(planned, spec, comp):
            if planned.kind in PAIRED:
                row = _paired_row(planned, name, comp, key, pilot is not None, discordance)
            else:
                row = _own_row(planned, name, comp, key)
            row.kind, row.basis = rule.kind, row.basis + note
            rows.append(_beyond_the_split(row, planned, comp))
    return rows
