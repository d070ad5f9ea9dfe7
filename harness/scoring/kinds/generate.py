"""`generate`: the model continues the prompt; the declared extraction pulls out the answer."""

from __future__ import annotations

from typing import Any

from harness.core.api import Request, SampleRecord, UserError
from harness.data import lmeval_filters
from harness.data.suite import Generation, Sample, Task
from harness.scoring import judging, lmeval_results, metrics
from harness.scoring.kinds.base import Answered, PerSampleKind, ScoreContext


def generation_requests(task: Task, prompt: str) -> list[Request]:
    """One generate request per declared sample (each sampled completion has its own seed)."""
    gen = task.spec.generation or Generation()
    return [Request("generate", prompt, gen=gen.settings(i)) for i in range(gen.samples)]


class Generate(PerSampleKind):
    name = "generate"
    needs = frozenset({"generate"})
    required = {"target": "a target"}

    def make_requests(self, task: Task, sample: Sample, prompt: str) -> list[Request]:
        return generation_requests(task, prompt)

    def score(self, ctx: ScoreContext) -> list[SampleRecord]:
        """Each response scored; then, when the task declares a judge, graded by it in one batch."""
        records = super().score(ctx)
        spec = ctx.task.spec.judge
        if spec is not None and records:
            judge = ctx.judges.get(spec.role)
            if judge is None:
                raise UserError(f"task {ctx.task.suite.name}/{ctx.task.name} is graded by judge role {spec.role!r}, "
                                "which is not bound", field="--judge")
            judging.grade(spec, judge, ctx.store, records, [i.sample.prompt for i in ctx.items],
                          spec.axes or ctx.task.suite.spec.rubric, spec.role)
        return records

    def score_one(self, ctx: ScoreContext, item: Answered) -> SampleRecord:
        sample, response, spec = item.sample, item.responses[0], ctx.task.spec
        inp = metrics.ScoreInput(target=sample.target, choices=sample.choices, logliks=response.logliks or None,
                                 n_tokens=response.n_tokens or None, doc=sample.doc, task=spec)
        inp.response = response.text or ""
        if spec.lmeval is not None:  # lm-eval's filter pipeline over the responses (harness.data.lmeval_filters)
            inp.prediction = lmeval_filters.apply(spec.lmeval.filters, [r.text or "" for r in item.responses],
                                                  sample.doc)
        else:
            inp.prediction = metrics.extract_answer(inp.response, spec.extraction, sample.choices)
        scores = metrics.score_sample(lmeval_results.registered(spec), inp)
        extra: dict[str, Any] = {"extracted": inp.prediction}
        if lmeval_results.custom(spec):  # the lm-eval task's own metrics, on its filtered answer
            builtin = {"exact_match": metrics.REGISTRY["exact_match_strict"].sample(inp)}  # type: ignore[misc]
            own, kept = lmeval_results.split(spec, lmeval_results.item_values(
                spec, sample.doc, results=[inp.prediction], builtin=builtin, gold=sample.target))
            scores.update(own)
            if kept:
                extra[lmeval_results.VALUES] = kept
        return ctx.record(item, response.text, scores, extra, choices=sample.choices,
                          logliks=response.logliks or None)


KIND = Generate()
