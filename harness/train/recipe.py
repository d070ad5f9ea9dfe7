"""Training recipes: the strict YAML schema, loading, and the recipe's identity (hash, output directory).

A recipe is `adapters/<name>.yaml`; its output goes to `adapters/<name>/` unless `output` says otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from harness.api import UserError, sha256_json
from harness.config import FrozenStrict, line_of, load_yaml, parse_model

METHODS = ("sft", "reward_model", "dpo", "kto", "grpo", "rloo")
PEFT_TYPES = ("full", "lora", "ia3", "prompt_tuning", "prefix_tuning", "bottleneck")
# Methods whose data is {prompt, chosen, rejected}.
PREFERENCE_METHODS = ("reward_model", "dpo", "kto")
# Prompt learning prepends virtual tokens; nothing is added to the base's weights, so nothing can merge.
UNMERGEABLE = {"prompt_tuning": "prompt tuning learns virtual token embeddings, not weights of the base",
               "prefix_tuning": "prefix tuning learns per-layer key/value prefixes, not weights of the base",
               "bottleneck": "bottleneck adapters add new modules (with a nonlinearity) to the base",
               "full": "full fine-tuning already writes a complete checkpoint"}


class PeftSpec(FrozenStrict):
    """Which parameters train: all of them (`full`), or a PEFT method and its settings."""

    type: Literal["full", "lora", "ia3", "prompt_tuning", "prefix_tuning", "bottleneck"] = "lora"
    r: int = Field(8, ge=1)  # LoRA rank
    alpha: int = Field(16, ge=1)  # LoRA alpha
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | None = None  # LoRA/IA3: module name suffixes; bottleneck: sublayers
    feedforward_modules: list[str] | None = None  # IA3: which targets scale their input (the MLP ones)
    num_virtual_tokens: int = Field(8, ge=1)  # prompt and prefix tuning
    init_text: str | None = None  # prompt tuning: initialise the virtual tokens from this text
    bottleneck_size: int = Field(16, ge=1)  # bottleneck: the down-projection width
    non_linearity: Literal["relu", "gelu", "silu", "tanh"] = "relu"


class DataSpec(FrozenStrict):
    """Training data: built-in suites' split (all tasks with a target, or the named ones) or a file."""

    suites: list[str] | None = None
    tasks: list[str] | None = None  # task names (or suite/task); default: every task with a target
    split: str = "train"
    file: str | None = None  # jsonl: {prompt, completion} for SFT; {prompt, chosen, rejected} for preferences
    limit: int | None = Field(None, ge=1)  # at most this many training rows (after the held-out cut)
    eval_fraction: float = Field(0.1, ge=0.0, lt=1.0)  # held out, seeded, for eval loss / pairwise accuracy
    eval_limit: int | None = Field(32, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> "DataSpec":
        if (not self.suites) == (self.file is None):
            raise ValueError("give exactly one of suites (built-in suites' split) or file")
        return self


class HyperParams(FrozenStrict):
    """Trainer settings that every method shares, plus the few that only some use."""

    max_steps: int = Field(20, ge=1)
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    learning_rate: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)
    max_length: int = Field(512, ge=8)
    padding_free: bool = True  # SFT: no pad tokens; each example attends only to itself (block-diagonal attention)
    # SFT: pack examples best-fit decreasing into rows of at most max_length tokens, one row per forward (and
    # about batch_size x grad_accum examples per optimizer step). None: pack unless the attention kernel is
    # FlashAttention, where padding-free batches (each batch flattened into one row) cost no more (sft.py).
    packing: bool | None = None
    logging_steps: int = Field(1, ge=1)
    beta: float = Field(0.1, gt=0)  # DPO, KTO, GRPO/RLOO
    num_generations: int = Field(2, ge=2)  # GRPO/RLOO completions per prompt
    max_completion_length: int = Field(32, ge=1)  # GRPO/RLOO
    temperature: float = Field(1.0, gt=0)  # GRPO/RLOO sampling


class EvalSpec(FrozenStrict):
    """Suites evaluated through the eval engine every `every_steps` steps and at the end."""

    suites: list[str] = []
    every_steps: int | None = Field(None, ge=1)
    limit: int | None = Field(16, ge=1)  # samples per task, to keep in-training evaluation cheap


class Recipe(FrozenStrict):
    """A whole recipe file."""

    base: str = "smollm2-135m"
    method: Literal["sft", "reward_model", "dpo", "kto", "grpo", "rloo"]
    peft: PeftSpec = PeftSpec()
    data: DataSpec
    train: HyperParams = HyperParams()
    seed: int = 1234
    eval: EvalSpec = EvalSpec()
    reward_model: str | None = None  # GRPO/RLOO: directory of a trained reward-model recipe's output
    output: str | None = None  # default: beside the recipe, named after it
    description: str = ""

    @model_validator(mode="after")
    def _method_fits(self) -> "Recipe":
        if self.method in ("grpo", "rloo") and not self.reward_model:
            raise ValueError(f"method {self.method} needs reward_model: the output directory of a reward-model recipe")
        if self.method == "reward_model" and self.peft.type not in ("lora", "full"):
            raise ValueError("a reward model trains with peft type lora or full")
        if self.method != "sft" and self.peft.type == "bottleneck":
            raise ValueError("bottleneck adapters are offered for method sft only")
        return self


class LoadedRecipe:
    """A validated recipe with where it came from."""

    def __init__(self, spec: Recipe, path: Path, raw: dict[str, Any], node: yaml.Node) -> None:
        self.spec, self.path, self.raw, self.node = spec, path, raw, node

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def output_dir(self) -> Path:
        if self.spec.output:
            out = Path(self.spec.output)
            return out if out.is_absolute() else (self.path.parent / out)
        return self.path.parent / self.name

    def resolve(self, rel: str) -> Path:
        """A path named in the recipe: relative to the recipe's directory first, then to the working directory."""
        path = Path(rel)
        beside = self.path.parent / path
        if path.is_absolute() or beside.exists() or not path.exists():
            return beside if not path.is_absolute() else path
        return path

    def hash(self) -> str:
        return sha256_json(self.spec.model_dump(mode="json"))

    def error(self, message: str, field: str) -> UserError:
        """A UserError naming this recipe file, the dotted field and its line."""
        return UserError(message, source=str(self.path), field=field, line=line_of(self.node, field.split(".")))


def load_recipe(path: str | Path) -> LoadedRecipe:
    """Read and validate a recipe; every problem is a UserError naming file, field and line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"recipe {path} does not exist", field="RECIPE")
    raw, node = load_yaml(path)
    if not isinstance(raw, dict):
        raise UserError("a recipe must be a mapping with at least method and data", source=str(path), line=1)
    if "method" in raw and raw["method"] not in METHODS:
        # Named here rather than by pydantic's literal error, so the message lists what is known.
        raise UserError(f"unknown method {raw['method']!r} (known: {', '.join(METHODS)})", source=str(path),
                        field="method", line=line_of(node, ["method"]))
    spec = parse_model(Recipe, raw, node, str(path))
    return LoadedRecipe(spec, path, raw, node)
