"""`tunegate cycle`: one turn of the continuous-learning loop for a channel.

1. audit the new data against the test split of every suite the channel's release was evaluated on
   (duplicates and 13-gram contamination, harness.data.audit); contaminated data stops the cycle;
2. train the recipe on the new data, from the channel's current adapter when the recipe says
   `init_adapter: CHANNEL` (its own channel's name), else fresh;
3. evaluate the candidate on the same suites with the release's own settings (so items pair);
4. gate it with the channel's own gate file against its current release (the gate file's `max_drift`
   rules compare with the anchor release as well);
5. promote it on a pass.

Every step's output lands in the work folder; the ledger keeps the run, the verdict and the release.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.core.api import UserError
from harness.core.config import load_yaml
from harness.core.fileio import not_a_file
from harness.core.untrusted import terminal_line
from harness.data.audit import AuditSettings, run_audit
from harness.flows import release
from harness.storage import ledger
from harness.storage.store import Store


@dataclass
class CycleResult:
    verdict: str  # PASS, FAIL, INCONCLUSIVE, or CONTAMINATED (the audit stopped it)
    exit_code: int
    release: int | None  # the new release number when promoted
    run_dir: Path | None


def _say(text: str) -> None:
    print(terminal_line(f"tunegate cycle: {text}"), file=sys.stderr)


def _channel_state(store_path: str | None, channel: str) -> tuple[ledger.Channel, str, dict[str, Any]]:
    store = Store(store_path)
    try:
        ch = ledger.require_channel(store.conn, channel)
        if ch.gate_hash is None:
            raise UserError(f"channel '{channel}' has no gate file (saved with --save-baseline): create a gated "
                            "channel for the loop", field="--channel")
        row = store.conn.execute("SELECT gate_text FROM ledger_channels WHERE name=?", (channel,)).fetchone()
        results, _ = ledger.run_data(store.conn, str(ch.run_id))
    finally:
        store.close()
    return ch, row[0], results


def _derived_recipe(recipe: Path, data: Path, channel: str, adapter: str | None, out: Path, target: Path) -> Path:
    """The recipe, trained on `data`, into `out`, from the channel's adapter when it says init_adapter: CHANNEL."""
    raw, _ = load_yaml(recipe)
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
        raise UserError("a cycle recipe needs a data section", source=str(recipe), field="data")
    keep = {k: v for k, v in raw["data"].items() if k in ("limit", "eval_fraction", "eval_limit")}
    raw["data"] = {**keep, "file": str(data.resolve())}
    if raw.get("init_adapter") == channel:
        if adapter is None:
            _say(f"release of '{channel}' is a bare base model: training starts fresh")
            raw.pop("init_adapter")
        else:
            raw["init_adapter"] = adapter
    elif raw.get("init_adapter"):
        raw["init_adapter"] = str((recipe.parent / str(raw["init_adapter"])).resolve())
    raw["output"] = str(out.resolve())
    target.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return target


def run_cycle(recipe: Path, data: Path, channel: str, *, workdir: Path, store_path: str | None = None,
              audit_threshold: float = 0.0, progress: bool = True) -> CycleResult:
    """One turn of the loop (see the module docstring); the exit code is the gate's (1 also for contamination)."""
    # imported on first use (start-up time): engine and train load torch, which only a cycle that gets this far needs
    from harness.flows.evaluate import evaluate
    from harness.flows.gating import run_gate
    from harness.run.engine import EvalSettings
    from harness.train import train

    if not Path(data).is_file():
        why = not_a_file(Path(data))
        raise UserError("new data file not found" if why == "does not exist" else f"the new data file {why}",
                        source=str(data), field="--data")
    ch, gate_text, results = _channel_state(store_path, channel)
    suites = list(results["suites"])
    number = ch.number + 1
    work = Path(workdir) / f"{channel}-{number}"
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the work folder: {exc.strerror}", source=str(work), field="--workdir") from None
    _say(f"auditing {data} against the test splits of {', '.join(suites)}")
    if run_audit(str(data), suites, AuditSettings(threshold=audit_threshold), work / "audit.json") != 0:
        return CycleResult("CONTAMINATED", 1, None, None)
    adapter = ((results.get("model") or {}).get("adapter") or {}).get("path")
    recipe_file = _derived_recipe(Path(recipe), Path(data), channel, adapter, work / "adapter", work / "recipe.yaml")
    _say(f"training {recipe} on {data}" + (f" from {adapter}" if adapter else ""))
    out = train(recipe_file, progress=progress)
    settings = results.get("settings") or {}
    model = (results.get("model") or {}).get("spec")
    _say(f"evaluating {out.name} on {', '.join(suites)}")
    evaluate(model, [str(out)], suites, work / "eval",
             EvalSettings(limit=settings.get("limit"), full=bool(settings.get("full")), progress=progress),
             store_path=store_path)
    gate_file = work / "gate.yaml"
    gate_file.write_bytes(gate_text.encode("utf-8"))
    if ledger.gate_hash(gate_file) != ch.gate_hash:
        raise UserError(f"the stored gate file of '{channel}' does not reproduce its hash", field="--channel")
    result = run_gate(gate_file, channel, work / "eval", junit_path=work / "junit.xml", store_path=store_path,
                      verdict_path=work / "eval" / "verdict.json", record=True)
    _say(f"gate: {result.verdict}")
    if not result.passed:
        return CycleResult(result.verdict, result.exit_code, None, work / "eval")
    store = Store(store_path)
    try:
        promoted = release.promote(store.conn, str(work / "eval"), channel)
    finally:
        store.close()
    return CycleResult("PASS", 0, promoted.number, work / "eval")
