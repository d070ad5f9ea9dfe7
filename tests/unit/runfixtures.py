"""Build synthetic run directories in the documented run format (docs/run-format.md) for tests."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

TaskKey = tuple[str, str]


LOWER_IS_BETTER = {"perplexity", "token_perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte",
                   "refusal_rate_benign"}


def metric_value(scores: list[float], name: str = "") -> dict[str, Any]:
    """{"value", "ci95", "n", "higher_is_better"} the way the engine writes it (Wilson for binary, normal
    for means)."""
    arr = np.asarray([s for s in scores if s is not None], dtype=float)  # a null score is not a value
    n = int(arr.size)
    mean = float(arr.mean()) if n else 0.0
    if n and np.isin(arr, (0.0, 1.0)).all():
        z = 1.959964
        denom = 1 + z * z / n
        centre = (mean + z * z / (2 * n)) / denom
        half = z * math.sqrt(mean * (1 - mean) / n + z * z / (4 * n * n)) / denom
        ci = [centre - half, centre + half]
    else:
        half = 1.96 * float(arr.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
        ci = [mean - half, mean + half]
    return {"value": mean, "ci95": ci, "n": n, "higher_is_better": name not in LOWER_IS_BETTER}


def paired_binary(n: int, both: int, b: int, c: int) -> tuple[list[float], list[float]]:
    """Baseline and candidate 0/1 scores with exact counts: `both` right in both, b right→wrong, c wrong→right."""
    base = [1.0] * both + [1.0] * b + [0.0] * c + [0.0] * (n - both - b - c)
    cand = [1.0] * both + [0.0] * b + [1.0] * c + [0.0] * (n - both - b - c)
    return base, cand


def binary_scores(n: int, p: float, seed: int) -> list[float]:
    """n seeded Bernoulli(p) scores."""
    return np.random.default_rng(seed).binomial(1, p, size=n).astype(float).tolist()


def curve(steps: int = 5, start: float = 2.5, seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [{"step": 10 * i, "loss": start * math.exp(-0.3 * i) + float(rng.normal(0, 0.02)),
             "eval_acc": 0.4 + 0.05 * i} for i in range(steps)]


def build_run(root: Path, *, scores: dict[TaskKey, dict[str, list[float]]], adapter: str | None = None,
              method: str = "lora", provenance: dict[str, Any] | None = None,
              responses: dict[TaskKey, list[str]] | None = None,
              perturbed: dict[TaskKey, dict[str, dict[str, list[float]]]] | None = None,
              corpus: dict[TaskKey, dict[str, float]] | None = None,
              suite_fingerprints: dict[str, str] | None = None,
              prompt_hashes: dict[TaskKey, str] | None = None,
              timing: dict[str, Any] | None = None, kind: str = "multiple_choice",
              prompts: dict[TaskKey, list[str]] | None = None, targets: dict[TaskKey, list[str]] | None = None,
              lower: dict[TaskKey, set[str]] | None = None) -> Path:
    """Write results.json + samples.jsonl under root and return root.

    scores: per (suite, task), per metric, one score per sample (sample ids are "<task>/<i>").
    perturbed: per (suite, task), per perturbation, per metric, one score per original sample.
    corpus: corpus-level metrics (aggregate only, no per-sample score).
    lower: per (suite, task), metrics whose task direction is lower-is-better (suite.yaml `direction:`).
    """
    root.mkdir(parents=True, exist_ok=True)
    responses, perturbed, corpus, prompts = responses or {}, perturbed or {}, corpus or {}, prompts or {}
    targets = targets or {}
    samples: list[dict[str, Any]] = []
    suites: dict[str, Any] = {}
    for (suite, task), metrics in scores.items():
        n = len(next(iter(metrics.values())))
        texts = responses.get((suite, task)) or [f"answer {i}" for i in range(n)]
        asked = prompts.get((suite, task))
        gold = targets.get((suite, task))
        for i in range(n):
            samples.append(_sample(suite, task, f"{task}/{i}", None, {m: v[i] for m, v in metrics.items()},
                                   texts[i % len(texts)], i, asked[i % len(asked)] if asked else None,
                                   gold[i % len(gold)] if gold else None))
        task_entry: dict[str, Any] = {
            "kind": kind, "n": n, "chat_template": False,
            "prompt_hash": (prompt_hashes or {}).get((suite, task), f"ph-{suite}-{task}"),
            "metrics": {m: metric_value(v, m) for m, v in metrics.items()},
        }
        for m in (lower or {}).get((suite, task), set()):
            task_entry["metrics"][m]["higher_is_better"] = False
        for m, value in corpus.get((suite, task), {}).items():
            task_entry["metrics"][m] = {"value": value, "ci95": [value * 0.9, value * 1.1], "n": n,
                                          "higher_is_better": m not in LOWER_IS_BETTER}
        perts = perturbed.get((suite, task), {})
        if perts:
            task_entry["perturbations"] = {}
            for pert, pmetrics in perts.items():
                task_entry["perturbations"][pert] = {m: metric_value(v, m) for m, v in pmetrics.items()}
                for i in range(n):
                    samples.append(_sample(suite, task, f"{task}/{i}@{pert}", pert,
                                           {m: v[i] for m, v in pmetrics.items()}, texts[i % len(texts)], i,
                                           asked[i % len(asked)] if asked else None,
                                           gold[i % len(gold)] if gold else None))
            task_entry["robustness"] = {}
            for m, clean in metrics.items():
                worst = [min([clean[i]] + [p[m][i] for p in perts.values()]) for i in range(n)]
                task_entry["robustness"][f"worst_case_{m}"] = metric_value(worst, m)
        entry = suites.setdefault(suite, {
            "fingerprint": (suite_fingerprints or {}).get(suite, f"fp-{suite}"), "tasks": {}, "metrics": {}})
        entry["tasks"][task] = task_entry
    for suite, entry in suites.items():
        pooled: dict[str, list[float]] = {}
        for (s, _task), metrics in scores.items():
            if s == suite:
                for m, v in metrics.items():
                    pooled.setdefault(m, []).extend(v)
        entry["metrics"] = {m: metric_value(v, m) for m, v in pooled.items()}
        for (s, _task), cm in corpus.items():
            if s == suite:
                for m, value in cm.items():
                    entry["metrics"][m] = {"value": value, "ci95": [value * 0.9, value * 1.1], "n": 0,
                                           "higher_is_better": m not in LOWER_IS_BETTER}
    adapter_entry = None
    if adapter:
        adapter_entry = {"name": adapter, "path": f"adapters/{adapter}", "hash": f"h-{adapter}", "method": method,
                         "provenance": provenance if provenance is not None else {
                             "method": method, "trainable_params": 460_800, "total_params": 134_975_808,
                             "train_seconds": 312.5, "tokens_per_second": 231.0, "adapter_bytes": 1_853_440,
                             "curve": curve()}}
    results = {
        "format": "tunegate.results/1", "tunegate_version": "0.1.0", "run_id": f"run-{adapter or 'base'}",
        "created": "2026-11-29T21:40:00Z",
        "model": {"spec": "smollm2-135m", "adapter": adapter_entry,
                  "fingerprint": {"model_hash": "m", "adapter_hash": adapter, "tokenizer_hash": "t",
                                  "dtype": "float32", "backend": "hf"},
                  "fingerprint_hash": f"fh-{adapter}"},
        "settings": {"limit": None, "batch_size": 32, "seed": 1234, "full": False},
        "suites": suites,
        "timing": timing or {"wall_seconds": 12.3, "model_load_seconds": 0.8, "tokens_processed": 5012,
                             "tokens_per_second": 407.5, "cache_hits": 0, "cache_misses": 240},
        "isolation": None,
    }
    (root / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    with (root / "samples.jsonl").open("w", encoding="utf-8") as fh:
        for s in samples:
            fh.write(json.dumps(s, ensure_ascii=False) + "\n")
    return root


def _sample(suite: str, task: str, sample_id: str, pert: str | None, scores: dict[str, float], response: str,
            i: int, prompt: str | None = None, target: str | None = None) -> dict[str, Any]:
    return {"suite": suite, "task": task, "sample_id": sample_id, "source_id": f"{task}/{i}",
            "perturbation": pert, "prompt": prompt or f"Question {i} of {task}: which option is right?",
            "target": "A" if target is None else target, "response": response, "choices": ["A", "B", "C", "D"], "logliks": None,
            "scores": scores, "extra": {}}


def demo_pair(tmp: Path, *, n: int = 60, base_p: float = 0.5, cand_p: float = 0.7,
              cand_responses: list[str] | None = None) -> tuple[Path, Path]:
    """A baseline and a candidate over the demo suites (medical, legal, code, adversarial, general)."""
    def scores(p: float, offset: int) -> dict[TaskKey, dict[str, list[float]]]:
        return {("medical", "medqa"): {"acc": binary_scores(n, p, 1 + offset)},
                ("medical", "pubmedqa"): {"acc": binary_scores(n, p, 2 + offset)},
                ("legal", "casehold"): {"acc": binary_scores(n, p, 3 + offset)},
                ("code", "humaneval"): {"pass@1": binary_scores(n, p - 0.2, 4 + offset)},
                ("adversarial", "traps"): {"acc": binary_scores(n, p, 5 + offset)},
                ("general", "mmlu"): {"acc": binary_scores(n, 0.55, 6 + offset)}}

    def perts(p: float, offset: int) -> dict[TaskKey, dict[str, dict[str, list[float]]]]:
        return {("adversarial", "traps"): {"typos": {"acc": binary_scores(n, p - 0.1, 7 + offset)},
                                           "case": {"acc": binary_scores(n, p - 0.05, 8 + offset)}}}

    base = build_run(tmp / "base", scores=scores(base_p, 0), perturbed=perts(base_p, 0))
    cand = build_run(tmp / "cand", scores=scores(cand_p, 100), perturbed=perts(cand_p, 100), adapter="medical-lora",
                     responses={("medical", "medqa"): cand_responses} if cand_responses else None)
    return base, cand


def builtin_pair(tmp: Path, n: int = 6) -> tuple[Path, Path]:
    """A baseline and a candidate over the real built-in suites' tasks and metrics (scores synthetic).

    Tasks that declare perturbations get perturbed rows, so every shipped gate rule has its target."""
    from harness.data.suite import load_suite

    scores: dict[TaskKey, dict[str, list[float]]] = {}
    perts: dict[TaskKey, dict[str, dict[str, list[float]]]] = {}
    lower: dict[TaskKey, set[str]] = {}
    for i, name in enumerate(("medical", "legal", "code", "adversarial", "general")):
        suite = load_suite(name)
        for j, task in enumerate(suite.tasks):
            metrics = {m: binary_scores(n, 0.6, 10 * i + j + k) for k, m in enumerate(task.spec.metrics)}
            scores[(name, task.name)] = metrics
            lower[(name, task.name)] = {m for m, d in task.spec.direction.items() if d == "lower"}
            if getattr(task.spec, "perturbations", None):
                perts[(name, task.name)] = {"typos": {m: v for m, v in metrics.items()}}
    base = build_run(tmp / "base", scores=scores, perturbed=perts, lower=lower)
    cand = build_run(tmp / "cand", scores=scores, perturbed=perts, adapter="cand", lower=lower)
    return base, cand


DEMO_METHODS = (("ia3-quick", "ia3"), ("lora-quick", "lora"), ("prompt-tuning-quick", "prompt_tuning"))
# Each method's own cost figures (trainable parameters as the embedded model's PEFT configs give them), so that a
# cost table built from these runs shows what differs between methods, not one row three times.
DEMO_COSTS = {"ia3": (55_296, 281.0, 224_512, 402.0), "lora": (460_800, 312.5, 1_853_440, 398.5),
              "prompt_tuning": (11_520, 296.4, 47_232, 371.0)}


def demo_runs(tmp: Path, n: int = 3, evil: list[str] | None = None) -> list[Path]:
    """The quick demo's shape: a base run and three adapters over the real built-in suites, with the suites'
    own rendered prompts (few-shot prefixes included) and synthetic scores and responses."""
    from harness.data.suite import load_suite

    prompts: dict[TaskKey, list[str]] = {}
    targets: dict[TaskKey, list[str]] = {}
    answers: dict[TaskKey, list[str]] = {}
    perts: list[tuple[TaskKey, list[str]]] = []
    metrics_of: dict[TaskKey, list[str]] = {}
    for name in ("medical", "legal", "code", "adversarial", "general"):
        suite = load_suite(name)
        for task in suite.tasks:
            key = (name, task.name)
            rendered = task.samples(limit=n)
            prompts[key] = [s.prompt for s in rendered]
            targets[key] = [task.target_text(s) for s in rendered]
            answers[key] = [task.target_text(s) if s.choices else
                            "The answer follows from the facts. " * 8 for s in rendered]
            metrics_of[key] = list(task.spec.metrics)
            if getattr(task.spec, "perturbations", None):
                perts.append((key, list(metrics_of[key])))
    runs = []
    for r, (adapter, method) in enumerate(((None, "base"),) + DEMO_METHODS):
        sc = {key: {m: binary_scores(len(prompts[key]), 0.55, 7 * r + i + k) for k, m in enumerate(ms)}
              for i, (key, ms) in enumerate(metrics_of.items())}
        pt = {key: {"typos": {m: binary_scores(len(prompts[key]), 0.45, 11 * r + k) for k, m in enumerate(ms)}}
              for key, ms in perts}
        texts = dict(answers)
        if evil and r:
            first = next(iter(texts))
            texts[first] = list(evil)
        cost = DEMO_COSTS.get(method)
        provenance = None if cost is None else {
            "method": method, "trainable_params": cost[0], "total_params": 134_515_008 + cost[0],
            "train_seconds": cost[1], "adapter_bytes": cost[2], "tokens_per_second": cost[3], "curve": curve(seed=r)}
        runs.append(build_run(tmp / (adapter or "base"), scores=sc, perturbed=pt, responses=texts,
                              prompts=prompts, targets=targets, adapter=adapter, method=method, provenance=provenance))
    return runs
