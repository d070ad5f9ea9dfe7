"""`tunegate train --check`: how long the run will take, from throughput measured on the reference machine.

The figures are DESIGN.md's ("The embedded default model"): SmolLM2-135M in float32 on 2 CPU cores. A larger
base or another machine scales them, which the plan says; methods that sample completions (GRPO, RLOO) spend
their time generating and get no estimate.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# tokens per second, measured (DESIGN.md): LoRA-style training, full fine-tuning, a batched forward pass
TRAIN_PEFT_TPS = 230.0
TRAIN_FULL_TPS = 150.0
FORWARD_TPS = 470.0
LOAD_SECONDS = 17.0  # first load of the embedded GGUF model; a cached conversion loads in under a second
SAMPLE_ROWS = 64  # rows tokenised to measure a row's length


@dataclass(frozen=True)
class Measured:
    """Throughput recorded in earlier outputs' provenance.json on this machine (same base; None: no record)."""

    train_tps: float | None = None
    held_out_seconds_per_row: float | None = None
    source: str | None = None


@dataclass(frozen=True)
class Estimate:
    tokens_per_row: float
    train_tokens: int
    train_seconds: float
    held_out_rows: int
    held_out_passes: int
    held_out_seconds: float
    train_rate: float

    @property
    def total_seconds(self) -> float:
        return LOAD_SECONDS + self.train_seconds + self.held_out_seconds


def row_tokens(rows: list[dict[str, Any]], tokenizer: Any, max_length: int) -> float:
    """Mean tokens of a training example (its text fields together, cut at max_length) over the first rows."""
    sample = rows[:SAMPLE_ROWS]
    if not sample:
        return 0.0
    sizes = []
    for row in sample:
        text = "".join(str(v) for k, v in row.items() if k in ("prompt", "completion", "chosen", "rejected")
                       and isinstance(v, str))
        sizes.append(min(max_length, len(tokenizer(text).input_ids) + 1))
    return sum(sizes) / len(sizes)


def measured_rates(output_dir: Path, model_hash: str, full: bool, eval_batch_size: int) -> Measured:
    """Training tokens/s and held-out seconds per row from the provenance of earlier outputs beside this one
    (the median over those on the same base and of the same kind, full or PEFT; held-out seconds only from
    outputs whose held-out pass ran at this eval.batch_size, since batching sets its speed)."""
    tps: list[float] = []
    per_row: list[float] = []
    found: list[str] = []
    for prov_path in sorted({output_dir, *output_dir.parent.glob("*")} - {output_dir.parent}):
        path = Path(prov_path) / "provenance.json"
        try:
            prov = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(prov, dict) or (prov.get("base") or {}).get("model_hash") != model_hash:
            continue
        if (prov.get("peft_type") == "full") != full:
            continue
        rate, held, rows = prov.get("tokens_per_second"), prov.get("held_out_seconds"), prov.get("held_out_rows")
        if isinstance(rate, (int, float)) and rate > 0:
            tps.append(float(rate))
            found.append(path.parent.name)
        same_batching = prov.get("held_out_batch_size") == eval_batch_size
        if same_batching and isinstance(held, (int, float)) and isinstance(rows, int) and rows > 0:
            per_row.append(float(held) / (2 * rows))  # two passes: step 0 and the end
    if not tps:
        return Measured()
    return Measured(statistics.median(tps), statistics.median(per_row) if per_row else None,
                    ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else ""))


def estimate(*, steps: int, batch_size: int, grad_accum: int, full: bool, tokens_per_row: float,
             held_out_rows: int, held_out_passes: int, sequences_per_row: int = 1,
             measured: Measured | None = None) -> Estimate:
    """Training time (examples per step × tokens per example at the training rate) plus the held-out loss passes;
    rates measured on this machine by earlier runs where there are any, else DESIGN.md's figures."""
    measured = measured or Measured()
    train_tokens = int(steps * batch_size * grad_accum * tokens_per_row * sequences_per_row)
    rate = measured.train_tps or (TRAIN_FULL_TPS if full else TRAIN_PEFT_TPS)
    if measured.held_out_seconds_per_row is not None:
        held = held_out_rows * held_out_passes * measured.held_out_seconds_per_row
    else:
        held = held_out_rows * held_out_passes * tokens_per_row * sequences_per_row / FORWARD_TPS
    return Estimate(tokens_per_row, train_tokens, train_tokens / rate, held_out_rows, held_out_passes, held, rate)


def fmt_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
