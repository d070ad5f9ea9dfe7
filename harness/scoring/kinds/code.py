"""`code`: completions of a programming problem run in the sandbox; scored by pass@k.

A code task's rows are problems in the harness.scoring.code_eval convention (task_id, language, prompt,
entry_point, test). Every completion of a chunk runs in parallel; a sample's record keeps each status.
"""

from __future__ import annotations

from typing import Any

from harness.core.api import Request, Response, SampleRecord
from harness.data.suite import Sample, Task
from harness.scoring import metrics
from harness.scoring.code_eval import check_completions, close_braces
from harness.scoring.kinds.base import Answered, ScoreContext, TaskKind
from harness.scoring.kinds.generate import generation_requests
from harness.scoring.sandbox import get_sandbox


class Code(TaskKind):
    name = "code"
    needs = frozenset({"generate"})

    def make_requests(self, task: Task, sample: Sample, prompt: str) -> list[Request]:
        return generation_requests(task, prompt)

    def score(self, ctx: ScoreContext) -> list[SampleRecord]:
        sandbox = get_sandbox(ctx.allow_unisolated)  # refuses to run without network isolation
        problems = {str(item.sample.doc["task_id"]): item.sample.doc for item in ctx.items}
        jobs = [{"task_id": str(item.sample.doc["task_id"]), "completion": close_braces(item.sample.doc, r.text or "")}
                for item in ctx.items for r in item.responses]
        results = iter(check_completions(problems, jobs, sandbox))
        return [_record(ctx, item, [next(results) for _ in item.responses], sandbox.isolation) for item in ctx.items]


def _record(ctx: ScoreContext, item: Answered, runs: list[dict[str, Any]], isolation: str) -> SampleRecord:
    responses: list[Response] = item.responses
    extra = {"n": len(runs), "passed": sum(r["passed"] for r in runs), "isolation": isolation,
             "status": [r["status"] for r in runs], "reasons": [r["reason"] for r in runs],
             "completions": [r.text or "" for r in responses]}
    inp = metrics.ScoreInput(target=item.sample.target, response=responses[0].text, doc=item.sample.doc, extra=extra,
                             task=ctx.task.spec)
    return ctx.record(item, responses[0].text, metrics.score_sample(ctx.task.spec.metrics, inp), extra)


KIND = Code()
