"""SFT's held-out loss in padded batches, the way the eval engine scores: `eval.batch_size` rows per forward,
sorted longest first so rows of a batch have about the same length and little padding.

Training keeps its own batching (packed rows on CPU, padding-free batches with FlashAttention); only the
held-out pass changes. Padding costs nothing in the loss: padded positions carry the label -100, which the
loss skips. The held-out loss is one mean over every completion token of the held-out rows (the summed
negative log-likelihood divided by the token count), so it is the same number at any `eval.batch_size`
(tests/unit/test_train_held_out.py); the Trainer's own figure (a mean of per-batch means, each batch weighted
by its row count) would move with the batching.

Imported only when an SFT trainer is built: TRL and torch are start-up time.
"""

from __future__ import annotations

from typing import Any

import torch
from trl import SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from harness.train.common import on_cpu


class HeldOutSFTTrainer(SFTTrainer):  # type: ignore[misc]  # trl is untyped
    """SFTTrainer whose held-out pass runs padded, length-sorted batches and reports a token-weighted loss, and
    whose loss on a CPU comes from the model's own LM head (`compute_loss`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Training's collator flattens a batch into one row (padding-free): on SDPA/eager that is one dense mask
        # over every token of the batch. Held-out rows are padded instead, with an attention mask.
        self._eval_collator = DataCollatorForLanguageModeling(pad_token_id=self._tokenizer.pad_token_id,
                                                              padding_free=False)
        self._nll = torch.zeros(2, dtype=torch.float64)  # summed NLL, completion tokens
        # TRL computes the loss with its fused, chunked LM head (no full logits), a Triton kernel on GPUs. Without
        # Triton it runs a torch fallback that scores every position in tiles, entropy included, and on 2 CPU
        # cores that took 2.2 s of a 4 s LoRA step on a 512-token row (its backward alone 1.6 s). The model's own
        # head and cross-entropy give the same loss and gradients (tests/unit/test_train_native_head.py) in a
        # fraction of that (the same step: 2.45 s), so a CPU uses them for the plain next-token loss; anything else
        # keeps TRL's path.
        self._native_head = (on_cpu() and getattr(self.args, "loss_type", "nll") == "nll" and self.label_smoother is None
                             and self.compute_loss_func is None and not self.aux_loss_enabled)

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        """The next-token loss (summed NLL over the labelled tokens / `num_items_in_batch`, as TRL's), from the
        model's own LM head on a CPU; TRL's fused head elsewhere. Logs TRL's metrics (entropy, token accuracy,
        tokens seen) either way."""
        if not self._native_head:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if model.training else "eval"
        inputs["use_cache"] = False
        outputs = model(**inputs, num_items_in_batch=num_items_in_batch)
        loss = outputs.loss
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # as TRL: DDP averages the gradients across ranks
        self._log_metrics(mode, outputs.logits, inputs)
        return (loss, outputs) if return_outputs else loss

    def _log_metrics(self, mode: str, logits: torch.Tensor, inputs: dict[str, Any]) -> None:
        """TRL's per-step metrics from the full logits: entropy and top-1 accuracy over the labelled tokens."""
        labels = inputs["labels"]
        with torch.no_grad():
            # prompt learning prepends virtual tokens: the last positions are the labelled sequence's
            scored = logits[:, -labels.size(1):][:, :-1].float()
            target = labels[:, 1:]
            mask = target != -100
            picked = scored[mask]  # the labelled positions' logits, gathered once
            logp = torch.log_softmax(picked, dim=-1)
            entropy = -(logp.exp() * logp).sum(-1).sum()
            correct = (picked.argmax(-1) == target[mask]).sum()
            valid = mask.sum()
        gather = self.accelerator.gather_for_metrics
        num_valid, entropy_sum, num_correct = gather(valid).sum(), gather(entropy).sum(), gather(correct).sum()
        self._metrics[mode]["entropy"].append((entropy_sum / num_valid).item() if num_valid > 0 else 0.0)
        self._metrics[mode]["mean_token_accuracy"].append((num_correct / num_valid).item() if num_valid > 0 else 0.0)
        if mode == "train":  # as TRL: tokens fed (a padding-free or packed row has position_ids, no mask)
            local = inputs["attention_mask"].sum() if "attention_mask" in inputs else \
                torch.tensor(inputs["position_ids"].size(1))
            self._total_train_tokens += gather(local).sum().item() // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]

    def get_eval_dataloader(self, eval_dataset: Any = None) -> Any:
        train_collator = self.data_collator
        self.data_collator = self._eval_collator
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.data_collator = train_collator

    def _get_eval_sampler(self, eval_dataset: Any) -> Any:
        """Row indices, longest first: a batch holds rows of about one length (the order changes no figure)."""
        lengths = [len(ids) for ids in eval_dataset["input_ids"]]
        return sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))

    def prediction_step(self, model: Any, inputs: dict[str, Any], prediction_loss_only: bool,
                        ignore_keys: list[str] | None = None) -> Any:
        loss, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        if loss is not None and "labels" in inputs:
            # TRL's batch loss is the batch's summed NLL over its scored tokens (next-token labels not -100)
            tokens = (inputs["labels"][..., 1:] != -100).sum().detach().to("cpu", torch.float64)
            self._nll += torch.stack([loss.detach().to("cpu", torch.float64) * tokens, tokens])
        return loss, logits, labels

    def evaluation_loop(self, *args: Any, **kwargs: Any) -> Any:
        self._nll = torch.zeros(2, dtype=torch.float64)
        output = super().evaluation_loop(*args, **kwargs)
        total = self._nll
        if self.accelerator.num_processes > 1:
            # Every process scored its share of the batches. (A split that is uneven across processes repeats a
            # few rows to even it out; those count twice here, as in any per-process sum.)
            total = self.accelerator.reduce(total.to(self.args.device), reduction="sum").cpu()
        prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
        if total[1] > 0 and output.metrics is not None:
            output.metrics[f"{prefix}_loss"] = float(total[0] / total[1])
        return output
