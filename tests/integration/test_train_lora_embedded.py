"""LoRA on the real embedded model: trains on a train split, and the held-out loss falls.

Uses the first built-in domain suite present (medical, legal), else `basics` (whose capitals task has a
train split) until the domain suites land.
"""

from __future__ import annotations

from pathlib import Path

from harness.data.suite import builtin_roots
from harness.flows.evaluate import evaluate
from harness.run.engine import EvalSettings
from harness.train import train
from tests.unit.train_helpers import PROVENANCE_KEYS, provenance, write_recipe


def training_suite() -> str:
    for name in ("medical", "legal"):
        if any((root / name / "suite.yaml").is_file() for root in builtin_roots()):
            return name
    return "basics"


def test_lora_on_the_embedded_model_lowers_held_out_loss(tmp_path: Path) -> None:
    suite = training_suite()
    recipe = write_recipe(tmp_path, "lora-embedded", "smollm2-135m",
                          peft={"type": "lora", "r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]},
                          data={"suites": [suite], "eval_fraction": 0.25, "limit": 48, "eval_limit": 12},
                          train={"max_steps": 8, "batch_size": 4, "learning_rate": 1.0e-3, "max_length": 256})
    out = train(recipe, progress=False)
    prov = provenance(out)
    assert set(PROVENANCE_KEYS) <= set(prov) and prov["base"]["model"] == "smollm2-135m"
    losses = [p["eval_loss"] for p in prov["curve"] if "eval_loss" in p]
    assert len(losses) >= 2 and losses[-1] < losses[0], losses
    results = evaluate("smollm2-135m", [str(out)], [suite], None, EvalSettings(limit=4, progress=False))
    assert results[0]["model"]["adapter"]["method"] == "lora"
