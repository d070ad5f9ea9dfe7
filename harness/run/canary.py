"""Is the adapter active? Canary prompts scored with and without it, before its run is scored.

lm-evaluation-harness users met LoRA runs whose scores equalled the base's, silently: the adapter had
not been applied, or its weights were zero (a LoRA's B matrix starts at zero, so an adapter saved before
any step changes nothing). Every comparison of such a run with its base is a comparison of the base with
itself. Here a few fixed prompts are scored through the backend's own loglikelihood path (the path the
evaluation takes, virtual tokens of prompt learning included), once on the bare base and once with the
adapter; identical log-probabilities mean the adapter changes nothing, and that is reported loudly.
"""

from __future__ import annotations

import sys
from typing import Any

from harness.core.api import Backend, Request

# Short and varied, so that an adapter trained on any domain moves at least one of them.
CANARY_REQUESTS = (
    Request("loglikelihood", "Question: Is aspirin a painkiller?\nAnswer:", (" yes", " no", " maybe")),
    Request("loglikelihood", "The contract says the tenant must give notice", (" in writing.", " by phone.")),
    Request("loglikelihood", "def add(a, b):\n    return", (" a + b", " a - b")),
    Request("loglikelihood", "The capital of France is", (" Paris.", " Rome.")),
    Request("loglikelihood", "<|user|>How are you today?\n<|assistant|>", ("I am fine, thank you.", "No.")),
)
# log-probabilities closer than this (nats) count as equal: a zero LoRA merges to the very same weights,
# a trained adapter moves them by orders of magnitude more
TOLERANCE = 1e-6


def can_check(backend: Backend) -> bool:
    """The check needs adapters and loglikelihood scoring (an endpoint without them is not checked)."""
    return {"adapters", "loglikelihood"} <= set(backend.capabilities)


def canary_logliks(backend: Backend) -> list[float]:
    """The current variant's log-probability of every canary continuation."""
    return [ll for response in backend.loglikelihood(list(CANARY_REQUESTS)) for ll in response.logliks]


def compare(base: list[float], adapted: list[float]) -> dict[str, Any]:
    """The record a run keeps: whether the adapter moved any canary log-probability, and by how much."""
    diff = max((abs(a - b) for a, b in zip(base, adapted)), default=0.0)
    return {"active": diff > TOLERANCE, "max_abs_diff": diff, "n_prompts": len(CANARY_REQUESTS),
            "tolerance": TOLERANCE}


def check_adapter(backend: Backend, adapter: str) -> dict[str, Any] | None:
    """Score the canaries on the bare base and with `adapter`; leaves the adapter set. None: not checkable."""
    if not can_check(backend):
        backend.set_adapter(adapter)
        return None
    backend.set_adapter(None)
    base = canary_logliks(backend)
    backend.set_adapter(adapter)
    return compare(base, canary_logliks(backend))


def inactive_message(name: str, check: dict[str, Any] | None) -> str | None:
    """The loud line for an adapter that changes nothing (None when it is active or was not checked)."""
    if check is None or check.get("active", True):
        return None
    return (f"adapter {name} changes nothing: its log-probabilities equal the base's on all {check['n_prompts']} "
            f"canary prompts (max difference {check['max_abs_diff']:.1e}); comparing it with the base compares "
            "the base with itself (zero-initialised weights, or an adapter that was never applied?)")


def warn(name: str, check: dict[str, Any] | None) -> None:
    """Print the loud line to stderr, whatever the progress settings."""
    message = inactive_message(name, check)
    if message:
        print(f"tunegate: WARNING: {message}", file=sys.stderr)
