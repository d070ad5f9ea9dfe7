"""`multiple_choice`: every choice is a continuation of the prompt, scored by loglikelihood."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from harness.core.api import Request, SampleRecord
from harness.data.suite import Sample, Task
from harness.scoring import lmeval_results, metrics
from harness.scoring.kinds.base import LOGLIK_CHUNK, Answered, PerSampleKind, ScoreContext


class MultipleChoice(PerSampleKind):
    name = "multiple_choice"
    needs = frozenset({"loglikelihood"})
    required = {"choices": "choices", "target": "a target"}

    def chunk_size(self, batch_size: int) -> int:
        return LOGLIK_CHUNK

    def make_requests(self, task: Task, sample: Sample, prompt: str) -> list[Request]:
        delimiter = task.spec.target_delimiter
        if _multiple_input(task):  # lm-eval's winogrande form: each choice ends the context, one continuation
            cont = delimiter + str(sample.doc["lmeval__"]["continuation"])
            return [Request("loglikelihood", prompt + c, (cont,)) for c in sample.choices or []]
        return [Request("loglikelihood", prompt, tuple(delimiter + c for c in sample.choices or []))]

    def score_one(self, ctx: ScoreContext, item: Answered) -> SampleRecord:
        sample, response = item.sample, item.responses[0]
        if _multiple_input(ctx.task):  # one request per choice: gather their single loglikelihoods
            response = replace(response, logliks=[r.logliks[0] for r in item.responses],
                               n_tokens=[r.n_tokens[0] for r in item.responses] if response.n_tokens else [],
                               is_greedy=[r.is_greedy[0] for r in item.responses] if response.is_greedy else [])
        inp = metrics.ScoreInput(target=sample.target, choices=sample.choices, logliks=response.logliks or None,
                                 n_tokens=response.n_tokens or None, doc=sample.doc, task=ctx.task.spec)
        pred = metrics.mc_prediction(inp)
        extra: dict[str, Any] = {"pred": pred, "pred_norm": metrics.mc_prediction(inp, "chars"),
                                 "n_tokens": response.n_tokens, "is_greedy": response.is_greedy}
        spec = ctx.task.spec
        scores = metrics.score_sample(lmeval_results.registered(spec), inp)
        if lmeval_results.custom(spec):  # the lm-eval task's own metrics, from lm-eval's (loglikelihood, is_greedy)
            logliks, greedy = list(response.logliks or []), list(response.is_greedy or [])
            greedy = greedy if len(greedy) == len(logliks) else [False] * len(logliks)  # a backend that has none
            own, kept = lmeval_results.split(spec, lmeval_results.item_values(
                spec, sample.doc, results=list(zip(logliks, greedy)),
                builtin=lmeval_results.mc_builtin(logliks, greedy, list(sample.choices or []), int(sample.target))))
            scores.update(own)
            if kept:
                extra[lmeval_results.VALUES] = kept
        return ctx.record(item, sample.choices[pred] if sample.choices else None, scores, extra,
                          choices=sample.choices, logliks=response.logliks or None)


def _multiple_input(task: Task) -> bool:
    return task.spec.lmeval is not None and task.spec.lmeval.multiple_input


KIND = MultipleChoice()
