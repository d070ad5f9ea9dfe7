"""Training data: prompt/completion rows from a built-in suite's split or a file, preference rows, hashes.

Which rows a method trains on is its `MethodSpec.data` shape (completion, preference, unpaired, prompt).
Suite rows are rendered exactly as the eval engine renders them (prompt template, chat template when the
task uses one, the target after the task's delimiter), so training teaches the format that is scored.
`check_data` validates everything without a tokenizer or a model, so bad data fails before any model loads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from harness.core.api import UserError, sha256_json
from harness.core.fileio import read_jsonl
from harness.data.suite import load_suite
from harness.train.recipe import LoadedRecipe

COMPLETION_KEYS = ("prompt", "completion")
PREFERENCE_KEYS = ("prompt", "chosen", "rejected")


@dataclass
class Split:
    """Training rows and held-out rows, plus the hash of everything that was read."""

    train: list[dict[str, Any]]
    held_out: list[dict[str, Any]]
    data_hash: str


def load_rows(recipe: LoadedRecipe, tokenizer: Any) -> Split:
    """The rows the recipe's method trains on, split seeded into train and held-out."""
    spec, shape = recipe.spec, recipe.method.data
    if shape in ("preference", "unpaired"):
        rows = preference_rows(recipe)
    elif shape == "prompt":
        rows = [{"prompt": r["prompt"]} for r in (_file_rows(recipe, ("prompt",)) if spec.data.file else
                                                   sft_rows(recipe, tokenizer))]
    else:
        rows = sft_rows(recipe, tokenizer)
    split = split_rows(rows, spec.data.eval_fraction, spec.seed, spec.data.limit, spec.data.eval_limit)
    if shape == "unpaired":  # pairs are split first, so a pair's two halves never straddle train and held-out
        split = Split(unpair(split.train), unpair(split.held_out), split.data_hash)
    return split


def check_data(recipe: LoadedRecipe) -> tuple[int, int]:
    """Validate the recipe's data without a tokenizer or a model; returns (train rows, held-out rows)."""
    spec, shape = recipe.spec, recipe.method.data
    if shape in ("preference", "unpaired"):
        n = len(preference_rows(recipe))
    elif spec.data.file:
        n = len(_file_rows(recipe, ("prompt",) if shape == "prompt" else COMPLETION_KEYS))
    else:
        n = sum(len(rows) for _, rows in suite_tasks(recipe))
    train, held = split_sizes(n, spec.data.eval_fraction, spec.data.limit, spec.data.eval_limit)
    if train == 0:
        raise recipe.error(f"no training rows: {n} row(s), all held out by eval_fraction {spec.data.eval_fraction}",
                           "data.eval_fraction")
    return (2 * train, 2 * held) if shape == "unpaired" else (train, held)


def split_sizes(n: int, eval_fraction: float, limit: int | None, eval_limit: int | None) -> tuple[int, int]:
    """(train, held-out) row counts that `split_rows` gives for n rows."""
    n_eval = int(round(n * eval_fraction)) if n > 1 else 0
    held = n_eval if eval_limit is None else min(n_eval, eval_limit)
    train = n - n_eval if limit is None else min(n - n_eval, limit)
    return train, held


def split_rows(rows: list[dict[str, Any]], eval_fraction: float, seed: int, limit: int | None,
               eval_limit: int | None) -> Split:
    """Shuffle with the seed, cut the held-out part, then cap both."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = int(round(len(rows) * eval_fraction)) if len(rows) > 1 else 0
    held = [rows[i] for i in order[:n_eval]][:eval_limit]
    train = [rows[i] for i in order[n_eval:]][:limit]
    return Split(train, held, sha256_json({"rows": rows, "eval_fraction": eval_fraction, "seed": seed,
                                           "limit": limit, "eval_limit": eval_limit}))


def sft_rows(recipe: LoadedRecipe, tokenizer: Any) -> list[dict[str, str]]:
    """{prompt, completion} rows from the recipe's suite split or its jsonl file."""
    if recipe.spec.data.file:
        return _file_rows(recipe, COMPLETION_KEYS)
    return [_render(task, row, tokenizer) for task, rows in suite_tasks(recipe) for row in rows]


def suite_tasks(recipe: LoadedRecipe) -> list[tuple[Any, list[dict[str, Any]]]]:
    """(task, rows of the recipe's split) for each suite task the recipe trains on; no rendering."""
    data = recipe.spec.data
    out: list[tuple[Any, list[dict[str, Any]]]] = []
    wanted = set(data.tasks or [])
    for ref in data.suites or []:
        suite = load_suite(ref)
        for task in suite.tasks:
            named = task.name in wanted or f"{suite.name}/{task.name}" in wanted
            if wanted and not named:
                continue
            wanted -= {task.name, f"{suite.name}/{task.name}"}
            if data.split in task.rows and task.spec.target is not None:
                task.render_all()  # a bad row is a one-line error now, before any model loads
                out.append((task, task.rows[data.split]))
            elif named:  # named explicitly, so a missing split is the user's mistake
                raise recipe.error(f"task {task.name} of suite {suite.name} has no {data.split!r} split with a "
                                   f"target (splits: {', '.join(task.rows)})", "data.tasks")
    if wanted:
        raise recipe.error(f"no task named {', '.join(sorted(wanted))} in suites {', '.join(data.suites or [])}",
                           "data.tasks")
    if not any(rows for _, rows in out):
        raise recipe.error(f"suites {', '.join(data.suites or [])} have no task with a {data.split!r} split and a "
                           "target to train on", "data.suites")
    return out


def _render(task: Any, row: dict[str, Any], tokenizer: Any) -> dict[str, str]:
    prompt = task.render_prompt(row)
    if task.spec.chat_template:
        messages = ([{"role": "system", "content": task.spec.system}] if task.spec.system else []) + [
            {"role": "user", "content": prompt}]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    elif task.spec.system:
        prompt = task.spec.system + "\n\n" + prompt
    choices = task.render_choices(row)
    target = task.render_target(row, choices)
    text = choices[target] if choices is not None and isinstance(target, int) else (
        target[0] if isinstance(target, list) else str(target))
    # Multiple-choice continuations are scored after the delimiter; generated answers follow the prompt.
    completion = (task.spec.target_delimiter + text) if task.spec.kind == "multiple_choice" else text
    return {"prompt": prompt, "completion": completion}


def preference_rows(recipe: LoadedRecipe) -> list[dict[str, str]]:
    """{prompt, chosen, rejected} rows from the recipe's file (the review app writes the same format)."""
    if not recipe.spec.data.file:
        raise recipe.error(f"method {recipe.spec.method} needs preference data: set data.file to a jsonl file of "
                           "{prompt, chosen, rejected}", "data")
    return _file_rows(recipe, PREFERENCE_KEYS)


def _file_rows(recipe: LoadedRecipe, keys: tuple[str, ...]) -> list[dict[str, str]]:
    path = recipe.resolve(recipe.spec.data.file or "")
    if not path.is_file():
        raise recipe.error(f"data file {path} does not exist", "data.file")
    rows = []
    for number, row in read_jsonl(path):
        missing = [k for k in keys if not isinstance(row.get(k), str)]
        if missing:
            raise UserError(f"row is missing {', '.join(repr(k) for k in missing)} (each row needs "
                            f"{', '.join(keys)} as text)", source=str(path), line=number)
        rows.append({k: row[k] for k in keys})
    if not rows:
        raise UserError("the dataset is empty", source=str(path), field="data.file")
    return rows


def unpair(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """KTO's unpaired format: each pair becomes a desirable and an undesirable completion."""
    out: list[dict[str, Any]] = []
    for row in rows:
        out.append({"prompt": row["prompt"], "completion": row["chosen"], "label": True})
        out.append({"prompt": row["prompt"], "completion": row["rejected"], "label": False})
    return out


def count_tokens(rows: list[dict[str, Any]], tokenizer: Any, keys: tuple[str, ...]) -> int:
    """Tokens of the named fields over all rows (the denominator of tokens/s)."""
    return sum(len(tokenizer(row[k], add_special_tokens=False).input_ids) for row in rows for k in keys if k in row)


def as_dataset(rows: list[dict[str, Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_list(rows)
