"""SFT's held-out loss runs in padded, length-sorted batches of eval.batch_size, and batching changes no figure.

The reference is each held-out row run alone (no padding, no batch): the summed negative log-likelihood of its
completion tokens, over all rows, divided by their count. The trainer's figure at batch sizes 1, 3 and 32 must
be that number (float tolerance), on the tiny model with CPU training's default (packed training rows).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.unit.train_helpers import write_recipe

WORDS = "the capital of France is Paris and a quick brown fox jumps over the lazy dog".split()


def _rows(path: Path) -> Path:
    """22 prompt/completion rows of many lengths (11 held out), so batches pad."""
    rows = [{"prompt": " ".join(WORDS[:3 + i % 9]) + "?", "completion": " " + " ".join(WORDS[i % 5:i % 5 + 1 + i % 7])}
            for i in range(22)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _trainer(tiny_model: Path, tmp_path: Path, batch_size: int):
    from harness.models.registry import resolve_model
    from harness.train.common import Context, load_tokenizer
    from harness.train.data import load_rows
    from harness.train.recipe import load_recipe
    from harness.train.sft import build_trainer

    data = _rows(tmp_path / "rows.jsonl")
    recipe = load_recipe(write_recipe(tmp_path / f"b{batch_size}", "sft", tiny_model,
                                      data={"file": str(data), "eval_fraction": 0.5},
                                      eval={"batch_size": batch_size}))
    source = resolve_model(recipe.spec.base)
    tokenizer = load_tokenizer(source)
    ctx = Context(recipe, source, tokenizer, load_rows(recipe, tokenizer), tmp_path / "work", progress=False)
    return build_trainer(ctx)


def _reference_loss(trainer) -> float:
    """Every held-out row alone: summed NLL of its scored tokens over all rows, divided by their number."""
    model = trainer.model.eval()
    nll, tokens = 0.0, 0
    with torch.no_grad():
        for row in trainer.eval_dataset:
            ids = torch.tensor([row["input_ids"]])
            labels = torch.tensor(row["labels"])
            logits = model(input_ids=ids, use_cache=False).logits[0]
            scored = labels[1:] != -100
            nll += torch.nn.functional.cross_entropy(logits[:-1][scored], labels[1:][scored], reduction="sum").item()
            tokens += int(scored.sum())
    assert tokens > 0
    return nll / tokens


@pytest.fixture(scope="module")
def held_out_losses(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[float, object]]:
    tmp = tmp_path_factory.mktemp("held-out")
    out = {}
    for size in (1, 3, 32):
        trainer = _trainer(tiny_model, tmp, size)
        out[size] = (trainer.evaluate()["eval_loss"], trainer)
    return out


def test_held_out_loss_is_the_same_number_at_any_batch_size(held_out_losses: dict) -> None:
    reference = _reference_loss(held_out_losses[1][1])
    for size, (loss, _) in held_out_losses.items():
        assert loss == pytest.approx(reference, rel=1e-5, abs=1e-5), size


def test_held_out_rows_run_padded_longest_first_while_training_rows_stay_packed(held_out_losses: dict) -> None:
    trainer = held_out_losses[3][1]
    assert trainer.args.packing and trainer.args.per_device_eval_batch_size == 3  # CPU training packs
    rows = trainer.eval_dataset
    assert len(rows) == 11 and "seq_lengths" not in rows.column_names  # one example per row: not packed
    batches = list(trainer.get_eval_dataloader())
    assert [len(b["input_ids"]) for b in batches] == [3, 3, 3, 2]
    widths = [b["input_ids"].shape[1] for b in batches]
    assert widths == sorted(widths, reverse=True) and widths[0] == max(len(ids) for ids in rows["input_ids"])
    for batch in batches:  # padded to the batch's longest row; padding is masked out of attention and of the loss
        pad = batch["attention_mask"] == 0
        assert (batch["labels"][pad] == -100).all()
        assert batch["attention_mask"].sum(1).max() == batch["input_ids"].shape[1]
    assert "position_ids" not in batches[0]  # not the padding-free collator training uses
    train_batch = next(iter(trainer.get_train_dataloader()))
    assert "attention_mask" not in train_batch and train_batch["input_ids"].shape[0] == 1
