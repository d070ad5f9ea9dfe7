"""Reading run directories (results.json + samples.jsonl, see docs/run-format.md), checked against the
run-file schema (harness.data.runfile) before any analysis reads them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from harness.core.api import UserError
from harness.core.fileio import not_a_file
from harness.core.untrusted import excerpt
from harness.data import runfile

RESULTS = "results.json"
SAMPLES = "samples.jsonl"


@dataclass
class Run:
    """One evaluated variant: its results, its per-sample records, where it lives and what to call it."""

    results: dict[str, Any]
    samples: list[runfile.SampleRow]
    path: Path
    label: str
    _index: dict[tuple[str, str, str], runfile.SampleRow] = field(default_factory=dict, repr=False)

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

    def sample(self, suite: str, task: str, sample_id: str) -> runfile.SampleRow | None:
        if not self._index:
            self._index = {(s["suite"], s["task"], s["sample_id"]): s for s in self.samples}
        return self._index.get((suite, task, sample_id))


def _read_samples(path: Path, results: dict[str, Any], results_path: Path) -> list[runfile.SampleRow]:
    samples: list[runfile.SampleRow] = []
    lines: list[int | None] = []
    seen: set[tuple[str, str, str]] = set()
    for lineno, sample in runfile.iter_sample_lines(path):
        key3 = (sample["suite"], sample["task"], sample["sample_id"])
        if key3 in seen:
            raise UserError(f"duplicate sample {'/'.join(excerpt(k, 40) for k in key3)}", source=str(path),
                            field="sample_id", line=lineno)
        seen.add(key3)
        samples.append(_with_defaults(sample))
        lines.append(lineno)
    runfile.check_consistency(results, samples, str(results_path), str(path), lines)
    return samples


def _with_defaults(sample: dict[str, Any]) -> runfile.SampleRow:
    sample.setdefault("scores", {})
    sample.setdefault("perturbation", None)
    sample.setdefault("source_id", sample["sample_id"])
    return cast(runfile.SampleRow, sample)  # checked against runfile.Sample by the reader


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
        why = not_a_file(results_path)
        raise UserError(f"missing {RESULTS}" if why == "does not exist" else f"{RESULTS} {why}", source=str(run_dir))
    if not samples_path.is_file():
        why = not_a_file(samples_path)
        raise UserError(f"missing {SAMPLES}" if why == "does not exist" else f"{SAMPLES} {why}", source=str(run_dir))
    results = runfile.read_results(results_path)
    samples = _read_samples(samples_path, results, results_path)
    return Run(results=results, samples=samples, path=run_dir, label=_label(results))


def _label(results: dict[str, Any]) -> str:
    adapter = (results.get("model") or {}).get("adapter")
    return str(adapter["name"]) if adapter else "base"


def stored_run(ref: str, results: Any, samples: Any, source: str | None = None) -> Run:
    """A run read back from the store, checked like a run directory (the store may be old or shared)."""
    source = source or f"stored run {excerpt(ref, 80)}"
    runfile.check_results(results, f"{source}: results")
    if not isinstance(samples, list):
        raise UserError("the saved samples are not a list", source=source)
    for i, sample in enumerate(samples):
        runfile.check_sample(sample, f"{source}: samples", index=i)
        _with_defaults(sample)
    runfile.check_consistency(results, samples, f"{source}: results", f"{source}: samples")
    return Run(results=results, samples=cast(list[runfile.SampleRow], samples), path=Path(f"baseline:{ref}"),
               label=_label(results))


def load_runs(paths: list[Path]) -> list[Run]:
    """Load several run directories; a sweep directory expands into its variants. (Saved baseline names and
    run ids are resolved against the store by harness.flows.refs.resolve_runs.)"""
    runs: list[Run] = []
    for p in map(Path, paths):
        if p.is_dir() and not (p / RESULTS).exists() and variant_dirs(p):
            runs.extend(load_run(v) for v in variant_dirs(p))
        else:
            runs.append(load_run(p))
    return runs
