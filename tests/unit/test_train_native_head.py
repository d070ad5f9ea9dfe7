"""On a CPU, SFT's loss comes from the model's own LM head (harness.train.held_out): the same loss, gradients and
logged metrics as TRL's fused, chunked head, which without Triton runs a slow torch fallback."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.unit.test_train_packing import _context


def _loss_and_grads(trainer, batch: dict, native: bool, items: torch.Tensor) -> tuple[float, dict, dict]:
    trainer._native_head = native
    trainer._metrics["train"].clear()
    model = trainer.model
    model.train()
    model.zero_grad()
    loss = trainer.compute_loss(model, {k: v for k, v in batch.items()}, num_items_in_batch=items)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items() if k in ("entropy", "mean_token_accuracy")}
    return loss.item(), grads, metrics


@pytest.mark.parametrize("peft", [{"type": "lora", "r": 4, "alpha": 8},  # packed rows, position_ids
                                  {"type": "prompt_tuning", "num_virtual_tokens": 4}])  # padded, virtual tokens
def test_the_native_head_gives_trls_loss_gradients_and_metrics(tiny_model: Path, tmp_path: Path, peft: dict) -> None:
    from harness.train.sft import build_trainer

    trainer = build_trainer(_context(tiny_model, tmp_path, peft))
    assert trainer._native_head  # a CPU, the plain next-token loss
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    items = (batch["labels"] != -100).sum() * 3  # as part of an accumulated step of several batches
    fused = _loss_and_grads(trainer, batch, False, items)
    native = _loss_and_grads(trainer, batch, True, items)
    assert native[0] == pytest.approx(fused[0], abs=1e-5) and native[0] > 0
    assert native[1].keys() == fused[1].keys() and native[1]
    for name, grad in native[1].items():
        torch.testing.assert_close(grad, fused[1][name], atol=1e-5, rtol=1e-4)
    assert native[2].keys() == {"entropy", "mean_token_accuracy"} == fused[2].keys()
    for key, value in native[2].items():
        assert value == pytest.approx(fused[2][key], abs=1e-4)

