"""`tunegate train --set KEY=VALUE` (validated by the recipe's schema) and the plan `train --check` prints: the
held-out passes and their switch, and a time estimate from measured throughput (issue 28). No model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.train.estimate import TRAIN_PEFT_TPS, estimate
from harness.train.recipe import load_recipe, parse_overrides

ROOT = Path(__file__).resolve().parents[2]
LORA = ROOT / "adapters" / "lora.yaml"


def _check(capsys, *sets: str, code: int = 0) -> str:
    args = ["train", str(LORA), "--check"]
    for item in sets:
        args += ["--set", item]
    assert main(args) == code
    out, err = capsys.readouterr()
    if code:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        return lines[0]
    return out


def test_set_overrides_steps_learning_rate_and_output(tmp_path, capsys):
    out = _check(capsys, "steps=4", "lr=5e-5", f"output={tmp_path / 'try'}", "eval.held_out_loss=false")
    first = out.splitlines()[0]
    assert first.startswith("ok: ") and f"4 steps -> {tmp_path / 'try'}" in first
    assert "--set: train.max_steps=4, train.learning_rate=5e-05" in out
    assert "held-out loss: off (eval.held_out_loss: false)" in out
    spec = load_recipe(LORA, parse_overrides(["steps=4", "lr=5e-5"])).spec
    assert (spec.train.max_steps, spec.train.learning_rate) == (4, 5e-5)
    # the recipe as run is the output's identity: an override changes the hash provenance records
    assert load_recipe(LORA, parse_overrides(["steps=4"])).hash() != load_recipe(LORA).hash()


@pytest.mark.parametrize(("item", "said"), [
    ("train.max_step=4", "train.max_step: no such recipe field (did you mean train.max_steps?)"),
    ("steps=0", "train.max_steps=0: Input should be greater than or equal to 1"),
    ("lr=fast", "train.learning_rate='fast'"),
    ("train.beta=0.2", "train.beta is an option of methods dpo, grpo, kto, rloo, not of method sft"),
    ("steps", "write KEY=VALUE"),
])
def test_a_bad_override_is_one_line_naming_set(item, said, capsys):
    line = _check(capsys, item, code=2)
    assert line.startswith("tunegate: error: --set: ") and said in line, line


def test_check_states_the_held_out_passes_and_a_time_estimate(tmp_path, capsys):
    out = _check(capsys, f"output={tmp_path / 'a'}")
    assert ("held-out loss: 32 rows at step 0 and at the end, in padded batches of 32 sorted by length "
            "(eval.batch_size; eval.held_out_loss: false skips it)") in out
    out = _check(capsys, f"output={tmp_path / 'a'}", "eval.batch_size=8")
    assert "in padded batches of 8 sorted by length" in out
    assert "time: about " in out and "230 tokens/s" in out and "DESIGN.md's figures" in out


def test_the_estimate_uses_throughput_measured_by_earlier_runs(tmp_path, capsys):
    from harness.models.hf import HFBackend
    from harness.models.registry import resolve_model

    model_hash = HFBackend(resolve_model("smollm2-135m")).fingerprint()["model_hash"]
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "provenance.json").write_text(json.dumps({
        "base": {"model_hash": model_hash}, "peft_type": "lora", "tokens_per_second": 23.0,
        "held_out_seconds": 64.0, "held_out_rows": 32, "held_out_batch_size": 32}))
    out = _check(capsys, f"output={tmp_path / 'new'}")
    assert "at 23 tokens/s" in out and "measured by earlier runs on this machine (earlier)" in out
    assert "held-out loss 64 s" in out  # 1 s per row and pass, two passes of 32 rows
    # held-out seconds measured at another eval.batch_size say nothing of this one: the forward-pass figure
    out = _check(capsys, f"output={tmp_path / 'new'}", "eval.batch_size=4")
    assert "at 23 tokens/s" in out and "held-out loss 64 s" not in out


def test_estimate_arithmetic():
    est = estimate(steps=4, batch_size=8, grad_accum=1, full=False, tokens_per_row=100, held_out_rows=10,
                   held_out_passes=2)
    assert est.train_tokens == 3200 and est.train_seconds == pytest.approx(3200 / TRAIN_PEFT_TPS)
    assert est.held_out_seconds == pytest.approx(10 * 2 * 100 / 470)


@pytest.mark.slow
def test_training_shows_a_stage_line_from_the_first_second(tiny_model, tmp_path, capsys):
    """Stage lines with the time spent and, once the plan is known, the time left, before the bar moves."""
    from tests.unit.train_helpers import write_recipe

    recipe = write_recipe(tmp_path, "staged", tiny_model)
    assert main(["train", str(recipe), "--set", "steps=1"]) == 0
    err = capsys.readouterr().err
    stages = [line for line in err.splitlines() if line.startswith("tunegate: [")]
    assert stages[0].startswith("tunegate: [0:00] checking the recipe")
    assert any("tokenising the training rows" in line for line in stages)
    loading = next(line for line in stages if line.endswith("loading the model"))
    assert " left] " in loading or "about done] " in loading
    assert any("held-out loss at step 0" in line for line in stages)
    assert any(line.endswith(f"saving {tmp_path / 'staged'}") for line in stages)
