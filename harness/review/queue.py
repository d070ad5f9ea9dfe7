"""Build the review queue from run directories: pairwise items (same sample in two runs) or rating items."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from harness.core.api import UserError, sha256_json
from harness.core.config import parse_yaml
from harness.data.runs import Run, load_runs
from harness.data.suite import find_suite
from harness.storage.review import Item, ReviewDB

Mode = Literal["pairwise", "rating"]
DEFAULT_AXES = ["helpfulness", "factuality", "safety"]
MAX_TEXT = 100_000  # characters of a prompt or response kept for review; longer ones are clipped and marked


@dataclass
class Queue:
    """What `tunegate review` serves: the queue id, its items and the models they came from."""

    queue_id: str
    mode: Mode
    reviewers_per_item: int
    items: list[Item]
    models: list[dict[str, str]]
    skipped_identical: int = 0
    seed: int = 0  # seed of the stored order


def model_keys(runs: list[Run]) -> list[dict[str, str]]:
    """{"label", "run_id"} per run; labels made unique with the directory name, as the report does."""
    labels = [r.label for r in runs]
    out = []
    for run, label in zip(runs, labels):
        shown = label if labels.count(label) == 1 else f"{label} ({run.path.name})"
        run_id = str(run.results.get("run_id") or run.results.get("model", {}).get("fingerprint_hash") or run.path)
        out.append({"label": shown, "run_id": run_id})
    return out


def suite_axes(suite: str) -> list[str]:
    """Rubric axes the suite declares, else the default axes (also when the suite cannot be found).

    Only the top-level `rubric` key is read: loading the whole suite would read every data file.
    """
    try:
        raw = parse_yaml(find_suite(suite).read_text(encoding="utf-8"), suite)[0]
    except (UserError, OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return list(DEFAULT_AXES)
    axes = raw.get("rubric") if isinstance(raw, dict) else None
    if isinstance(axes, list) and axes and all(isinstance(a, str) and a.strip() for a in axes):
        return [a.strip() for a in axes]
    return list(DEFAULT_AXES)


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "\n[… clipped for review]"


def _reference(sample: Mapping[str, Any]) -> str | None:
    target = sample.get("target")
    if target in (None, "", []):
        return None
    return _text(" | ".join(map(str, target)) if isinstance(target, list) else target)


def _make_item(mode: Mode, sample: Mapping[str, Any], models: list[dict[str, str]], responses: list[str],
               axes: list[str]) -> Item:
    key = {"mode": mode, "suite": sample["suite"], "task": sample["task"], "sample_id": sample["sample_id"],
           "models": models, "responses": responses, "axes": axes}
    return Item(item_id=sha256_json(key)[:24], mode=mode, suite=sample["suite"], task=sample["task"],
                sample_id=sample["sample_id"], prompt=_text(sample.get("prompt") or ""),
                reference=_reference(sample), models=models, responses=responses, axes=axes)


def pairwise_items(runs: list[Run], models: list[dict[str, str]]) -> tuple[list[Item], int]:
    """One item per pair of runs per shared sample with a response; identical responses are skipped."""
    items: list[Item] = []
    identical = 0
    for (i, a), (j, b) in itertools.combinations(enumerate(runs), 2):
        for sa in a.samples:
            sb = b.sample(sa["suite"], sa["task"], sa["sample_id"])
            if not sb or not isinstance(sa.get("response"), str) or not isinstance(sb.get("response"), str):
                continue
            if sa["response"] == sb["response"]:
                identical += 1  # nothing to prefer: a reviewer could only answer "tie"
                continue
            items.append(_make_item("pairwise", sa, [models[i], models[j]],
                                    [_text(sa["response"]), _text(sb["response"])], []))
    return items, identical


def rating_items(runs: list[Run], models: list[dict[str, str]]) -> list[Item]:
    """One item per response, rated on its suite's rubric axes."""
    axes_of: dict[str, list[str]] = {}
    items = []
    for run, model in zip(runs, models):
        for s in run.samples:
            if isinstance(s.get("response"), str):
                axes = axes_of.setdefault(s["suite"], suite_axes(s["suite"]))
                items.append(_make_item("rating", s, [model], [_text(s["response"])], axes))
    return items


def judged_only(runs: list[Run]) -> list[Run]:
    """The runs cut to the samples of tasks a judge graded: people then rate exactly what the judge rated, which
    is what judge–human agreement and prediction-powered intervals need."""
    judged = {(s["suite"], s["task"]) for r in runs for s in r.samples if (s.get("extra") or {}).get("judge")}
    return [Run(r.results, [s for s in r.samples if (s["suite"], s["task"]) in judged], r.path, r.label) for r in runs]


def plan_queue(run_paths: list[Path], *, mode: Mode = "pairwise", reviewers_per_item: int | None = None,
               seed: int = 0, only_judged: bool = False) -> Queue:
    """Load the runs and build the queue's items (`only_judged`: the judged tasks' items only); nothing is
    written (`store_queue` does that)."""
    runs = load_runs([Path(p) for p in run_paths])
    if only_judged:
        runs = judged_only(runs)
        if not any(r.samples for r in runs):
            raise UserError("--judged-only: no task of these runs was graded by a judge", field="RUN")
    if mode == "pairwise" and len(runs) < 2:
        raise UserError("pairwise review needs at least two runs", field="RUN")
    if reviewers_per_item is not None and reviewers_per_item < 1:
        raise UserError("must be at least 1", field="--reviewers-per-item")
    models = model_keys(runs)
    identical = 0
    if mode == "pairwise":
        items, identical = pairwise_items(runs, models)
    else:
        items = rating_items(runs, models)
    if not items:
        raise UserError("nothing to review: the runs share no samples with differing text responses"
                        if mode == "pairwise" else "nothing to review: the runs hold no text responses", field="RUN")
    queue_id = sha256_json({"mode": mode, "items": sorted(it.item_id for it in items), "seed": seed})[:16]
    return Queue(queue_id, mode, reviewers_per_item or 0, items, models, identical, seed)


def store_queue(db: ReviewDB, queue: Queue, *, reset: bool = False) -> Queue:
    """Store a planned queue (reopening the same runs resumes it) and return it with its reviewers per item.

    A queue that already exists keeps its own reviewers per item; asking for another number is refused
    unless `reset`, so a second start can never shrink a live queue under its reviewers."""
    live = db.queue_reviewers(queue.queue_id)
    wanted = queue.reviewers_per_item or None
    if live is not None and wanted is not None and wanted != live and not reset:
        raise UserError(f"queue {queue.queue_id} is live with {live} reviewer(s) per item; pass --reset-queue to "
                        f"change it to {wanted} (judgments are kept)", field="--reviewers-per-item")
    per_item = wanted or live or 1
    db.add_queue(queue.queue_id, queue.mode, per_item, queue.seed, queue.models, queue.items, reset=reset)
    return dataclasses.replace(queue, reviewers_per_item=per_item)


def build_queue(run_paths: list[Path], *, mode: Mode = "pairwise", reviewers_per_item: int = 1, seed: int = 0,
                db: ReviewDB, reset: bool = False, only_judged: bool = False) -> Queue:
    """Plan and store a queue in one step."""
    return store_queue(db, plan_queue(run_paths, mode=mode, reviewers_per_item=reviewers_per_item, seed=seed,
                                      only_judged=only_judged), reset=reset)
