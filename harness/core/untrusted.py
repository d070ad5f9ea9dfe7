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
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from harness.core.api import UserError
from harness.core.redact import redact

MAX_RESULT = 1_000_000  # items (characters, list elements) or bits a template operator may produce
EXCERPT = 60  # characters of file content an error message may quote

_outside_data: contextvars.ContextVar[bool] = contextvars.ContextVar("allow_outside_data", default=False)


class TemplateLimit(SecurityError):
    """A user template that would run too long or produce too much (a UserError once its row is named)."""


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with `~` (concatenation) routed through the sandbox's size check: a namespace
    variable doubled with `~` in a loop would otherwise grow past any memory in 40 steps."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class TemplateSandbox(ImmutableSandboxedEnvironment):
    """The environment of every user-supplied template: sandboxed, strict about undefined names, and with every
    operation that can amplify its input checked before it runs: `*`, `**`, `+`, `%`, `~`, the filters and
    string methods that take a width or a count (`center`, `indent`, `format`, `replace`, `batch`, `slice`,
    `ljust`, `zfill`...) and `lipsum` refuse results of more than MAX_RESULT items or bits. What the checks
    cannot see (nested loops) is bounded by `render_bounded`'s CPU time and output size."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, keep_trailing_newline=True)
        self.filters = {**self.filters, **_bounded_filters(self.filters)}
        self.globals["lipsum"] = _bounded_lipsum(self.globals["lipsum"])

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "**" and _int(left) and _int(right) and right > 0 and abs(left).bit_length() * right > MAX_RESULT:
            raise TemplateLimit(f"{op} would produce a number over {MAX_RESULT} bits")
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and _int(times):
                    if len(seq) * times > MAX_RESULT:
                        raise TemplateLimit(f"{op} would produce more than {MAX_RESULT} items")
                    _charge(len(seq) * times)
        if op == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            _check_size(len(left) + len(right), "+")
            _charge(len(left) + len(right))
        if op == "%" and isinstance(left, str):
            _check_printf(left, right)
        result = _BINOPS[op](left, right)
        if op == "%" and isinstance(result, str):
            _charge(len(result))
        return result

    def bounded_concat(self, items: tuple[Any, ...]) -> str:
        texts = [str(item) for item in items]
        _check_size(sum(map(len, texts)), "~")
        _charge(sum(map(len, texts)))
        return "".join(texts)

    def wrap_str_format(self, value: Any) -> Any:
        """Jinja's sandboxed `str.format`, with widths and precisions checked before the string is built."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text = value.__self__

        def checked(*args: Any, **kwargs: Any) -> Any:
            _check_format_spec(text, args, kwargs if value.__name__ == "format" else
                               (args[0] if args and isinstance(args[0], dict) else {}))
            return wrapped(*args, **kwargs)
        return checked

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        if isinstance(getattr(__obj, "__self__", None), str):
            _check_str_method(__obj.__self__, __obj.__name__, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


_BINOPS = {"*": operator.mul, "**": operator.pow, "+": operator.add, "%": operator.mod}
_WIDTH = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_SPEC = re.compile(r"\{[^{}]*:[^{}]*?(\d+)(?:\.(\d+))?[^{}]*\}")


def _check_size(size: int, what: str) -> None:
    if size > MAX_RESULT:
        raise TemplateLimit(f"{what} would produce more than {MAX_RESULT} characters or items")
    _charge(size)


# What one render may build in all with the operations above (each within MAX_RESULT): a loop that builds a
# fresh million-character string per pass inside `{% set %}...{% endset %}` streams nothing out to count.
ALLOCATION_FACTOR = 16
_render_budget = threading.local()


def _charge(size: int) -> None:
    left = getattr(_render_budget, "left", None)
    if left is None:
        return
    _render_budget.left = left - size
    if _render_budget.left < 0:
        raise TemplateLimit(f"the template built more than {ALLOCATION_FACTOR} × TUNEGATE_TEMPLATE_CHARS "
                            "characters in all")


def _check_printf(fmt: str, args: Any) -> None:
    """`'%0999999999d' % 1` allocates its width before anything can see it: widths and precisions are checked."""
    for match in _WIDTH.finditer(fmt):
        for number in match.groups():
            if number and number != "*" and int(number) > MAX_RESULT:
                raise TemplateLimit(f"a %-format width or precision over {MAX_RESULT}")
    values = args if isinstance(args, tuple) else (args,)
    if "*" in fmt and any(_int(v) and abs(v) > MAX_RESULT for v in values):
        raise TemplateLimit(f"a %-format width or precision over {MAX_RESULT}")


def _check_format_spec(fmt: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for match in _FORMAT_SPEC.finditer(fmt):
        if any(n and int(n) > MAX_RESULT for n in match.groups()):
            raise TemplateLimit(f"a format width or precision over {MAX_RESULT}")
    if "{" in fmt.partition(":")[2] and any(_int(v) and abs(v) > MAX_RESULT for v in (*args, *kwargs.values())):
        raise TemplateLimit(f"a format width or precision over {MAX_RESULT}")


def _check_str_method(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """String methods whose result can dwarf their input."""
    numbers = [v for v in (*args, *kwargs.values()) if _int(v)]
    if name in ("center", "ljust", "rjust", "zfill") and any(v > MAX_RESULT for v in numbers):
        raise TemplateLimit(f"str.{name} would produce more than {MAX_RESULT} characters")
    if name == "expandtabs" and any(v * max(text.count("\t"), 1) > MAX_RESULT for v in numbers):
        raise TemplateLimit(f"str.{name} would produce more than {MAX_RESULT} characters")
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        _check_size(_replaced_size(text, args[0], args[1]), "replace")
    if name in ("format", "format_map"):
        _check_format_spec(text, args, kwargs)
    if name == "join" and args and isinstance(args[0], (list, tuple)):
        _check_size(len(text) * len(args[0]) + sum(len(str(x)) for x in args[0]), "join")


def _replaced_size(text: str, old: str, new: str) -> int:
    hits = len(text) + 1 if old == "" else text.count(old)
    return len(text) + hits * (len(new) - len(old))


def _bounded_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """The built-in filters that take a width or a count, each checking its result's size first."""

    def center(value: Any, width: int = 80) -> Any:
        if _int(width) and width > MAX_RESULT:
            raise TemplateLimit(f"center would produce more than {MAX_RESULT} characters")
        return filters["center"](value, width)

    def indent(value: Any, width: Any = 4, first: bool = False, blank: bool = False) -> Any:
        pad = width if _int(width) else len(str(width))
        _check_size(len(str(value)) + pad * (str(value).count("\n") + 1), "indent")
        return filters["indent"](value, width, first, blank)

    def format_(value: Any, *args: Any, **kwargs: Any) -> Any:
        if args and kwargs:
            raise TemplateLimit("format takes positional or keyword arguments, not both")
        _check_printf(str(value), tuple(args) or kwargs)
        return filters["format"](value, *args, **kwargs)

    def replace(eval_ctx: Any, value: Any, old: Any, new: Any, count: int | None = None) -> Any:
        size = _replaced_size(str(value), str(old), str(new))
        if count is not None and _int(count) and count >= 0:
            size = len(str(value)) + min(count, len(str(value)) + 1) * (len(str(new)) - len(str(old)))
        _check_size(size, "replace")
        return filters["replace"](eval_ctx, value, old, new, count)

    def batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
        if _int(linecount) and linecount > MAX_RESULT:
            raise TemplateLimit(f"batch of more than {MAX_RESULT} items")
        return filters["batch"](value, linecount, fill_with)

    def slice_(value: Any, slices: int, fill_with: Any = None) -> Any:
        if _int(slices) and slices > MAX_RESULT:
            raise TemplateLimit(f"slice into more than {MAX_RESULT} parts")
        return filters["slice"](value, slices, fill_with)

    def wordwrap(value: Any, width: int = 79, *args: Any, **kwargs: Any) -> Any:
        _check_size(len(str(value)) * 2, "wordwrap")
        return filters["wordwrap"](value, width, *args, **kwargs)

    replace.jinja_pass_arg = filters["replace"].jinja_pass_arg  # type: ignore[attr-defined]
    wordwrap.jinja_pass_arg = getattr(filters["wordwrap"], "jinja_pass_arg", None)  # type: ignore[attr-defined]
    if wordwrap.jinja_pass_arg is None:  # type: ignore[attr-defined]
        del wordwrap.jinja_pass_arg  # type: ignore[attr-defined]
    return {"center": center, "indent": indent, "format": format_, "replace": replace, "batch": batch,
            "slice": slice_}


def _bounded_lipsum(lipsum: Any) -> Any:
    def bounded(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:  # noqa: A002 - Jinja's names
        if not all(_int(v) for v in (n, min, max)) or n * max > MAX_RESULT // 8 or n < 0 or min < 1 or max < min:
            raise TemplateLimit(f"lipsum(n={n}, max={max}) is over the template size limit")
        return lipsum(n, html, min, max)
    return bounded


# Per rendered prompt (or choice, or target): CPU seconds and characters; environment variables change them.
TEMPLATE_SECONDS = 2.0
TEMPLATE_CHARS = 1_000_000


def template_limits() -> tuple[float, int]:
    """(CPU seconds, characters) per render: $TUNEGATE_TEMPLATE_SECONDS and $TUNEGATE_TEMPLATE_CHARS, else the
    defaults; a value that is not a positive number is bad input."""
    limits = []
    for name, default, kind in (("TUNEGATE_TEMPLATE_SECONDS", TEMPLATE_SECONDS, float),
                                ("TUNEGATE_TEMPLATE_CHARS", TEMPLATE_CHARS, int)):
        text = os.environ.get(name)
        try:
            value = kind(text) if text else default
        except ValueError:
            value = -1
        if not value > 0 or value != value:
            raise UserError(f"${name} must be a positive number, got {excerpt(text)}", field=name)
        limits.append(value)
    return float(limits[0]), int(limits[1])


def render_bounded(template: Any, row: dict[str, Any], *, expression: bool = False) -> Any:
    """Render `template` (or call a compiled expression) with `row`, stopping it past TEMPLATE_SECONDS of CPU
    time or TEMPLATE_CHARS characters of output: a TemplateLimit. The time is checked on every line the
    compiled template runs (a trace function, active only in this thread and only while rendering), so
    nested loops that print nothing are stopped too."""
    seconds, chars = template_limits()
    start, ticks = time.thread_time(), [0]

    def local(frame: Any, event: str, arg: Any) -> Any:
        ticks[0] += 1
        if ticks[0] % 256 == 0 and time.thread_time() - start > seconds:  # a clock read is a syscall
            raise TemplateLimit(f"the template ran past {seconds:g} s of CPU time "
                                "(TUNEGATE_TEMPLATE_SECONDS)")
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        # line events only in the compiled template's own frames: its loops are where the time goes
        return local if frame.f_code.co_filename == "<template>" else None

    previous, budget = sys.gettrace(), getattr(_render_budget, "left", None)
    _render_budget.left = ALLOCATION_FACTOR * chars
    sys.settrace(tracer)
    try:
        if expression:
            value = template(**row)
            if isinstance(value, (str, list, tuple)) and len(value) > chars:
                raise TemplateLimit(f"the expression produced more than {chars} items (TUNEGATE_TEMPLATE_CHARS)")
            return value
        parts, size = [], 0
        for chunk in template.generate(**row):
            size += len(chunk)
            if size > chars:
                raise TemplateLimit(f"the template rendered more than {chars} characters "
                                    "(TUNEGATE_TEMPLATE_CHARS)")
            parts.append(chunk)
        return "".join(parts)
    finally:
        sys.settrace(previous)
        _render_budget.left = budget


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
    try:
        resolved = (folder / path).resolve()
    except (RuntimeError, OSError) as exc:  # Python 3.11 raises RuntimeError on a symlink loop, 3.13 OSError
        raise UserError(f"data file {excerpt(str(path))} cannot be resolved (a symlink loop?): "
                        f"{excerpt(str(exc), 120)}", source=source, field=field) from None
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


# C0 and C1 controls (ESC starts CSI/OSC sequences that retitle or recolour a terminal; BEL, BS, CR rewrite
# what was shown), DEL, and the bidirectional overrides and isolates that reorder a line (Trojan Source).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape_control(match: re.Match[str]) -> str:
    return match.group(0).encode("unicode_escape").decode("ascii")


def strip_controls(text: str) -> str:
    """`text` with control characters shown as Python escapes (`\\x1b`), keeping newlines and tabs: for every
    human-facing output (terminal, Markdown, HTML) of text that came from a run, gate or suite file."""
    return _CONTROLS.sub(_escape_control, text)


_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def json_safe(text: str) -> str:
    """JSON text (from json.dumps with ensure_ascii=False) with the characters json leaves raw but a terminal
    acts on (DEL, C1 controls such as the 8-bit CSI, bidirectional overrides, line separators) as \\u escapes:
    the same JSON value, safe to `cat`. C0 controls json.dumps escapes itself."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def terminal_line(text: str) -> str:
    """A status or error line for the terminal: secrets redacted, control characters escaped."""
    return strip_controls(redact(text))


def xml_safe(text: str) -> str:
    """`text` with every character XML 1.0 forbids (controls but tab and newline, lone surrogates, U+FFFE and
    U+FFFF) shown as a Python escape, so a JUnit file always parses."""
    return _XML_FORBIDDEN.sub(_escape_control, strip_controls(text))


_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class SafeTextStream:
    """A text stream that writes through `redact` and `strip_controls`: the CLI's stdout, whose tables carry
    no styling of their own, so any control character in it came from a file."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(strip_controls(redact(text)))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, buffer...
        return getattr(self._inner, name)


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
