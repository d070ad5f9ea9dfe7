"""Where an in-process model runs: device, dtype and attention kernel, resolved once from the user's options.

`--device auto` takes the first CUDA GPU, else Apple's MPS, else the CPU; `--dtype auto` is bfloat16 on a
GPU that supports it (float16 on an older one) and float32 elsewhere. The resolved device type, dtype and
kernel are part of the backend's fingerprint, so a CPU float32 answer is never served for a GPU bfloat16
request. Every function takes its probes as arguments with torch's as defaults, so the choices are testable
on a machine without a GPU.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.core.api import UserError

DEVICES_HELP = "auto, cpu, cuda, cuda:N or mps"
DTYPES = ("auto", "float32", "bfloat16", "float16")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(?::(\d+))?)$")


@dataclass(frozen=True)
class Placement:
    """A resolved device and dtype: `device` is `cpu`, `mps` or `cuda:N`; `kind` is its type."""

    device: str
    dtype: str
    attention: str  # the transformers attn_implementation: "sdpa" or "flash_attention_2"

    @property
    def kind(self) -> str:
        return self.device.split(":")[0]


@dataclass(frozen=True)
class Hardware:
    """What the machine offers; `probe()` asks torch."""

    cuda_count: int = 0
    bf16: bool = False  # the first CUDA device computes in bfloat16
    mps: bool = False
    flash_attn: bool = False  # the flash_attn package is installed

    @classmethod
    def probe(cls) -> Hardware:
        import torch

        cuda = torch.cuda.is_available()
        return cls(cuda_count=torch.cuda.device_count() if cuda else 0,
                   bf16=bool(cuda and torch.cuda.is_bf16_supported()),
                   mps=bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
                   flash_attn=importlib.util.find_spec("flash_attn") is not None)


def resolve_device(requested: str, hw: Hardware, local_rank: int = 0) -> str:
    """`auto` -> the best device present (under torchrun, this rank's GPU); an explicit device must exist."""
    match = _DEVICE.match(requested or "auto")
    if match is None:
        raise UserError(f"unknown device {requested!r} (choose {DEVICES_HELP})", field="--device")
    if requested in ("", "auto"):
        return f"cuda:{local_rank % hw.cuda_count}" if hw.cuda_count else "mps" if hw.mps else "cpu"
    if requested.startswith("cuda"):
        index = int(match.group(2) or 0)
        if hw.cuda_count == 0:
            raise UserError(f"device {requested} asked for, but torch sees no CUDA GPU on this machine",
                            field="--device")
        if index >= hw.cuda_count:
            raise UserError(f"device {requested} asked for, but this machine has {hw.cuda_count} CUDA GPU(s) "
                            f"(cuda:0 to cuda:{hw.cuda_count - 1})", field="--device")
        return f"cuda:{index}"
    if requested == "mps" and not hw.mps:
        raise UserError("device mps asked for, but torch sees no Apple MPS device", field="--device")
    return requested


def resolve_dtype(requested: str, device: str, hw: Hardware) -> str:
    """`auto` -> bfloat16 on a GPU that supports it, float16 on an older GPU, float32 on CPU and MPS."""
    if requested not in DTYPES:
        raise UserError(f"unknown dtype {requested!r} (choose from {', '.join(DTYPES)})", field="--dtype")
    if requested != "auto":
        return requested
    if device.startswith("cuda"):
        return "bfloat16" if hw.bf16 else "float16"
    return "float32"


def attention_for(device: str, dtype: str, hw: Hardware) -> str:
    """FlashAttention 2 where it can run (installed, CUDA, half precision), else PyTorch's SDPA."""
    if hw.flash_attn and device.startswith("cuda") and dtype in ("bfloat16", "float16"):
        return "flash_attention_2"
    return "sdpa"


def place(device: str = "auto", dtype: str = "auto", hw: Hardware | None = None) -> Placement:
    """The placement for the user's `--device` and `--dtype`."""
    hw = hw if hw is not None else Hardware.probe()
    resolved = resolve_device(device, hw, int(os.environ.get("LOCAL_RANK", "0") or 0))
    chosen = resolve_dtype(dtype, resolved, hw)
    return Placement(resolved, chosen, attention_for(resolved, chosen, hw))


def needs_device_map(weight_bytes: int, placement: Placement, hw: Hardware,
                     device_memory: Callable[[int], int] | None = None) -> bool:
    """True when the weights (at the chosen dtype) do not fit in 90% of one GPU and there are several:
    then transformers' `device_map="auto"` spreads the layers over every GPU (and the CPU if needed)."""
    if placement.kind != "cuda" or hw.cuda_count < 2:
        return False
    memory = device_memory or _cuda_memory
    index = int(placement.device.split(":")[1])
    return weight_bytes > 0.9 * memory(index)


def _cuda_memory(index: int) -> int:
    import torch

    return int(torch.cuda.get_device_properties(index).total_memory)


def torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)
