"""Houlsby bottleneck adapters: down-project, nonlinearity, up-project, plus a residual.

One adapter sits on the output of each decoder layer's attention sublayer and MLP sublayer (after the
output projection, before the layer's own residual add, as in Houlsby et al. 2019). PEFT 0.21 has no such
method and AdapterHub pins an older transformers, so this module gives the same behaviour as a PEFT
adapter: the base is frozen, only adapter weights train, `save` writes `adapter_config.json` (peft_type
TUNEGATE_BOTTLENECK) plus `adapter_model.safetensors` holding only the adapter weights, and
`attach`/`detach` are what `harness.models.adapters` calls for custom types.

The adapters hang off the sublayers as submodules (so they move with `.to()`, appear in
`named_parameters()` and are seen by optimizers and DDP) and act through forward hooks, so the base's own
module tree and state-dict keys stay untouched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

PEFT_TYPE = "TUNEGATE_BOTTLENECK"
MODULE = "harness.models.bottleneck"
ADAPTER_ATTR = "tunegate_bottleneck"
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
DEFAULT_TARGETS = ("self_attn", "mlp")
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class Bottleneck(nn.Module):
    """h + up(act(down(h))); `up` starts at zero so a fresh adapter is the identity."""

    def __init__(self, hidden: int, size: int, non_linearity: str = "relu") -> None:
        super().__init__()
        self.down = nn.Linear(hidden, size)
        self.act = ACTIVATIONS[non_linearity]()
        self.up = nn.Linear(size, hidden)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.act(self.down(hidden)))


def _hook(module: nn.Module, args: Any, output: Any) -> Any:
    adapter = getattr(module, ADAPTER_ATTR)
    if isinstance(output, tuple):  # attention returns (hidden, weights)
        return (adapter(output[0]),) + tuple(output[1:])
    return adapter(output)


def _sublayers(model: Any, targets: tuple[str, ...]) -> list[tuple[str, nn.Module]]:
    """The attention/MLP sublayers of every decoder layer, by their short names."""
    found = [(name, mod) for name, mod in model.named_modules() if name.split(".")[-1] in targets
             and ".layers." in f".{name}"]
    if not found:
        raise ValueError(f"bottleneck target sublayers {list(targets)} match no module of the model")
    return found


def add_adapters(model: Any, size: int = 16, non_linearity: str = "relu",
                 targets: tuple[str, ...] = DEFAULT_TARGETS) -> nn.Module:
    """Insert fresh adapters and freeze everything else, as `get_peft_model` does; returns the model."""
    hidden = model.config.hidden_size
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    for param in model.parameters():
        param.requires_grad_(False)
    handles = []
    for _, sub in _sublayers(model, targets):
        setattr(sub, ADAPTER_ATTR, Bottleneck(hidden, size, non_linearity).to(device=device, dtype=dtype))
        handles.append(sub.register_forward_hook(_hook))
    model._tunegate_handles = handles
    model.tunegate_adapter_module = MODULE
    model.tunegate_bottleneck_config = {"peft_type": PEFT_TYPE, "bottleneck_size": size,
                                        "non_linearity": non_linearity, "target_modules": list(targets),
                                        "hidden_size": hidden}
    return model


def adapter_state(model: Any) -> dict[str, torch.Tensor]:
    """Only the adapter weights, keyed as in the model's state dict."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if f".{ADAPTER_ATTR}." in k}


def trainable_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts, as PEFT's `get_nb_trainable_parameters`."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


def save(model: Any, out: Path, base_name: str | None = None) -> None:
    """Write adapter_config.json and adapter_model.safetensors (adapter weights only)."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    config = {**model.tunegate_bottleneck_config, "base_model_name_or_path": base_name}
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    save_file(adapter_state(model), str(out / WEIGHTS_FILE), metadata={"format": "pt"})


def attach(model: Any, path: Path) -> nn.Module:
    """Load a saved adapter onto a base model (in place) and return it, frozen and ready to evaluate."""
    from safetensors.torch import load_file

    config = json.loads((Path(path) / CONFIG_FILE).read_text(encoding="utf-8"))
    if config.get("hidden_size") not in (None, model.config.hidden_size):
        raise ValueError(f"bottleneck adapter made for hidden size {config['hidden_size']}, "
                         f"base has {model.config.hidden_size}")
    add_adapters(model, config["bottleneck_size"], config.get("non_linearity", "relu"),
                 tuple(config.get("target_modules") or DEFAULT_TARGETS))
    weights = load_file(str(Path(path) / WEIGHTS_FILE))
    expected = set(adapter_state(model))
    if set(weights) != expected:
        detach(model)
        raise ValueError(f"bottleneck weights do not match the base ({len(weights)} tensors saved, "
                         f"{len(expected)} expected)")
    model.load_state_dict(weights, strict=False)
    return model


def detach(model: Any) -> nn.Module:
    """Remove the adapters and hooks; the base's own parameters are left as they were."""
    for handle in getattr(model, "_tunegate_handles", []):
        handle.remove()
    for _, sub in list(model.named_modules()):
        if hasattr(sub, ADAPTER_ATTR):
            delattr(sub, ADAPTER_ATTR)
    for attr in ("_tunegate_handles", "tunegate_adapter_module", "tunegate_bottleneck_config"):
        if hasattr(model, attr):
            delattr(model, attr)
    return model
