"""How far PEFT's merge-then-unmerge moves a base model: the drift tunegate's exact restore avoids.

Run: `.venv/bin/python benchmarks/measure_unmerge_drift.py`. It prints the figures quoted in DESIGN.md
("Adapters leave the base exactly as it was"). A 2-layer fp32 Llama from a config, adapters with
non-trivial weights (an initialised IA3 or LoRA adapter is the identity, which would hide the drift).
"""

from __future__ import annotations

import copy

import torch
from peft import IA3Config, LoraConfig, PeftConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

CONFIG = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=4)
ADAPTERS: dict[str, PeftConfig] = {
    "ia3": IA3Config(task_type="CAUSAL_LM", target_modules=["k_proj", "v_proj", "down_proj"],
                     feedforward_modules=["down_proj"], init_ia3_weights=False),
    "lora": LoraConfig(task_type="CAUSAL_LM", r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
}


def drift(config: PeftConfig, ids: torch.Tensor) -> tuple[float, float]:
    """Largest change of a base weight, and of a log-probability, after merge, unmerge and unload."""
    base = LlamaForCausalLM(CONFIG).eval()
    before = copy.deepcopy(base.state_dict())
    with torch.no_grad():
        logp_before = torch.log_softmax(base(ids).logits, -1)
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "ia3_l" in name:  # IA3 vectors start at 1 (the identity): scale them away from it
                param.mul_(torch.empty_like(param).uniform_(0.5, 1.5))
    model.merge_adapter()
    model.unmerge_adapter()
    after = model.unload()
    weight = max((after.state_dict()[k] - v).abs().max().item() for k, v in before.items())
    with torch.no_grad():
        logp_after = torch.log_softmax(after(ids).logits, -1)
    return weight, (logp_after - logp_before).abs().max().item()


def main() -> None:
    torch.manual_seed(0)
    ids = torch.randint(0, CONFIG.vocab_size, (4, 32))
    for name, config in ADAPTERS.items():
        weight, logp = drift(config, ids)
        print(f"{name}: largest base-weight change after merge+unmerge {weight:.2e}; "
              f"largest log-probability change {logp:.2e}")


if __name__ == "__main__":
    main()
