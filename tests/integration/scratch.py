"""Scratch copies of the built-in suites for the long integration tests: every task as shipped (kinds, metrics,
data), but generated answers capped at a few tokens, which is what those tests spend their time on.

Point `$TUNEGATE_SUITES_PATH` at the copy and the suites resolve by name to it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MAX_NEW_TOKENS = 16  # per generated answer in the scratch suites


def capped_suites(dst: Path, max_new_tokens: int = MAX_NEW_TOKENS) -> Path:
    """Copy `suites/` to `dst` with every generate/code task's max_new_tokens at most `max_new_tokens`."""
    shutil.copytree(ROOT / "suites", dst, ignore=shutil.ignore_patterns("demo*", "__pycache__"))
    for path in dst.glob("*/suite.yaml"):
        suite = yaml.safe_load(path.read_text(encoding="utf-8"))
        for task in suite.get("tasks", []):
            gen = task.get("generation")
            if isinstance(gen, dict):
                gen["max_new_tokens"] = min(int(gen.get("max_new_tokens", 128)), max_new_tokens)
            elif task.get("kind") in ("generate", "code"):
                task["generation"] = {"max_new_tokens": max_new_tokens}
        path.write_text(yaml.safe_dump(suite, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return dst
