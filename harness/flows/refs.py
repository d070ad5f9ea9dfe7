"""Run references as a user types them, resolved against the store: a run directory, a channel name (its
current release), CHANNEL@N, or a run id from the ledger. Commands resolve references here and hand loaded
runs to the layers below, which never open the store themselves."""

from __future__ import annotations

from pathlib import Path

from harness.core.api import UserError
from harness.core.untrusted import excerpt
from harness.data.runs import RESULTS, Run, load_run, stored_run, variant_dirs
from harness.storage import ledger
from harness.storage.db import Database
from harness.storage.store import Store


def resolve_run(ref: str | Path, store_path: str | None = None) -> Run:
    """A run directory; the name of a channel in the store (its current release, as saved with `eval
    --save-baseline NAME` or promoted); CHANNEL@N (release N); or a run id from the ledger."""
    path = Path(ref)
    if path.exists():
        return load_run(path)
    store = Store(store_path)
    source = f"baseline {excerpt(str(ref), 80)} in {store.location}"
    try:
        saved = ledger.channel_run(store.conn, str(ref))
        names = ledger.channel_names(store.conn)
        if saved is None and ("@" in str(ref) or len(str(ref)) >= 8):
            try:
                saved = ledger.run_data(store.conn, ledger.resolve_run_id(store.conn, str(ref)))
            except UserError:
                saved = None
    except (ValueError, RecursionError) as exc:  # stored JSON that does not parse
        raise UserError(f"the saved copy is not valid JSON ({excerpt(str(exc), 80)})", source=source) from None
    finally:
        store.close()
    if saved is None:
        known = f" (saved baselines: {', '.join(names)})" if names else ""
        raise UserError(f"no such run directory or saved baseline{known}", source=str(ref))
    results, samples = saved
    return stored_run(str(ref), results, samples, source)



def resolve_runs(refs: list[Path] | list[str], store_path: str | None = None) -> list[Run]:
    """Load several runs (directories or saved baseline names); a sweep directory expands into its variants."""
    runs: list[Run] = []
    for p in map(Path, refs):
        if p.is_dir() and not (p / RESULTS).exists() and variant_dirs(p):
            runs.extend(load_run(v) for v in variant_dirs(p))
        else:
            runs.append(resolve_run(p, store_path))
    return runs


def run_ref(db: Database, ref: str) -> str:
    """A reference the ledger understands: a run directory is recorded first (if new) and becomes its run id;
    anything else (a run id, a prefix of one, CHANNEL@N) is passed on as it is."""
    path = Path(ref)
    if (path / RESULTS).is_file() or (path.name == RESULTS and path.is_file()):
        run = load_run(path)
        with db.transaction():
            return ledger.record_run(db, run.results, run.samples)
    return ref
