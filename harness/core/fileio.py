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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for each non-blank line of a JSON-lines file, read as a stream.

    Lines are split on "\\n" only: U+2028 and the other separators `str.splitlines` also splits on may sit
    inside a JSON string. Invalid UTF-8, malformed JSON and a line that is not a JSON object are each a
    UserError naming the file and the line.
    """
    path = Path(path)
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
