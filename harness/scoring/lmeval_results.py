"""Metrics an lm-eval task file computes with its own Python: `process_results`, a `!function` metric, and a
`!function` aggregation (lm_eval/api/task.py, ConfigurableTask.process_results and aggregation).

Per item, the task's values are what lm-eval's process_results returns: the task's own function called with
(doc, results), where results are lm-eval's shape for the output type (multiple choice: one (loglikelihood,
is_greedy) pair per choice; generate_until: the filtered answer in a one-element list); without one, lm-eval's
built-in values (acc, acc_norm, f1's (gold, pred) pair, ...), or a `!function` metric called on
(references, predictions). A metric aggregated by the mean is a per-sample score like any other; one with a
`!function` aggregation (or lm-eval's built-in f1 or matthews_corrcoef) is a corpus-level metric: its per-item values are kept in the record
(`extra["lmeval_values"]`) and reduced by that function over the whole task, with the seeded percentile
bootstrap interval of `harness.scoring.metrics.summarize_corpus` and no paired per-item test in compare/gate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.core.api import UserError
from harness.data import lmeval_task
from harness.data.lmeval_task import KEY
from harness.scoring import metrics

VALUES = "lmeval_values"  # the record's extra field holding corpus-level metrics' per-item values


def custom(spec: Any) -> dict[str, dict[str, Any]]:
    """The task's own metrics (empty for any task not read from an lm-eval file)."""
    lm = getattr(spec, "lmeval", None)
    return dict(lm.custom) if lm is not None else {}


def registered(spec: Any) -> list[str]:
    """The task's metrics that tunegate's metric registry computes."""
    own = custom(spec)
    return [m for m in spec.metrics if m not in own]


def is_corpus(spec: Any, name: str) -> bool:
    return custom(spec).get(name, {}).get("aggregation", "mean") != "mean"


def _doc(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != KEY}


def item_values(spec: Any, doc: dict[str, Any], *, results: list[Any], builtin: dict[str, Any],
                gold: Any = None) -> dict[str, Any]:
    """The task's values for one item: its process_results, else the built-in values and `!function` metrics."""
    own = custom(spec)
    if not own:
        return {}
    lm = spec.lmeval
    if lm.process_results is not None:
        out = _call(lambda: lmeval_task.task_function(lm.process_results)(_doc(doc), results), "process_results")
        if not isinstance(out, dict):
            raise UserError(f"process_results returned {type(out).__name__}, not a mapping of metric to value",
                            field="process_results")
        missing = sorted(set(own) - set(out))
        if missing:
            raise UserError(f"process_results returned no value for {', '.join(missing)} (it returned: "
                            f"{', '.join(map(str, out)) or 'nothing'})", field="process_results")
        return {name: out[name] for name in own}
    values = {}
    for name, entry in own.items():
        if entry.get("metric"):
            values[name] = _metric_fn(lmeval_task.task_function(entry["metric"]), name, gold, results[0],
                                      entry.get("kwargs") or {})
        elif name in builtin:
            values[name] = builtin[name]
        else:  # lm-eval's passthrough metrics on generated text: the (gold, answer) pair
            values[name] = [gold, results[0]]
    return values


def _metric_fn(fn: Any, name: str, gold: Any, result: Any, kwargs: dict[str, Any]) -> Any:
    """lm-eval's call of a metric function on one generated answer (a list of golds: 1 if any scores)."""
    def one(ref: Any) -> Any:
        try:
            score = fn(references=[ref], predictions=[result], **kwargs)
        except TypeError:  # lm-eval's fallback for functions of one argument
            score = fn([ref, result])
        return score[name] if isinstance(score, dict) else score

    if isinstance(gold, list):
        return 1.0 if any(_call(lambda g=g: one(g), f"metric {name}") for g in gold) else 0.0
    return _call(lambda: one(gold), f"metric {name}")


def mc_builtin(logliks: list[float], is_greedy: list[bool], choices: list[str], gold: int) -> dict[str, Any]:
    """lm-eval's own multiple-choice values (ConfigurableTask.process_results), for a custom aggregation."""
    lls = np.asarray(logliks, dtype=float)
    pred = int(np.argmax(lls))
    pred_norm = int(np.argmax(lls / np.asarray([float(len(c)) for c in choices])))
    pred_byte = int(np.argmax(lls / np.asarray([float(len(c.encode("utf-8"))) for c in choices])))
    return {"acc": float(pred == gold), "acc_norm": float(pred_norm == gold), "acc_bytes": float(pred_byte == gold),
            "exact_match": int(is_greedy[gold]) if is_greedy and 0 <= gold < len(is_greedy) else 0,
            "f1": (gold, pred), "mcc": (gold, pred)}


def split(spec: Any, values: dict[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    """Per-sample scores (mean-aggregated metrics) and the per-item values kept for corpus-level ones."""
    scores, kept = {}, {}
    for name, value in values.items():
        if is_corpus(spec, name):
            kept[name] = _jsonable(value)
        else:
            try:
                scores[name] = float(value)
            except (TypeError, ValueError):
                raise UserError(f"metric {name} is aggregated by the mean but its per-item value is "
                                f"{type(value).__name__}, not a number", field="metric_list") from None
    return scores, kept


def _jsonable(value: Any) -> Any:
    """A value as the run file stores it (tuples as lists, numpy scalars as numbers)."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def f1_binary(items: list[Any]) -> float:
    """lm-eval's `f1` aggregation: sklearn's f1_score(golds, preds) with its defaults (binary, positive label 1),
    2TP / (2TP + FP + FN), 0 when there is no positive (van Rijsbergen 1979, "Information Retrieval", ch. 7)."""
    golds, preds = [g for g, _ in items], [p for _, p in items]
    labels = set(golds) | set(preds)
    if len(labels) > 2 or (len(labels) == 2 and 1 not in labels):
        raise UserError(f"lm-eval's f1 aggregation is binary F1 for label 1, as sklearn's default, and these labels "
                        f"are {sorted(map(str, labels))[:5]} (lm-eval fails here too)", field="metric_list")
    tp = sum(g == 1 and p == 1 for g, p in zip(golds, preds))
    wrong = sum((g == 1) != (p == 1) for g, p in zip(golds, preds))
    return 2 * tp / (2 * tp + wrong) if tp or wrong else 0.0


def matthews(items: list[Any]) -> float:
    """lm-eval's `matthews_corrcoef` aggregation: sklearn's multiclass Matthews correlation (Gorodkin 2004,
    "Comparing two K-category assignments by a K-category correlation coefficient"), 0 when undefined."""
    labels = sorted({str(v) for pair in items for v in pair})
    index = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)))
    for gold, pred in items:
        confusion[index[str(gold)], index[str(pred)]] += 1
    true, pred_sums = confusion.sum(axis=1), confusion.sum(axis=0)
    correct, total = float(np.trace(confusion)), float(confusion.sum())
    cov_tp = correct * total - float(true @ pred_sums)
    cov_pp, cov_tt = total * total - float(pred_sums @ pred_sums), total * total - float(true @ true)
    return cov_tp / math.sqrt(cov_tt * cov_pp) if cov_tt * cov_pp > 0 else 0.0


PAIR_AGGREGATIONS = {"f1": f1_binary, "matthews_corrcoef": matthews}  # lmeval_task.PAIR_AGGREGATIONS's functions


def corpus_metric(spec: Any, name: str) -> metrics.Metric:
    """The task's aggregation (a `!function`, or lm-eval's f1 or matthews_corrcoef) as a corpus-level metric over
    the records' per-item values."""
    aggregation = custom(spec)[name]["aggregation"]
    fn = PAIR_AGGREGATIONS.get(aggregation) or lmeval_task.task_function(aggregation)

    def value(items: list[metrics.ScoreInput]) -> float:
        got = _call(lambda: fn([s.extra.get(VALUES, {}).get(name) for s in items]), f"aggregation of {name}")
        try:
            return float(got)
        except (TypeError, ValueError):
            raise UserError(f"the task's aggregation of {name} returned {type(got).__name__}, not a number",
                            field="metric_list") from None

    return metrics.Metric(name, ("multiple_choice", "generate", "perplexity"), corpus=value, bounds=None)


def aggregate(spec: Any, items: list[metrics.ScoreInput], per_sample: list[dict[str, float]]) -> dict[str, Any]:
    """Every metric of one task: the registry's, then the task's own (mean, or its corpus-level aggregation)."""
    out = metrics.aggregate(registered(spec), items, per_sample)
    for name in custom(spec):
        if is_corpus(spec, name):
            out[name] = metrics.summarize_corpus(corpus_metric(spec, name), items)
        else:
            out[name] = metrics.summarize([scores[name] for scores in per_sample if name in scores])
    return {name: out[name] for name in spec.metrics}


def _call(fn: Any, what: str) -> Any:
    """The task's Python: whatever it raises is the task's problem, said in one line."""
    try:
        return fn()
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code
        raise UserError(f"the task's {what} failed: {type(exc).__name__}: {str(exc)[:200]}") from None
