"""One registry type for every extension point: backends, task kinds, metrics and training methods.

An entry is the object itself, or a lazy `"module:attribute"` string (dotted attributes allowed) that is
imported the first time the entry is used, so an optional dependency is needed only by its own entry and
a layer can name an implementation that lives above it without importing it. Unknown names get one
did-you-mean, here.

The task kinds' table lives here too (`KINDS`): the suite schema (data layer) validates `kind:` against
it, and a kind's module (scoring layer) is imported only when a suite first uses it.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Names to entries, read like a mapping; string entries `"module:attr"` load on first use."""

    def __init__(self, what: str) -> None:
        self.what = what  # "task kind", "metric", ...: used in messages
        self._entries: dict[str, T | str] = {}

    def register(self, name: str, entry: T | str) -> None:
        self._entries[name] = entry

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def raw(self, name: str) -> T | str | None:
        """The entry as registered (a lazy string stays a string), or None."""
        return self._entries.get(name)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def close_match(self, name: object, cutoff: float = 0.6) -> str | None:
        """The registered name closest to `name` (the did-you-mean), or None."""
        if not isinstance(name, str):
            return None
        close = difflib.get_close_matches(name, self.names(), n=1, cutoff=cutoff)
        return close[0] if close else None

    def unknown(self, name: object) -> str:
        """`unknown <what> 'x' (did you mean 'y'? known: a, b)`: the one wording of an unknown name."""
        close = self.close_match(name)
        hint = f"did you mean {close!r}? " if close else ""
        return f"unknown {self.what} {name!r} ({hint}known: {', '.join(self.names())})"

    def __getitem__(self, name: str) -> T:
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = self._entries[name] = load_attr(entry)
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def load_attr(ref: str) -> Any:
    """Import `"module:attr.sub"` and return the attribute."""
    module, _, attr = ref.partition(":")
    target: Any = importlib.import_module(module)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


# ---- task kinds ------------------------------------------------------------------------------------------
# A kind's class is a `harness.scoring.kinds.base.TaskKind`; typed `Any` here because this layer may not
# import the scoring layer, not even for types.

class KindCheckError(ValueError):
    """A task spec that its kind cannot run; `field` is the TaskSpec field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


KINDS: Registry[Any] = Registry("task kind")


def check_kind_name(name: str) -> str:
    """`name` if it is a registered kind, else ValueError with a did-you-mean."""
    if name not in KINDS:
        close = KINDS.close_match(name, cutoff=0.6)
        hint = f"did you mean {close!r}? " if close else ""
        raise ValueError(f"unknown task kind {name!r} ({hint}known kinds: {', '.join(KINDS.names())})")
    return name


# built-in kinds: one line each (harness/scoring/kinds/<name>.py defines KIND)
KINDS.register("multiple_choice", "harness.scoring.kinds.multiple_choice:KIND")
KINDS.register("generate", "harness.scoring.kinds.generate:KIND")
KINDS.register("perplexity", "harness.scoring.kinds.perplexity:KIND")
KINDS.register("code", "harness.scoring.kinds.code:KIND")
