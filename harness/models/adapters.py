"""Adapter directories: inspect, check against the base, attach to and detach from a loaded base model.

PEFT adapters load through PEFT. Adapter types PEFT lacks (our bottleneck adapters) name a module in
`CUSTOM_TYPES` that offers the same `attach`/`detach` pair.

Detaching leaves the base bit for bit as it was. LoRA and IA3 are merged into the base while active (an
adapter then costs what the base costs), but never unmerged: unmerging is inexact in floating point (PEFT
warns so for IA3, and an fp32 LoRA unmerge is off by rounding too). Instead the base tensors a merge
touches are copied once before merging and copied back on detach.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.api import UserError
from harness.models.source import dir_hash

# peft_type written in adapter_config.json -> module with attach(model, path) and detach(model)
CUSTOM_TYPES = {"TUNEGATE_BOTTLENECK": "harness.models.bottleneck"}
# PEFT types whose weights fold into the base for evaluation (restored from a copy when switching)
MERGEABLE = ("LORA", "IA3")
PRISTINE_ATTR = "tunegate_pristine"  # on a merged PeftModel: [(base parameter, its value before the merge)]
# Files that describe an adapter but do not change its answers, so they stay out of its hash.
NON_WEIGHT_FILES = ("README.md", "provenance.json", "training_curve.json", "training_curve.csv")


@dataclass(frozen=True)
class AdapterInfo:
    """What we know about an adapter directory before loading it."""

    name: str
    path: str
    hash: str
    method: str
    config: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "hash": self.hash, "method": self.method,
                "provenance": self.provenance}


def inspect_adapter(path: Path) -> AdapterInfo:
    """Read an adapter directory's config and provenance; clear errors for anything missing."""
    config_file = path / "adapter_config.json"
    if not path.is_dir():
        raise UserError(f"adapter directory {path} does not exist", field="-a/--adapter")
    if not config_file.is_file():
        raise UserError(f"{path} has no adapter_config.json: not a PEFT adapter directory", field="-a/--adapter")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"malformed JSON: {exc}", source=str(config_file)) from None
    provenance = None
    if (path / "provenance.json").is_file():
        try:
            provenance = json.loads((path / "provenance.json").read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise UserError(f"malformed JSON: {exc}", source=str(path / "provenance.json")) from None
    tasks = config.get("num_tasks")
    if config.get("peft_type") == "MULTITASK_PROMPT_TUNING" and isinstance(tasks, int) and tasks > 1:
        # its forward needs a task id per input, and nothing in a suite says which of the adapter's tasks an item
        # is: evaluating all of them as task 0 would judge one task's prompt on the others' items
        raise UserError(f"adapter {path} is multitask prompt tuning with {tasks} task prompts; tunegate "
                        "evaluates an adapter with one (num_tasks: 1)", field="-a/--adapter")
    method = str((provenance or {}).get("method") or config.get("peft_type", "unknown")).lower()
    return AdapterInfo(path.name, str(path), dir_hash(path, exclude=NON_WEIGHT_FILES), method, config, provenance)


def check_base(info: AdapterInfo, base_fingerprint: dict[str, Any], hidden_size: int | None) -> None:
    """Refuse an adapter whose recorded base differs from the loaded one, before any shape error."""
    recorded = ((info.provenance or {}).get("base") or {}).get("model_hash")
    if recorded and recorded != base_fingerprint.get("model_hash"):
        raise UserError(f"adapter {info.path} was trained on another base model "
                        f"({((info.provenance or {}).get('base') or {}).get('model', '?')}, hash {recorded[:12]}) than "
                        f"{base_fingerprint.get('model')} (hash {str(base_fingerprint.get('model_hash'))[:12]})",
                        field="-a/--adapter")
    token_dim = info.config.get("token_dim")
    # prefix tuning on grouped-query attention stores key/value width (kv heads x head dim), not hidden size
    if token_dim and hidden_size and token_dim != hidden_size and info.config.get("peft_type") != "PREFIX_TUNING":
        raise UserError(f"adapter {info.path} was made for a base with hidden size {token_dim}, "
                        f"but this base has {hidden_size}", field="-a/--adapter")


def attach(model: Any, info: AdapterInfo, base_fingerprint: dict[str, Any]) -> Any:
    """Return the base with the adapter applied; the base object is reused, not copied."""
    check_base(info, base_fingerprint, getattr(model.config, "hidden_size", None))
    peft_type = str(info.config.get("peft_type", ""))
    try:
        if peft_type in CUSTOM_TYPES:
            return importlib.import_module(CUSTOM_TYPES[peft_type]).attach(model, Path(info.path))
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(model, info.path, is_trainable=False)
        if peft_type in MERGEABLE:
            # scoring a merged adapter costs what the bare base costs; detach() restores the copies
            setattr(peft_model, PRISTINE_ATTR, _touched_tensors(peft_model))
            peft_model.merge_adapter()
        return peft_model
    except UserError:
        raise
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise UserError(f"adapter {info.path} does not fit base model {base_fingerprint.get('model')} "
                        f"(made for another base?): {first}", field="-a/--adapter") from None


def detach(active: Any) -> Any:
    """Remove an adapter and return the bare base model, ready for the next adapter."""
    custom = getattr(active, "tunegate_adapter_module", None)
    if custom:
        return importlib.import_module(custom).detach(active)
    from peft import PeftModel

    if isinstance(active, PeftModel):
        if is_prompt_learning(active):
            return active.get_base_model()  # prompt learning never touches the base's modules
        pristine = getattr(active, PRISTINE_ATTR, [])
        base = active.unload()  # drops the adapter layers as they are: no inexact unmerge
        with _no_grad():
            for param, copy in pristine:
                param.data.copy_(copy)  # PEFT's IA3 merge rebinds .data, so copy into what is there now
        return base
    return active


def _touched_tensors(peft_model: Any) -> list[tuple[Any, Any]]:
    """Each base-layer parameter under an adapter layer, with a copy: what merging may change."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    seen: dict[int, tuple[Any, Any]] = {}
    with _no_grad():
        for module in peft_model.modules():
            if isinstance(module, BaseTunerLayer):
                for param in module.get_base_layer().parameters(recurse=False):
                    seen.setdefault(id(param), (param, param.detach().clone()))
    return list(seen.values())


def _no_grad() -> Any:
    import torch

    return torch.no_grad()


def is_prompt_learning(model: Any) -> bool:
    """Prompt and prefix tuning prepend virtual tokens: PEFT's forward cannot pack them (models/hf.py places them)."""
    config = getattr(model, "active_peft_config", None)
    return bool(config is not None and getattr(config, "is_prompt_learning", False))


def causal_lm(model: Any) -> Any:
    """The underlying transformers model (adapter layers, if any, are injected into its modules)."""
    from peft import PeftModel

    return model.get_base_model() if isinstance(model, PeftModel) else model
