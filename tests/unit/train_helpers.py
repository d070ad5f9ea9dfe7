"""Shared helpers of the training tests: recipe files for the tiny model, and the provenance contract."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

PREFERENCES = Path(__file__).resolve().parents[2] / "adapters" / "data" / "preferences.jsonl"
# The keys the report and compare code read from provenance.json.
PROVENANCE_KEYS = ("method", "base", "recipe_hash", "data_hash", "library_versions", "seed", "train_seconds",
                   "tokens_per_second", "trainable_params", "total_params", "adapter_bytes", "peak_memory_mb",
                   "curve")


def write_recipe(folder: Path, name: str, base: Path | str, method: str = "sft", peft: dict | None = None,
                 **sections: object) -> Path:
    """A recipe YAML for 2 tiny steps; `sections` override or add top-level keys."""
    preference = method in ("reward_model", "dpo", "kto", "grpo", "rloo")
    policy = {"num_generations": 2, "max_completion_length": 6} if method in ("grpo", "rloo") else {}
    recipe: dict = {
        "base": str(base), "method": method, "peft": peft or {"type": "lora", "r": 4, "alpha": 8},
        "data": ({"file": str(PREFERENCES), "eval_fraction": 0.2, "limit": 16} if preference else
                 {"suites": ["basics"], "eval_fraction": 0.25}),
        "train": {"max_steps": 2, "batch_size": 4, "max_length": 96, **policy},  # GRPO/RLOO options only there
        "seed": 7,
    }
    recipe.update(sections)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def provenance(out: Path) -> dict:
    return json.loads((out / "provenance.json").read_text(encoding="utf-8"))
