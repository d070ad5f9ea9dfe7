"""Where tunegate keeps its files, and writing output files so that readers never see half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` through a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def tunegate_home() -> Path:
    """The user's cache: `$TUNEGATE_HOME`, default `~/.cache/tunegate`."""
    home = Path(os.environ.get("TUNEGATE_HOME") or Path.home() / ".cache" / "tunegate")
    home.mkdir(parents=True, exist_ok=True)
    return home
