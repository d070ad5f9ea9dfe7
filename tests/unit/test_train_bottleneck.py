"""Houlsby bottleneck adapters: PEFT-like trainable parameters, save/load to identical logits, clean detach."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from harness.models import bottleneck
from harness.models.adapters import attach, detach, inspect_adapter


def load(path: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).eval()


def logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_only_adapter_weights_train(tiny_model: Path) -> None:
    model = bottleneck.add_adapters(load(tiny_model), size=4)
    trainable, total = bottleneck.trainable_parameters(model)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    layers = model.config.num_hidden_layers
    assert len(names) == layers * 2 * 4  # attention + MLP adapter per layer, each down/up weight + bias
    assert all(".tunegate_bottleneck." in n for n in names)
    hidden = model.config.hidden_size
    assert trainable == layers * 2 * (hidden * 4 + 4 + 4 * hidden + hidden) < total


def test_fresh_adapter_is_the_identity(tiny_model: Path) -> None:
    ids = torch.tensor([[1, 5, 9, 14, 3]])
    expected = logits(load(tiny_model), ids)
    assert torch.equal(logits(bottleneck.add_adapters(load(tiny_model), size=4), ids), expected)


def test_saved_adapter_reloads_to_identical_logits(tiny_model: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = bottleneck.add_adapters(load(tiny_model), size=4, non_linearity="gelu")
    for param in model.parameters():
        if param.requires_grad:  # as after training: the up-projection is no longer zero
            param.data.normal_(0, 0.2)
    ids = torch.tensor([[1, 5, 9, 14, 3, 7]])
    trained = logits(model, ids)
    bottleneck.save(model, tmp_path / "bn", "tiny")
    config = json.loads((tmp_path / "bn" / "adapter_config.json").read_text())
    assert config["peft_type"] == "TUNEGATE_BOTTLENECK" and config["bottleneck_size"] == 4
    info = inspect_adapter(tmp_path / "bn")
    base = load(tiny_model)
    base_logits = logits(base, ids)
    assert not torch.allclose(trained, base_logits)
    reloaded = attach(base, info, {"model": "tiny"})  # the path `tunegate eval -a` takes
    assert torch.equal(logits(reloaded, ids), trained)
    bare = detach(reloaded)
    assert torch.equal(logits(bare, ids), base_logits)
    assert not any("tunegate_bottleneck" in n for n, _ in bare.named_parameters())


def test_adapter_for_another_hidden_size_is_refused(tiny_model: Path, other_tiny_model: Path, tmp_path: Path) -> None:
    import pytest

    from harness.core.api import UserError

    bottleneck.save(bottleneck.add_adapters(load(tiny_model), size=4), tmp_path / "bn")
    with pytest.raises(UserError, match="does not fit"):
        attach(load(other_tiny_model), inspect_adapter(tmp_path / "bn"), {"model": "other"})
