"""Where tunegate keeps its files; writing output files so that readers never see half of one; reading JSON lines."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.core.api import UserError


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` through a temporary file in the same directory and a rename.

    The file gets the permissions any new file gets under the user's umask (0644 under the usual 022), so a
    web server running as another user can serve a report; the temporary name is random and created
    exclusively, so nothing else is ever written through it."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:  # a full disk (ENOSPC), a quota, a folder where the file should go: nothing half-written
        tmp.unlink(missing_ok=True)
        raise _write_error(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_error(path: Path, exc: OSError) -> UserError:
    """An output that cannot be written, as one line (exit 2): the user's disk, folder or permissions."""
    return UserError(f"cannot write: {exc.strerror or exc.__class__.__name__}", source=str(path))


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for each non-blank line of a JSON-lines file, read as a stream.

    Lines are split on "\\n" only: U+2028 and the other separators `str.splitlines` also splits on may sit
    inside a JSON string. Invalid UTF-8, malformed JSON and a line that is not a JSON object are each a
    UserError naming the file and the line.
    """
    path = Path(path)
    require_file(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", source=str(path)) from None
    with handle:
        for number, raw in enumerate(handle, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"not valid UTF-8 (byte {exc.start} of the line)", source=str(path),
                                line=number) from None
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deep
                reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                raise UserError(f"malformed JSON: {reason}", source=str(path), line=number) from None
            if not isinstance(row, dict):
                raise UserError(f"expected a JSON object on each line, got {type(row).__name__}", source=str(path),
                                line=number)
            yield number, row
def home_path() -> Path:
    """`$TUNEGATE_HOME`, default `~/.cache/tunegate` (the one place it is resolved; not created here)."""
    return Path(os.environ.get("TUNEGATE_HOME") or Path.home() / ".cache" / "tunegate")


def tunegate_home() -> Path:
    """The user's cache: `$TUNEGATE_HOME`, default `~/.cache/tunegate`, created on first use."""
    home = home_path()
    home.mkdir(parents=True, exist_ok=True)
    return home


# Files a run directory holds that a command reads (an output must never replace one of them).
RUN_FILES = ("results.json", "samples.jsonl")
STORE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def check_outputs(outputs: list[tuple[str, str | Path | None]], inputs: list[tuple[str, str | Path | None]]) -> None:
    """Before any work: every output names a file (not a folder), no two outputs name one file, and no output
    names an input (a run directory's results.json or samples.jsonl, a gate file, a store and its WAL files),
    through symlinks and hard links alike. A UserError (exit 2) naming both otherwise."""
    given = [(label, Path(p)) for label, p in outputs if p]
    for label, path in given:
        if path.is_dir():
            raise UserError("is a directory; name a file to write", source=str(path), field=label)
    for i, (label, path) in enumerate(given):
        for other_label, other in given[:i]:
            if _same_file(path, other):
                raise UserError(f"{other_label} and {label} name the same file: each output needs its own",
                                source=str(path), field=label)
        for in_label, in_path in _input_files(inputs):
            if _same_file(path, in_path):
                raise UserError(f"would overwrite the input {in_label} ({in_path}); write it elsewhere",
                                source=str(path), field=label)


def _input_files(inputs: list[tuple[str, str | Path | None]]) -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    for label, ref in inputs:
        if not ref or "://" in str(ref):
            continue
        path = Path(ref)
        if path.is_dir():
            files += [(label, path / name) for name in RUN_FILES]
        elif label == "--store":
            files += [(label, Path(f"{path}{side}")) for side in STORE_SIDE_FILES]
        else:
            files.append((label, path))
    return files


def _same_file(a: Path, b: Path) -> bool:
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except (OSError, RuntimeError, ValueError):
        return False


def not_a_file(path: Path) -> str | None:
    """Why `path` cannot be read as a file, in words (missing, a folder, a FIFO that would block the read
    forever, a socket, a device, a symlink loop), or None for a regular file."""
    import errno
    import stat

    try:
        mode = Path(path).stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symlink loop"
        return "does not exist" if exc.errno == errno.ENOENT else f"cannot be read ({exc.strerror})"
    except (RuntimeError, ValueError):
        return "cannot be resolved (a symlink loop?)"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    return "is a device, not a regular file" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "is not a regular file"


def require_file(path: Path, field: str | None = None) -> None:
    """A UserError naming what `path` is when it is not a regular file (before any read that could block)."""
    why = not_a_file(path)
    if why is not None:
        raise UserError(why, source=str(path), field=field)
