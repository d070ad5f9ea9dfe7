"""Model backends, one per file, behind the `Backend` contract of `harness.api`."""

from harness.models.hf import HFBackend
from harness.models.registry import DEFAULT_MODEL, resolve_model, tunegate_home

__all__ = ["HFBackend", "DEFAULT_MODEL", "resolve_model", "tunegate_home", "load_backend"]


def load_backend(spec: str | None = None, **kwargs) -> HFBackend:
    """The backend for a model spec (every spec we accept loads through transformers today)."""
    return HFBackend.from_spec(spec, **kwargs)
