"""The table of training methods: one `MethodSpec` per method, registered by the file that builds it.

A method is its trainer builder plus what the rest of `tunegate train` needs to know about it: the shape of
its data, the options of its `train:` section (a pydantic model; the recipe's schema is the discriminated
union of these on `method`), the PEFT types it trains, whether it needs a reward model, and whether its
output can merge. Adding a method is one file that calls `register_method(MethodSpec(...))`, plus one
import line in `harness/train/__init__.py` (or, outside tunegate, an import of your own module).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import Field, FiniteFloat

from harness.core.api import UserError
from harness.core.config import FrozenStrict
from harness.core.registry import Registry

PeftType = Literal["full", "lora", "ia3", "prompt_tuning", "prefix_tuning", "bottleneck"]
PEFT_TYPES: tuple[str, ...] = get_args(PeftType)
# Where each method's rows come from (harness/train/data.py reads them):
#   completion: {prompt, completion} from a suite split or a jsonl file (SFT)
#   preference: {prompt, chosen, rejected} from a jsonl file (reward model, DPO)
#   unpaired:   preference pairs split into {prompt, completion, label} (KTO)
#   prompt:     {prompt} only, from a preference file or a suite split (GRPO, RLOO)
DataShape = Literal["completion", "preference", "unpaired", "prompt"]
DATA_SHAPES: tuple[str, ...] = get_args(DataShape)
MAX_STEPS = 1_000_000  # far above any fine-tuning run; a typo such as 2e9 steps is refused


class TrainOptions(FrozenStrict):
    """The `train:` settings every method shares. A method with options of its own subclasses this."""

    max_steps: int = Field(default=20, ge=1, le=MAX_STEPS)
    batch_size: int = Field(default=8, ge=1, le=65_536)
    grad_accum: int = Field(default=1, ge=1, le=65_536)
    learning_rate: FiniteFloat = Field(default=2e-4, gt=0)
    weight_decay: FiniteFloat = Field(default=0.0, ge=0)
    warmup_steps: int = Field(default=0, ge=0, le=MAX_STEPS)
    max_length: int = Field(default=512, ge=8, le=1_048_576)
    logging_steps: int = Field(default=1, ge=1, le=MAX_STEPS)


@dataclass(frozen=True)
class MethodSpec:
    """One training method and everything `tunegate train` needs to run it.

    builder: `builder(ctx) -> transformers.Trainer` for a `harness.train.common.Context`.
    check: optional `check(recipe, base)` run before any model loads (`tunegate train --check` too), with
        `base` the base's identity ({model, model_hash, tokenizer_hash}); raises UserError for what only
        this method can validate (a reward model's directory, say).
    stats: optional `stats(trainer) -> dict` after training; its keys go into provenance.json.
    """

    name: str
    builder: Callable[[Any], Any]
    data: DataShape
    options: type[TrainOptions] = TrainOptions
    peft_types: tuple[str, ...] = PEFT_TYPES
    needs_reward_model: bool = False
    can_merge: bool = True  # --merge allowed (for PEFT types that fold into the base)
    task_type: Literal["CAUSAL_LM", "SEQ_CLS"] = "CAUSAL_LM"  # SEQ_CLS: no suite evals (not a language model)
    held_out_loss: bool = False  # evaluate the trainer's loss on the held-out rows at step 0 and at the end
    named_by_peft: bool = False  # reports name the output by its PEFT type (lora, ia3, sft-full)
    check: Callable[[Any, dict[str, Any]], None] | None = None
    stats: Callable[[Any], dict[str, Any]] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.data not in DATA_SHAPES:
            raise ValueError(f"method {self.name}: data shape {self.data!r} is not one of {', '.join(DATA_SHAPES)}")
        unknown = set(self.peft_types) - set(PEFT_TYPES)
        if unknown or not self.peft_types:
            raise ValueError(f"method {self.name}: peft_types must be a non-empty subset of {', '.join(PEFT_TYPES)}")
        if not (isinstance(self.options, type) and issubclass(self.options, TrainOptions)):
            raise ValueError(f"method {self.name}: options must subclass harness.train.methods.TrainOptions")


_REGISTRY: Registry[MethodSpec] = Registry("training method")


def register_method(spec: MethodSpec, *, replace: bool = False) -> MethodSpec:
    """Add a method to the table (`replace=True` to redefine one); returns the spec."""
    if spec.name in _REGISTRY and not replace and _REGISTRY[spec.name] != spec:
        raise ValueError(f"training method {spec.name!r} is already registered")
    _REGISTRY.register(spec.name, spec)
    return spec


def unregister_method(name: str) -> None:
    """Remove a method (tests and plugins that register temporarily)."""
    _REGISTRY.unregister(name)


def methods() -> list[MethodSpec]:
    """Every registered method, by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def get_method(name: Any, *, source: str | None = None, line: int | None = None) -> MethodSpec:
    """The method called `name`; an unknown name is a UserError listing the known ones, with a did-you-mean."""
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    known = _REGISTRY.names()
    close = _REGISTRY.close_match(name)
    hint = f"; did you mean {close!r}?" if close else ""
    raise UserError(f"unknown method {name!r} (known: {', '.join(known)}){hint}", source=source, field="method",
                    line=line)
