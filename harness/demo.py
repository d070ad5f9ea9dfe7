"""`tunegate demo`: the main job on the embedded default model."""

from __future__ import annotations

from pathlib import Path

from harness.engine import EvalSettings, evaluate, markdown_table

DEMO_SUITES = ["basics"]


def run_demo(quick: bool = False, store_path: str | None = None) -> int:
    """Evaluate the embedded model on the built-in suites, print the table and where the run is."""
    out = Path("runs/demo-base")
    settings = EvalSettings(limit=10 if quick else None)
    results = evaluate(None, [], DEMO_SUITES, out, settings, store_path=store_path)
    for res in results:
        print(markdown_table(res))
    print(f"\nresults: {out / 'results.json'}  samples: {out / 'samples.jsonl'}")
    return 0
