"""Switching adapters on one loaded base leaves the base bit for bit as it was, for every adapter type."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.api import GenSettings, Request
from harness.models import load_backend
from tests.conftest import MC_ROWS

REQUESTS = [Request("loglikelihood", f"Question: {r['q']}\nAnswer:", tuple(" " + o for o in r["opts"]))
            for r in MC_ROWS[:4]]
PROMPTS = [Request("generate", f"Question: {r['q']}\nAnswer:", gen=GenSettings(max_new_tokens=4)) for r in MC_ROWS[:2]]
ORDER = ["lora", "ia3", "prompt_tuning", "prefix_tuning", "bottleneck"]


def _randomise(model, kind: str) -> None:
    """Trained-looking adapter weights, so every adapter changes answers (fresh ones are the identity)."""
    import torch

    torch.manual_seed(11)
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if kind == "ia3":
            param.data = 1 + 0.3 * torch.randn_like(param)
        elif kind == "lora" and "lora_A" in name:
            continue
        else:
            param.data.normal_(0, 0.3)


@pytest.fixture(scope="module")
def adapters(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from peft import IA3Config, LoraConfig, PrefixTuningConfig, PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from harness.models import bottleneck

    configs = {
        "lora": LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
        "ia3": IA3Config(target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"]),
        "prompt_tuning": PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
        "prefix_tuning": PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
    }
    root = tmp_path_factory.mktemp("switching")
    out = {}
    for kind, config in configs.items():
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), config)
        _randomise(model, kind)
        model.save_pretrained(root / kind)
        out[kind] = root / kind
    model = bottleneck.add_adapters(AutoModelForCausalLM.from_pretrained(tiny_model), size=4)
    _randomise(model, "bottleneck")
    bottleneck.save(model, root / "bottleneck")
    out["bottleneck"] = root / "bottleneck"
    return out


def _answers(backend) -> tuple[list[list[float]], list[str | None]]:
    return [r.logliks for r in backend.loglikelihood(REQUESTS)], [r.text for r in backend.generate(PROMPTS)]


def test_the_base_is_restored_bit_for_bit_after_each_adapter_type(tiny_model: Path, adapters: dict[str, Path]) -> None:
    import torch

    backend = load_backend(str(tiny_model))
    base = backend.model
    pristine = {k: v.clone() for k, v in base.state_dict().items()}
    reference = _answers(backend)
    for kind in ORDER:
        backend.set_adapter(str(adapters[kind]))
        assert _answers(backend)[0] != reference[0], f"{kind} should change the answers"
        backend.set_adapter(None)
        assert backend.model is base
        state = base.state_dict()
        assert set(state) == set(pristine), kind
        changed = [k for k in pristine if not torch.equal(state[k], pristine[k])]
        assert not changed, f"{kind} left the base changed: {changed[:3]}"
    assert _answers(backend) == reference  # exactly, not approximately


def test_an_adapter_answers_the_same_whatever_came_before(tiny_model: Path, adapters: dict[str, Path]) -> None:
    """What a sweep gives an adapter equals what it gets alone on a freshly loaded base, exactly."""
    alone = {}
    for kind in ORDER:
        backend = load_backend(str(tiny_model))
        backend.set_adapter(str(adapters[kind]))
        alone[kind] = _answers(backend)
    sweep = load_backend(str(tiny_model))
    for kind in ORDER + ["lora", "ia3"]:  # LoRA and IA3 again, after every other type
        sweep.set_adapter(str(adapters[kind]))
        assert _answers(sweep) == alone[kind], kind
