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


class HeldOutSFTTrainer(SFTTrainer):  # type: ignore[misc]  # trl is untyped
    """SFTTrainer whose held-out pass runs padded, length-sorted batches and reports a token-weighted loss."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Training's collator flattens a batch into one row (padding-free): on SDPA/eager that is one dense mask
        # over every token of the batch. Held-out rows are padded instead, with an attention mask.
        self._eval_collator = DataCollatorForLanguageModeling(pad_token_id=self._tokenizer.pad_token_id,
                                                              padding_free=False)
        self._nll = torch.zeros(2, dtype=torch.float64)  # summed NLL, completion tokens

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
