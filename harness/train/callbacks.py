"""Evaluation during training: the recipe's suites through the same engine as `tunegate eval`.

Every `every_steps` steps and at the end, the model being trained is wrapped in an `HFBackend` (the
backend's model slots point at the live model, so nothing is copied or reloaded) and run by
`harness.run.engine.run_variant`. Its scores are logged next to the loss.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from harness.data.suite import Suite
from harness.models.hf import HFBackend
from harness.models.registry import ModelSource
from harness.run.engine import EvalSettings, run_variant
from harness.storage.store import Store


class _LiveBackend(HFBackend):
    """An HFBackend over a model that is still training; each evaluation gets its own fingerprint."""

    tag: str = ""

    def fingerprint(self) -> dict[str, Any]:
        # Weights change between steps, so the cache must never serve one step's answers to another.
        return {**super().fingerprint(), "training_snapshot": self.tag}


def flat_scores(results: dict[str, Any]) -> dict[str, float]:
    """`suite/task/metric -> value` for every task metric, plus pooled `suite/metric`."""
    out: dict[str, float] = {}
    for suite_name, suite in results["suites"].items():
        for task_name, task in suite["tasks"].items():
            for metric, m in task.get("metrics", {}).items():
                out[f"{suite_name}/{task_name}/{metric}"] = float(m["value"])
    return out


class SuiteEvalCallback(TrainerCallback):
    """Runs the suites every `every_steps` steps (when set) and at the end of training."""

    def __init__(self, source: ModelSource, tokenizer: Any, suites: list[Suite], every_steps: int | None,
                 limit: int | None, model_spec: str) -> None:
        self.source, self.tokenizer, self.suites = source, tokenizer, suites
        self.every, self.limit, self.model_spec = every_steps, limit, model_spec
        self.scores: dict[int, dict[str, float]] = {}
        self.last_results: dict[str, Any] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="tunegate-train-eval-")
        self._run = uuid.uuid4().hex[:12]

    def evaluate(self, model: Any, step: int) -> dict[str, float]:
        """Score `model` on the suites now; the scores are kept under `step`."""
        was_training = model.training
        backend = _LiveBackend(self.source, batch_size=16)
        backend.tag = f"{self._run}/{step}"
        backend._model = backend._active = model
        backend._tokenizer = self.tokenizer
        padding_side = self.tokenizer.padding_side
        store = Store(Path(self._dir.name) / "store.sqlite")
        try:
            settings = EvalSettings(limit=self.limit, progress=False, batch_size=16)
            results, _ = run_variant(backend, self.suites, store, settings, self.model_spec)
        finally:
            store.close()
            self.tokenizer.padding_side = padding_side  # generation switches it to left
            model.train(was_training)
        self.last_results = results
        self.scores[step] = flat_scores(results)
        return self.scores[step]

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.every and state.global_step % self.every == 0 and state.is_world_process_zero:
            self._log(state, self.evaluate(model, state.global_step))

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if state.global_step not in self.scores and state.is_world_process_zero:
            self._log(state, self.evaluate(model, state.global_step))
        self._dir.cleanup()

    @staticmethod
    def _log(state: Any, scores: dict[str, float]) -> None:
        state.log_history.append({"step": state.global_step, **{f"eval_{k}": v for k, v in scores.items()}})
