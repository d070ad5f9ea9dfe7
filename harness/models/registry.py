"""The registry of model backends: the prefix of a model spec names its backend.

`hf:smollm2-135m` loads through the backend registered as `hf`. A spec without a registered prefix (the
embedded name, a local directory, a `.gguf` file, a hub id) is an `hf` spec, as it always was.

To add a backend, write `harness/models/<name>.py` with a `harness.core.api.Backend` subclass and a factory
`from_spec(rest, **options)` (`rest` is the spec after the prefix; options are `dtype`, `device` and
`batch_size`, which a backend may ignore, and the endpoint options `base_url`, `api_key_env`, `concurrency`,
`timeout`, `budget`, `retries` and `revision`, given only when the user set them), then add one line to the table at the bottom of this file. Code outside
the package calls `register_backend(prefix, factory)` instead. A table entry names its factory as
`"module:attribute"` and is imported only when a spec uses it, so an optional dependency is needed only
by its own backend.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.core.api import Backend, UserError
from harness.core.registry import Registry

# Path resolution moved to harness.models.source; harness.train and benchmarks/ still import these names
# from here, so they stay re-exported until those callers move.
from harness.models.source import ModelSource, dir_hash, resolve_model  # noqa: F401

BackendFactory = Callable[..., Backend]
DEFAULT_PREFIX = "hf"
_PREFIX = re.compile(r"^([a-z][a-z0-9_-]+):(.*)$", re.DOTALL)

BACKENDS: Registry[BackendFactory] = Registry("backend")


def register_backend(prefix: str, factory: BackendFactory | str) -> None:
    """Make `prefix:` specs load through `factory` (a callable, or "module:attribute" imported on first use)."""
    if not re.fullmatch(r"[a-z][a-z0-9_-]+", prefix):
        raise ValueError(f"a backend prefix is lower-case letters, digits, '-' or '_' (got {prefix!r})")
    BACKENDS.register(prefix, factory)


def backend_names() -> list[str]:
    return BACKENDS.names()


def split_spec(spec: str) -> tuple[str, str]:
    """(prefix, rest) of a model spec; specs without a prefix, and existing paths, are `hf` specs."""
    match = _PREFIX.match(spec)
    if match is None or Path(spec).expanduser().exists():
        return DEFAULT_PREFIX, spec
    prefix, rest = match.groups()
    if prefix not in BACKENDS:
        close = BACKENDS.close_match(prefix)
        hint = f"did you mean {close}:? " if close else ""
        raise UserError(f"unknown backend {prefix!r} in model spec {spec!r} ({hint}known backends: "
                        f"{', '.join(backend_names())})", field="-m/--model")
    return prefix, rest


def load_backend(spec: str | None = None, **options: Any) -> Backend:
    """The backend for a model spec (None: the embedded default), built lazily: no weights load here."""
    prefix, rest = split_spec(spec) if spec else (DEFAULT_PREFIX, None)
    return _factory(prefix)(rest, **options)


def _factory(prefix: str) -> BackendFactory:
    return BACKENDS[prefix]


# ---- built-in backends: one line each ------------------------------------------------------------------
register_backend("hf", "harness.models.hf:HFBackend.from_spec")
register_backend("fake", "harness.models.fake:FakeBackend.from_spec")
register_backend("openai", "harness.models.openai:OpenAIBackend.from_spec")
