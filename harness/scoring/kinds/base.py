"""The contract of a task kind, and the context its scorer gets.

A kind says which backend capabilities its requests need, turns one rendered sample into requests,
and scores a chunk of answered samples into records. The context reaches the evaluated backend, a
second backend (a judge) when the run has one, and the store (to cache work such as a judge's answers).
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.core.api import Backend, Capability, Request, Response, ResponseCache, SampleRecord
from harness.core.registry import KindCheckError
from harness.data.suite import Sample, Task, TaskSpec
from harness.scoring import metrics

LOGLIK_CHUNK = 64  # loglikelihood requests per chunk (a backend packs inside a chunk; a chunk is one commit)


@dataclass
class Answered:
    """One sample with its final prompt and the responses to its requests, in request order."""

    sample: Sample
    prompt: str
    responses: list[Response]


@dataclass
class ScoreContext:
    """What a kind's `score` sees: one chunk of one task."""

    task: Task
    items: list[Answered]
    backend: Backend  # the model being evaluated
    store: ResponseCache | None = None  # the run's store, for caching what a scorer computes
    judges: dict[str, Backend] = dataclasses.field(default_factory=dict)  # judge role -> bound model (harness.scoring.judging)
    allow_unisolated: bool = False  # code execution may run without network isolation

    def record(self, item: Answered, response: str | None, scores: dict[str, float], extra: dict[str, Any], *,
               choices: list[str] | None = None, logliks: list[float] | None = None,
               target: Any = ...) -> SampleRecord:
        """The sample's record; `target` defaults to the task's gold answer as text."""
        sample = item.sample
        gold = self.task.target_text(sample) if target is ... else target
        return SampleRecord(self.task.suite.name, self.task.name, sample.sample_id, item.prompt, gold, response,
                            choices, logliks, scores, sample.source_id, sample.perturbation, extra)


class TaskKind(abc.ABC):
    """One kind of task. Subclasses set `name`, `needs` and (if any) `required`, and implement
    `make_requests` and `score` (or `score_one`, through `PerSampleKind`)."""

    name: ClassVar[str]
    needs: ClassVar[frozenset[Capability]] = frozenset()  # what its requests ask of a backend
    required: ClassVar[dict[str, str]] = {}  # TaskSpec field -> what the error calls it, when unset

    def capabilities(self, spec: TaskSpec) -> frozenset[Capability]:
        """What a task of this kind needs from a backend (a chat-templated task also needs the template)."""
        return self.needs | (frozenset({"chat_template"}) if spec.chat_template else frozenset())

    def check(self, spec: TaskSpec) -> None:
        """Raise KindCheckError for a spec this kind cannot run (missing fields, metrics of other kinds)."""
        try:
            # metrics an lm-eval task's own Python computes are not the registry's (harness.scoring.lmeval_results)
            metrics.check_metrics(self.name, [m for m in spec.metrics if m not in (spec.lmeval.custom if spec.lmeval
                                                                                   else {})])
        except ValueError as exc:
            raise KindCheckError("metrics", str(exc)) from None
        for field, what in self.required.items():
            if getattr(spec, field) is None:
                raise KindCheckError(field, f"a {self.name} task needs {what}")

    def chunk_size(self, batch_size: int) -> int:
        """Samples answered and committed together."""
        return batch_size

    @abc.abstractmethod
    def make_requests(self, task: Task, sample: Sample, prompt: str) -> list[Request]:
        """The requests that answer one sample; `prompt` is the final model input."""

    @abc.abstractmethod
    def score(self, ctx: ScoreContext) -> list[SampleRecord]:
        """One record per item of the context, in order."""


class PerSampleKind(TaskKind):
    """A kind whose samples are scored one at a time."""

    def score(self, ctx: ScoreContext) -> list[SampleRecord]:
        return [self.score_one(ctx, item) for item in ctx.items]

    @abc.abstractmethod
    def score_one(self, ctx: ScoreContext, item: Answered) -> SampleRecord: ...
