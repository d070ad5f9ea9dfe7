"""provenance.json and training_curve.json: where an adapter came from and what it cost.

The report and compare code read exactly these keys: method, base{model, model_hash, tokenizer_hash},
recipe_hash, data_hash, library_versions, seed, train_seconds, tokens_per_second, trainable_params,
total_params, adapter_bytes, peak_memory_mb, curve.
"""

from __future__ import annotations

import json
import resource
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.models.adapters import NON_WEIGHT_FILES

LIBRARIES = ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "tunegate")
PROVENANCE = "provenance.json"
CURVE = "training_curve.json"
CURVE_KEYS = ("loss", "eval_loss", "learning_rate", "grad_norm", "eval_accuracy", "eval_margin")


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def peak_memory_mb() -> float:
    """Peak resident memory of this process (and the accelerator's peak when there is one), in MiB."""
    import torch

    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB


def adapter_bytes(out: Path) -> int:
    """Bytes of the files that change answers (weights and configs; not the card or provenance)."""
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and p.name not in NON_WEIGHT_FILES
               and "merged" not in p.relative_to(out).parts)


def curve_from_logs(log_history: list[dict[str, Any]], evals: dict[int, dict[str, float]]) -> list[dict[str, Any]]:
    """One point per step: the trainer's loss / eval_loss logs merged with the suite scores of that step."""
    points: dict[int, dict[str, Any]] = {}
    for entry in log_history:
        step = int(entry.get("step", 0))
        values = {k: float(v) for k, v in entry.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool) and _on_curve(k)}
        if values:
            points.setdefault(step, {"step": step}).update(values)
    for step, scores in evals.items():
        points.setdefault(step, {"step": step}).update(scores)
    return [points[s] for s in sorted(points)]


def _on_curve(key: str) -> bool:
    # Suite scores come from the callback's own record (unprefixed); the rest is the trainer's loss family.
    return key in CURVE_KEYS or key.startswith(("rewards/", "reward"))


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def read_provenance(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / PROVENANCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
