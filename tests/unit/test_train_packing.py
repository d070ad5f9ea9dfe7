"""SFT packing: examples packed into one row never attend to each other, and CPU training packs by default.

transformers (5.x) turns position_ids that restart at each example, with no attention mask, into a
block-diagonal causal mask on SDPA and eager (`masking_utils.find_packed_sequence_indices`), but only when
the forward runs without a cache: with `use_cache` on (the config default) the mask is plain causal and the
examples see each other. SFTTrainer.compute_loss passes `use_cache=False`; the tests do too, and the
trainer test goes through compute_loss itself. These tests run
the real chain (TRL's best-fit-decreasing packing and collator, the tiny model) and check the result against
each example run alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.unit.train_helpers import write_recipe

LENGTHS = (7, 19, 4, 11)  # four examples, packed into one row of 41 tokens


def packed_batch(examples: list[list[int]], max_length: int, pad_token_id: int) -> dict:
    """What SFTTrainer feeds per forward with packing: TRL's bfd packing, then its padding-free collator."""
    from datasets import Dataset
    from trl.data_utils import pack_dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    packed = pack_dataset(Dataset.from_dict({"input_ids": examples}), max_length, "bfd")
    assert len(packed) == 1  # all of them in one row
    collator = DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=True)
    return collator([packed[0]])


def segments(position_ids: torch.Tensor) -> list[tuple[int, int]]:
    starts = (position_ids[0] == 0).nonzero().flatten().tolist() + [position_ids.shape[1]]
    return list(zip(starts[:-1], starts[1:]))


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_row_gives_each_example_the_logits_and_loss_it_has_alone(tiny_model: Path, attn: str) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32, attn_implementation=attn).eval()
    gen = torch.Generator().manual_seed(0)
    examples = [torch.randint(3, model.config.vocab_size, (n,), generator=gen).tolist() for n in LENGTHS]
    batch = packed_batch(examples, 64, model.config.pad_token_id)
    assert "attention_mask" not in batch and batch["input_ids"].shape == (1, sum(LENGTHS))
    spans = segments(batch["position_ids"])
    assert sorted(end - start for start, end in spans) == sorted(LENGTHS)
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        # Control: the same row read as one sequence (positions not restarting) lets examples see each other.
        joined = model(input_ids=batch["input_ids"], use_cache=False).logits[0]
        for start, end in spans:
            ids = batch["input_ids"][:, start:end]
            alone = model(input_ids=ids, use_cache=False).logits[0]
            torch.testing.assert_close(packed[start:end], alone, atol=1e-4, rtol=0)
            loss_packed = torch.nn.functional.cross_entropy(packed[start:end - 1], ids[0, 1:])
            loss_alone = model(input_ids=ids, labels=ids, use_cache=False).loss
            assert abs(loss_packed.item() - loss_alone.item()) < 1e-4
        later = spans[1][0]  # the second example: in the joined reading it sees the first
        assert (joined[later:spans[1][1]] - packed[later:spans[1][1]]).abs().max() > 1e-3


def _context(tiny_model: Path, tmp_path: Path, peft: dict, **train: object):
    from harness.models.registry import resolve_model
    from harness.train.common import Context, load_tokenizer
    from harness.train.data import load_rows
    from harness.train.recipe import load_recipe

    settings = {"max_steps": 2, "batch_size": 4, "max_length": 96, **train}
    recipe = load_recipe(write_recipe(tmp_path, "sft", tiny_model, peft=peft, train=settings))
    source = resolve_model(recipe.spec.base)
    tokenizer = load_tokenizer(source)
    return Context(recipe, source, tokenizer, load_rows(recipe, tokenizer), tmp_path / "work", progress=False)


def test_cpu_sft_trains_lora_on_packed_rows_that_keep_examples_apart(tiny_model: Path, tmp_path: Path) -> None:
    from harness.train.sft import build_trainer

    ctx = _context(tiny_model, tmp_path, {"type": "lora", "r": 4, "alpha": 8})
    trainer = build_trainer(ctx)
    args = trainer.args
    assert args.packing and args.packing_strategy == "bfd" and args.per_device_train_batch_size == 1
    # Rows hold several examples each, so fewer rows than batch_size make an optimizer step.
    assert len(trainer.train_dataset) < len(ctx.data.train)
    assert 1 <= args.gradient_accumulation_steps < ctx.hp.batch_size
    batch = next(iter(trainer.get_train_dataloader()))
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1
    assert batch["input_ids"].shape[1] <= ctx.hp.max_length
    spans = segments(batch["position_ids"])
    assert len(spans) > 1  # a packed row, not a single example
    assert (batch["labels"] != -100).any()
    model = trainer.model.eval()
    batch = {k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    ids, labels = batch["input_ids"], batch["labels"]
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=batch["position_ids"], use_cache=False).logits[0]
        alone = torch.cat([model(input_ids=ids[:, start:end], use_cache=False).logits[0] for start, end in spans])
        torch.testing.assert_close(packed, alone, atol=1e-4, rtol=0)
        # The loss the trainer computes on the packed row is the loss of the examples run alone: no example's
        # first token is predicted from the one before it (its label is masked), nothing attends across.
        assert (labels[0, [start for start, _ in spans]] == -100).all()
        loss = trainer.compute_loss(model, dict(batch))
        expected = torch.nn.functional.cross_entropy(alone[:-1], labels[0, 1:], ignore_index=-100)
        assert abs(loss.item() - expected.item()) < 1e-4
    trainer.train()
    assert trainer.state.global_step == 2 and trainer.state.num_input_tokens_seen > 0


@pytest.mark.parametrize(("peft", "train", "expect"), [
    # PEFT drops position_ids: padded batches, on a CPU one example per forward (no pads), 4 per step
    ({"type": "prompt_tuning", "num_virtual_tokens": 4}, {}, (False, False, 1, 4)),
    ({"type": "lora", "r": 4, "alpha": 8}, {"packing": False}, (True, False, 4, 1)),  # recipe asks padding-free
    ({"type": "lora", "r": 4, "alpha": 8}, {"packing": False, "padding_free": False}, (False, False, 4, 1)),
])
def test_batching_follows_method_and_recipe(tiny_model: Path, tmp_path: Path, peft: dict, train: dict,
                                            expect: tuple) -> None:
    from harness.train.sft import build_trainer

    trainer = build_trainer(_context(tiny_model, tmp_path, peft, **train))
    args = trainer.args
    assert (args.padding_free, args.packing, args.per_device_train_batch_size,
            args.gradient_accumulation_steps) == expect


def test_prompt_tuning_one_example_per_forward_takes_the_padded_batchs_step(tiny_model: Path,
                                                                            tmp_path: Path) -> None:
    # The same four examples per optimizer step, and the same loss: transformers normalises the accumulated
    # micro-batches' loss over all their tokens, as the padded batch's mean over its unpadded tokens
    from harness.train.sft import Batching, build_trainer

    peft = {"type": "prompt_tuning", "num_virtual_tokens": 4}
    losses, prompts = [], []
    for batching in (Batching(False, False, 4, 1), Batching(False, False, 1, 4)):
        ctx = _context(tiny_model, tmp_path / str(batching.batch_size), peft, max_steps=1)
        trainer = build_trainer(ctx, batching=batching)
        assert trainer.args.per_device_train_batch_size == batching.batch_size
        trainer.train()
        losses.append(trainer.state.log_history[0]["loss"])
        prompts.append(trainer.model.prompt_encoder["default"].embedding.weight.detach().clone())
    assert losses[0] == pytest.approx(losses[1], abs=1e-4)
    torch.testing.assert_close(prompts[0], prompts[1], atol=1e-5, rtol=0)
