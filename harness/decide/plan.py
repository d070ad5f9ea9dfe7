"""`tunegate plan`: how many items each gate rule needs before the evaluation runs.

Per rule and task: the items needed for 80% power at the declared margin (a true Δ of 0 for
non-inferiority and general-drop rules, the declared `min_effect` for superiority), and the minimum
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
from harness.decide.gate import ASSUMED_EFFECT, GateSpec, Rule, load_gate
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
        return 0.0, float(rule.min_effect or ASSUMED_EFFECT)
    return float(rule.non_inferiority or rule.max_general_drop or 0.0), 0.0


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
        for key in _tasks(rule, spec, comp):
            if rule.kind in PAIRED:
                rows.append(_paired_row(rule, name, comp, key, pilot is not None, discordance))
            else:
                rows.append(_own_row(rule, name, comp, key))
    return rows
