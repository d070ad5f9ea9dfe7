"""`tunegate demo`: the main job on the embedded default model.

Evaluate the base on the built-in suites, fine-tune with three methods, evaluate every adapter in one
sweep (base loaded once), compare and gate each against the base, and write the reports. Exits with
the gate's status: 0 when every adapter passes, 1 when any fails, 3 when none fails but some rule cannot
be decided on the demo's few samples (the honest verdict at demo sizes).
"""

# Local imports: each stage imports its heavy modules (training, reports) when it starts, so that the demo
# shows its first stage at once.

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.engine import EvalSettings, evaluate
from harness.quiet import active_log
from harness.runs import atomic_write_text

SUITES = ["medical", "legal", "code", "adversarial", "general"]
RECIPES = ["lora", "ia3", "prompt-tuning"]
GATE_FILE = Path("reports/gate.default.yaml")


@dataclass(frozen=True)
class Sizes:
    """How much the demo does; --quick shrinks every knob and says so in the report."""

    name: str
    eval_limit: int  # samples per task
    max_steps: int | None  # None: the shipped recipe's own
    train_rows: int | None


DEFAULT = Sizes("demo", eval_limit=3, max_steps=None, train_rows=None)
QUICK = Sizes("demo-quick", eval_limit=1, max_steps=2, train_rows=16)


@dataclass
class Stage:
    name: str
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def run_demo(quick: bool = False, store_path: str | None = None, root: Path = Path(".")) -> int:
    """Run the five stages and return the gate's exit status."""
    sizes = QUICK if quick else DEFAULT
    out = root / "reports" / sizes.name
    stages: list[Stage] = []
    settings = EvalSettings(limit=sizes.eval_limit)

    stage = _begin(stages, 1, f"evaluating the base model on {', '.join(SUITES)} ({sizes.eval_limit} per task)")
    base = evaluate(None, [], SUITES, out / "runs" / "base", settings, store_path=store_path)[0]
    _end(stage, _cache_note(base))

    stage = _begin(stages, 2, f"fine-tuning with {', '.join(RECIPES)} on the medical and legal train splits")
    adapters = [_train(root, name, sizes, stage) for name in RECIPES]
    _end(stage)

    stage = _begin(stages, 3, f"evaluating {len(adapters)} adapters in one sweep (base loaded once)")
    sweep = evaluate(None, [str(a) for a in adapters], SUITES, out / "runs" / "sweep", settings,
                     store_path=store_path)
    _end(stage, *[f"{r['model']['adapter']['name']}: {_cache_note(r)}" for r in sweep])

    stage = _begin(stages, 4, f"comparing each adapter with the base and gating with {GATE_FILE}")
    gates, runs = _gate_and_report(out, root / GATE_FILE, quick)
    _end(stage)

    code = max(g.exit_code for g in gates)  # 1 (a failure) outranks 3 (inconclusive), which outranks 0
    _write_summary(out, sizes, stages, base, sweep, gates, code)
    _print_summary(out, gates, code)
    return code


def _begin(stages: list[Stage], number: int, text: str) -> Stage:
    print(f"\n[{number}/5] {text}", flush=True)
    stages.append(Stage(text))
    stages[-1].seconds = time.perf_counter()
    return stages[-1]


def _end(stage: Stage, *notes: str) -> None:
    stage.seconds = round(time.perf_counter() - stage.seconds, 1)
    stage.notes += [n for n in notes if n]
    for note in stage.notes:
        print(f"      {note}")
    print(f"      done in {stage.seconds} s", flush=True)


def _cache_note(results: dict[str, Any]) -> str:
    timing = results["timing"]
    if timing["cache_misses"] == 0:
        return f"reused every answer from the cache ({timing['cache_hits']} requests; nothing changed)"
    speed = timing.get("tokens_per_second")
    rate = f"; {timing.get('tokens_processed', 0)} tokens at {speed:.0f} tokens/s" if speed else ""
    return f"{timing['cache_misses']} requests computed, {timing['cache_hits']} from the cache{rate}"


def _train(root: Path, name: str, sizes: Sizes, stage: Stage) -> Path:
    from harness.train import is_up_to_date, train

    recipe = root / "adapters" / f"{name}.yaml"
    if sizes.max_steps is not None:
        recipe = _quick_recipe(recipe, sizes)
    if is_up_to_date(recipe):
        stage.notes.append(f"{recipe.stem}: unchanged recipe, data and base: reusing the trained adapter")
        from harness.train import load_recipe

        return load_recipe(recipe).output_dir
    out = train(recipe)
    try:
        speed = json.loads((out / "provenance.json").read_text(encoding="utf-8")).get("tokens_per_second")
    except (OSError, ValueError):
        speed = None
    stage.notes.append(f"{recipe.stem}: trained into {out}" + (f" ({speed:.0f} tokens/s)" if speed else ""))
    return out


def _quick_recipe(recipe: Path, sizes: Sizes) -> Path:
    """A copy of a shipped recipe with fewer steps and rows, training into adapters/<name>-quick/."""
    raw = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    raw.setdefault("train", {})["max_steps"] = sizes.max_steps
    rows = sizes.train_rows or 0
    raw["data"]["limit"] = min(raw["data"].get("limit") or rows, rows)
    raw["data"]["eval_limit"] = 4  # held-out rows for the loss curve
    raw["eval"] = {"suites": [], "limit": 2}
    raw["output"] = f"../{recipe.stem}-quick"
    target = recipe.parent / ".quick" / f"{recipe.stem}-quick.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    text = f"# generated by `tunegate demo --quick` from {recipe.name}\n" + yaml.safe_dump(raw, sort_keys=False)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        atomic_write_text(target, text)  # rewritten only when it changes, so reuse checks stay valid
    return target


def _gate_and_report(out: Path, gate_file: Path, quick: bool):
    from harness.gate import gate_runs
    from harness.report.write import write_reports
    from harness.runs import load_run, load_runs
    from harness.train import update_model_card
    from harness.verdict import write_junit, write_verdict

    base = load_run(out / "runs" / "base")
    candidates = load_runs([out / "runs" / "sweep"])
    for run in candidates:
        adapter_dir = Path(run.adapter["path"]) if run.adapter else None
        if adapter_dir is not None and adapter_dir.is_dir():
            update_model_card(adapter_dir, run.results)
    gates = [gate_runs(gate_file, base, cand) for cand in candidates]
    write_junit(gates, out / "junit.xml")
    write_verdict(gates, out / "verdict.json")
    runs = [base, *candidates]
    if quick:
        for run in runs:  # say so in every label of the report
            run.label = f"{run.label} (quick)"
    write_reports(runs, gate=gates, html_path=out / "report.html", md_path=out / "report.md")
    return gates, runs


def _write_summary(out: Path, sizes: Sizes, stages: list[Stage], base: dict[str, Any], sweep: list[dict[str, Any]],
                   gates: list[Any], code: int) -> None:
    variants = {"base": _headline(base), **{r["model"]["adapter"]["name"]: _headline(r) for r in sweep}}
    summary = {
        "format": "tunegate.demo/1", "mode": sizes.name, "quick": sizes is QUICK, "suites": SUITES,
        "sizes": {"eval_limit_per_task": sizes.eval_limit, "max_steps": sizes.max_steps, "train_rows": sizes.train_rows},
        "variants": variants,
        "gate": {g.comparison.candidate.label: {"verdict": g.verdict, "failed_rules": g.failures,
                                                "inconclusive_rules": g.inconclusive} for g in gates},
        "exit_code": code,
        "stages": [{"name": s.name, "seconds": s.seconds, "notes": s.notes} for s in stages],
    }
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


def _headline(results: dict[str, Any]) -> dict[str, Any]:
    """Suite-level figures of one run, for the summary."""
    return {suite: {name: m["value"] for name, m in data["metrics"].items()}
            for suite, data in results["suites"].items()}


def _print_summary(out: Path, gates: list[Any], code: int) -> None:
    print("\n[5/5] verdict")
    for gate in gates:
        status = gate.verdict
        if gate.failures:
            status += f" ({len(gate.failures)} of {len(gate.rules)} rules fail: {'; '.join(gate.failures)})"
        elif gate.inconclusive:
            status += f" ({len(gate.inconclusive)} of {len(gate.rules)} rules cannot be decided on this data)"
        print(f"      {gate.comparison.candidate.label}: {status}")
    for name in ("report.html", "report.md", "results.json", "junit.xml"):
        print(f"      {out / name}")
    if (log := active_log()) is not None:
        print(f"      library output (warnings, progress bars, trainer logs): {log}")
    meaning = {0: "every adapter passes the gate", 1: "the gate failed",
               3: "inconclusive: not enough evidence to decide; see `tunegate plan`"}[code]
    print(f"      exit status {code} ({meaning})")
    sys.stdout.flush()
