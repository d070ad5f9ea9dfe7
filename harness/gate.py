"""Gate files: declared release rules, judged on a paired comparison; verdict, exit status and JUnit."""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness import stats
from harness.api import UserError
from harness.compare import Comparison, MetricComparison, compare_runs, fmt_p
from harness.config import line_of, load_yaml, parse_model
from harness.runs import Run, atomic_write_text, resolve_run

KINDS = ("floor", "non_inferiority", "superiority", "max_robustness_drop", "max_general_drop")


class Rule(BaseModel):
    """One rule: a target (suite, optional task, optional metric) and exactly one check."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    suite: str | None = None
    task: str | None = None
    metric: str | None = None  # default: the first metric of the suite (or task)
    floor: float | None = None
    non_inferiority: float | None = Field(default=None, ge=0)
    superiority: Literal[True] | None = None
    max_robustness_drop: float | None = Field(default=None, ge=0)
    max_general_drop: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _exactly_one_check(self) -> "Rule":
        kinds = [k for k in KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a rule needs exactly one of {', '.join(KINDS)} (got {', '.join(kinds) or 'none'})")
        if kinds[0] != "max_general_drop" and not self.suite:
            raise ValueError(f"a {kinds[0]} rule needs 'suite'")
        if self.task and not self.suite:
            raise ValueError("'task' needs 'suite'")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)


class GateSpec(BaseModel):
    """A whole gate file."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    general_suite: str = "general"
    n_resamples: int = Field(default=10_000, ge=100, le=1_000_000)
    seed: int = 0
    rules: list[Rule] = Field(min_length=1)


@dataclass
class RuleResult:
    """One row of the verdict."""

    name: str
    kind: str
    suite: str
    task: str | None
    metric: str
    passed: bool
    figure: float  # what the rule judged (a score, a delta or a drop)
    threshold: str  # the condition, in words ("lower bound > -0.020")
    interval: tuple[float, float] | None
    p_value: float | None
    detail: str = ""
    line: int | None = None


@dataclass
class GateResult:
    """The verdict: every rule's row, plus the comparison it was judged on."""

    rules: list[RuleResult]
    comparison: Comparison
    gate_file: str
    seed: int = 0
    n_resamples: int = 10_000
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rules)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


# ---------------------------------------------------------------- loading


def load_gate(path: Path) -> tuple[GateSpec, yaml.Node | None]:
    """Parse and validate a gate file; UserError names the file, field and line."""
    path = Path(path)
    if not path.is_file():
        raise UserError("gate file not found", source=str(path))
    data, root = load_yaml(path)
    if not isinstance(data, dict):
        raise UserError("expected a mapping with 'rules'", source=str(path), line=1)
    return parse_model(GateSpec, data, root, str(path)), root


# ---------------------------------------------------------------- judging


def _rule_line(root: yaml.Node | None, index: int) -> int | None:
    return line_of(root, ["rules", index])


def _target(rule: Rule, spec: GateSpec, comp: Comparison, where: dict[str, Any]) -> MetricComparison:
    """The comparison row a rule names; UserError when the runs lack the suite, task or metric."""
    suite = rule.suite or spec.general_suite
    for label, run in (("baseline", comp.baseline), ("candidate", comp.candidate)):
        if suite not in run.suites:
            raise UserError(f"suite '{suite}' is not in the {label} run ({run.path}; it has "
                            f"{', '.join(run.suites)})", **where)
        if rule.task and rule.task not in run.suites[suite]["tasks"]:
            raise UserError(f"task '{rule.task}' is not in suite '{suite}' of the {label} run (it has "
                            f"{', '.join(run.suites[suite]['tasks'])})", **where)
    metric = rule.metric or comp.primary_metric(suite, rule.task)
    row = comp.get(suite, rule.task, metric) if metric else None
    if row is None:
        have = sorted({r.metric for r in comp.metrics if r.suite == suite and r.task == rule.task})
        raise UserError(f"metric '{metric}' is not in {suite}{'/' + rule.task if rule.task else ''} "
                        f"(metrics: {', '.join(have) or 'none'})", **where)
    return row


def _oriented(comp: Comparison, row: MetricComparison) -> tuple[np.ndarray, np.ndarray]:
    """Paired scores with the sign flipped for lower-is-better metrics, so that larger is always better."""
    b, c = comp.pairs[(row.suite, row.task, row.metric)]
    return (b, c) if row.higher_is_better else (-b, -c)


def _interval_rule(rule: Rule, spec: GateSpec, comp: Comparison, row: MetricComparison,
                   margin: float, where: dict[str, Any]) -> tuple[bool, float, str, tuple | None, float | None, str]:
    if not row.paired:
        raise UserError(f"metric '{row.metric}' is corpus-level (no per-sample scores), so no paired interval "
                        f"exists for {rule.kind}; use a floor rule", **where)
    b, c = _oriented(comp, row)
    p = stats.bootstrap_p_below(b, c, -margin, n_resamples=spec.n_resamples, seed=spec.seed)
    if row.higher_is_better:
        lower, cond = row.lo, f"CI lower bound > {-margin:+.3f}" if margin else "CI lower bound > 0"
    else:
        lower, cond = -row.hi, f"CI upper bound < {margin:+.3f}" if margin else "CI upper bound < 0"
    detail = f"{row.base:.3f} → {row.cand:.3f} on {row.n} paired samples; one-sided bootstrap p"
    return lower > -margin, row.delta, cond, (row.lo, row.hi), p, detail


def _judge(rule: Rule, spec: GateSpec, comp: Comparison, where: dict[str, Any]) -> RuleResult:
    row = _target(rule, spec, comp, where)
    kind = rule.kind
    sign = 1.0 if row.higher_is_better else -1.0
    interval: tuple[float, float] | None = None
    p: float | None = None
    if kind == "floor":
        floor = float(rule.floor)  # type: ignore[arg-type]
        passed = sign * row.cand >= sign * floor
        figure, cond = row.cand, f"{row.metric} {'>=' if sign > 0 else '<='} {floor:.3f}"
        interval, detail = row.cand_ci, f"baseline {row.base:.3f}"
    elif kind in ("non_inferiority", "superiority"):
        margin = float(rule.non_inferiority or 0.0)
        passed, figure, cond, interval, p, detail = _interval_rule(rule, spec, comp, row, margin, where)
    elif kind == "max_general_drop":
        limit = float(rule.max_general_drop)  # type: ignore[arg-type]
        figure = -row.improvement  # a positive drop means the candidate got worse
        passed = figure <= limit
        if row.lo is not None and row.hi is not None:
            interval = (-row.hi, -row.lo) if row.higher_is_better else (row.lo, row.hi)
        p, cond = row.p_value, f"drop <= {limit:.3f}"
        detail = f"{row.base:.3f} → {row.cand:.3f}; p: {row.test}" if row.paired else row.test
    else:  # max_robustness_drop
        limit = float(rule.max_robustness_drop)  # type: ignore[arg-type]
        rob = comp.robustness_row(row.suite, row.task, row.metric)
        if rob is None or rob.worst_case is None:
            raise UserError(f"no robustness results (perturbed samples or worst_case_{row.metric}) for "
                            f"{row.suite}{'/' + row.task if row.task else ''}", **where)
        figure = float(rob.drop(1))  # type: ignore[arg-type]
        passed, cond = figure <= limit, f"clean − worst case <= {limit:.3f}"
        detail = (f"candidate clean {rob.clean[1]:.3f}, worst case {rob.worst_case[1]:.3f}; "
                  f"baseline drop {rob.drop(0):.3f}")
    name = rule.name or " ".join(x for x in (kind, row.suite, row.task, row.metric) if x)
    return RuleResult(name, kind, row.suite, row.task, row.metric, bool(passed), float(figure), cond,
                      interval, p, detail, where.get("line"))


def evaluate_gate(spec: GateSpec, comp: Comparison, *, source: str = "gate",
                  root: yaml.Node | None = None) -> GateResult:
    """Judge every rule of a validated gate on a comparison."""
    rows = []
    for i, rule in enumerate(spec.rules):
        where = {"source": source, "field": f"rules.{i}", "line": _rule_line(root, i)}
        rows.append(_judge(rule, spec, comp, where))
    return GateResult(rows, comp, source, spec.seed, spec.n_resamples, [r.name for r in rows if not r.passed])


def run_gate(gate_file: Path, baseline_path: Path | str, candidate_path: Path | str,
             junit_path: Path | None = None, store_path: str | None = None) -> GateResult:
    """Load gate and runs (a directory or a saved baseline name), compare, judge; write JUnit when asked.

    Exit status: `result.exit_code`."""
    baseline, candidate = resolve_run(baseline_path, store_path), resolve_run(candidate_path, store_path)
    return gate_runs(Path(gate_file), baseline, candidate, junit_path)


def gate_runs(gate_file: Path, baseline: Run, candidate: Run, junit_path: Path | None = None) -> GateResult:
    """Judge already loaded runs against a gate file."""
    spec, root = load_gate(Path(gate_file))
    comp = compare_runs(baseline, candidate, n_resamples=spec.n_resamples, seed=spec.seed)
    result = evaluate_gate(spec, comp, source=str(gate_file), root=root)
    if junit_path is not None:
        write_junit(result, Path(junit_path))
    return result


# ---------------------------------------------------------------- output


def fmt_interval(interval: tuple[float, float] | None, signed: bool = True) -> str:
    if interval is None:
        return "–"
    fmt = "+.3f" if signed else ".3f"
    return f"[{interval[0]:{fmt}}, {interval[1]:{fmt}}]"


def fmt_rule_interval(rule: "RuleResult") -> str:
    """Scores (floor rules) unsigned; deltas and drops signed."""
    return fmt_interval(rule.interval, signed=rule.kind != "floor")


def fmt_figure(rule: RuleResult) -> str:
    """A score plainly; deltas and drops with their sign."""
    return f"{rule.figure:.3f}" if rule.kind == "floor" else f"{rule.figure:+.3f}"


def describe(rule: RuleResult) -> str:
    """One line for a rule: status, name, figure, condition, interval, p-value."""
    status = "PASS" if rule.passed else "FAIL"
    return (f"{status} {rule.name}: {fmt_figure(rule)} ({rule.threshold}); 95% CI {fmt_rule_interval(rule)}; "
            f"p {fmt_p(rule.p_value)}")


def write_junit(results: GateResult | list[GateResult], path: Path) -> None:
    """JUnit XML: one testsuite per gated candidate, one testcase per rule; temp file + rename."""
    results = results if isinstance(results, list) else [results]
    root = ET.Element("testsuites", name="tunegate", tests=str(sum(len(r.rules) for r in results)),
                      failures=str(sum(not rule.passed for r in results for rule in r.rules)))
    for result in results:
        root.append(_junit_suite(result))
    tree = ET.ElementTree(root)
    ET.indent(tree)
    buf = io.BytesIO()
    tree.write(buf, encoding="utf-8", xml_declaration=True)
    atomic_write_text(path, buf.getvalue().decode("utf-8"))


def _junit_suite(result: GateResult) -> ET.Element:
    name = f"tunegate gate: {result.comparison.candidate.label} vs {result.comparison.baseline.label}"
    suite = ET.Element("testsuite", name=name, tests=str(len(result.rules)),
                       failures=str(sum(not r.passed for r in result.rules)), errors="0", skipped="0", time="0")
    props = ET.SubElement(suite, "properties")
    for key, value in (("gate_file", result.gate_file), ("baseline", result.comparison.baseline.label),
                       ("candidate", result.comparison.candidate.label), ("seed", str(result.seed)),
                       ("n_resamples", str(result.n_resamples))):
        ET.SubElement(props, "property", name=key, value=value)
    for rule in result.rules:
        case = ET.SubElement(suite, "testcase", name=rule.name, classname=f"tunegate.gate.{rule.suite}", time="0")
        if not rule.passed:
            failure = ET.SubElement(case, "failure", message=describe(rule), type=rule.kind)
            failure.text = rule.detail
        ET.SubElement(case, "system-out").text = f"{describe(rule)}\n{rule.detail}"
    return suite


def format_gate(result: GateResult) -> str:
    """The verdict as a terminal table (rich)."""
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    console = Console(file=buf, width=140, force_terminal=False, color_system=None)
    comp = result.comparison
    verdict = "PASS" if result.passed else f"FAIL ({len(result.failures)} of {len(result.rules)} rules)"
    table = Table(title=f"gate {result.gate_file}: {comp.candidate.label} vs {comp.baseline.label} — {verdict}")
    for col in ("", "rule", "figure", "condition", "95% CI", "p", "detail"):
        table.add_column(col, justify="right" if col in ("figure", "95% CI", "p") else "left")
    for r in result.rules:
        table.add_row("PASS" if r.passed else "FAIL", r.name, fmt_figure(r) if math.isfinite(r.figure) else "–",
                      r.threshold, fmt_rule_interval(r), fmt_p(r.p_value), r.detail)
    console.print(table)
    return buf.getvalue()
