"""Gate files: declared release rules judged on a paired comparison, with three verdicts per rule.

- PASS: the data show the rule holds (the whole 95% interval lies on the passing side).
- FAIL: the data show it does not hold (the whole interval lies on the failing side).
- INCONCLUSIVE: neither; the verdict says how many fresh items would decide it.

A gate passes only when every rule passes. Requiring all of them is an intersection–union test (Berger
1982), so no multiplicity adjustment is needed for PASS; FAIL across the tasks of one suite rule is
Holm-adjusted, because one failing task is enough to fail the rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import yaml

from harness.core.api import HumanJudgments, UserError
from harness.core.config import line_of
from harness.core.untrusted import excerpt
from harness.data.runfile import SampleRow
from harness.data.runs import Run
from harness.decide.calibration import (
    HUMAN_WIN_RATE,
    agreement,
    human_rating_delta_map,
    human_rating_deltas,
    human_ratings,
    human_win_values,
    is_human_metric,
    judge_deltas,
    judge_units,
)
from harness.decide.compare import (
    NO_PAIRED_ITEMS,
    Comparison,
    MetricComparison,
    compare_runs,
    is_active,
    item_scores,
    originals,
    sequential_design,
    sequential_order,
    task_samples,
)
from harness.decide.gatefile import KINDS, Drift, GateSpec, Rule, load_gate  # noqa: F401 - re-exported
from harness.decide.proposal import active_refusal
from harness.decide.results import EXIT, Check, GateResult, RuleResult, Verdict  # noqa: F401 - re-exported
from harness.inference import power, ppi, stats
from harness.inference.evidence import (
    UNBOUNDED_MIN_N,
    Unit,
    invert,
    macro_unit,
    one_sample_n,
    orient,
    paired_unit,
    recorded_unit,
    score_unit,
)
from harness.inference.sequential import items_to_clear
from harness.inference.stats import Interval

ASSUMED_EFFECT = 0.05  # superiority is planned for a true improvement this far beyond min_effect (default 0)
# A plan from this run's own estimate trusts it only down to the lower limit of its 60% two-sided interval
# ("safeguard power", Perugini, Gallucci & Costantini 2014, Perspectives on Psychological Science 9(3):319-332):
# an estimate from a few items, taken at face value, promises far too few items (a floor 6 items short that
# 22 did not decide; a superiority rule at Δ +0.9 on 10 items planned at the assumed +0.05, 2,654 items).
SAFEGUARD_Z = NormalDist().inv_cdf(0.8)  # 0.8416: one side of a 60% two-sided interval
# below this many rated items the bootstrap lower bound of alpha trusts a judge up to about 5% of the time, not
# 2.5% (benchmarks/bench_gate_validity.py, section 7)
AGREEMENT_TRUSTED_N = 100














# ---------------------------------------------------------------- loading




# ---------------------------------------------------------------- the checks of each rule kind


@dataclass
class _Side:
    """How one rule kind reads an interval: which side passes and which fails."""

    threshold: float
    pass_if_above: bool  # PASS when the interval lies above the threshold (else: below it)
    fail_threshold: float | None = None  # a floor that higher-is-better fails below the floor itself

    def passes(self, iv: Interval) -> bool:
        return iv.lo > self.threshold if self.pass_if_above else iv.hi <= self.threshold  # type: ignore[operator]

    def fails(self, iv: Interval) -> bool:
        t = self.threshold if self.fail_threshold is None else self.fail_threshold
        return iv.hi < t if self.pass_if_above else iv.lo > t  # type: ignore[operator]

    def passes_value(self, x: float) -> bool:
        return x > self.threshold if self.pass_if_above else x <= self.threshold


def _side(rule: Rule, hib: bool) -> tuple[_Side, str]:
    kind = rule.kind
    if kind == "floor":
        floor = float(rule.floor)  # type: ignore[arg-type]
        if hib:
            return _Side(floor - 1e-12, True, floor), f"score ≥ {floor:.3f}"
        return _Side(floor, False), f"score ≤ {floor:.3f}"
    if kind == "non_inferiority":
        m = float(rule.non_inferiority)  # type: ignore[arg-type]
        return _Side(-m, True), f"Δ > {-m:+.3f} (non-inferior, margin {m:.3f})"
    if kind == "superiority":
        # superiority by a margin, as the field tests it (e.g. ICH E9; Chow, Shao & Wang 2008, ch. 4): PASS when
        # the interval lies above min_effect, FAIL when it lies below it, INCONCLUSIVE otherwise
        e = float(rule.min_effect or 0.0)
        if e == 0:
            return _Side(0.0, True), "Δ > 0 (superior; fails if Δ < 0)"
        return _Side(e, True), f"Δ > {e:+.3f} (superior by min_effect; fails if Δ < {e:+.3f})"
    if kind == "max_general_drop":
        lim = float(rule.max_general_drop)  # type: ignore[arg-type]
        return _Side(-lim, True), f"drop < {lim:.3f}"
    lim = float(rule.max_robustness_drop)  # type: ignore[arg-type]
    return _Side(lim, False), f"clean − worst case ≤ {lim:.3f}"


ESTIMATE_NOTE = "decided on the point estimate"


def _judge_unit(unit: Unit, side: _Side, decide_on: str, min_n: int, metric: str,
                available: int | None = None, alpha: float = stats.ALPHA) -> Check:
    """One check's verdict, read on the unit's (1 − alpha) interval. `available`: in a sequential run, the items the
    split holds for this unit.

    min_n exempts a unit by its size, never by when a run stopped: a sequential unit with at least min_n items
    available but fewer evaluated is INCONCLUSIVE (it stays in the intersection–union and asks for items)."""
    iv = unit.interval(alpha)
    size = unit.n if available is None else max(available, unit.n)
    if size < min_n:
        held = f"{size} items" + (" available" if available is not None else "")
        return Check(unit.label, metric, None, unit.figure, iv, unit.n, unit.mde,
                     note=f"{held} < min_n {min_n}: shown, not judged")
    if unit.n < min_n:
        return Check(unit.label, metric, "INCONCLUSIVE", unit.figure, iv, unit.n, unit.mde,
                     note=f"{unit.n} of {size} items evaluated < min_n {min_n}: not judged yet")
    if decide_on == "estimate":
        verdict: Verdict = "PASS" if side.passes_value(unit.figure) else "FAIL"
        return Check(unit.label, metric, verdict, unit.figure, iv, unit.n, unit.mde, note=ESTIMATE_NOTE)
    if not iv.defined:
        return Check(unit.label, metric, "INCONCLUSIVE", unit.figure, iv, unit.n, unit.mde,
                     note=iv.note or "no interval at this n")
    verdict = "PASS" if side.passes(iv) else "FAIL" if side.fails(iv) else "INCONCLUSIVE"
    # The p-values are one-sided: the two-sided 95% interval's ends are one-sided 97.5% bounds.
    p_pass = p_fail = None
    if unit.p_at is not None:  # sequential: anytime p-values from the sequence's own capital process
        fail_at = side.threshold if side.fail_threshold is None else side.fail_threshold
        p_pass = unit.p_at(side.threshold, side.pass_if_above)
        p_fail = unit.p_at(fail_at, not side.pass_if_above)
    elif unit.shape != "recorded":  # a recorded interval exists at 95% only: no p-value to invert
        p_pass = invert(unit.interval_at, side.passes) / 2
        p_fail = invert(unit.interval_at, side.fails) / 2
    return Check(unit.label, metric, verdict, unit.figure, iv, unit.n, unit.mde, p_pass, p_fail, unit.note)


def superiority_design(rule: Rule, safeguard: float | None = None) -> tuple[float, float]:
    """(margin, true Δ) a superiority rule is planned at: the interval must clear min_effect (margin =
    −min_effect), and the plan assumes a true improvement ASSUMED_EFFECT beyond it, or this run's safeguarded
    estimate where that lies further (`safeguarded`)."""
    e = float(rule.min_effect or 0.0)
    assumed = e + ASSUMED_EFFECT
    return -e, assumed if safeguard is None else max(assumed, safeguard)


def standard_error(unit: Unit) -> float | None:
    """The standard error of the unit's estimate from its own spread (paired 0/1: √((D − Δ²) / n)); None
    without one."""
    if unit.n <= 0 or not math.isfinite(unit.figure):
        return None
    if unit.shape == "paired binary" and unit.discordance:
        return math.sqrt(max(unit.discordance - unit.figure ** 2, 0.0) / unit.n)
    if unit.sd is not None and math.isfinite(unit.sd):
        return unit.sd / math.sqrt(unit.n)
    return None


def safeguarded(unit: Unit) -> float | None:
    """The estimate moved SAFEGUARD_Z standard errors toward the worse side: what a plan may assume the truth
    is (None: no standard error)."""
    se = standard_error(unit)
    return None if se is None else unit.figure - SAFEGUARD_Z * se


def _plan(rule: Rule, unit: Unit) -> int | None:
    """Fresh items that a new, pre-planned evaluation needs to decide this rule with 80% power (None: no n
    below ten million does)."""
    try:
        return _plan_n(rule, unit)
    except (ValueError, OverflowError, ZeroDivisionError):
        return None


def _plan_n(rule: Rule, unit: Unit) -> int | None:
    """Non-inferiority is planned at no true change (the convention), or at this run's safeguarded estimate
    where that is better; superiority at ASSUMED_EFFECT beyond min_effect, or the safeguarded estimate where
    that is further; a floor at the safeguarded distance of the estimate from its threshold (None when the
    safeguarded estimate reaches the threshold: no n is planned on an effect the data do not show), or, where
    every value sits at one end of the range, at the n where the sequence on such values clears it
    (`sequential.items_to_clear`: 10 items for 0 refusals against a floor of 0.5, 24 against 0.25)."""
    kind = rule.kind
    guard = safeguarded(unit)
    better = 0.0 if guard is None else max(0.0, guard)
    if unit.shape == "paired binary" and unit.discordance:
        disc = min(max(unit.discordance, 1e-3), 1.0)
        if kind in ("non_inferiority", "max_general_drop"):
            margin = float(rule.non_inferiority or rule.max_general_drop or 0.0)
            return power.paired_binary_n(margin, min(better, disc), max(disc, margin))
        if kind == "superiority":
            margin, effect = superiority_design(rule, guard)
            effect = min(effect, 1.0)
            return power.paired_binary_n(margin, effect, max(disc, effect))
    if unit.shape == "paired bounded" and unit.sd and math.isfinite(unit.sd):
        if kind in ("non_inferiority", "max_general_drop"):
            return power.bounded_n(float(rule.non_inferiority or rule.max_general_drop or 0.0), better, unit.sd)
        if kind == "superiority":
            return power.bounded_n(*superiority_design(rule, guard), unit.sd)
    if kind in ("floor", "max_robustness_drop") and unit.sd and math.isfinite(unit.sd):
        threshold = float(rule.floor if kind == "floor" else rule.max_robustness_drop)  # type: ignore[arg-type]
        ext = unit.extent
        if ext is not None and ext[1] > ext[0] and unit.figure in ext:
            # every value at one end of the range (0 refusals in n): no spread to plan with (the Laplace sd is
            # made up), but the sequence's own bound on values that never vary says when it clears the threshold
            return items_to_clear(abs(unit.figure - threshold) / (ext[1] - ext[0]))
        se = standard_error(unit) or 0.0
        return one_sample_n(abs(unit.figure - threshold) - SAFEGUARD_Z * se, unit.sd)
    return None


# ---------------------------------------------------------------- units of each rule kind


def _paired(comp: Comparison, row: MetricComparison, label: str) -> Unit:
    b, c = comp.pairs[(row.suite, row.task, row.metric)]
    # a sequential run: the horizon design it recorded before its first look, so the gate judges the sequence
    # the run stopped on (None for runs recorded without one: the LIL schedule, as before); an active run's task:
    # the design compare built (its importance weights, or the difference estimator's control variate)
    design = comp.designs.get((row.suite, row.task, row.metric)) or \
        sequential_design(comp.sequential, row.suite, [row.task] if row.task else list(row.tasks))
    return paired_unit(label, b, c, binary=row.binary, bounds=row.bounds, hib=row.higher_is_better,
                       n_resamples=comp.n_resamples, seed=comp.seed, sequential=comp.sequential is not None,
                       design=design)


def _own(comp: Comparison, row: MetricComparison, label: str, rule: Rule | None = None) -> Unit:
    """The candidate's own full score (every one of its items, not only those paired).

    An unbounded per-sample metric needs the rule's declared `bounds` (or `decide_on: estimate`): no interval
    on an unbounded mean holds a stated level at every n (Bahadur & Savage 1956)."""
    if not row.paired:
        own = row.cand_own
        ci = (own.interval.lo, own.interval.hi) if own and own.interval.defined else None
        return recorded_unit(label, row.cand, ci, own.n if own else 0)  # type: ignore[arg-type]
    tasks = [row.task] if row.task else list(row.tasks)
    rows: list[SampleRow] = []
    for task in tasks:
        rows += [{**s,  # type: ignore[typeddict-item]  # the pooled id keeps tasks apart
                   "source_id": f"{task}\x00{s.get('source_id') or s['sample_id']}"}
                 for s in originals(task_samples(comp.judged_candidate, row.suite, task)).values()]
    bounds = row.bounds
    if bounds is None and rule is not None and rule.bounds is not None:
        bounds = (float(rule.bounds[0]), float(rule.bounds[1]))
    elif bounds is None and rule is not None and rule.decide_on != "estimate":
        raise UserError(f"metric '{row.metric}' ({row.suite}/{row.task or 'pooled'}) is unbounded, and no interval on "
                        "the mean of unbounded values holds its level at every n: declare the range its values can "
                        "take (bounds: [low, high]) or decide on the estimate (decide_on: estimate)")
    fail = None if bounds is None else (bounds[0] if row.higher_is_better else bounds[1])
    if comp.sequential is not None:  # pooled floor: the confidence sequence takes items in evaluation order
        order = sequential_order(comp.sequential)
        rows.sort(key=lambda s: order[(s["suite"], s["task"], s["sample_id"])])
    scores = item_scores(rows, row.metric, fail)
    if bounds is not None and row.bounds is None and scores.values.size:
        low, high = float(scores.values.min()), float(scores.values.max())
        if low < bounds[0] or high > bounds[1]:
            bad = low if low < bounds[0] else high
            raise UserError(f"metric '{row.metric}' ({row.suite}/{row.task or 'pooled'}) has a value {bad:g} outside "
                            f"the rule's bounds [{bounds[0]:g}, {bounds[1]:g}]")
    # an unbounded mean has no interval valid at every n (Bahadur & Savage 1956): state a minimum n
    return score_unit(label, scores.values, binary=row.binary, bounds=bounds,
                      min_n=2 if bounds else UNBOUNDED_MIN_N, sequential=comp.sequential is not None)


def _undefined(n: int, note: str) -> Callable[[float], Interval]:
    def at(alpha: float) -> Interval:
        return Interval(None, None, "none", n, note)

    return at


def _robust(comp: Comparison, row: MetricComparison, label: str) -> Unit:
    rob = comp.robustness_row(row.suite, row.task, row.metric)
    if rob is None or rob.drops is None:
        raise UserError(f"no perturbed samples for {row.suite}{'/' + row.task if row.task else ''} "
                        f"({row.metric}): a robustness rule needs a suite with perturbations")
    drops = rob.drops[1]
    width = (row.bounds[1] - row.bounds[0]) if row.bounds else None
    if width is None and not rob.binary:  # the t interval errs far beyond 2.5% on one side on skewed values
        raise UserError(f"metric '{row.metric}' is unbounded, and no interval on the mean of unbounded drops holds "
                        "its level at every n: judge robustness on a bounded metric")
    unit = score_unit(label, drops, binary=rob.binary, bounds=(0.0, width) if width else None,
                      sequential=comp.sequential is not None)
    if row.bounds is not None:
        at_worst = rob.clean[1] <= row.bounds[0] if row.higher_is_better else rob.clean[1] >= row.bounds[1]
        if at_worst:  # a clean score at its worst leaves nothing to lose: no evidence of robustness either way
            unit.interval_at = _undefined(unit.n, "the candidate's clean score is at its worst: robustness unknown")
    return unit


def _unit(rule: Rule, comp: Comparison, row: MetricComparison, label: str) -> Unit:
    if rule.kind == "floor":
        return _own(comp, row, label, rule)
    if rule.kind == "max_robustness_drop":
        return _robust(comp, row, label)
    if not row.paired and row.test == NO_PAIRED_ITEMS:  # item-level scores, but no item scored in both runs yet
        return Unit(label, float("nan"), _undefined(0, "no item has this score in both runs"), 0, None,
                    "paired binary" if row.binary else "paired bounded")
    if not row.paired:
        raise UserError(f"metric '{row.metric}' is corpus-level (no per-sample scores), so no paired interval "
                        f"exists for {rule.kind}; use a floor rule")
    if row.bounds is None:
        raise UserError(f"metric '{row.metric}' is unbounded, so no interval with valid small-sample coverage "
                        f"exists for {rule.kind}; use a floor rule")
    return _paired(comp, row, label)


# ---------------------------------------------------------------- judging a rule


def _rows(rule: Rule, spec: GateSpec, comp: Comparison) -> tuple[str, list[MetricComparison], list[str]]:
    """The suite, the comparison rows the rule judges, and what it leaves out (with why)."""
    suite = rule.suite or spec.general_suite
    for label, run in (("baseline", comp.baseline), ("candidate", comp.candidate)):
        if suite not in run.suites:
            raise UserError(f"suite '{suite}' is not in the {label} run ({run.path}; it has "
                            f"{', '.join(run.suites)})")
        if rule.task and rule.task not in run.suites[suite]["tasks"]:
            raise UserError(f"task '{rule.task}' is not in suite '{suite}' of the {label} run (it has "
                            f"{', '.join(run.suites[suite]['tasks'])})")
    if rule.task or rule.pool == "micro":
        metric = rule.metric or comp.primary_metric(suite, rule.task)
        if not rule.task:
            _refuse_mixed(comp, suite, rule.metric, [comp.primary_metric(suite, t) for t in comp.tasks(suite)])
        row = comp.get(suite, rule.task, metric) if metric else None
        if row is None:
            have = sorted({r.metric for r in comp.metrics if r.suite == suite and r.task == rule.task})
            raise UserError(f"metric '{metric}' is not in {suite}{'/' + rule.task if rule.task else ''} "
                            f"(metrics: {', '.join(have) or 'none'})")
        return suite, [row], []
    rows, left_out = [], []
    for task in comp.tasks(suite):
        metric = rule.metric or comp.primary_metric(suite, task)
        row = comp.get(suite, task, metric) if metric else None
        if row is None:
            left_out.append(f"{task} (no metric '{metric}')")
        elif rule.kind == "max_robustness_drop" and comp.robustness_row(suite, task, row.metric) is None:
            left_out.append(f"{task} (no perturbations)")
        else:
            rows.append(row)
    if not rows and rule.kind == "max_robustness_drop":
        raise UserError(f"no perturbed samples in suite '{suite}': a robustness rule needs a task with perturbations")
    if not rows:
        raise UserError(f"no task of suite '{suite}' reports metric '{rule.metric}'")
    if rule.pool == "macro" and rule.kind in ("floor", "max_robustness_drop") and len({r.higher_is_better for r in rows}) > 1:
        raise UserError(_mixed_message(suite, "macro", {str(r.task): r.higher_is_better for r in rows}, rows[0].metric))
    return suite, rows, left_out


def _mixed_message(suite: str, pool: str, directions: dict[str, bool], metric: str) -> str:
    up = ", ".join(t for t, hib in directions.items() if hib)
    down = ", ".join(t for t, hib in directions.items() if not hib)
    return (f"pool: {pool} would average {metric} across directions in suite '{suite}' (higher is better in {up}; "
            f"lower is better in {down}): judge those tasks per task (pool: tasks) or with separate rules")


def _refuse_mixed(comp: Comparison, suite: str, metric: str | None, headlines: list[str | None]) -> None:
    """UserError when a pooled (micro) rule would pool a metric whose tasks differ in direction."""
    for (s_name, m_name), directions in comp.mixed_directions.items():
        if s_name == suite and (m_name == metric if metric else m_name in headlines):
            raise UserError(_mixed_message(suite, "micro", directions, m_name))


def _combine(checks: list[Check], alpha: float = stats.ALPHA) -> tuple[Verdict, Check | None]:
    """PASS when every judged check passes; FAIL when one fails after Holm across them; else INCONCLUSIVE."""
    judged = [c for c in checks if c.verdict is not None]
    if not judged:
        return "INCONCLUSIVE", None
    estimate = any(c.note == ESTIMATE_NOTE for c in judged)  # a point-estimate rule has no p-values to adjust
    if len(judged) > 1 and not estimate:
        # a check without a p-value (undefined interval, a recorded corpus interval) is no evidence of failing:
        # it enters Holm as p = 1, so it widens the family instead of letting the others' FAILs stand unadjusted
        for check, adjusted in zip(judged, stats.holm([1.0 if c.p_fail is None else float(c.p_fail) for c in judged])):
            check.p_fail = adjusted
            if check.verdict == "FAIL" and adjusted > alpha / 2:
                check.verdict, check.note = "INCONCLUSIVE", f"fails unadjusted; Holm-adjusted p {adjusted:.3f}"
    for wanted in ("FAIL", "INCONCLUSIVE"):
        hits = [c for c in judged if c.verdict == wanted]
        if hits:
            return wanted, min(hits, key=lambda c: c.p_fail if wanted == "FAIL" and c.p_fail is not None else 1.0)
    return "PASS", max(judged, key=lambda c: c.p_pass if c.p_pass is not None else 0.0)


def _human_agreement(rule: Rule, comp: Comparison, suite: str, checks: list[Check],
                     human_of: HumanOf | None) -> tuple[bool, str]:
    """Whether the candidate's judge agrees with people well enough to decide, and what the report says."""
    threshold = float(rule.min_human_agreement)  # type: ignore[arg-type]
    ratings = human_ratings(_human(human_of), comp.candidate)
    notes, ok = [], True
    for check in checks:
        task = rule.task or check.label
        units, _ = judge_units(comp.candidate, ratings, suite, task)
        if not units:
            ok = False
            notes.append(f"{task}: no human ratings of the candidate's judged responses, so the judge's agreement "
                         f"with people is unknown (min_human_agreement {threshold:.2f})")
            continue
        agree = agreement(units)
        ci = agree["alpha_ci95"]
        alpha = agree["alpha"]
        shown = f"alpha {alpha:.3f}" if alpha is not None else "alpha undefined"
        if ci is None or ci[0] < threshold:
            ok = False
            lower = "undefined" if ci is None else f"{ci[0]:.3f}"
            notes.append(f"{task}: judge–human {shown}, 95% lower bound {lower} < {threshold:.2f} over "
                         f"{agree['n_items']} items: the judge may not decide")
        else:
            caution = (f"; under {AGREEMENT_TRUSTED_N} items the bootstrap bound errs toward trusting the judge"
                       if agree["n_items"] < AGREEMENT_TRUSTED_N else "")
            notes.append(f"{task}: judge–human {shown} [{ci[0]:.3f}, {ci[1]:.3f}] over {agree['n_items']} items"
                         + caution)
    return ok, "; ".join(notes)


def _human_rule(rule: Rule, comp: Comparison, where: dict[str, Any], human_of: HumanOf | None,
                alpha: float = stats.ALPHA) -> RuleResult:
    """A rule on the review app's judgments of the two runs: the candidate's human win rate (Δ = win rate − 0.5,
    a tie half a win) or its mean rubric rating minus the baseline's on the same samples (Δ on the 1–5 scale
    divided by 4). Items are the unit; the interval is the betting interval for bounded means, valid at every n."""
    suite = str(rule.suite)
    metric = str(rule.metric)
    if metric == HUMAN_WIN_RATE:
        values = np.asarray(human_win_values(_human(human_of), comp.baseline, comp.candidate, suite, rule.task)) - 0.5
        bounds, what = (-0.5, 0.5), "pairwise-reviewed items of these two runs"
    else:
        axis = metric.partition(":")[2] or None
        values = np.asarray(human_rating_deltas(_human(human_of), comp.baseline, comp.candidate, suite, rule.task, axis))
        bounds, what = (-1.0, 1.0), f"samples rated in both runs{' on ' + axis if axis else ''}"
    label = rule.task or "pooled"
    side, cond = _side(rule, True)
    name = rule.name or " ".join(x for x in (rule.kind, suite, rule.task, metric) if x)
    if values.size == 0:
        return RuleResult(name, rule.kind, suite, rule.task, metric, "INCONCLUSIVE", float("nan"), cond, None, 0, None,
                          None, f"no {what} in the review store: people have not judged them", where.get("line"))
    unit = score_unit(label, values, binary=False, bounds=bounds)
    check = _judge_unit(unit, side, "interval", rule.min_n, metric, alpha=alpha)
    detail = "; ".join(x for x in (f"{unit.n} {what}", check.interval.method, check.note) if x)
    return RuleResult(name, rule.kind, suite, rule.task, metric, check.verdict or "INCONCLUSIVE", check.figure, cond,
                      check.interval, check.n, check.mde, check.p_pass, detail, where.get("line"), [check],
                      "items", "interval")



def _ppi_check(task: str, human: dict[str, float], judge: dict[str, float], side: _Side,
               alpha: float = stats.ALPHA) -> Check:
    """One task's prediction-powered check of the human-scale Δ."""
    rated = [k for k in human if k in judge]
    if len(rated) < ppi.MIN_RATED:
        why = ("people have not rated these runs' judged responses" if not rated else
               f"{len(rated)} items rated in both runs < {ppi.MIN_RATED}, too few for a prediction-powered interval")
        note = f"{why} (the review app: tunegate review RUN --mode rating)"
        return Check(task, "judge_score", "INCONCLUSIVE", float("nan"), Interval(None, None, ppi.METHOD, len(rated), note),
                     len(judge), None, note=note)
    res = ppi.paired_ppi(human, judge, alpha)
    only = ppi.ppi_mean([human[k] for k in rated], [judge[k] for k in rated], [], lam=0.0)
    iv = Interval(res.lo, res.hi, ppi.METHOD, res.n_rated + res.n_unrated)
    verdict: Verdict = "PASS" if side.passes(iv) else "FAIL" if side.fails(iv) else "INCONCLUSIVE"
    fail_at = side.threshold if side.fail_threshold is None else side.fail_threshold
    note = (f"human-scale Δ from {res.n_rated} items rated in both runs and {res.n_unrated} judged only; judge weight "
            f"λ {res.lam:.2f}; human-only interval [{only.lo:+.3f}, {only.hi:+.3f}]")
    return Check(task, "judge_score", verdict, res.estimate, iv, res.n_rated + res.n_unrated, None,
                 res.p_above(side.threshold), res.p_below(fail_at), note)


def _ppi_rule(rule: Rule, comp: Comparison, where: dict[str, Any], human_of: HumanOf | None,
              alpha: float = stats.ALPHA) -> RuleResult:
    """A judge_score rule judged on the human scale: Δ = candidate − baseline of the mean review-app rating
    (1–5, divided by 4), estimated by PPI++ from the judge's Δ on every item and people's on the rated ones."""
    suite = str(rule.suite)
    tasks = [rule.task] if rule.task else [r.task for r in comp.metrics
                                           if r.suite == suite and r.metric == "judge_score" and r.task]
    if not tasks or not all(t in comp.candidate.suites.get(suite, {}).get("tasks", {}) for t in tasks):
        raise UserError(f"no task of suite '{suite}'{' named ' + str(rule.task) if rule.task else ''} reports "
                        "judge_score in the candidate run", **where)
    human = human_rating_delta_map(_human(human_of), comp.baseline, comp.candidate, suite, rule.task, None)
    side, cond = _side(rule, True)
    checks = [_ppi_check(task, {sid: v for (s, t, sid), v in human.items() if s == suite and t == task},
                         judge_deltas(comp.baseline, comp.candidate, suite, task), side, alpha) for task in tasks]
    verdict, deciding = _combine(checks, alpha)
    head = deciding or checks[0]
    name = rule.name or " ".join(x for x in (rule.kind, suite, rule.task, "judge_score (PPI)") if x)
    detail = "; ".join(f"{c.label}: {c.note}" if len(checks) > 1 else str(c.note) for c in checks)
    waiting = any(c.interval.lo is None and c.verdict == "INCONCLUSIVE" for c in checks)
    return RuleResult(name, rule.kind, suite, rule.task, "judge_score", verdict, head.figure,
                      f"human-scale {cond}", head.interval, sum(c.n for c in checks), None, head.p_pass,
                      f"{ppi.METHOD}; {detail}", where.get("line"), checks,
                      "per task" if len(checks) > 1 else "tasks", "interval", awaits_people=waiting)


AnchorOf = Callable[[Drift], Run]  # the anchor release a max_drift rule names (from the ledger)
HumanOf = Callable[[], HumanJudgments]  # what people said in the review app (read only when a rule needs it)


def _human(human_of: HumanOf | None) -> HumanJudgments:
    return human_of() if human_of is not None else HumanJudgments()


def judge_drift(rule: Rule, spec: GateSpec, comp: Comparison, where: dict[str, Any],
                anchor_of: AnchorOf | None, alpha: float = stats.ALPHA) -> RuleResult:
    """max_drift: non-inferiority of the candidate against the anchor release, paired item by item (the
    anchor's own per-item answers are in its stored samples), with the same intervals as every paired rule."""
    drift = rule.max_drift
    assert drift is not None
    if anchor_of is None:
        raise UserError("a max_drift rule needs the release ledger to find its anchor: gate with `tunegate gate` "
                        "and a store", **where)
    try:
        anchor = anchor_of(drift)
        suite = drift.parts[0]
        fa, fc = ((r.suites.get(suite) or {}).get("fingerprint") for r in (anchor, comp.candidate))
        if fa is not None and fc is not None and fa != fc:
            kept = (anchor.adapter or {}).get("path")
            raise UserError(f"the anchor ({anchor.label}) was evaluated on another version of suite '{suite}' "
                            f"({str(fa)[:12]}, the candidate on {str(fc)[:12]}): re-evaluate "
                            f"{'its adapter ' + str(kept) if kept else 'it'} on the current suite and anchor the "
                            "rule on that run (from: RUN)")
        acomp = compare_runs(anchor, comp.candidate, n_resamples=spec.n_resamples, seed=spec.seed)
    except UserError as exc:
        raise UserError(f"max_drift from {drift.from_}: {exc}", **where) from None
    if acomp.incomplete and not spec.allow_partial:
        (s_name, t_name), (ob, oc) = next(iter(acomp.incomplete.items()))
        raise UserError(f"max_drift from {drift.from_}: {s_name}/{t_name} has {ob} items only in the anchor and {oc} "
                        "only in the candidate; set 'allow_partial: true' to judge the shared ones", **where)
    suite, task, metric = drift.parts
    proxy = Rule(name=rule.name or f"max_drift {drift.metric} from {drift.from_}", suite=suite, task=task,
                 metric=metric, non_inferiority=drift.margin, pool=rule.pool, min_n=rule.min_n)
    result = judge_rule(proxy, spec, acomp, where, alpha=alpha)
    result.kind = "max_drift"
    result.threshold = (f"Δ vs anchor {excerpt(drift.from_, 40)} ({excerpt(anchor.label, 40)}) > {-drift.margin:+.3f} "
                        f"(cumulative drift within {drift.margin:.3f})")
    return result


def _judge_never_parsed(rule: Rule, spec: GateSpec, comp: Comparison, where: dict[str, Any]) -> RuleResult | None:
    """A rule on a judge's score where the task was judged but no answer of the judge parsed (a small judge, a
    handful of items): INCONCLUSIVE with that reason, not bad input. The task's `judge_unparsed` shows it was
    judged; a metric missing from a task that has no judge stays an error in `_rows`. The metric may be absent, or
    present with no per-item values (then it would read as corpus-level)."""
    metric, suite = rule.metric or "", rule.suite or spec.general_suite
    if not (metric.startswith("judge_") and rule.task) or (suite, rule.task, metric) in comp.pairs:
        return None  # judged items exist (or it is no judge metric): the rule is judged as any other
    unparsed = comp.get(suite, rule.task, "judge_unparsed")
    if unparsed is None:
        return None
    _, cond = _side(rule, True)
    name = rule.name or " ".join(x for x in (rule.kind, suite, rule.task, metric) if x)
    return RuleResult(name, rule.kind, suite, rule.task, metric, "INCONCLUSIVE", float("nan"), cond, None, 0, None,
                      None, f"the judge's answers did not parse on any item of {suite}/{rule.task} "
                      f"(judge_unparsed {unparsed.cand:.2f} in the candidate, {unparsed.base:.2f} in the baseline): "
                      "no judge score to judge", where.get("line"))


def judge_rule(rule: Rule, spec: GateSpec, comp: Comparison, where: dict[str, Any],
               anchor_of: AnchorOf | None = None, human_of: HumanOf | None = None,
               alpha: float = stats.ALPHA) -> RuleResult:
    """Judge one rule: per task by default, or on a pooled (micro) or macro-averaged unit, on (1 − alpha)
    intervals; `human_of` gives the review app's judgments (human evidence, judge calibration)."""
    if is_active(comp.sequential):  # only what the importance weights estimate: never a fixed-n test
        problem = active_refusal(rule.kind, rule.pool == "micro" and not rule.task) or (
            "a rule on people's ratings or a judge reads items the draws did not choose"
            if is_human_metric(rule.metric) or rule.ppi else None)
        if problem:
            raise UserError(f"this run was evaluated with --active, and {problem}: gate it on a complete run or one "
                            "evaluated until decided without --active", **where)
    if rule.kind == "max_drift":
        return judge_drift(rule, spec, comp, where, anchor_of, alpha)
    if is_human_metric(rule.metric):
        return _human_rule(rule, comp, where, human_of, alpha)
    if rule.ppi:
        return _ppi_rule(rule, comp, where, human_of, alpha)
    unparsed = _judge_never_parsed(rule, spec, comp, where)
    if unparsed is not None:
        return unparsed
    try:
        suite, rows, left_out = _rows(rule, spec, comp)
        units = [(row, _unit(rule, comp, row, row.task or "pooled")) for row in rows]
    except UserError as exc:
        raise UserError(str(exc), **where) from None
    if rule.pool == "macro" and not rule.task and len(units) > 1:
        units = [(rows[0], macro_unit("macro", [u for _, u in units]))]
    checks, plans = [], {}
    for row, unit in units:
        side, cond = _side(rule, row.higher_is_better)
        check = _judge_unit(unit, side, rule.decide_on, rule.min_n, row.metric, _available(comp, row, unit.label),
                            alpha)
        check.plan_n = _plan(rule, unit)
        check.sd = math.sqrt(unit.discordance) if unit.discordance is not None else unit.sd
        check.bounds = (side.threshold,) if side.fail_threshold is None else (side.threshold, side.fail_threshold)
        check.extent, check.pass_above = unit.extent, side.pass_if_above
        plans[check.label] = check.plan_n
        checks.append(check)
    verdict, deciding = _combine(checks, alpha)
    left_out = left_out + [f"{c.label} ({c.note})" for c in checks if c.verdict is None]
    agreement_note = ""
    awaits = False
    if rule.min_human_agreement is not None:
        trusted, agreement_note = _human_agreement(rule, comp, suite, checks, human_of)
        if not trusted:
            verdict, awaits = "INCONCLUSIVE", True
    head = deciding or checks[0]
    metric = rows[0].metric if len({r.metric for r in rows}) == 1 else "headline metric of each task"
    name = rule.name or " ".join(x for x in (rule.kind, suite, rule.task, rule.metric) if x)
    shown_iv = head.interval
    figure = head.figure
    if rule.kind == "max_general_drop":  # shown as a drop: positive means the candidate got worse
        figure, shown_iv = -figure, orient(head.interval, -1.0)
    need = [c.plan_n for c in checks if c.verdict == "INCONCLUSIVE" and c.plan_n]
    mdes = [c.mde for c in checks if c.mde is not None]
    pool = "per task" if len(checks) > 1 or (not rule.task and rule.pool == "tasks") else rule.pool
    return RuleResult(name, rule.kind, suite, rule.task, metric, verdict, figure, _side(rule, rows[0].higher_is_better)[1],
                      shown_iv, sum(c.n for c in checks), max(mdes) if mdes else None,
                      head.p_pass, "; ".join(x for x in (_detail(rule, head, checks), agreement_note) if x),
                      where.get("line"), checks, pool, rule.decide_on,
                      max(need) if need else None, left_out, awaits)


def _available(comp: Comparison, row: MetricComparison, label: str) -> int | None:
    """In a sequential run, the items the split holds for a unit (a task, or every task pooled); else None."""
    if comp.sequential is None:
        return None
    if label == "macro":
        return None  # a macro unit is judged on its tasks' items together: min_n reads their sum as evaluated
    have = comp.sequential.get("available") or {}
    if row.task is not None:
        return int(have.get(f"{row.suite}/{row.task}", 0))
    return sum(int(have.get(f"{row.suite}/{t}", 0)) for t in row.tasks)


def _detail(rule: Rule, head: Check, checks: list[Check]) -> str:
    parts = []
    if len(checks) > 1:
        counts = {v: sum(c.verdict == v for c in checks) for v in ("PASS", "FAIL", "INCONCLUSIVE")}
        parts.append(f"{len(checks)} tasks: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v)
                     + f"; deciding: {head.label}")
    parts.append(f"{head.interval.method}" if head.interval.method else "")
    if head.note:
        parts.append(head.note)
    return "; ".join(p for p in parts if p)


def evaluate_gate(spec: GateSpec, comp: Comparison, *, source: str = "gate",
                  root: yaml.Node | None = None, anchor_of: AnchorOf | None = None,
                  human_of: HumanOf | None = None, alpha: float = stats.ALPHA) -> GateResult:
    """Judge every rule of a validated gate on a comparison; refuse an incomplete pair unless allowed.

    alpha: every interval is read at 1 − alpha (the gate's 95% by default; α/k for each of k candidates when the
    gate picks the best of them, harness.decide.ranking.select_best)."""
    if comp.incomplete and not spec.allow_partial:
        (suite, task), (ob, oc) = next(iter(comp.incomplete.items()))
        total = sum(a + b for a, b in comp.incomplete.values())
        raise UserError(f"incomplete runs: {suite}/{task} has {ob} samples only in the baseline and {oc} only in "
                        f"the candidate ({total} unmatched in {len(comp.incomplete)} tasks); re-run the missing "
                        "samples, or set 'allow_partial: true' in the gate file to judge the shared ones", source=source)
    rows = [judge_rule(rule, spec, comp, {"source": source, "field": f"rules.{i}", "line": line_of(root, ["rules", i])},
                       anchor_of, human_of, alpha) for i, rule in enumerate(spec.rules)]
    partial = {f"{s}/{t}": v for (s, t), v in comp.incomplete.items()}
    return GateResult(rows, comp, source, spec.seed, spec.n_resamples, spec.on_inconclusive, spec.reason, partial,
                      sequential_summary(comp.sequential), inactive_adapters(comp), alpha=alpha)


def inactive_adapters(comp: Comparison) -> list[str]:
    """A line for each run whose adapter changed nothing on the canary prompts (harness.run.canary): its
    comparison is with the base, and with itself when the other run is the bare base."""
    out = []
    for role, run, other in (("candidate", comp.candidate, comp.baseline), ("baseline", comp.baseline, comp.candidate)):
        model = run.results.get("model") or {}
        check = model.get("adapter_check")
        if not check or check.get("active", True):
            continue
        name = (model.get("adapter") or {}).get("name", "?")
        other_is_base = not (other.results.get("model") or {}).get("adapter")
        other_model = (other.results.get("model") or {}).get("fingerprint", {}).get("model")
        same_base = other_model == (model.get("fingerprint") or {}).get("model")
        tail = ("so this gate compares the base with itself" if other_is_base and same_base
                else f"so the {role} is the bare base model")
        out.append(f"the {role}'s adapter {name} changes nothing: its log-probabilities equal the base's on all "
                   f"{check.get('n_prompts')} canary prompts (max difference {check.get('max_abs_diff', 0):.1e}), "
                   f"{tail}")
    return out


def sequential_summary(block: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a verdict says about a sequential run: method, alpha, seed, chunk, and items evaluated vs available."""
    if not block:
        return None
    evaluated: dict[str, int] = dict(block.get("evaluated") or {})  # items, without perturbed variants
    if not evaluated:
        for item in block["items"]:
            key = f"{item['suite']}/{item['task']}"
            evaluated[key] = evaluated.get(key, 0) + 1
    return {"method": block["method"], "alpha": block["alpha"], "seed": block["seed"], "chunk": block["chunk"],
            "stopped": block.get("stopped"), "evaluated": evaluated, "available": dict(block.get("available") or {}),
            "design": dict(block.get("design") or {}),
            "judged_with": "confidence sequence (valid at the data-dependent stopping time; no fixed-n test)",
            **({"active": active_summary(block["active"])} if block.get("active") else {})}


def active_summary(info: dict[str, Any]) -> dict[str, Any]:
    """An active run in a verdict: its floor, each task's signal, weight bound and estimator, and its draws and
    the distinct items they evaluated per task (what each verdict rests on)."""
    tasks = info.get("tasks") or {}
    draws = info.get("draws") or {}
    return {"floor": info.get("floor"), "signals": {k: t.get("signal") for k, t in tasks.items()},
            "bounds": {k: t.get("bound") for k, t in tasks.items()},
            "estimators": {k: t.get("estimator", "importance") for k, t in tasks.items()},
            "draws": {k: len(v) for k, v in draws.items()},
            "distinct_items": {k: len({str(item) for item, _ in v}) for k, v in draws.items()}}
