"""Reading run directories (results.json + samples.jsonl, see docs/run-format.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.api import UserError
from harness.fileio import atomic_write_text  # noqa: F401 - re-exported for report and gate writers

RESULTS = "results.json"
SAMPLES = "samples.jsonl"
FORMAT_PREFIX = "tunegate.results/"
_SAMPLE_FIELDS = ("suite", "task", "sample_id")


@dataclass
class Run:
    """One evaluated variant: its results, its per-sample records, where it lives and what to call it."""

    results: dict[str, Any]
    samples: list[dict[str, Any]]
    path: Path
    label: str
    _index: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def suites(self) -> dict[str, Any]:
        return self.results["suites"]

    @property
    def adapter(self) -> dict[str, Any] | None:
        return (self.results.get("model") or {}).get("adapter")

    @property
    def provenance(self) -> dict[str, Any]:
        return (self.adapter or {}).get("provenance") or {}

    @property
    def method(self) -> str:
        """Fine-tuning method (lora, ia3, …) or "base"."""
        adapter = self.adapter
        if not adapter:
            return "base"
        return str(adapter.get("method") or self.provenance.get("method") or "adapter")

    def sample(self, suite: str, task: str, sample_id: str) -> dict[str, Any] | None:
        if not self._index:
            self._index = {(s["suite"], s["task"], s["sample_id"]): s for s in self.samples}
        return self._index.get((suite, task, sample_id))


def _fail(message: str, path: Path, field_: str | None = None, line: int | None = None) -> UserError:
    return UserError(message, source=str(path), field=field_, line=line)


def _read_results(path: Path) -> dict[str, Any]:
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise _fail(f"not valid JSON ({exc.msg})", path, line=exc.lineno) from None
    if not isinstance(results, dict):
        raise _fail("expected a JSON object", path)
    fmt = results.get("format")
    if not isinstance(fmt, str) or not fmt.startswith(FORMAT_PREFIX):
        raise _fail(f"expected a {FORMAT_PREFIX}N results file, got {fmt!r}", path, "format")
    suites = results.get("suites")
    if not isinstance(suites, dict) or not suites:
        raise _fail("missing or empty", path, "suites")
    for sname, suite in suites.items():
        where = f"suites.{sname}"
        if not isinstance(suite, dict) or not isinstance(suite.get("tasks"), dict):
            raise _fail("missing object 'tasks'", path, where)
        if "fingerprint" not in suite:
            raise _fail("missing", path, f"{where}.fingerprint")
        for tname, task in suite["tasks"].items():
            twhere = f"{where}.tasks.{tname}"
            if not isinstance(task, dict) or not isinstance(task.get("metrics"), dict):
                raise _fail("missing object 'metrics'", path, twhere)
            _check_metrics(task["metrics"], path, f"{twhere}.metrics")
        _check_metrics(suite.get("metrics") or {}, path, f"{where}.metrics")
    return results


def _check_metrics(metrics: dict[str, Any], path: Path, where: str) -> None:
    for name, metric in metrics.items():
        if not isinstance(metric, dict) or not isinstance(metric.get("value"), (int, float)):
            raise _fail("expected {\"value\": number, \"ci95\": [lo, hi], \"n\": int}", path, f"{where}.{name}")


def _read_samples(path: Path) -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                sample = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _fail(f"not valid JSON ({exc.msg})", path, line=lineno) from None
            if not isinstance(sample, dict):
                raise _fail("expected a JSON object", path, line=lineno)
            for key in _SAMPLE_FIELDS:
                if not isinstance(sample.get(key), str):
                    raise _fail("missing or not a string", path, key, lineno)
            if not isinstance(sample.get("scores", {}), dict):
                raise _fail("expected an object", path, "scores", lineno)
            key3 = (sample["suite"], sample["task"], sample["sample_id"])
            if key3 in seen:
                raise _fail(f"duplicate sample {key3[0]}/{key3[1]}/{key3[2]}", path, "sample_id", lineno)
            seen.add(key3)
            sample.setdefault("scores", {})
            sample.setdefault("perturbation", None)
            sample.setdefault("source_id", sample["sample_id"])
            samples.append(sample)
    return samples


def variant_dirs(path: Path) -> list[Path]:
    """Sub-directories of a sweep directory that hold a run (base first, then by name)."""
    subs = sorted(p for p in path.iterdir() if (p / RESULTS).is_file()) if path.is_dir() else []
    return sorted(subs, key=lambda p: (p.name != "base", p.name))


def load_run(path: Path) -> Run:
    """Load one run directory (or its results.json); UserError names the file and field on bad input."""
    path = Path(path)
    run_dir = path.parent if path.name == RESULTS else path
    results_path, samples_path = run_dir / RESULTS, run_dir / SAMPLES
    if not run_dir.exists():
        raise UserError("no such run directory", source=str(run_dir))
    if not results_path.is_file():
        variants = variant_dirs(run_dir)
        if variants:
            names = ", ".join(str(v) for v in variants)
            raise UserError(f"is a sweep directory; pass one variant: {names}", source=str(run_dir))
        raise UserError(f"missing {RESULTS}", source=str(run_dir))
    if not samples_path.is_file():
        raise UserError(f"missing {SAMPLES}", source=str(run_dir))
    results = _read_results(results_path)
    samples = _read_samples(samples_path)
    adapter = (results.get("model") or {}).get("adapter")
    label = str(adapter.get("name")) if isinstance(adapter, dict) and adapter.get("name") else "base"
    return Run(results=results, samples=samples, path=run_dir, label=label)


def resolve_run(ref: str | Path, store_path: str | None = None) -> Run:
    """A run directory, or the name of a baseline saved in the store with `eval --save-baseline NAME`."""
    path = Path(ref)
    if path.exists():
        return load_run(path)
    from harness.store import Store

    store = Store(store_path)
    try:
        saved = store.load_baseline(str(ref))
        names = store.baselines()
    finally:
        store.close()
    if saved is None:
        known = f" (saved baselines: {', '.join(names)})" if names else ""
        raise UserError(f"no such run directory or saved baseline{known}", source=str(ref))
    results, samples = saved
    adapter = (results.get("model") or {}).get("adapter")
    label = str(adapter.get("name")) if isinstance(adapter, dict) and adapter.get("name") else "base"
    return Run(results=results, samples=samples, path=Path(f"baseline:{ref}"), label=label)


def load_runs(paths: list[Path]) -> list[Run]:
    """Load several runs (directories or saved baseline names); a sweep directory expands into its variants."""
    runs: list[Run] = []
    for p in map(Path, paths):
        if p.is_dir() and not (p / RESULTS).exists() and variant_dirs(p):
            runs.extend(load_run(v) for v in variant_dirs(p))
        else:
            runs.append(resolve_run(p))
    return runs
