"""The registry of task kinds: `kind:` in suite.yaml names one of these.

A kind turns a rendered sample into requests (`make_requests`) and the answers into a scored record
(`score`); its class is a `harness.kinds.base.TaskKind`. To add a kind, write `harness/kinds/<name>.py`
with a `TaskKind` subclass and an instance named `KIND`, then add one line to the table at the bottom of
this file. Code outside the package calls `register_kind(name, kind)` instead. Metrics say which kinds
they apply to (`harness.metrics.Metric.kinds`).

This module imports nothing but the shared contracts: the suite schema validates `kind:` against it,
and a kind's own module is imported when a suite first uses the kind.
"""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: the base module imports the suite schema, which imports this registry
    from harness.kinds.base import TaskKind

_KINDS: dict[str, Any] = {}  # name -> TaskKind instance, or "module:attribute" until first use


class KindCheckError(ValueError):
    """A task spec that its kind cannot run; `field` is the TaskSpec field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def register_kind(name: str, kind: TaskKind | str) -> None:
    """Make `kind: NAME` available to suites (`kind` is a TaskKind, or "module:attribute" imported on first use)."""
    _KINDS[name] = kind


def kind_names() -> list[str]:
    return sorted(_KINDS)


def check_kind_name(name: str) -> str:
    """`name` if it is registered, else ValueError with a did-you-mean."""
    if name not in _KINDS:
        close = difflib.get_close_matches(name, kind_names(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown task kind {name!r} ({hint}known kinds: {', '.join(kind_names())})")
    return name


def get_kind(name: str) -> TaskKind:
    """The registered kind (imported on first use)."""
    kind = _KINDS[check_kind_name(name)]
    if isinstance(kind, str):
        module, _, attr = kind.partition(":")
        kind = _KINDS[name] = getattr(importlib.import_module(module), attr)
    return kind


# ---- built-in kinds: one line each ---------------------------------------------------------------------
register_kind("multiple_choice", "harness.kinds.multiple_choice:KIND")
register_kind("generate", "harness.kinds.generate:KIND")
register_kind("perplexity", "harness.kinds.perplexity:KIND")
register_kind("code", "harness.kinds.code:KIND")
