"""Input that comes from elsewhere (downloaded suites, run files from other machines): the rules that keep it data.

- User templates (suite prompts, choices and targets) render in Jinja's immutable sandbox, so a template
  can read its row and nothing else: no `__globals__`, no method that changes an object.
- A suite reads data files inside its own folder only (symlinks resolved), unless the user allows more
  with `--allow-outside-data` for one command (`allowing_outside_data`).
- Error messages quote at most a short, escaped excerpt of what a file holds.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import operator
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from harness.api import UserError

MAX_RESULT = 1_000_000  # items (characters, list elements) or bits a template operator may produce
EXCERPT = 60  # characters of file content an error message may quote

_outside_data: contextvars.ContextVar[bool] = contextvars.ContextVar("allow_outside_data", default=False)


class TemplateSandbox(ImmutableSandboxedEnvironment):
    """The environment of every user-supplied template: sandboxed, strict about undefined names, and with
    `*` and `**` refusing results of more than MAX_RESULT items or bits (`{{ 'x' * 10**10 }}`)."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, keep_trailing_newline=True)

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "**" and _int(left) and _int(right) and right > 0 and abs(left).bit_length() * right > MAX_RESULT:
            raise SecurityError(f"{op} would produce a number over {MAX_RESULT} bits")
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and _int(times) and len(seq) * times > MAX_RESULT:
                    raise SecurityError(f"{op} would produce more than {MAX_RESULT} items")
        return (operator.mul if op == "*" else operator.pow)(left, right)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@functools.cache
def template_env() -> TemplateSandbox:
    """The shared sandboxed environment for user templates (compile each template once and keep it)."""
    return TemplateSandbox()


@contextlib.contextmanager
def allowing_outside_data(allow: bool = True) -> Iterator[None]:
    """Within this block, suites may read data files outside their own folder (`--allow-outside-data`)."""
    token = _outside_data.set(allow)
    try:
        yield
    finally:
        _outside_data.reset(token)


def inside_folder(folder: Path, path: Path, *, source: str, field: str) -> Path:
    """`path` (relative to `folder`, or absolute) resolved; a UserError when it leaves `folder`, unless allowed."""
    resolved = (folder / path).resolve()
    if _outside_data.get():
        return resolved
    root = folder.resolve()
    if resolved != root and root not in resolved.parents:
        raise UserError(f"data file {excerpt(str(path))} resolves to {excerpt(str(resolved))}, outside the suite's "
                        f"folder {root}; a suite reads only its own files (pass --allow-outside-data to allow it)",
                        source=source, field=field)
    return resolved


def excerpt(value: Any, limit: int = EXCERPT) -> str:
    """A short, escaped rendering of untrusted content for an error message: characters that are not printable
    (control, bidirectional and zero-width ones) as Python escapes, and anything past `limit` characters cut."""
    text = value if isinstance(value, str) else repr(value)
    cut = len(text) - limit
    shown = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text[:limit])
    return f"{shown}… ({cut} more characters)" if cut > 0 else shown


_trusted_code: contextvars.ContextVar[tuple[Path, ...]] = contextvars.ContextVar("trusted_task_code", default=())


@contextlib.contextmanager
def trusting_task_code(folders: list[str] | list[Path] | None) -> Iterator[None]:
    """Within this block, lm-eval task files under `folders` may run their Python (`!function`,
    `--trust-task-code DIR`); everywhere else such a reference is refused."""
    token = _trusted_code.set(tuple(Path(f).resolve() for f in folders or []))
    try:
        yield
    finally:
        _trusted_code.reset(token)


def code_trusted(path: Path) -> bool:
    """Whether the user consented to running the Python file `path` (it lies in a folder they named)."""
    resolved = path.resolve()
    return any(resolved == root or root in resolved.parents for root in _trusted_code.get())
