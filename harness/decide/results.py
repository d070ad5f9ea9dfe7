"""What the gate finds: a check per task, a result per rule, the whole gate's result and its exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from harness.decide.compare import Comparison
from harness.inference.stats import ALPHA, Interval

Verdict = Literal["PASS", "FAIL", "INCONCLUSIVE"]


EXIT = {"PASS": 0, "FAIL": 1, "INCONCLUSIVE": 3}  # 2: bad input; 4: internal error (cli.py)


@dataclass
class Check:
    """One judged unit of a rule: a task, the pooled suite, or a macro average."""

    label: str
    metric: str
    verdict: Verdict | None  # None: shown, not judged (under min_n)
    figure: float
    interval: Interval
    n: int
    mde: float | None
    p_pass: float | None = None  # one-sided p-value of "the rule fails here"
    p_fail: float | None = None  # one-sided p-value of "the rule holds here"; Holm-adjusted when several
    note: str | None = None
    plan_n: int | None = None  # fresh items a pre-planned evaluation needs to decide at 80% power
    bounds: tuple[float, ...] = ()  # the thresholds the interval must clear to decide (PASS side, FAIL side)
    sd: float | None = None  # per-item standard deviation (paired 0/1: √discordance), for futility and plans
    # the range its values take (a 0/1 score: (0, 1); a paired 0/1 improvement: (-1, 1)); None where unbounded.
    # How narrow its sequence can get depends on it (harness.decide.allocate.reach_chance)
    extent: tuple[float, float] | None = None
    pass_above: bool = True  # PASS when the interval lies above the thresholds; False: below (lower is better)


@dataclass
class RuleResult:
    """One row of the verdict."""

    name: str
    kind: str
    suite: str
    task: str | None
    metric: str
    verdict: Verdict
    figure: float  # what the rule judged (a score, an improvement or a drop) of its deciding check
    threshold: str  # the condition, in words
    interval: Interval | None
    n: int
    mde: float | None
    p_value: float | None
    detail: str = ""
    line: int | None = None
    checks: list[Check] = field(default_factory=list)
    pool: str = "tasks"
    decided_on: str = "interval"
    plan_n: int | None = None
    left_out: list[str] = field(default_factory=list)  # what the rule could not cover
    awaits_people: bool = False  # INCONCLUSIVE until people rate (judge agreement, PPI): more items cannot decide it

    @property
    def passed(self) -> bool:
        return self.verdict == "PASS"


@dataclass
class GateResult:
    """The verdict: every rule's row, plus the comparison it was judged on."""

    rules: list[RuleResult]
    comparison: Comparison
    gate_file: str
    seed: int = 0
    n_resamples: int = 10_000
    on_inconclusive: str = "fail"
    reason: str | None = None
    partial: dict[str, tuple[int, int]] = field(default_factory=dict)  # task -> (only baseline, only candidate)
    sequential: dict[str, Any] | None = None  # a sequential run: how it was evaluated (see `sequential_summary`)
    warnings: list[str] = field(default_factory=list)  # what the verdict must say aloud (an inactive adapter)
    alpha: float = ALPHA  # every interval was read at 1 − alpha (α/k when the gate picked the best of k candidates)
    selection: dict[str, Any] | None = None  # best of k: harness.decide.ranking.Selection.to_json for this candidate

    @property
    def level(self) -> str:
        """The intervals' confidence level in words: "95%" at the gate's default."""
        return f"{100 * (1 - self.alpha):.4g}%"

    @property
    def failures(self) -> list[str]:
        return [r.name for r in self.rules if r.verdict == "FAIL"]

    @property
    def inconclusive(self) -> list[str]:
        return [r.name for r in self.rules if r.verdict == "INCONCLUSIVE"]

    @property
    def verdict(self) -> Verdict:
        if self.failures:
            return "FAIL"
        if self.inconclusive and self.on_inconclusive != "pass":
            return "INCONCLUSIVE"
        return "PASS"

    @property
    def passed(self) -> bool:
        return self.verdict == "PASS"

    @property
    def exit_code(self) -> int:
        return EXIT[self.verdict]
