"""Cost figures of a run, for the reports and the terminal: evaluation timing, and for adapters the training
provenance (trainable parameters, adapter size, training time and throughput, the loss curve). Only the
reports use them, so they live here and not in the comparison."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.data.runs import Run


@dataclass
class Efficiency:
    """Cost figures of one run: evaluation timing plus training provenance when present."""

    label: str
    method: str
    wall_seconds: float | None = None
    tokens_per_second: float | None = None
    tokens_processed: int | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    train_seconds: float | None = None
    train_tokens_per_second: float | None = None
    adapter_bytes: int | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)




def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def efficiency(run: Run) -> Efficiency:
    """Timing of the evaluation and, for adapters, the training provenance."""
    timing = run.results.get("timing") or {}
    prov = run.provenance
    adapter_bytes = _num(prov.get("adapter_bytes"))
    trainable, total = _num(prov.get("trainable_params")), _num(prov.get("total_params"))
    raw_curve = prov.get("curve")
    curve: list[Any] = raw_curve if isinstance(raw_curve, list) else []
    tokens = _num(timing.get("tokens_processed"))
    return Efficiency(
        label=run.label, method=run.method,
        wall_seconds=_num(timing.get("wall_seconds")), tokens_per_second=_num(timing.get("tokens_per_second")),
        tokens_processed=int(tokens) if tokens is not None else None,
        trainable_params=int(trainable) if trainable is not None else None,
        total_params=int(total) if total is not None else None,
        train_seconds=_num(prov.get("train_seconds")), train_tokens_per_second=_num(prov.get("tokens_per_second")),
        adapter_bytes=int(adapter_bytes) if adapter_bytes is not None else None,
        curve=[p for p in curve if isinstance(p, dict) and _num(p.get("step")) is not None])


def run_costs(baseline: Run, candidate: Run) -> tuple[Efficiency, Efficiency]:
    """The cost figures of both sides of a comparison."""
    return efficiency(baseline), efficiency(candidate)
