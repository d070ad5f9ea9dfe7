"""How compare and gate judge one task of an active run (`eval --until-decided --active`): the design its
confidence sequence runs with.

A task the run recorded with the difference estimator (`sequential.active.tasks[...].estimator`), on a 0/1
metric: the importance weights of its draws, and the control variate of `harness.inference.active`
(`difference_design`) rebuilt from the run file and the baseline alone: the flip scores the run recorded give
the features, the baseline's 0/1 score of each item gives the side it can flip to, and the draws' paired
differences, in draw order, refit the flip model at `active.REFITS` on earlier draws only. The baseline must be
the one the run was planned against (the fingerprint of its per-item scores): another one would move the
control variate, so it is refused (UserError), never judged. Everything else (old active runs, a task whose
baseline lacked items when planned, a metric that is not 0/1) keeps the importance-weighted design.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from harness.core.api import UserError
from harness.core.untrusted import excerpt
from harness.data.runfile import SampleRow
from harness.data.runs import Run
from harness.decide.proposal import baseline_rows, fingerprint
from harness.inference import active
from harness.inference.sequential import Design


@dataclass
class Planned:
    """The complete run an active run was planned against, and whether it sits in the candidate's place."""

    run: Run
    is_candidate: bool
    owner: str  # the active run's path, for messages
    # its unperturbed rows by item, and the tasks whose fingerprint matched: computed once per comparison (the
    # loop of `--until-decided` compares after every look, each task and metric asking again)
    rows: dict[tuple[str, str, str], SampleRow] = field(default_factory=dict)
    checked: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rows = self.rows or baseline_rows(self.run)


def known_scores(planned: Planned, block: dict[str, Any], suite: str, task: str, metric: str,
                 fail: float | None) -> tuple[dict[str, Any], np.ndarray] | None:
    """The task's recorded entry and the planned run's 0/1 score of `metric` on every item of its population,
    in recorded order; None where the importance weights judge (no difference estimator recorded, or a score
    that is not 0/1). UserError when the run given is not the one the draws were planned against."""
    info = ((block.get("active") or {}).get("tasks") or {}).get(f"{suite}/{task}") or {}
    if info.get("estimator") != "difference":
        return None
    items = list(info["scores"])
    rows = [planned.rows.get((suite, task, item)) for item in items]
    if (suite, task) not in planned.checked and fingerprint(items, rows) != info["baseline"]:
        have = sum(r is not None for r in rows)
        raise UserError(f"{planned.run.path} is not the baseline the active run {planned.owner} was planned against: "
                        f"its scores on the {len(items)} items of {excerpt(suite, 40)}/{excerpt(task, 40)} differ "
                        f"({have} of them present; fingerprint {fingerprint(items, rows)[:12]}, planned "
                        f"{str(info['baseline'])[:12]}); compare and gate the run against the baseline it was "
                        "evaluated with")
    planned.checked.add((suite, task))
    values = []
    for row in rows:
        value = (row or {}).get("scores", {}).get(metric, "absent")
        value = fail if value is None else value
        if value not in (0, 1) or isinstance(value, bool):
            return None  # not a 0/1 score on every item: the importance weights judge
        values.append(float(value))  # type: ignore[arg-type]
    return info, np.array(values)


def task_design(base: Design | None, block: dict[str, Any], suite: str, task: str, metric: str, d_drawn: np.ndarray,
                planned: Planned | None, fail: float | None, hib: bool) -> tuple[Design | None, float | None]:
    """(design on the larger-is-better scale, the planned run's exact mean of `metric` over the population or
    None): `base` (the importance-weighted design) unless the difference estimator applies; d_drawn: c − b
    per draw, in draw order, of a 0/1 metric."""
    if base is None or planned is None:
        return base, None
    found = known_scores(planned, block, suite, task, metric, fail)
    if found is None:
        return base, None
    info, values = found
    # d = c − b: a planned baseline's right answer can only fall (−1); in the candidate's place, only rise
    sign = np.where(values == 1, -1.0, 1.0) * (-1.0 if planned.is_candidate else 1.0)
    position = {item: k for k, item in enumerate(info["scores"])}
    draws = (block["active"].get("draws") or {}).get(f"{suite}/{task}") or []
    if len(draws) != d_drawn.size:
        raise UserError(f"the active run {planned.owner} records {len(draws)} draws of {excerpt(suite, 40)}/"
                        f"{excerpt(task, 40)} but its samples pair {d_drawn.size} of them on '{excerpt(metric, 40)}'")
    try:
        raw = active.difference_design(d_drawn, [position[str(item)] for item, _ in draws], sign,
                                       list(info["scores"].values()),
                                       active.Draws(tuple(float(q) for _, q in draws), int(info["population"]),
                                                    float(info["bound"])), None)
    except (KeyError, ValueError) as exc:
        raise UserError(f"the active run {planned.owner} cannot be judged on {excerpt(suite, 40)}/"
                        f"{excerpt(task, 40)} '{excerpt(metric, 40)}': {excerpt(str(exc), 120)}") from None
    s = 1.0 if hib else -1.0  # c − b runs the other way for lower-is-better
    assert raw.control is not None and raw.offsets is not None
    return replace(base, control=tuple(s * g for g in raw.control),
                   offsets=tuple(s * g for g in raw.offsets)), float(values.mean())
