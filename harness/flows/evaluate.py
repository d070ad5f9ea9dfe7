"""`tunegate eval` end to end: load the suites and the backend once, bind judges, evaluate the base and each
adapter through the engine (harness.run.engine), write the run directories and keep each run in the
ledger (and, with --save-baseline, as the channel's next release)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.core import distributed
from harness.core.api import RunIncomplete, UserError
from harness.data.suite import load_suites
from harness.models import load_backend
from harness.run import canary
from harness.run.engine import (
    EvalSettings,
    check_capabilities,
    check_out_dir,
    run_variant,
    say,
    variant_name,
    write_errors,
    write_run_dir,
)
from harness.scoring import judging
from harness.storage import ledger
from harness.storage.store import Store


def evaluate(model: str | None, adapters: list[str], suite_refs: list[str], out: Path | None,
             settings: EvalSettings, store_path: str | None = None, include_base: bool = False,
             dtype: str = "auto", save_baseline: str | None = None,
             judge_bindings: dict[str, str] | None = None, device: str = "auto",
             backend_options: Mapping[str, Any] | None = None,
             on_saved: Callable[[str, int, str], None] | None = None) -> list[dict[str, Any]]:
    """Evaluate the base and/or each adapter on the suites, loading the base once; returns each results dict.

    `backend_options` are the options only some backends take (an endpoint's base URL, concurrency)."""
    if out is not None:
        check_out_dir(out)
    distributed.init()
    suites = load_suites(list(suite_refs))
    backend = load_backend(model, dtype=dtype, device=device, batch_size=settings.batch_size,
                           **dict(backend_options or {}))
    variants: list[str | None] = ([None] if include_base or not adapters else []) + list(adapters)
    names = [variant_name(v) for v in variants]
    if len(set(names)) != len(names):
        raise UserError(f"two variants share the name {sorted(n for n in names if names.count(n) > 1)[0]}; "
                        "adapter directories need distinct names", field="-a/--adapter")
    check_capabilities(backend, suites, adapters)  # before any work: the tasks' needs, and adapters at all
    judges, judge_specs = judging.bind(suites, judge_bindings or {}, dtype=dtype, batch_size=settings.batch_size)
    for adapter in adapters:  # fail on a bad adapter before any evaluation starts
        backend.check_adapter(adapter)
    store = Store(store_path)
    all_results = []
    incomplete: list[tuple[str, list[dict[str, Any]]]] = []
    try:
        for variant, name in zip(variants, names):
            # before an adapter's run is scored: do its canary log-probabilities differ from the base's?
            check = canary.check_adapter(backend, variant) if variant else None
            if variant is None:
                backend.set_adapter(None)
            if distributed.is_main():
                canary.warn(name, check)
            say(settings, f"evaluating {name} on {', '.join(s.name for s in suites)}")
            results, records = run_variant(backend, suites, store, settings, model or "smollm2-135m", judges,
                                           judge_specs, adapter_check=check)
            if not distributed.is_main():
                continue
            if results.get("errors"):
                incomplete.append((name, results["errors"]))
                if out is not None:
                    write_errors(out if len(variants) == 1 else out / name, results["errors"])
                continue
            if out is not None:
                write_run_dir(out if len(variants) == 1 else out / name, results, records)
            samples = [r.to_json() for r in records]
            if save_baseline:  # keeps the run in the ledger too, and appends a release to the channel
                label = save_baseline if len(variants) == 1 else f"{save_baseline}/{name}"
                number = ledger.save_baseline(store.conn, label, results["run_id"], results, samples)
                if on_saved is not None:
                    on_saved(label, number, str(results["run_id"]))
            else:
                with store.conn.transaction() as db:
                    ledger.record_run(db, results, samples)
            all_results.append(results)
    finally:
        store.close()
        distributed.shutdown()
    if incomplete:
        raise RunIncomplete(incomplete, out)
    return all_results
