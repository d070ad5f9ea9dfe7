"""The adapter's model card: README.md with Hugging Face `model-index` metadata once it is evaluated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from harness.train.provenance import read_provenance


def write_model_card(out: Path, results: dict[str, Any] | None = None, name: str | None = None) -> Path:
    """(Re)write out/README.md from provenance.json and, when given, an eval results.json dict."""
    name = name or out.name
    prov = read_provenance(out) or {}
    meta: dict[str, Any] = {"base_model": (prov.get("base") or {}).get("model"), "library_name": "peft",
                            "tags": ["tunegate", str(prov.get("method", "unknown"))]}
    if results:
        meta["model-index"] = [{"name": name, "results": model_index_results(results)}]
    body = [f"# {name}", "", f"Trained by `tunegate train` with method **{prov.get('method', '?')}** "
            f"on base `{meta['base_model']}` (seed {prov.get('seed')}).", ""]
    if prov.get("merge_note"):
        body += [prov["merge_note"], ""]
    body += ["| figure | value |", "|---|---|"]
    for key in ("train_seconds", "tokens_per_second", "trainable_params", "total_params", "adapter_bytes",
                "peak_memory_mb", "recipe_hash", "data_hash"):
        body.append(f"| {key} | {prov.get(key)} |")
    if results:
        body += ["", "## Evaluation", "", "Every figure with the 95% interval and the n it rests on; an interval the "
                 "method cannot give at this n is shown as undefined, never as [v, v].", "",
                 "| suite | task | metric | value | 95% CI | n |", "|---|---|---|---:|---|---:|"]
        for suite_name, task_name, metric_name, m in _figures(results):
            body.append(f"| {suite_name} | {task_name} | {metric_name} | {float(m['value']):.4f} | {_ci(m)} | "
                        f"{m.get('n', '?')} |")
    text = "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n\n" + "\n".join(body) + "\n"
    card = out / "README.md"
    tmp = card.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(card)
    return card


def _figures(results: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [(suite_name, task_name, name, m)
            for suite_name, suite in (results.get("suites") or {}).items()
            for task_name, task in (suite.get("tasks") or {}).items()
            for name, m in (task.get("metrics") or {}).items() if isinstance(m, dict) and "value" in m]


def _ci(metric: dict[str, Any]) -> str:
    ci = metric.get("ci95")
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or ci[0] is None or ci[1] is None:
        return "undefined at this n"
    lo, hi = float(ci[0]), float(ci[1])
    return "undefined at this n" if lo == hi else f"[{lo:.4f}, {hi:.4f}]"


def model_index_results(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One model-index entry per evaluated task: task, dataset (the suite) and its metric values."""
    entries = []
    for suite_name, suite in (results.get("suites") or {}).items():
        for task_name, task in (suite.get("tasks") or {}).items():
            metrics = [{"type": name, "value": round(float(m["value"]), 6), "name": f"{task_name} {name}"}
                       for name, m in (task.get("metrics") or {}).items() if isinstance(m, dict) and "value" in m]
            if metrics:
                kind = "text-generation" if task.get("kind") in ("generate", "code") else task.get("kind", "unknown")
                entries.append({"task": {"type": kind, "name": task_name},
                                "dataset": {"name": suite_name, "type": suite_name,
                                            "revision": suite.get("fingerprint")},
                                "metrics": metrics})
    return entries


def update_model_card(adapter_dir: str | Path, results_json: str | Path | dict[str, Any]) -> Path:
    """Add the suite results of an evaluation (a results.json path or its dict) to an adapter's card."""
    results = results_json if isinstance(results_json, dict) else json.loads(Path(results_json).read_text("utf-8"))
    return write_model_card(Path(adapter_dir), results)
