"""Export judgments as training data: preference pairs for the reward model and DPO."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.core.api import UserError
from harness.core.fileio import atomic_write_text
from harness.data.chat import plain_prompt
from harness.storage.review import ReviewDB

FORMATS = ("preference",)


@dataclass
class ExportStats:
    """How many rows were written and how many judgments were left out, by reason."""

    rows: int = 0
    ties: int = 0
    both_bad: int = 0
    path: Path | None = None

    def line(self) -> str:
        return (f"wrote {self.rows} preference pairs to {self.path} "
                f"(left out {self.ties} ties and {self.both_bad} both-bad)")


def preference_rows(db: ReviewDB) -> tuple[list[dict[str, str]], ExportStats]:
    """One {prompt, chosen, rejected} row per A/B judgment, in judgment order."""
    stats = ExportStats()
    rows: list[dict[str, str]] = []
    items = {it.item_id: it for it in db.items()}
    for j in db.judgments(mode="pairwise"):
        if j["choice"] == "tie":
            stats.ties += 1
            continue
        if j["choice"] == "both_bad":
            stats.both_bad += 1
            continue
        item = items[j["item_id"]]
        winner = int(j["winner"])
        rows.append({"prompt": plain_prompt(item.prompt), "chosen": item.responses[winner],
                     "rejected": item.responses[1 - winner]})
    stats.rows = len(rows)
    return rows, stats


def export(out: Path | str, *, fmt: str = "preference", store_path: Path | str | None = None) -> ExportStats:
    """`tunegate review export`: write the rows through a temporary file and a rename."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})", field="--format")
    db = ReviewDB(store_path)
    try:
        rows, stats = preference_rows(db)
    finally:
        db.close()
    out = Path(out)
    if out.is_dir():
        raise UserError("is a directory; give a .jsonl file name", source=str(out))
    atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    stats.path = out
    return stats
