"""Turn suite x model into batched requests, use the cache, resume, score, and write records.

One variant (the base, or the base with one adapter) is one run. A sweep switches adapters on one
loaded base.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import __version__
from harness.core import distributed
from harness.core.api import (
    Backend,
    Request,
    RequestKind,
    Response,
    SampleRecord,
    UserError,
    sha256_json,
)
from harness.core.fileio import atomic_write_text
from harness.core.redact import redact
from harness.core.untrusted import excerpt, json_safe, terminal_line
from harness.data import perturb, runfile
from harness.data.suite import Sample, Suite, Task
from harness.scoring import lmeval_results, metrics
from harness.scoring.kinds import get_kind
from harness.scoring.kinds.base import Answered, ScoreContext
from harness.storage.store import Store


@dataclass
class EvalSettings:
    """Knobs of one evaluation; those that change results are part of the run key."""

    limit: int | None = None
    full: bool = False
    batch_size: int = 32
    resume: bool = False
    progress: bool = True
    allow_unisolated: bool = False

    def key_part(self) -> dict[str, Any]:
        return {"limit": self.limit, "full": self.full}


@dataclass
class WorkItem:
    """One sample of one task with its requests (several for sampled code completions)."""

    seq: int
    task: Task
    sample: Sample
    prompt: str  # final model input (few-shot + chat template applied)
    requests: list[Request]
    keys: list[str] = field(default_factory=list)


def check_capabilities(backend: Backend, suites: list[Suite], adapters: Sequence[str] = ()) -> None:
    """Refuse, before any work, a task that needs what the backend lacks (and adapters it cannot load)."""
    for suite in suites:
        for task in suite.tasks:
            missing = sorted(get_kind(task.spec.kind).capabilities(task.spec) - backend.capabilities)
            if missing:
                reason = backend.lacking_reason(missing[0])
                raise UserError(f"task {suite.name}/{task.name} ({task.spec.kind}) needs {', '.join(missing)}, "
                                f"which backend {backend.label} lacks ({reason + '; ' if reason else ''}it offers: "
                                f"{', '.join(sorted(backend.capabilities)) or 'nothing'}){_instead(suite, task, missing)}",
                                field="-m/--model")
    if adapters and "adapters" not in backend.capabilities:
        raise UserError(f"backend {backend.label} cannot load adapters (asked for {', '.join(adapters)})",
                        field="-a/--adapter")


def _instead(suite: Suite, task: Task, missing: Sequence[str]) -> str:
    """For a scored-by-loglikelihood task: the generate variant to evaluate instead."""
    if not any(m.startswith("loglikelihood") for m in missing):
        return ""
    stem = task.name.split("_")[0]
    variants = [t.name for t in suite.tasks if t.spec.kind == "generate" and t.name.split("_")[0] == stem]
    if variants:
        return f"; evaluate its generate variant {suite.name}/{variants[0]} instead"
    return "; evaluate a generate variant of it instead (kind: generate, asking for the answer as text)"


def build_items(backend: Backend, suites: list[Suite], settings: EvalSettings, store: Store) -> list[WorkItem]:
    """Every request of the run, in a stable order."""
    staged: list[tuple[Task, Sample]] = [(task, sample) for suite in suites for task in suite.tasks
                                         for sample in expand(task, task.samples(settings.limit, settings.full))]
    chats = chat_prompts(backend, store, [(t.spec.system, s.prompt) for t, s in staged if t.spec.chat_template])
    items: list[WorkItem] = []
    for task, sample in staged:
        prompt = sample.prompt
        if task.spec.chat_template:
            prompt = chats[(task.spec.system, prompt)]
        elif task.spec.system:
            prompt = task.spec.system + "\n\n" + prompt
        items.append(WorkItem(len(items), task, sample, prompt, get_kind(task.spec.kind).make_requests(task, sample, prompt)))
    return items


def chat_prompts(backend: Backend, store: Store, turns: list[tuple[str | None, str]]) -> dict[tuple[str | None, str], str]:
    """Chat-templated prompts, remembered in the store so a cached run never loads the tokenizer."""
    tok_hash = backend.tokenizer_hash()
    keys = {turn: sha256_json(["chat", tok_hash, *turn]) for turn in dict.fromkeys(turns)}
    known = store.cached(list(keys.values()))
    out, fresh = {}, []
    for turn, key in keys.items():
        if key in known:
            out[turn] = known[key].text
        else:
            out[turn] = backend.apply_chat_template(turn[1], turn[0])
            fresh.append((key, Response(text=out[turn])))
    if fresh:
        store.add_cached(fresh)
    return {turn: text or "" for turn, text in out.items()}


def expand(task: Task, samples: list[Sample]) -> list[Sample]:
    """Add the declared perturbed variants of each sample (robustness), when the task names any."""
    if not task.spec.perturbations:
        return samples
    return samples + perturb.variants(task, samples)


def prompt_hash(items: list[WorkItem]) -> str:
    return sha256_json([[i.sample.sample_id, [r.key() for r in i.requests]] for i in items])


def run_variant(backend: Backend, suites: list[Suite], store: Store, settings: EvalSettings,
                model_spec: str, judges: dict[str, Backend] | None = None,
                judge_specs: dict[str, str] | None = None,
                adapter_check: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[SampleRecord]]:
    """Evaluate the backend's current variant on the suites; returns results.json content and records.

    `judges` are the backends bound to the suites' judge roles; their fingerprints are part of the run key.
    `adapter_check` is the canary comparison of the current adapter with the base (harness.run.canary)."""
    check_capabilities(backend, suites)
    judges = judges or {}
    start = time.perf_counter()
    fingerprint = backend.fingerprint()
    fp_hash = sha256_json(fingerprint)
    items = build_items(backend, suites, settings, store)
    judge_info = {role: {"spec": (judge_specs or {}).get(role, j.label), "model": j.label,
                         "fingerprint_hash": sha256_json(j.fingerprint())} for role, j in sorted(judges.items())}
    key = sha256_json({"fp": fp_hash, "suites": [s.fingerprint() for s in suites], "prompts": prompt_hash(items),
                       "settings": settings.key_part(),
                       **({"judges": {r: v["fingerprint_hash"] for r, v in judge_info.items()}} if judges else {})})
    adapter = backend.adapter
    model_info = {"spec": model_spec, "adapter": adapter.to_json() if adapter else None,
                  "fingerprint": fingerprint, "fingerprint_hash": fp_hash,
                  **({"adapter_check": adapter_check} if adapter_check is not None else {})}
    usage_before = backend.usage()
    started = store.start_run(key, model_info, settings.resume) if distributed.is_main() else None
    run_id, resumed = distributed.broadcast(started)  # type: ignore[misc]  # every rank gets rank 0's pair
    done = store.done_ids(run_id)
    todo = [i for i in items if (i.task.suite.name, i.task.name, i.sample.sample_id) not in done]
    if resumed:
        say(settings, f"resuming run {run_id[:12]}: {len(items) - len(todo)} of {len(items)} samples already done")
    stats = execute(backend, store, run_id, fp_hash, todo, settings, judges)
    if not distributed.is_main():
        return {}, []
    records = store.records(run_id)
    results = assemble_results(run_id, model_info, suites, items, records, settings)
    if judge_info:
        results["judges"] = judge_info
    wall = time.perf_counter() - start
    results["timing"] = {"wall_seconds": round(wall, 3), "model_load_seconds": round(backend.load_seconds, 3),
                         "compute_seconds": round(stats["compute_seconds"], 3), "tokens_processed": stats["tokens"],
                         "tokens_per_second": round(stats["tokens"] / stats["compute_seconds"], 1)
                         if stats["compute_seconds"] > 0 else None,
                         "cache_hits": stats["hits"], "cache_misses": stats["misses"],
                         "resumed": resumed, **_usage_timing(usage_before, backend.usage(), stats["compute_seconds"])}
    if stats["errors"]:  # the run stays unfinished, so `--resume` retries exactly the failed samples
        results["errors"] = stats["errors"]
        return results, records
    store.finish_run(run_id, results)
    return results, records


def _usage_timing(before: dict[str, int], after: dict[str, int], seconds: float) -> dict[str, Any]:
    """A backend's own counters over this run (an endpoint's requests, retries, reported tokens)."""
    used = {name: after[name] - before.get(name, 0) for name in after}
    if "requests" in used:
        used["requests_per_second"] = round(used["requests"] / seconds, 2) if seconds > 0 else None  # type: ignore[assignment]
    return used


def execute(backend: Backend, store: Store, run_id: str, fp_hash: str, todo: list[WorkItem],
             settings: EvalSettings, judges: dict[str, Backend] | None = None) -> dict[str, Any]:
    """Answer every request (cache first), score, and commit records chunk by chunk.

    Under torchrun each rank answers its shard and rank 0 commits what every rank gathered."""
    for item in todo:
        item.keys = [sha256_json([fp_hash, r.key()]) for r in item.requests]
    mine = distributed.shard(todo)
    cached = store.cached([k for item in mine for k in item.keys])
    stats: dict[str, Any] = {"hits": 0, "misses": 0, "tokens": 0, "compute_seconds": 0.0, "errors": []}
    bar = _progress(len(mine), settings)
    pending: list[tuple[list[tuple[int, SampleRecord]], list[tuple[str, Response]]]] = []
    try:
        for chunk in _chunks(mine, settings):
            answers, new = _answer(backend, chunk, cached, stats)
            # a sample whose request failed for good is not scored: it is recorded as an error, and resumed
            failed = [(i, next(r.error for r in a if r.error)) for i, a in zip(chunk, answers) if any(r.error for r in a)]
            stats["errors"] += [{"suite": i.task.suite.name, "task": i.task.name, "sample_id": i.sample.sample_id,
                                 "error": redact(error)} for i, error in failed]
            done = [(i, a) for i, a in zip(chunk, answers) if not any(r.error for r in a)]
            context = ScoreContext(chunk[0].task, [Answered(i.sample, i.prompt, a) for i, a in done],
                                   backend, store, judges or {}, settings.allow_unisolated)
            scored = get_kind(chunk[0].task.spec.kind).score(context) if done else []
            records = [(item.seq, rec) for (item, _), rec in zip(done, scored)]
            if distributed.rank_and_size()[1] == 1:
                store.add_records(run_id, records, new)
            else:
                pending.append((records, new))
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    if distributed.rank_and_size()[1] > 1:
        stats = _gather_into_store(store, run_id, pending, stats)
    return stats


def _gather_into_store(store: Store, run_id: str, pending: list, stats: dict[str, Any]) -> dict[str, Any]:
    gathered = distributed.gather((pending, stats))
    if gathered is None:
        return stats
    total: dict[str, Any] = {"hits": 0, "misses": 0, "tokens": 0, "compute_seconds": 0.0, "errors": []}
    for rank_pending, rank_stats in gathered:
        for records, new in rank_pending:
            store.add_records(run_id, records, new)
        for key in total:
            total[key] = total[key] + rank_stats[key] if key != "compute_seconds" else max(total[key], rank_stats[key])
    return total


def _chunks(todo: list[WorkItem], settings: EvalSettings):
    """Chunks of one task each, so a commit never waits on much work; the kind sets the size."""
    by_task: dict[int, list[WorkItem]] = {}
    for item in todo:
        by_task.setdefault(id(item.task), []).append(item)
    for items in by_task.values():
        size = get_kind(items[0].task.spec.kind).chunk_size(settings.batch_size)
        for start in range(0, len(items), size):
            yield items[start:start + size]


def _answer(backend: Backend, chunk: list[WorkItem], cached: dict[str, Response],
            stats: dict[str, Any]) -> tuple[list[list[Response]], list[tuple[str, Response]]]:
    pending = [(item, j) for item in chunk for j, key in enumerate(item.keys) if key not in cached]
    stats["hits"] += sum(len(i.keys) for i in chunk) - len(pending)
    stats["misses"] += len(pending)
    fresh: dict[str, Response] = {}
    by_kind: dict[RequestKind, list[tuple[WorkItem, int]]] = {}
    for item, j in pending:
        by_kind.setdefault(item.requests[j].kind, []).append((item, j))
    for kind, entries in by_kind.items():
        started, loaded = time.perf_counter(), backend.load_seconds
        responses = backend.answer(kind, [item.requests[j] for item, j in entries])
        # the model loads lazily inside the first call: that is load time, not scoring time
        stats["compute_seconds"] += time.perf_counter() - started - (backend.load_seconds - loaded)
        for (item, j), response in zip(entries, responses):
            fresh[item.keys[j]] = response
            stats["tokens"] += response.tokens_processed
    answers = [[fresh.get(k) or cached[k] for k in item.keys] for item in chunk]
    return answers, [(k, r) for k, r in fresh.items() if r.error is None]  # a failure is never cached


# ---- results -----------------------------------------------------------------------------------------------

def assemble_results(run_id: str, model_info: dict[str, Any], suites: list[Suite], items: list[WorkItem],
                     records: list[SampleRecord], settings: EvalSettings) -> dict[str, Any]:
    """The results.json content (shape documented in docs/run-format.md)."""
    by_task: dict[tuple[str, str], list[SampleRecord]] = {}
    for rec in records:
        by_task.setdefault((rec.suite, rec.task), []).append(rec)
    items_by_task: dict[tuple[str, str], list[WorkItem]] = {}
    for item in items:
        items_by_task.setdefault((item.task.suite.name, item.task.name), []).append(item)
    out_suites: dict[str, Any] = {}
    for suite in suites:
        tasks_out = {}
        for task in suite.tasks:
            recs = by_task.get((suite.name, task.name), [])
            tasks_out[task.name] = task_results(task, recs, items_by_task.get((suite.name, task.name), []))
        out_suites[suite.name] = {"fingerprint": suite.fingerprint(), "tasks": tasks_out,
                                  "metrics": pooled_metrics(suite, by_task)}
    return {"format": "tunegate.results/1", "tunegate_version": __version__, "run_id": run_id,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "model": model_info, "settings": {**settings.key_part(), "batch_size": settings.batch_size},
            "suites": out_suites, "isolation": _isolation(records)}


def task_results(task: Task, records: list[SampleRecord], items: list[WorkItem]) -> dict[str, Any]:
    originals = [r for r in records if r.perturbation is None]
    out: dict[str, Any] = {"kind": task.spec.kind, "n": len(originals),
                           "split_rows": len(task.rows.get(task.spec.split, [])), "prompt_hash": prompt_hash(items),
                           "chat_template": task.spec.chat_template,
                           "metrics": _metrics_of(task, originals, items)}
    variants = sorted({r.perturbation for r in records if r.perturbation})
    if variants:
        out["perturbations"] = {p: _metrics_of(task, [r for r in records if r.perturbation == p], items)
                                for p in variants}
        out["robustness"] = worst_case(records, task.spec.metrics, task.spec.direction)
    return out


def _metrics_of(task: Task, records: list[SampleRecord], items: list[WorkItem]) -> dict[str, Any]:
    if not records:
        return {}
    by_id = {(i.sample.sample_id): i for i in items}
    inputs = []
    for rec in records:
        item = by_id.get(rec.sample_id)
        inputs.append(metrics.ScoreInput(target=item.sample.target if item else rec.target, choices=rec.choices,
                                         logliks=rec.logliks, response=rec.response, extra=rec.extra))
    summaries = lmeval_results.aggregate(task.spec, inputs, [r.scores for r in records])
    return {name: _directed(m, metrics.higher_is_better(name, task.spec.direction)) for name, m in summaries.items()}


def _directed(summary: dict[str, Any], higher_is_better: bool) -> dict[str, Any]:
    """A metric entry of results.json: value, interval, n, and which way is better."""
    return {**summary, "higher_is_better": higher_is_better}


def worst_case(records: list[SampleRecord], names: list[str],
               direction: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A source sample counts as correct only if it is correct on the original and every variant (the
    worst of its scores: the lowest, or the highest for a metric where lower is better)."""
    out = {}
    for name in names:
        higher = metrics.higher_is_better(name, direction)
        groups: dict[str, list[float]] = {}
        for rec in records:
            if name in rec.scores:
                groups.setdefault(rec.source_id or rec.sample_id, []).append(rec.scores[name])
        if groups:
            worst = [min(v) if higher else max(v) for v in groups.values()]
            out[f"worst_case_{name}"] = _directed(metrics.summarize(worst), higher)
    return out


def pooled_metrics(suite: Suite, by_task: dict[tuple[str, str], list[SampleRecord]]) -> dict[str, Any]:
    """Suite-level metrics: every per-sample metric pooled over the tasks that report it. A metric whose
    direction differs between those tasks (refusal_rate on harmful and on benign prompts) is not pooled."""
    pooled: dict[str, list[float]] = {}
    directions: dict[str, set[bool]] = {}
    for task in suite.tasks:
        for rec in by_task.get((suite.name, task.name), []):
            if rec.perturbation is None:
                for name, value in rec.scores.items():
                    pooled.setdefault(name, []).append(value)
                    directions.setdefault(name, set()).add(metrics.higher_is_better(name, task.spec.direction))
    return {name: _directed(metrics.summarize(values), next(iter(directions[name])))
            for name, values in pooled.items() if len(directions[name]) == 1}


def _isolation(records: list[SampleRecord]) -> str | None:
    levels = {str(r.extra["isolation"]) for r in records if r.extra.get("isolation")}
    return sorted(levels)[0] if levels else None


# ---- outputs -------------------------------------------------------------------------------------------------

def write_run_dir(out: Path, results: dict[str, Any], records: list[SampleRecord]) -> None:
    """results.json and samples.jsonl, each through a temporary file and a rename, after the checks their
    readers make (harness.data.runfile): a run that compare or report would refuse is refused here, at eval time."""
    rows = [r.to_json() for r in records]
    lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in rows]
    results_text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    check_written(out, results, rows, lines, results_text)
    atomic_write_text(out / "samples.jsonl", "".join(lines))
    atomic_write_text(out / "results.json", results_text)


def check_written(out: Path, results: dict[str, Any], rows: list[dict[str, Any]], lines: list[str],
                  results_text: str) -> None:
    """The reader's limits and schema, applied to what is about to be written (one line naming what fails)."""
    what = "(eval would write a run file that tunegate cannot read back)"
    if len(results_text.encode("utf-8")) > runfile.MAX_RESULTS_BYTES:
        raise UserError(f"results.json over {runfile.MAX_RESULTS_BYTES} bytes {what}", source=str(out / "results.json"))
    samples = str(out / "samples.jsonl")
    for number, (row, line) in enumerate(zip(rows, lines), 1):
        if len(line.encode("utf-8")) > runfile.MAX_SAMPLE_BYTES:
            raise UserError(f"sample {excerpt(row.get('sample_id'), 60)} is over {runfile.MAX_SAMPLE_BYTES} bytes "
                            f"{what}", source=samples, line=number)
        try:
            runfile.check_sample(row, samples, number)
        except UserError as exc:
            raise UserError(f"{exc} {what}") from None
    try:
        runfile.check_results(results, str(out / "results.json"))
        runfile.check_consistency(results, rows, str(out / "results.json"), samples)
    except UserError as exc:
        raise UserError(f"{exc} {what}") from None


def check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is a file; --out needs a directory", field="--out")


def _progress(total: int, settings: EvalSettings):
    if not settings.progress or total == 0:
        return None
    from tqdm import tqdm  # start-up time: only a run that shows progress needs it

    return tqdm(total=total, desc="scoring", unit="sample", file=sys.stderr, dynamic_ncols=True)


def say(settings: EvalSettings, text: str) -> None:
    if settings.progress:
        print(terminal_line(f"tunegate: {text}"), file=sys.stderr)


# ---- the eval command ----------------------------------------------------------------------------------------

def write_errors(out: Path, errors: list[dict[str, Any]]) -> None:
    """errors.jsonl: one line per sample whose request failed for good (no results.json: the run is unfinished)."""
    lines = (json_safe(redact(json.dumps(e, ensure_ascii=False))) + "\n" for e in errors)  # a server may echo the key
    atomic_write_text(out / "errors.jsonl", "".join(lines))


def variant_name(adapter: str | None) -> str:
    return Path(adapter).name if adapter else "base"

