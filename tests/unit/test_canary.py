"""An adapter that changes nothing is reported loudly (issue 27): a zero-initialised LoRA on a tiny model
built from a config scores the canary prompts exactly as the base does, the eval says so on stderr and
in results.json, and the gate says its comparison is of the base with itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.models import load_backend
from harness.run import canary
from tests.conftest import MC_ROWS, MC_TASK, write_suite


@pytest.fixture(scope="module")
def zero_lora(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA as PEFT initialises it: B = 0, so B·A adds nothing (an adapter saved before any step)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    out = tmp_path_factory.mktemp("zero") / "zero-lora"
    model.save_pretrained(out)
    return out


def test_compare_is_exact_equality_up_to_the_tolerance() -> None:
    assert canary.compare([-1.0, -2.0], [-1.0, -2.0]) == {
        "active": False, "max_abs_diff": 0.0, "n_prompts": len(canary.CANARY_REQUESTS), "tolerance": canary.TOLERANCE}
    assert canary.compare([-1.0, -2.0], [-1.0, -2.5])["active"] is True
    assert canary.compare([-1.0], [-1.0 + canary.TOLERANCE / 2])["active"] is False


def test_zero_lora_is_inactive_and_a_trained_one_is_active(tiny_model: Path, zero_lora: Path,
                                                           lora_adapter: Path) -> None:
    backend = load_backend(str(tiny_model))
    zero = canary.check_adapter(backend, str(zero_lora))
    assert zero is not None and zero["active"] is False and zero["max_abs_diff"] <= canary.TOLERANCE
    assert backend.adapter is not None and backend.adapter.name == "zero-lora"  # left set for its run
    trained = canary.check_adapter(backend, str(lora_adapter))
    assert trained is not None and trained["active"] is True and trained["max_abs_diff"] > 1e-3
    assert canary.inactive_message("tiny-lora", trained) is None
    assert "changes nothing" in (canary.inactive_message("zero-lora", zero) or "")


def test_eval_warns_loudly_and_the_gate_says_it_compares_the_base_with_itself(
        tiny_model: Path, zero_lora: Path, lora_adapter: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    suite = write_suite(tmp_path / "suite", MC_TASK, {"data/mc.jsonl": MC_ROWS})
    out = tmp_path / "sweep"
    code = main(["eval", "-m", str(tiny_model), "-a", str(zero_lora), "-a", str(lora_adapter), "--include-base",
                 "-s", str(suite), "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 0
    assert "WARNING: adapter zero-lora changes nothing" in err and "tiny-lora changes nothing" not in err
    zero = json.loads((out / "zero-lora" / "results.json").read_text())["model"]["adapter_check"]
    lora = json.loads((out / "tiny-lora" / "results.json").read_text())["model"]["adapter_check"]
    assert zero["active"] is False and lora["active"] is True
    assert "adapter_check" not in json.loads((out / "base" / "results.json").read_text())["model"]

    gate = tmp_path / "gate.yaml"
    gate.write_text("rules:\n  - {suite: t, non_inferiority: 0.05}\n")
    main(["gate", str(gate), "--baseline", str(out / "base"), "--candidate", str(out / "zero-lora"),
          "--verdict", str(tmp_path / "v.json")])
    shown = capsys.readouterr().out
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert len(verdict["warnings"]) == 1 and "compares the base with itself" in verdict["warnings"][0]
    assert "WARNING: the candidate's adapter zero-lora changes nothing" in shown
    main(["gate", str(gate), "--baseline", str(out / "base"), "--candidate", str(out / "tiny-lora"),
          "--verdict", str(tmp_path / "v2.json")])
    assert json.loads((tmp_path / "v2.json").read_text())["warnings"] == []
