"""The gate as a command does it: resolve the runs, judge them, write JUnit and verdict.json, and keep the
runs and the verdict in the ledger. The decision itself is harness.decide.gate's; this module hands it the
values it needs (the anchor release of a max_drift rule, what people said in the review app)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.core.api import HumanJudgments, UserError
from harness.data.runs import Run, stored_run
from harness.decide.compare import compare_runs
from harness.decide.gate import AnchorOf, Drift, GateResult, HumanOf, evaluate_gate, load_gate
from harness.decide.ranking import Selection, select_best
from harness.decide.verdict import verdict_json, write_junit, write_verdict
from harness.flows.refs import resolve_run
from harness.inference.stats import ALPHA
from harness.storage import ledger
from harness.storage.review import human_judgments
from harness.storage.store import Store


def human_of(store_path: str | None) -> HumanOf:
    """The review app's judgments in the store, read once and only if a rule asks for them."""
    seen: list[HumanJudgments] = []

    def read() -> HumanJudgments:
        if not seen:
            seen.append(human_judgments(store_path))
        return seen[0]
    return read


def _anchors(baseline_path: Path | str, store_path: str | None, opened: list[Store]
             ) -> tuple[Callable[[], Store], AnchorOf]:
    """The store, opened on first use into `opened` (the caller closes it), and the finder of a max_drift rule's
    anchor release."""
    def store() -> Store:
        if not opened:
            opened.append(Store(store_path))
        return opened[0]

    def anchor_of(drift: Drift) -> Run:
        if "@" in drift.from_ or Path(drift.from_).exists():  # CHANNEL@N, or a run directory
            return resolve_run(drift.from_, store_path)
        name = drift.channel or str(baseline_path)
        if ledger.channel(store().conn, name) is None:
            if not (drift.from_ in ("first", "current") or drift.from_.isdigit()):
                return resolve_run(drift.from_, store_path)  # a run id
            raise UserError(f"'from: {drift.from_}' names a release of a channel: set max_drift.channel, or "
                            "pass --baseline CHANNEL")
        _, results, samples = ledger.release_run(store().conn, name, drift.from_)
        return stored_run(f"{name}@{drift.from_}", results, samples)

    return store, anchor_of


def run_gate(gate_file: Path, baseline_path: Path | str, candidate_path: Path | str,
             junit_path: Path | None = None, store_path: str | None = None,
             verdict_path: Path | None = None, record: bool = False) -> GateResult:
    """Load gate and runs (a directory, a channel name, CHANNEL@N or a run id), compare, judge; write
    JUnit/verdict.json; with `record` (the gate command) keep both runs and the verdict in the ledger.
    The store is opened only when it is needed: to record, or to find a max_drift rule's anchor."""
    baseline, candidate = resolve_run(baseline_path, store_path), resolve_run(candidate_path, store_path)
    opened: list[Store] = []
    store, anchor_of = _anchors(baseline_path, store_path, opened)
    try:
        if record:
            store()  # before judging: an unreachable store fails first, with one line
        result = gate_runs(Path(gate_file), baseline, candidate, junit_path, verdict_path, anchor_of=anchor_of,
                           human_of=human_of(store_path))
        if record:
            ledger.record_verdict(store().conn, Path(gate_file), verdict_json(result),
                                  (baseline.results, baseline.samples), (candidate.results, candidate.samples))
    finally:
        for s in opened:
            s.close()
    return result


def run_gate_many(gate_file: Path, baseline_path: Path | str, candidate_paths: list[Path | str],
                  junit_path: Path | None = None, store_path: str | None = None,
                  verdict_path: Path | None = None, record: bool = False) -> tuple[list[GateResult], Selection]:
    """The gate with k > 1 candidates on the same baseline: each candidate judged at alpha/k (Bonferroni over the
    candidates, so the picked one's PASS keeps its error at alpha whichever is picked), then the best passing one
    picked (harness.decide.ranking.select_best). Every verdict carries the selection; verdict_path gets them as a
    list, and without it each candidate that is a run directory gets its own verdict.json. With `record` each
    candidate's verdict is kept in the ledger, like a single gate's."""
    spec, root = load_gate(Path(gate_file))
    baseline = resolve_run(baseline_path, store_path)
    candidates = [resolve_run(c, store_path) for c in candidate_paths]
    alpha = ALPHA / len(candidates)
    opened: list[Store] = []
    store, anchor_of = _anchors(baseline_path, store_path, opened)
    try:
        if record:
            store()  # before judging: an unreachable store fails first, with one line
        results = []
        people = human_of(store_path)
        for cand in candidates:
            comp = compare_runs(baseline, cand, n_resamples=spec.n_resamples, seed=spec.seed)
            results.append(evaluate_gate(spec, comp, source=str(gate_file), root=root, anchor_of=anchor_of,
                                         human_of=people, alpha=alpha))
        selection = select_best(results, spec, alpha=ALPHA)
        for result, label in zip(results, selection.candidates):
            result.selection = selection.to_json(label)
        if junit_path is not None:
            write_junit(results, Path(junit_path))
        if verdict_path is not None:
            write_verdict(results, Path(verdict_path))
        else:
            for result, ref in zip(results, candidate_paths):
                if Path(ref).is_dir():
                    write_verdict(result, Path(ref) / "verdict.json")
        if record:
            for result, cand in zip(results, candidates):
                ledger.record_verdict(store().conn, Path(gate_file), verdict_json(result),
                                      (baseline.results, baseline.samples), (cand.results, cand.samples))
    finally:
        for s in opened:
            s.close()
    return results, selection


def gate_runs(gate_file: Path, baseline: Run, candidate: Run, junit_path: Path | None = None,
              verdict_path: Path | None = None, anchor_of: AnchorOf | None = None,
              human_of: HumanOf | None = None) -> GateResult:
    """Judge already loaded runs against a gate file; write JUnit and verdict.json where asked."""
    spec, root = load_gate(Path(gate_file))
    comp = compare_runs(baseline, candidate, n_resamples=spec.n_resamples, seed=spec.seed)
    result = evaluate_gate(spec, comp, source=str(gate_file), root=root, anchor_of=anchor_of, human_of=human_of)
    if junit_path is not None:
        write_junit(result, Path(junit_path))
    if verdict_path is not None:
        write_verdict(result, Path(verdict_path))
    return result
