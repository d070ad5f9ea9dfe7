"""Training recipes: the strict YAML schema, loading, and the recipe's identity (hash, output directory).

A recipe is `adapters/<name>.yaml`; its output goes to `adapters/<name>/` unless `output` says otherwise.
The schema is a discriminated union on `method`: each registered method (harness/train/methods.py) gets
its own recipe model, whose `train:` section is that method's options class, so an option given to the
wrong method is an error naming the option and both methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, Field, FiniteFloat, create_model, model_validator

from harness.core.api import UserError, sha256_json
from harness.core.config import FrozenStrict, line_of, load_yaml, parse_model
from harness.train.methods import MethodSpec, PeftType, TrainOptions, get_method, methods

# Prompt learning prepends virtual tokens; nothing is added to the base's weights, so nothing can merge.
UNMERGEABLE = {"prompt_tuning": "prompt tuning learns virtual token embeddings, not weights of the base",
               "prefix_tuning": "prefix tuning learns per-layer key/value prefixes, not weights of the base",
               "bottleneck": "bottleneck adapters add new modules (with a nonlinearity) to the base",
               "full": "full fine-tuning already writes a complete checkpoint"}


class PeftSpec(FrozenStrict):
    """Which parameters train: all of them (`full`), or a PEFT method and its settings."""

    type: PeftType = "lora"
    r: int = Field(default=8, ge=1, le=65_536)  # LoRA rank
    alpha: int = Field(default=16, ge=1)  # LoRA alpha
    dropout: FiniteFloat = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | None = None  # LoRA/IA3: module name suffixes; bottleneck: sublayers
    feedforward_modules: list[str] | None = None  # IA3: which targets scale their input (the MLP ones)
    num_virtual_tokens: int = Field(default=8, ge=1, le=65_536)  # prompt and prefix tuning
    init_text: str | None = None  # prompt tuning: initialise the virtual tokens from this text
    bottleneck_size: int = Field(default=16, ge=1, le=65_536)  # bottleneck: the down-projection width
    non_linearity: Literal["relu", "gelu", "silu", "tanh"] = "relu"


class DataSpec(FrozenStrict):
    """Training data: built-in suites' split (all tasks with a target, or the named ones) or a file."""

    suites: list[str] | None = None
    tasks: list[str] | None = None  # task names (or suite/task); default: every task with a target
    split: str = "train"
    file: str | None = None  # jsonl: {prompt, completion} for SFT; {prompt, chosen, rejected} for preferences
    limit: int | None = Field(default=None, ge=1)  # at most this many training rows (after the held-out cut)
    eval_fraction: FiniteFloat = Field(default=0.1, ge=0.0, lt=1.0)  # held out, seeded, for eval loss / pairwise accuracy
    eval_limit: int | None = Field(default=32, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if (not self.suites) == (self.file is None):
            raise ValueError("give exactly one of suites (built-in suites' split) or file")
        return self


class EvalSpec(FrozenStrict):
    """Suites evaluated through the eval engine every `every_steps` steps and at the end."""

    # the trainer's loss on the held-out rows (data.eval_fraction, at most data.eval_limit) at step 0 and at
    # the end, in batches of eval.batch_size; false skips both passes (`tunegate train --check` shows their cost)
    held_out_loss: bool = True
    # held-out rows per forward, in padded batches like the eval engine's scoring (32 is `tunegate eval
    # --batch-size`'s default). SFT sorts the rows by length and its loss is the mean over all completion tokens,
    # the same number at any batch size; KTO estimates its KL term within each batch.
    batch_size: int = Field(default=32, ge=1, le=65_536)
    suites: list[str] = []
    every_steps: int | None = Field(default=None, ge=1)
    limit: int | None = Field(default=16, ge=1)  # samples per task, to keep in-training evaluation cheap


class Recipe(FrozenStrict):
    """What every recipe holds; `recipe_model(method)` adds the method's own `train:` options (and
    `reward_model` for the methods that need one)."""

    base: str = "smollm2-135m"
    method: str
    peft: PeftSpec = PeftSpec()
    data: DataSpec
    train: TrainOptions = TrainOptions()
    seed: int = Field(default=1234, ge=0, lt=2**32)
    eval: EvalSpec = EvalSpec()
    init_adapter: str | None = None  # start from this trained adapter (adapters/<name>): DPO or GRPO after SFT
    # where training runs: TrainingArguments' use_cpu, and its bf16/fp16 mixed precision (auto: bf16 where
    # the GPU supports it, else fp16; float32 on the CPU)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    output: str | None = None  # default: beside the recipe, named after it
    description: str = ""


_MODELS: dict[MethodSpec, type[Recipe]] = {}


def recipe_model(method: MethodSpec) -> type[Recipe]:
    """The recipe model of one method: `method` fixed to its name, `train:` its options class."""
    model = _MODELS.get(method)  # keyed on the spec, so a method registered again gets a fresh model
    if model is None:
        fields: dict[str, Any] = {"method": (Literal[method.name], ...),  # type: ignore[valid-type]
                                  "train": (method.options, method.options())}
        if method.needs_reward_model:  # the output directory of a reward-model recipe
            fields["reward_model"] = (str | None, None)
        model = create_model(f"Recipe_{method.name}", __base__=Recipe, **fields)
        _MODELS[method] = model
    return model


def recipe_union() -> Any:
    """The recipe schema as one type: the registered methods' recipe models, discriminated on `method`."""
    models = tuple(recipe_model(m) for m in methods())
    return Annotated[Union[models], Field(discriminator="method")]  # noqa: UP007 (a runtime tuple of models)


class LoadedRecipe:
    """A validated recipe with where it came from."""

    def __init__(self, spec: Recipe, path: Path, raw: dict[str, Any], node: yaml.Node | None) -> None:
        self.spec, self.path, self.raw, self.node = spec, path, raw, node

    @property
    def method(self) -> MethodSpec:
        return get_method(self.spec.method)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def output_dir(self) -> Path:
        if self.spec.output:
            out = Path(self.spec.output)
            return out if out.is_absolute() else (self.path.parent / out)
        return self.path.parent / self.name

    @property
    def reward_model(self) -> str | None:
        return getattr(self.spec, "reward_model", None)

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


# `--set` short names for the settings changed most often.
SET_ALIASES = {"steps": "train.max_steps", "max_steps": "train.max_steps", "lr": "train.learning_rate",
               "learning_rate": "train.learning_rate", "batch_size": "train.batch_size"}


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """`--set KEY=VALUE` items as {dotted key: value}; a value reads as YAML (4, 2e-4, true, [q_proj])."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = SET_ALIASES.get(key.strip(), key.strip())
        if not sep or not key or any(not part for part in key.split(".")):
            raise UserError(f"{item!r}: write KEY=VALUE, e.g. train.max_steps=4 (or steps=4, lr=1e-4, "
                            "output=adapters/try)", field="--set")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        if isinstance(value, str):  # YAML 1.1 reads 5e-5 (no dot) as text: a number typed at the shell is a number
            try:
                value = float(value) if any(c in value.lower() for c in ".e") else int(value)
            except ValueError:
                pass
        if key == "output" and isinstance(value, str) and value and not Path(value).is_absolute():
            value = str(Path.cwd() / value)  # typed at the shell: relative to where it was typed
        out[key] = value
    return out


def _fields(model: Any, prefix: str = "") -> list[str]:
    """Every dotted field path of a model (nested models included), for the did-you-mean of --set."""
    names = []
    for name, info in model.model_fields.items():
        names.append(prefix + name)
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names += _fields(ann, prefix + name + ".")
    return names


def _apply_overrides(raw: dict[str, Any], overrides: dict[str, Any], method: MethodSpec) -> dict[str, Any]:
    """The recipe's mapping with the overrides set; a key the method's schema lacks is an error on --set."""
    import copy
    import difflib

    model = recipe_model(method)
    out = copy.deepcopy(raw)
    for key, value in overrides.items():
        parts = key.split(".")
        if not _has_field(model, parts):
            owners = [m.name for m in methods() if _has_field(recipe_model(m), parts)]
            if owners:
                raise UserError(f"{key} is an option of method{'s' if len(owners) > 1 else ''} {', '.join(owners)}, "
                                f"not of method {method.name}", field="--set")
            close = difflib.get_close_matches(key, _fields(model), n=1, cutoff=0.6)
            raise UserError(f"{key}: no such recipe field" + (f" (did you mean {close[0]}?)" if close else "")
                            + "; see docs/recipe-reference.md", field="--set")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise UserError(f"{key}: {part} is not a mapping in the recipe", field="--set")
            node = child
        node[parts[-1]] = value
    return out


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> LoadedRecipe:
    """Read and validate a recipe, with `--set` overrides applied; every problem is a UserError naming file,
    field and line (or --set, for an override)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"recipe {path} does not exist", field="RECIPE")
    raw, node = load_yaml(path)
    if not isinstance(raw, dict):
        raise UserError("a recipe must be a mapping with at least method and data", source=str(path), line=1)
    overrides = overrides or {}
    if "method" in overrides:
        raw = {**raw, "method": overrides["method"]}
    if "method" not in raw:
        raise UserError(f"a recipe needs a method (one of {', '.join(m.name for m in methods())})",
                        source=str(path), field="method", line=1)
    method = get_method(raw["method"], source=str(path), line=line_of(node, ["method"]))
    if overrides:
        raw = _apply_overrides(raw, overrides, method)
    try:
        spec = parse_model(recipe_model(method), raw, node, str(path))
    except UserError as exc:
        hit = next((k for k in overrides if exc.field and (exc.field == k or exc.field.startswith(k + "."))), None)
        if hit is not None:  # the value came from the command line, not from the file
            said = str(exc).split(f"{exc.field}: ", 1)[-1]
            raise UserError(f"{hit}={overrides[hit]!r}: {said}", field="--set") from None
        raise (_misplaced(exc, method) or exc) from None
    recipe = LoadedRecipe(spec, path, raw, node)
    _check_fits(recipe, method)
    return recipe


def _misplaced(exc: UserError, method: MethodSpec) -> UserError | None:
    """An option that belongs to other methods, given to this one: name the option and the methods."""
    parts = (exc.field or "").split(".")
    if not exc.field or _has_field(recipe_model(method), parts):
        return None
    owners = [m.name for m in methods() if m.name != method.name and _has_field(recipe_model(m), parts)]
    if not owners:
        return None
    return UserError(f"{parts[-1]} is an option of method{'s' if len(owners) > 1 else ''} {', '.join(owners)}, "
                     f"not of method {method.name}", source=exc.source, field=exc.field, line=exc.line)


def _has_field(model: Any, parts: list[str]) -> bool:
    for part in parts:
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return False
        model = model.model_fields[part].annotation
    return True


def _check_fits(recipe: LoadedRecipe, method: MethodSpec) -> None:
    """What depends on the method and several fields at once (errors point at the field to change)."""
    spec = recipe.spec
    if spec.peft.type not in method.peft_types:
        raise recipe.error(f"method {method.name} trains with peft type {' or '.join(method.peft_types)}, "
                           f"not {spec.peft.type}", "peft.type")
    if method.needs_reward_model and not recipe.reward_model:
        raise recipe.error(f"method {method.name} needs reward_model: the output directory of a reward-model "
                           "recipe", "method")
    if spec.init_adapter is not None:
        if spec.peft.type == "full":
            raise recipe.error("init_adapter starts from an adapter, and peft type full has none: to go on from "
                               "a full checkpoint, name it as base", "init_adapter")
        extra = sorted(k for k in (recipe.raw.get("peft") or {}) if k != "type")
        if extra:
            raise recipe.error(f"with init_adapter the adapter keeps its own settings: drop peft.{extra[0]}",
                               f"peft.{extra[0]}")
