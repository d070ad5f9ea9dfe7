"""`perplexity`: the rolling loglikelihood of the whole prompt (no target)."""

from __future__ import annotations

from harness.core.api import Request, SampleRecord
from harness.data.suite import Sample, Task
from harness.scoring import metrics
from harness.scoring.kinds.base import LOGLIK_CHUNK, Answered, PerSampleKind, ScoreContext


class Perplexity(PerSampleKind):
    name = "perplexity"
    needs = frozenset({"loglikelihood_rolling"})

    def chunk_size(self, batch_size: int) -> int:
        return LOGLIK_CHUNK

    def make_requests(self, task: Task, sample: Sample, prompt: str) -> list[Request]:
        return [Request("loglikelihood_rolling", prompt)]

    def score_one(self, ctx: ScoreContext, item: Answered) -> SampleRecord:
        sample, response = item.sample, item.responses[0]
        extra = {"tokens": response.n_tokens[0], **metrics.text_units(item.prompt)}
        inp = metrics.ScoreInput(target=sample.target, choices=sample.choices, logliks=response.logliks or None,
                                 n_tokens=response.n_tokens or None, doc=sample.doc, extra=extra, task=ctx.task.spec)
        return ctx.record(item, response.text, metrics.score_sample(ctx.task.spec.metrics, inp), extra,
                          choices=sample.choices, logliks=response.logliks or None, target=None)


KIND = Perplexity()
