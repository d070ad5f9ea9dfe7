"""Task kinds: `kind:` in suite.yaml names one of these.

A kind turns a rendered sample into requests (`make_requests`) and the answers into a scored record
(`score`); its class is a `harness.scoring.kinds.base.TaskKind`. To add a kind, write
`harness/scoring/kinds/<name>.py` with a `TaskKind` subclass and an instance named `KIND`, then add one
line to the table of built-in kinds in `harness/core/registry.py` (the suite schema, a layer below, reads
the names there). Code outside the package calls `register_kind(name, kind)` instead. Metrics say which
kinds they apply to (`harness.scoring.metrics.Metric.kinds`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.core.registry import KINDS, KindCheckError, check_kind_name

if TYPE_CHECKING:  # types only: the base module imports this package
    from harness.scoring.kinds.base import TaskKind

__all__ = ["KindCheckError", "check_kind_name", "get_kind", "kind_names", "register_kind"]


def register_kind(name: str, kind: TaskKind | str) -> None:
    """Make `kind: NAME` available to suites (`kind` is a TaskKind, or "module:attribute" imported on first use)."""
    KINDS.register(name, kind)


def kind_names() -> list[str]:
    return KINDS.names()


def get_kind(name: str) -> TaskKind:
    """The registered kind (imported on first use)."""
    return KINDS[check_kind_name(name)]
