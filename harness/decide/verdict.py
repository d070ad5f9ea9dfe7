"""Machine-readable outputs of a gate: verdict.json and JUnit XML (what CI systems read)."""

from __future__ import annotations

import io
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.core.fileio import atomic_write_text
from harness.core.untrusted import json_safe, xml_safe
from harness.decide.gate import Check, GateResult, RuleResult
from harness.inference.stats import Interval

VERDICT_FORMAT = "tunegate.verdict/1"


def _num(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _interval(iv: Interval | None) -> dict[str, Any] | None:
    if iv is None:
        return None
    return {"lo": _num(iv.lo), "hi": _num(iv.hi), "method": iv.method, "n": iv.n, "note": iv.note}


def _check(c: Check) -> dict[str, Any]:
    return {"unit": c.label, "metric": c.metric, "verdict": c.verdict or "SHOWN", "figure": _num(c.figure),
            "interval": _interval(c.interval), "n": c.n, "mde": _num(c.mde), "p_pass": _num(c.p_pass),
            "p_fail": _num(c.p_fail), "note": c.note, "plan_n": c.plan_n}


def _rule(r: RuleResult) -> dict[str, Any]:
    return {"name": r.name, "kind": r.kind, "suite": r.suite, "task": r.task, "metric": r.metric,
            "verdict": r.verdict, "figure": _num(r.figure), "condition": r.threshold,
            "interval": _interval(r.interval), "method": r.interval.method if r.interval else None,
            "n": r.n, "mde": _num(r.mde), "p_value": _num(r.p_value), "pool": r.pool, "decided_on": r.decided_on,
            "plan_n": r.plan_n, "left_out": r.left_out, "line": r.line, "detail": r.detail,
            "checks": [_check(c) for c in r.checks]}


def verdict_json(result: GateResult) -> dict[str, Any]:
    """Per rule: the verdict, figure, interval, n and method; plus what the whole gate decided and why."""
    comp = result.comparison
    return {"format": VERDICT_FORMAT, "gate_file": result.gate_file, "verdict": result.verdict,
            "exit_code": result.exit_code, "baseline": comp.baseline.label, "candidate": comp.candidate.label,
            "on_inconclusive": result.on_inconclusive, "reason": result.reason, "seed": result.seed,
            "n_resamples": result.n_resamples,
            "partial": {k: {"only_baseline": a, "only_candidate": b} for k, (a, b) in result.partial.items()},
            "sequential": result.sequential, "warnings": result.warnings, "rules": [_rule(r) for r in result.rules],
            # best of k: each candidate judged at alpha/k, and which one the gate picked (absent for one candidate)
            **({"alpha": result.alpha, "selection": result.selection} if result.selection is not None else {})}


def write_verdict(results: GateResult | list[GateResult], path: Path) -> None:
    """verdict.json (one object, or a list for several gated candidates); temp file + rename."""
    data: Any = [verdict_json(r) for r in results] if isinstance(results, list) else verdict_json(results)
    atomic_write_text(path, json_safe(json.dumps(data, indent=2, ensure_ascii=False)) + "\n")


# ---------------------------------------------------------------- JUnit


def describe(rule: RuleResult, level: str = "95%") -> str:
    """One line for a rule: verdict, name, figure, condition, interval (at `level`), n."""
    iv = rule.interval
    shown = f"[{iv.lo:+.3f}, {iv.hi:+.3f}]" if iv is not None and iv.defined else f"undefined ({iv.note if iv else 'none'})"
    return (f"{rule.verdict} {rule.name}: {rule.figure:+.3f} ({rule.threshold}); {level} CI {shown}; "
            f"n {rule.n}" + (f"; needs ≈{rule.plan_n} fresh items to decide" if rule.plan_n and rule.verdict == "INCONCLUSIVE" else ""))


def write_junit(results: GateResult | list[GateResult], path: Path) -> None:
    """JUnit XML: one testsuite per gated candidate, one testcase per rule; INCONCLUSIVE is a failure too."""
    results = results if isinstance(results, list) else [results]
    root = ET.Element("testsuites", name="tunegate", tests=str(sum(len(r.rules) for r in results)),
                      failures=str(sum(_fails_ci(rule, r) for r in results for rule in r.rules)))
    for result in results:
        root.append(_junit_suite(result))
    tree = ET.ElementTree(root)
    for element in root.iter():  # names and details come from gate, run and suite files: keep the XML valid
        element.text = xml_safe(element.text) if element.text else element.text
        element.tail = xml_safe(element.tail) if element.tail else element.tail
        for key, value in element.attrib.items():
            element.attrib[key] = xml_safe(value)
    ET.indent(tree)
    buf = io.BytesIO()
    tree.write(buf, encoding="utf-8", xml_declaration=True)
    atomic_write_text(path, buf.getvalue().decode("utf-8"))


def _fails_ci(rule: RuleResult, result: GateResult) -> bool:
    return rule.verdict == "FAIL" or (rule.verdict == "INCONCLUSIVE" and result.on_inconclusive != "pass")


def _junit_suite(result: GateResult) -> ET.Element:
    name = f"tunegate gate: {result.comparison.candidate.label} vs {result.comparison.baseline.label}"
    suite = ET.Element("testsuite", name=name, tests=str(len(result.rules)),
                       failures=str(sum(_fails_ci(r, result) for r in result.rules)), errors="0", skipped="0",
                       time="0")
    props = ET.SubElement(suite, "properties")
    for key, value in (("gate_file", result.gate_file), ("baseline", result.comparison.baseline.label),
                       ("candidate", result.comparison.candidate.label), ("verdict", result.verdict),
                       ("seed", str(result.seed)), ("n_resamples", str(result.n_resamples))):
        ET.SubElement(props, "property", name=key, value=value)
    for rule in result.rules:
        case = ET.SubElement(suite, "testcase", name=rule.name, classname=f"tunegate.gate.{rule.suite}", time="0")
        if _fails_ci(rule, result):
            message = describe(rule, result.level) if rule.verdict == "FAIL" else (
                f"not enough evidence to decide: {describe(rule, result.level)}")
            failure = ET.SubElement(case, "failure", message=message,
                                    type=rule.kind if rule.verdict == "FAIL" else "inconclusive")
            failure.text = rule.detail
        ET.SubElement(case, "system-out").text = f"{describe(rule, result.level)}\n{rule.detail}" + (
            f"\naccepted as inconclusive: {result.reason}" if rule.verdict == "INCONCLUSIVE" and
            result.on_inconclusive == "pass" else "")
    return suite
