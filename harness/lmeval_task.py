"""Read an lm-evaluation-harness task YAML as it is and turn it into a tunegate suite.

Only a documented subset is accepted (see SUPPORTED); anything else is refused with the field named,
never approximated silently. The result is the content of a tunegate suite.yaml plus the rows, which
`harness.suite.load_suite` validates and loads like any other suite (this module knows no suite types).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.api import UserError
from harness.untrusted import excerpt, inside_folder, terminal_line

RowReader = Callable[[Path, str], list[dict[str, Any]]]  # harness.suite.read_rows: (path, field name) -> rows

SUPPORTED = {"task", "dataset_path", "dataset_kwargs", "test_split", "output_type", "doc_to_text", "doc_to_choice",
             "doc_to_target", "target_delimiter", "fewshot_delimiter", "num_fewshot", "generation_kwargs",
             "metric_list", "metadata", "fewshot_split"}
KINDS = {"multiple_choice": "multiple_choice", "generate_until": "generate", "loglikelihood_rolling": "perplexity"}
METRICS = {  # lm-eval metric name -> ours, per output type
    "multiple_choice": {"acc": "acc", "acc_norm": "acc_norm"},
    "generate_until": {"exact_match": "exact_match_strict"},
    "loglikelihood_rolling": {"perplexity": "token_perplexity", "word_perplexity": "word_perplexity",
                              "byte_perplexity": "byte_perplexity", "bits_per_byte": "bits_per_byte"},
}
METRIC_KEYS = {"metric", "aggregation", "higher_is_better"}
GEN_KEYS = {"until", "max_gen_toks", "do_sample", "temperature"}
_FIELD = re.compile(r"^\s*\{\{\s*([^{}]+?)\s*\}\}\s*$")


def is_lmeval_task(raw: Any) -> bool:
    """An lm-eval task file has a top-level `task`; a tunegate suite has `tasks`."""
    return isinstance(raw, dict) and "task" in raw and "tasks" not in raw


def to_suite_dict(raw: dict[str, Any], path: Path,
                  read_rows: RowReader) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Convert a parsed lm-eval task YAML into a one-task suite.yaml mapping and its rows by split."""
    src = str(path)
    for key in raw:
        if key not in SUPPORTED:
            raise UserError(f"not in tunegate's supported lm-eval subset ({', '.join(sorted(SUPPORTED))})",
                            source=src, field=key)
    output_type = _required(raw, "output_type", src)
    if output_type not in KINDS:
        raise UserError(f"output_type {output_type!r} is not supported (use {', '.join(KINDS)})", source=src,
                        field="output_type")
    if raw.get("dataset_path") not in ("json", "csv"):
        raise UserError("only dataset_path: json or csv (with dataset_kwargs.data_files) is supported",
                        source=src, field="dataset_path")
    split = raw.get("test_split", "test")
    data_file = _data_file(raw, split, path)
    rows = _read_rows(data_file, raw["dataset_path"], read_rows)
    name = str(_required(raw, "task", src))
    task_dict = {
        "name": re.sub(r"[^A-Za-z0-9_.-]", "_", name), "kind": KINDS[output_type], "data": {split: str(data_file)},
        "split": split, "prompt": _template(raw.get("doc_to_text", ""), rows, src, "doc_to_text"),
        "chat_template": False, "target_delimiter": raw.get("target_delimiter", " "),
        "metrics": _metrics(raw, output_type, src),
    }
    direction = _directions(raw, output_type)
    if direction:
        task_dict["direction"] = direction
    if "fewshot_split" in raw and raw["fewshot_split"] != split:
        raise UserError("few-shot examples are drawn from the test split only", source=src, field="fewshot_split")
    shots = int(raw.get("num_fewshot", 0) or 0)
    if shots:
        print(terminal_line(f"tunegate: note: {src}: num_fewshot={shots} examples are drawn by tunegate's seeded "
                            "sampler, not lm-eval's, so the chosen examples (and scores) can differ"), file=sys.stderr)
        task_dict["fewshot"] = {"n": shots, "split": split, "delimiter": raw.get("fewshot_delimiter", "\n\n")}
    if output_type == "multiple_choice":
        task_dict["choices"] = _choices(_required(raw, "doc_to_choice", src), rows, src)
    if output_type != "loglikelihood_rolling":
        task_dict["target"] = _expression(_required(raw, "doc_to_target", src), rows, src, "doc_to_target")
    if output_type == "generate_until":
        task_dict["generation"] = _generation(raw.get("generation_kwargs") or {}, src)
        task_dict["extraction"] = {"strip": ""}  # lm-eval compares the raw continuation
    return {"name": task_dict["name"], "description": f"lm-eval task {name}", "tasks": [task_dict]}, {split: rows}


def _required(raw: dict[str, Any], key: str, src: str) -> Any:
    if key not in raw:
        raise UserError("required field is missing", source=src, field=key)
    return raw[key]


def _data_file(raw: dict[str, Any], split: str, path: Path) -> Path:
    files = (raw.get("dataset_kwargs") or {}).get("data_files")
    extra = set(raw.get("dataset_kwargs") or {}) - {"data_files"}
    if extra:
        raise UserError("only data_files is supported", source=str(path), field=f"dataset_kwargs.{sorted(extra)[0]}")
    if isinstance(files, dict):
        files = files.get(split)
    if isinstance(files, list):
        if len(files) != 1:
            raise UserError("exactly one data file per split is supported", source=str(path),
                            field="dataset_kwargs.data_files")
        files = files[0]
    if not isinstance(files, str):
        raise UserError(f"no data file for split {split!r}", source=str(path), field="dataset_kwargs.data_files")
    for candidate in (Path(files), path.parent / files):  # lm-eval resolves against the working directory
        if candidate.is_file():  # and, like a suite's, the file must be in the task file's folder
            return inside_folder(path.parent, candidate.absolute(), source=str(path), field="dataset_kwargs.data_files")
    raise UserError(f"data file {excerpt(files, 200)} does not exist", source=str(path),
                    field="dataset_kwargs.data_files")


def _read_rows(path: Path, kind: str, read_rows: RowReader) -> list[dict[str, Any]]:
    if kind == "csv":
        return read_rows(path, "dataset_kwargs.data_files")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"not valid UTF-8 (byte {exc.start}): not a JSON data file", source=str(path)) from None
    try:  # the datasets json loader takes a JSON array or JSON lines, whatever the suffix
        data = json.loads(text)
        rows = data if isinstance(data, list) else [data]
    except (ValueError, RecursionError):
        try:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except (ValueError, RecursionError) as exc:
            raise UserError(f"not JSON or JSON lines ({excerpt(str(exc), 120)})", source=str(path)) from None
    if any(not isinstance(row, dict) for row in rows):
        raise UserError("every row must be a JSON object", source=str(path), field="dataset_kwargs.data_files")
    if not rows:
        raise UserError("the dataset is empty", source=str(path), field="dataset_kwargs.data_files")
    return rows


def _template(value: Any, rows: list[dict[str, Any]], src: str, field: str) -> str:
    """lm-eval's doc_to_text: a column name, or a Jinja template."""
    if not isinstance(value, str):
        raise UserError("must be a column name or a Jinja template (functions are not supported)", source=src,
                        field=field)
    return f"{{{{ {value} }}}}" if value in rows[0] else value


def _expression(value: Any, rows: list[dict[str, Any]], src: str, field: str) -> str:
    """doc_to_target / doc_to_choice as an expression over the row: a column, `{{ expr }}`, or a literal."""
    if isinstance(value, bool) or not isinstance(value, (str, int, list)):
        raise UserError("must be a column name, a Jinja template or a literal", source=src, field=field)
    if isinstance(value, int) or isinstance(value, list):
        return json.dumps(value)
    if value in rows[0]:
        return value
    match = _FIELD.match(value)
    if match:
        return match.group(1)
    if "{{" in value or "{%" in value:
        raise UserError("only a single {{ expression }} template is supported here", source=src, field=field)
    return json.dumps(value)


def _choices(value: Any, rows: list[dict[str, Any]], src: str) -> Any:
    if isinstance(value, list):
        return [str(v) for v in value]
    return _expression(value, rows, src, "doc_to_choice")


def _metrics(raw: dict[str, Any], output_type: str, src: str) -> list[str]:
    entries = raw.get("metric_list") or [{"metric": next(iter(METRICS[output_type]))}]
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "metric" not in entry:
            raise UserError("each entry needs a metric name", source=src, field=f"metric_list[{i}]")
        for key in entry:
            if key not in METRIC_KEYS:
                raise UserError("metric option not supported", source=src, field=f"metric_list[{i}].{key}")
        if not isinstance(entry.get("higher_is_better", True), bool):
            raise UserError("must be true or false", source=src, field=f"metric_list[{i}].higher_is_better")
        if entry.get("aggregation", "mean") != "mean" and output_type != "loglikelihood_rolling":
            raise UserError("only mean aggregation is supported", source=src, field=f"metric_list[{i}].aggregation")
        ours = METRICS[output_type].get(entry["metric"])
        if ours is None:
            raise UserError(f"metric {entry['metric']!r} is not supported for {output_type} "
                            f"(supported: {', '.join(METRICS[output_type])})", source=src, field=f"metric_list[{i}]")
        out.append(ours)
    return out


def _directions(raw: dict[str, Any], output_type: str) -> dict[str, str]:
    """The task's own `higher_is_better` per metric, as a tunegate `direction:` (checked by _metrics first)."""
    return {METRICS[output_type][entry["metric"]]: "higher" if entry["higher_is_better"] else "lower"
            for entry in raw.get("metric_list") or [] if "higher_is_better" in entry}


def _generation(kwargs: dict[str, Any], src: str) -> dict[str, Any]:
    for key in kwargs:
        if key not in GEN_KEYS:
            raise UserError("generation option not supported", source=src, field=f"generation_kwargs.{key}")
    if kwargs.get("do_sample") or float(kwargs.get("temperature", 0) or 0) > 0:
        raise UserError("only greedy generation is supported for lm-eval tasks", source=src,
                        field="generation_kwargs.do_sample")
    until = kwargs.get("until", ["\n\n"])
    return {"max_new_tokens": int(kwargs.get("max_gen_toks", 256)), "stop": [until] if isinstance(until, str) else until}
