"""The gate file: its schema (rules, drift anchors, options), strict validation and loading. What the
rules mean and how they are judged is harness.decide.gate."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, model_validator

from harness.core.api import UserError
from harness.core.config import Strict, load_yaml, parse_model
from harness.core.fileio import not_a_file
from harness.decide.calibration import is_human_metric

KINDS = ("floor", "non_inferiority", "superiority", "max_robustness_drop", "max_general_drop", "max_drift")


class Drift(Strict):
    """`max_drift`: the candidate against an anchor release, not only against the current baseline. A chain of
    non-inferior steps ("biocreep") that adds up to more than `margin` fails."""

    from_: str = Field(alias="from", min_length=1, max_length=300)  # first | current | N | run id | CHANNEL@N
    metric: str = Field(pattern=r"^[^/]+(/[^/]+){1,2}$")  # suite/metric or suite/task/metric
    margin: float = Field(gt=0, allow_inf_nan=False)
    channel: str | None = Field(default=None, min_length=1)  # default: the --baseline channel

    @property
    def parts(self) -> tuple[str, str | None, str]:
        bits = self.metric.split("/")
        return (bits[0], None, bits[1]) if len(bits) == 2 else (bits[0], bits[1], bits[2])


class Rule(Strict):
    """One rule: a target (suite, optional task, optional metric) and exactly one check."""

    name: str | None = None
    suite: str | None = None
    task: str | None = None
    metric: str | None = None  # default: each task's own headline metric
    floor: float | None = Field(default=None, allow_inf_nan=False)
    non_inferiority: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    superiority: Literal[True] | None = None
    min_effect: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_robustness_drop: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_general_drop: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_drift: Drift | None = None
    pool: Literal["tasks", "micro", "macro"] = "tasks"
    min_n: int = Field(default=1, ge=1, le=10_000_000)
    decide_on: Literal["interval", "estimate"] = "interval"
    # a floor on an unbounded per-sample metric: the range its values can take, declared by the gate file. No
    # interval on the mean of unbounded values holds its level at every n (Bahadur & Savage 1956); the t interval
    # erred 11.6% on one side on lognormal values at n 30 (issue 23; bench_gate_validity.py section 8b).
    bounds: tuple[float, float] | None = None
    # a judge metric decides only when the judge agrees with people: the lower end of the 95% interval of
    # Krippendorff's alpha between the judge and the review app's ratings must reach this (harness.decide.calibration)
    min_human_agreement: float | None = Field(default=None, gt=-1, le=1, allow_inf_nan=False)
    # judge the human-scale Δ instead: judge scores on every item plus the review app's ratings on some give a
    # prediction-powered interval (harness.inference.ppi), valid whatever the judge's bias
    ppi: bool = False

    @model_validator(mode="after")
    def _exactly_one_check(self) -> Rule:
        kinds = [k for k in KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a rule needs exactly one of {', '.join(KINDS)} (got {', '.join(kinds) or 'none'})")
        if kinds[0] == "max_drift" and (self.suite or self.task or self.metric):
            raise ValueError("a max_drift rule names its target in max_drift.metric (suite/metric), not in "
                             "suite/task/metric")
        if kinds[0] not in ("max_general_drop", "max_drift") and not self.suite:
            raise ValueError(f"a {kinds[0]} rule needs 'suite'")
        if self.task and not self.suite:
            raise ValueError("'task' needs 'suite'")
        if self.min_effect is not None and kinds[0] != "superiority":
            raise ValueError("'min_effect' belongs to a superiority rule")
        if self.decide_on == "estimate" and kinds[0] != "floor":
            raise ValueError("'decide_on: estimate' applies to floor rules only")
        if self.bounds is not None:
            lo, hi = self.bounds
            if kinds[0] != "floor":
                raise ValueError("'bounds' applies to floor rules only (the range of an unbounded metric's values)")
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError("'bounds' needs two finite numbers [low, high] with low < high")
        if is_human_metric(self.metric) and kinds[0] not in ("non_inferiority", "superiority"):
            raise ValueError(f"a rule on '{self.metric}' (the review app's judgments) is a non_inferiority or "
                             "superiority rule")
        if self.min_human_agreement is not None and self.metric != "judge_score":
            raise ValueError("'min_human_agreement' applies to a rule on 'metric: judge_score'")
        if self.ppi and (self.metric != "judge_score" or kinds[0] not in ("non_inferiority", "superiority")):
            raise ValueError("'ppi: true' applies to a non_inferiority or superiority rule on 'metric: judge_score'")
        if self.ppi and self.min_human_agreement is not None:
            raise ValueError("'ppi: true' needs no 'min_human_agreement': its interval holds whatever the judge's "
                             "agreement (drop one of the two)")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)


class GateSpec(Strict):
    """A whole gate file."""

    version: Literal[1] = 1
    general_suite: str = Field(default="general", min_length=1)
    n_resamples: int = Field(default=10_000, ge=100, le=1_000_000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    allow_partial: bool = False
    on_inconclusive: Literal["fail", "pass"] = "fail"
    reason: str | None = Field(default=None, min_length=1, max_length=2000)
    rules: list[Rule] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _reason_for_pass(self) -> GateSpec:
        if self.on_inconclusive == "pass" and not (self.reason or "").strip():
            raise ValueError("'on_inconclusive: pass' needs a stated 'reason'")
        return self


def load_gate(path: Path) -> tuple[GateSpec, yaml.Node | None]:
    """Parse and validate a gate file; UserError names the file, field and line."""
    path = Path(path)
    if not path.is_file():
        why = not_a_file(path)
        raise UserError("gate file not found" if why == "does not exist" else f"the gate file {why}", source=str(path))
    data, root = load_yaml(path)
    if not isinstance(data, dict):
        raise UserError("expected a mapping with 'rules'", source=str(path), line=1)
    return parse_model(GateSpec, data, root, str(path)), root
