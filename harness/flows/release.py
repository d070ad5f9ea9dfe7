"""Release commands end to end: a channel bound to a valid gate file, a promotion, one run's ledger view.

The ledger (harness.storage.ledger) keeps channels, releases and verdicts and knows neither gate files'
schema nor run directories; this module validates the gate file and turns a run directory into a recorded
run id (harness.flows.refs.run_ref) before the ledger sees it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.core.api import UserError
from harness.core.fileio import not_a_file
from harness.decide.gate import load_gate
from harness.flows.refs import run_ref
from harness.storage import ledger
from harness.storage.db import Database


def create_channel(db: Database, name: str, gate_file: Path, first_run: str, reason: str | None = None
                   ) -> ledger.Channel:
    """A channel bound to a gate file (validated here: a channel binds only a valid one), with release 1."""
    gate_file = Path(gate_file)
    if not gate_file.is_file():
        why = not_a_file(gate_file)
        raise UserError("gate file not found" if why == "does not exist" else f"the gate file {why}",
                        source=str(gate_file), field="--gate")
    load_gate(gate_file)
    return ledger.create_channel(db, name, gate_file, run_ref(db, first_run), reason)


def promote(db: Database, ref: str, to: str, *, force: bool = False, reason: str | None = None) -> ledger.Promotion:
    """Make a run (directory, id or CHANNEL@N) the channel's next release, as the ledger allows."""
    return ledger.promote(db, run_ref(db, ref), to, force=force, reason=reason)


def show_run(db: Database, ref: str) -> dict[str, Any]:
    """One run's fingerprints, hashes, scores, verdicts and releases."""
    return ledger.show_run(db, run_ref(db, ref))
