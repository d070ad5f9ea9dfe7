"""Read lm-evaluation-harness task files as lm-eval 0.4.13 reads them and turn them into a tunegate suite.

The rules are lm-eval's (lm_eval/tasks/_yaml_loader.py, lm_eval/config/task.py, lm_eval/api/task.py):
`include` merges the named files first and the including file's keys win; the evaluated split is
`test_split`, else `validation_split`; few-shot examples come from `fewshot_split` (else the training,
validation, then test split) through lm-eval's seeded sampler; `doc_to_text/target/choice` accept a column,
a Jinja template, a list or an integer. Every document is rendered here, exactly as lm-eval would build its
requests, and the task that `harness.data.suite` receives only reads the rendered fields (`lmeval__` in each row).

Python that a task file names (`!function`, which `process_docs` and the doc_to_* keys use) runs only when the
user consented with `--trust-task-code DIR` (harness.core.untrusted.trusting_task_code); the file's hash joins the
task's fingerprint. A key that tunegate cannot honour is refused with one line naming it.
"""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import importlib.util
import json
import random
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from harness.core.api import UserError
from harness.core.config import load_yaml, parse_yaml
from harness.core.untrusted import TemplateSandbox, code_trusted, excerpt, inside_folder
from harness.data.lmeval_filters import check_filters

RowReader = Callable[[Path, str], list[dict[str, Any]]]  # harness.data.suite.read_rows: (path, field name) -> rows
Rows = dict[str, list[dict[str, Any]]]
KEY = "lmeval__"  # the row field holding what lm-eval would build from the document
FEWSHOT_SEED = 1234  # lm-eval's default --fewshot_random_seed
KINDS = {"multiple_choice": "multiple_choice", "generate_until": "generate", "loglikelihood_rolling": "perplexity"}
METRICS = {  # lm-eval metric name -> ours, per output type
    "multiple_choice": {"acc": "acc", "acc_norm": "acc_norm", "acc_bytes": "acc_bytes"},
    "generate_until": {"exact_match": "exact_match_strict", "bleu": "bleu", "chrf": "chrf", "ter": "ter"},
    "loglikelihood_rolling": {"perplexity": "token_perplexity", "word_perplexity": "word_perplexity",
                              "byte_perplexity": "byte_perplexity", "bits_per_byte": "bits_per_byte"},
}
CORPUS = ("bleu", "chrf", "ter")  # lm-eval aggregations that are sacrebleu corpus scores, as tunegate's own
MEANS = ("mean", "nanmean")  # nanmean is mean for per-sample scores that are never NaN
# the per-item values lm-eval's own process_results gives a metric a custom aggregation may reduce (api/task.py);
# on generated text its passthrough metrics (f1, mcc, ...) give the (gold, answer) pair
BUILTIN_VALUES = {"multiple_choice": ("acc", "acc_norm", "acc_bytes", "exact_match", "f1", "mcc"),
                  "generate_until": ("exact_match", "acc", "acc_norm", "f1", "mcc", "bleu", "chrf", "ter"),
                  "loglikelihood_rolling": ()}
# lm-eval's built-in corpus aggregations of (gold, prediction) pairs (harness.scoring.lmeval_results), and the
# aggregation lm-eval gives f1 and mcc when the task names none
PAIR_AGGREGATIONS = ("f1", "matthews_corrcoef")
DEFAULT_AGGREGATION = {"f1": "f1", "mcc": "matthews_corrcoef"}
EXACT_MATCH_OPTIONS = {"ignore_case", "ignore_punctuation", "ignore_numbers", "regexes_to_ignore"}
METRIC_KEYS = {"metric", "aggregation", "higher_is_better", "weight_by_size"}  # the last matters to groups only
GEN_KEYS = {"until", "max_gen_toks", "do_sample", "temperature", "top_p", "top_k", "max_new_tokens", "num_beams"}
# keys lm-eval reads that change nothing tunegate computes (names, bookkeeping) or that are honoured below
TASK_KEYS = {"task", "task_alias", "tag", "group", "group_alias", "dataset_path", "dataset_name", "dataset_kwargs",
             "training_split", "validation_split", "test_split", "fewshot_split", "process_docs", "doc_to_text",
             "doc_to_target", "doc_to_choice", "description", "target_delimiter", "fewshot_delimiter",
             "fewshot_config", "num_fewshot", "metric_list", "output_type", "generation_kwargs", "repeats",
             "filter_list", "should_decontaminate", "doc_to_decontamination_query", "metadata", "unsafe_code",
             "gen_prefix", "process_results"}
REFUSED = {  # keys lm-eval has that tunegate does not implement: one line each
    "custom_dataset": "a custom dataset function", "doc_to_image": "image inputs", "doc_to_audio": "audio inputs",
    "use_prompt": "promptsource prompts",
}
FEWSHOT_KEYS = {"sampler", "split", "samples", "process_docs", "fewshot_indices", "doc_to_text", "doc_to_target",
                "doc_to_choice", "fewshot_delimiter", "target_delimiter", "gen_prefix"}
LOCAL_BUILDERS = {"json", "csv", "parquet"}
MAX_INDEX_FILES = 20000  # YAML files a folder is searched through (lm-eval ships about 14,000)


@dataclass(frozen=True)
class FunctionRef:
    """A `!function module.name` reference, resolved only with the user's consent (`resolve_function`)."""

    qual: str
    folder: Path
    source: str


def _loader(folder: Path, source: str) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    def ctor(loader: yaml.SafeLoader, node: yaml.Node) -> FunctionRef:
        return FunctionRef(str(loader.construct_scalar(node)), folder, source)  # type: ignore[arg-type]

    Loader.add_constructor("!function", ctor)
    return Loader


def read_config(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A task file with its `include`s merged as lm-eval merges them (included first, own keys win)."""
    path = path.resolve()
    if path in _seen:
        raise UserError(f"include cycle through {path.name}", source=str(_seen[-1]), field="include")
    cfg, _ = load_yaml(path, _loader(path.parent, str(path)))  # a SafeLoader plus `!function`
    if not isinstance(cfg, dict):
        raise UserError("an lm-eval task file must be a mapping", source=str(path))
    includes = cfg.pop("include", None)
    if includes is None:
        return cfg
    merged: dict[str, Any] = {}
    for inc in includes if isinstance(includes, list) else [includes]:
        target = path.parent / str(inc)
        if not target.is_file():
            raise UserError(f"included file {excerpt(str(inc))} does not exist", source=str(path), field="include")
        sub = read_config(target, (*_seen, path))
        sub.pop("task_list", None)
        merged.update(sub)
    merged.update(cfg)
    return merged


def is_lmeval_task(raw: Any) -> bool:
    """An lm-eval task or group file has a top-level `task` (or `group` with a task list); a suite has `tasks`."""
    return isinstance(raw, dict) and "tasks" not in raw and ("task" in raw or "group" in raw)


def is_group(cfg: dict[str, Any]) -> bool:
    return "group" in cfg and isinstance(cfg.get("task"), list)


# ---- the user's Python, only with consent -----------------------------------------------------------------

def resolve_function(ref: FunctionRef, field: str) -> tuple[Callable[..., Any], str, str]:
    """The function, its file and the file's sha256; refused in one line without --trust-task-code."""
    module, _, name = ref.qual.rpartition(".")
    file = (ref.folder / f"{module.replace('.', '/')}.py").resolve()
    if not module or not file.is_file():
        raise UserError(f"!function {excerpt(ref.qual)}: no file {module.replace('.', '/') or '?'}.py next to the "
                        "task file", source=ref.source, field=field)
    if not code_trusted(file):
        raise UserError(f"!function {excerpt(ref.qual)} runs Python from {file}; pass --trust-task-code "
                        f"{ref.folder} to allow it (it runs that code, as lm-eval does)", source=ref.source, field=field)
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    mod_name = f"tunegate_task_code_{digest[:16]}"
    loaded = sys.modules.get(mod_name)
    if loaded is None:
        spec = importlib.util.spec_from_file_location(mod_name, file)
        if spec is None or spec.loader is None:
            raise UserError(f"cannot import {file}", source=ref.source, field=field)
        loaded = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(file.parent))  # the module may import its neighbours, as under lm-eval
        try:
            spec.loader.exec_module(loaded)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's code: whatever it raises (a module that
            # calls sys.exit when a tool is missing included) is the task's problem, not the end of tunegate
            raise UserError(f"importing {file.name} failed: {type(exc).__name__}: {excerpt(str(exc), 160)}",
                            source=ref.source, field=field) from None
        finally:
            sys.path.remove(str(file.parent))
        sys.modules[mod_name] = loaded
    fn = getattr(loaded, name, None)
    if not callable(fn):
        raise UserError(f"{file.name} has no function {excerpt(name)}", source=ref.source, field=field)
    _IMPORTED[f"{digest[:16]}:{ref.qual}"] = fn
    return fn, str(file), digest


# ---- data --------------------------------------------------------------------------------------------------

def _data_files(cfg: dict[str, Any], src: str) -> dict[str, list[str]]:
    extra = set(cfg.get("dataset_kwargs") or {}) - {"data_files", "trust_remote_code"}
    if extra:  # a loader option (field, delimiter, ...) tunegate's own reader would not honour
        raise UserError(f"option of the {cfg['dataset_path']} loader not supported for local data", source=src,
                        field=f"dataset_kwargs.{sorted(extra)[0]}")
    files = (cfg.get("dataset_kwargs") or {}).get("data_files")
    if isinstance(files, (str, list)):
        files = {"train": files}  # as datasets.load_dataset names a split given no mapping
    if not isinstance(files, dict) or not files:
        raise UserError(f"dataset_path: {cfg['dataset_path']} needs dataset_kwargs.data_files", source=src,
                        field="dataset_kwargs.data_files")
    return {str(k): [str(f) for f in (v if isinstance(v, list) else [v])] for k, v in files.items()}


def _local_split(cfg: dict[str, Any], split: str, path: Path, read_rows: RowReader) -> list[dict[str, Any]]:
    src, field = str(path), "dataset_kwargs.data_files"
    files = _data_files(cfg, src)
    if split not in files:
        raise UserError(f"no data file for split {split!r} (declared: {', '.join(files)})", source=src, field=field)
    rows: list[dict[str, Any]] = []
    for name in files[split]:
        found = next((c for c in (Path(name), path.parent / name) if c.is_file()), None)  # lm-eval: the cwd
        if found is None:
            raise UserError(f"data file {excerpt(name, 200)} does not exist", source=src, field=field)
        file = inside_folder(path.parent, found.absolute(), source=src, field=field)
        rows += _read_file(file, cfg["dataset_path"], read_rows)
    if not rows:
        raise UserError(f"split {split!r} is empty", source=src, field=field)
    return rows


def _read_file(path: Path, kind: str, read_rows: RowReader) -> list[dict[str, Any]]:
    if kind == "csv":
        return read_rows(path, "dataset_kwargs.data_files")
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_table(path).to_pylist())
        except Exception as exc:  # noqa: BLE001 - a damaged file is the user's input problem
            raise UserError(f"not a parquet file ({excerpt(str(exc), 120)})", source=str(path)) from None
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


def _hub_split(cfg: dict[str, Any], split: str, src: str, depends: dict[str, str]) -> list[dict[str, Any]]:
    """A split through `datasets.load_dataset` (the HF cache, or the hub when reachable); its revision and
    fingerprint join the task's."""
    try:
        import datasets
    except ImportError:
        raise UserError(f"dataset {excerpt(str(cfg['dataset_path']))} needs the `datasets` package "
                        "(or point dataset_path: json at local files)", source=src, field="dataset_path") from None
    kwargs = dict(cfg.get("dataset_kwargs") or {})
    kwargs.pop("trust_remote_code", None)
    try:
        data = datasets.load_dataset(str(cfg["dataset_path"]), cfg.get("dataset_name"), split=split, **kwargs)
    except Exception as exc:  # noqa: BLE001 - not cached and no network, no such dataset or split: the user's input
        raise UserError(f"cannot load dataset {excerpt(str(cfg['dataset_path']))} split {split!r}: "
                        f"{excerpt(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 160)}",
                        source=src, field="dataset_path") from None
    depends[f"dataset:{cfg['dataset_path']}/{cfg.get('dataset_name')}/{split}"] = str(
        kwargs.get("revision") or getattr(data, "_fingerprint", "") or data.info.version)
    return list(data.to_list())


# ---- documents as lm-eval renders them ----------------------------------------------------------------------

def _regex_replace(text: str, pattern: str, repl: str, count: int = 0) -> str:
    return re.sub(pattern, repl, text, count=count)


def _env() -> TemplateSandbox:
    env = TemplateSandbox()  # lm-eval's environment: StrictUndefined, keep_trailing_newline, regex_replace
    env.filters["regex_replace"] = _regex_replace
    return env


_ENV = _env()


class Docs:
    """lm-eval's doc_to_text / doc_to_target / doc_to_choice over one task's documents."""

    def __init__(self, cfg: dict[str, Any], features: set[str], src: str, funcs: dict[str, Callable[..., Any]]):
        self.cfg, self.features, self.src, self.funcs = cfg, features, src, funcs
        self._templates: dict[str, jinja2.Template] = {}

    def render(self, template: str, doc: dict[str, Any], field: str) -> str:
        if template not in self._templates:
            try:
                self._templates[template] = _ENV.from_string(template)
            except jinja2.TemplateSyntaxError as exc:
                raise UserError(f"template syntax error: {excerpt(exc.message or '', 200)}", source=self.src,
                                field=field) from None
        return self._templates[template].render(**doc)

    def _value(self, key: str, override: Any = None) -> Any:
        if override is not None:
            return self.funcs.get(f"fewshot_config.{key}") if isinstance(override, FunctionRef) else override
        value = self.cfg.get(key)
        return self.funcs.get(key) if isinstance(value, FunctionRef) else value

    def field(self, spec: Any, doc: dict[str, Any]) -> str:
        """lm-eval's resolve_field (description, gen_prefix): a column, else a template; empty when unset."""
        if not spec:
            return ""
        return str(doc[spec]) if spec in doc else self.render(str(spec), doc, "description/gen_prefix")

    def text(self, doc: dict[str, Any], override: Any = None) -> Any:
        spec = self._value("doc_to_text", override)
        if isinstance(spec, int) or callable(spec):
            return spec if isinstance(spec, int) else spec(doc)
        if spec in self.features:
            return doc[spec]
        out = self.render(str(spec if spec is not None else ""), doc, "doc_to_text")
        return ast.literal_eval(out) if out.isdigit() and self.cfg.get("doc_to_choice") is not None else out

    def target(self, doc: dict[str, Any], override: Any = None) -> Any:
        spec = self._value("doc_to_target", override)
        if isinstance(spec, (int, list)) or callable(spec):
            return spec(doc) if callable(spec) else spec
        if spec in self.features:
            return doc[spec]
        out = self.render(str(spec if spec is not None else ""), doc, "doc_to_target")
        if out.isdigit() and self.cfg.get("doc_to_choice") is not None:
            return ast.literal_eval(out)
        if len(out) >= 2 and out[0] == "[" and out[-1] == "]":
            try:
                return ast.literal_eval(out)
            except (SyntaxError, ValueError):
                return out
        return out

    def choices(self, doc: dict[str, Any], override: Any = None) -> list[str]:
        spec = self._value("doc_to_choice", override)
        if callable(spec):
            return list(spec(doc))
        if isinstance(spec, dict):
            return list(spec.values())
        if isinstance(spec, list):
            return spec
        if spec in self.features:
            return list(doc[spec])
        out = self.render(str(spec), doc, "doc_to_choice")
        try:
            value = ast.literal_eval(out)
        except (SyntaxError, ValueError):
            raise ValueError(f"doc_to_choice must render a Python list literal, got {excerpt(out)}") from None
        return list(value)


def _joins(prefix: str, suffix: str) -> bool:
    """lm-eval's requires_delimiter: neither side has whitespace at the join."""
    return bool(prefix) and bool(suffix) and not (prefix[-1].isspace() or suffix[0].isspace())


def _qa_turn(q: Any, c: list[str] | None, a: Any, prefix: str, tgt: str, few: str) -> str:
    """One question (and, for an example, its answer) as lm-eval's build_qa_turn writes it in plain text."""
    has_answer = a is not None and a != ""
    gap = tgt if (has_answer and not prefix) or (prefix and _joins(str(q), prefix)) else ""
    if not has_answer:
        return f"{q}{gap}{prefix}"
    answer = str(c[a] if c and isinstance(a, int) else a[0] if isinstance(a, list) else a)
    if prefix:  # lm-eval's maybe_delimit(gen_prefix, answer, " ")
        answer = prefix + answer if not _joins(prefix, answer) else f"{prefix} {answer}"
    return f"{q}{gap}{answer}{few}"


# ---- one task file to suite tasks ----------------------------------------------------------------------------

def _check_keys(cfg: dict[str, Any], src: str) -> None:
    for key in cfg:
        if key in REFUSED:
            raise UserError(f"{REFUSED[key]} is not supported by tunegate", source=src, field=key)
        if key not in TASK_KEYS:
            raise UserError("not an lm-eval task key tunegate knows", source=src, field=key)
    for key, value in cfg.items():
        if key == "fewshot_config" and isinstance(value, dict):
            for sub, item in value.items():
                if sub not in FEWSHOT_FUNCTION_KEYS:
                    _no_functions_elsewhere(item, src, f"{key}.{sub}")
        elif key == "metric_list" and isinstance(value, list):  # metric and aggregation may be the task's Python
            for i, entry in enumerate(value):
                for sub, item in (entry.items() if isinstance(entry, dict) else []):
                    if sub not in ("metric", "aggregation"):
                        _no_functions_elsewhere(item, src, f"{key}[{i}].{sub}")
        elif key not in FUNCTION_KEYS:
            _no_functions_elsewhere(value, src, key)
    if "process_results" in cfg and not isinstance(cfg["process_results"], FunctionRef):
        raise UserError("process_results must be a !function", source=src, field="process_results")
    for key in cfg.get("fewshot_config") or {}:
        if key not in FEWSHOT_KEYS:
            raise UserError("few-shot option not supported", source=src, field=f"fewshot_config.{key}")
    sampler = (cfg.get("fewshot_config") or {}).get("sampler", "default")
    if sampler not in ("default", "first_n"):
        raise UserError(f"few-shot sampler {sampler!r} is not supported (default, first_n)", source=src,
                        field="fewshot_config.sampler")
    repeats = cfg.get("repeats", 1)
    if repeats is not None and (not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1):
        raise UserError("repeats must be a positive integer", source=src, field="repeats")


def convert_task(cfg: dict[str, Any], path: Path, read_rows: RowReader) -> list[tuple[dict[str, Any], Rows]]:
    """One lm-eval task config as tunegate task dicts (one per filter of a generate task) with their rows."""
    src = str(path)
    _check_keys(cfg, src)
    name = str(_required(cfg, "task", src))
    output_type = cfg.get("output_type", "generate_until")
    if output_type not in KINDS:
        raise UserError(f"output_type {output_type!r} is not supported (use {', '.join(KINDS)})", source=src,
                        field="output_type")
    metrics, exact, directions, custom = _metrics(cfg, output_type, src)
    generation = _generation(cfg, src) if output_type == "generate_until" else None
    filters = check_filters(cfg["filter_list"], src) if output_type == "generate_until" and cfg.get("filter_list") \
        else [("none", [{"function": "take_first"}])]
    funcs, depends = task_functions(cfg, src)
    split = cfg.get("test_split") or cfg.get("validation_split")
    if not split and cfg.get("dataset_path") in LOCAL_BUILDERS and "test" in _data_files(cfg, src):
        split = "test"  # lm-eval would refuse the file; its only local test data is unambiguous
    if not split:
        raise UserError("the task names no test_split or validation_split to evaluate", source=src, field="test_split")
    fs_cfg = cfg.get("fewshot_config") or {}
    shots = int(cfg.get("num_fewshot", 0) or 0)
    fs_split = fs_cfg.get("split", cfg.get("fewshot_split"))
    if shots and not fs_split and "samples" not in fs_cfg:  # lm-eval's preconfigured rule
        fs_split = cfg.get("training_split") or cfg.get("validation_split") or cfg.get("test_split")

    def load_raw(which: str) -> list[dict[str, Any]]:
        if cfg.get("dataset_path") in LOCAL_BUILDERS:
            return _local_split(cfg, which, path, read_rows)
        if isinstance(cfg.get("dataset_path"), str):
            return _hub_split(cfg, which, src, depends)
        raise UserError("the task names no dataset_path", source=src, field="dataset_path")

    def load(which: str) -> list[dict[str, Any]]:
        return _processed(load_raw(which), funcs.get("process_docs"), src)

    docs = load(split)
    if not docs:
        raise UserError(f"split {split!r} has no documents left after process_docs", source=src, field="process_docs")
    features = set().union(*(d.keys() for d in docs))
    renderer = Docs(cfg, features, src, funcs)
    pool: list[dict[str, Any]] = []
    if shots:
        fs_process = funcs.get("fewshot_config.process_docs", funcs.get("process_docs"))
        if fs_split and fs_process is funcs.get("process_docs"):
            pool = docs if fs_split == split else load(str(fs_split))
        elif fs_split:
            pool = _processed(load_raw(str(fs_split)), fs_process, src)
        elif "fewshot_config.samples" in funcs:
            pool = list(_doc_call(lambda _d: funcs["fewshot_config.samples"](), {}, src, 0))
        elif isinstance(fs_cfg.get("samples"), list):
            pool = list(fs_cfg["samples"])
        else:
            raise UserError("few-shot samples must be a list of documents", source=src, field="fewshot_config.samples")
        indices = fs_cfg.get("fewshot_indices")
        if indices:
            pool = [pool[i] for i in indices]
    multiple_input = output_type == "multiple_choice" and isinstance(_doc_call(renderer.text, docs[0], src, 0), int)
    if multiple_input and cfg.get("gen_prefix"):
        raise UserError("gen_prefix with choices as contexts (doc_to_text an index) is not supported", source=src,
                        field="gen_prefix")
    rows = _render(cfg, renderer, docs, pool, shots, multiple_input, output_type, src)
    base: dict[str, Any] = {
        "kind": KINDS[output_type], "data": {split: f"{_safe_name(name)}.{split}.jsonl"}, "split": split,  # rows come rendered
        "prompt": "{{ lmeval__.prompt }}", "chat_template": False,
        "target_delimiter": cfg.get("target_delimiter", " "), "metrics": metrics,
        "description": f"lm-eval task {name} ({path.name})",
    }
    if directions:
        base["direction"] = directions
    if output_type == "multiple_choice":
        base["choices"], base["target"] = "lmeval__.choices", "lmeval__.target"
    elif output_type == "generate_until":
        base["target"] = "lmeval__.target"
        base["generation"] = generation
    else:
        base["prompt"] = "{{ lmeval__.target }}"
    out = []
    for filter_name, steps in filters:
        suffix = "" if len(filters) == 1 else f".{filter_name}"
        task = {**base, "name": _safe_name(name + suffix),
                "lmeval": {"filters": steps, "exact_match": exact, "multiple_input": multiple_input,
                           "depends": depends, "custom": custom,
                           "process_results": _ref(cfg["process_results"], "process_results", src)
                           if "process_results" in funcs else None}}
        out.append((task, {split: rows}))
    return out


FUNCTION_KEYS = ("process_docs", "doc_to_text", "doc_to_target", "doc_to_choice", "process_results")
FEWSHOT_FUNCTION_KEYS = (*FUNCTION_KEYS, "samples")


def task_functions(cfg: dict[str, Any], src: str | None = None) -> tuple[dict[str, Callable[..., Any]], dict[str, str]]:
    """The task's `!function`s by key (`fewshot_config.KEY` for its few-shot overrides; consent checked) and
    their files' hashes for the fingerprint."""
    funcs, depends = {}, {}
    fewshot = {f"fewshot_config.{k}": v for k, v in (cfg.get("fewshot_config") or {}).items()}
    metric_fns = {f"metric_list[{i}].{k}": entry.get(k) for i, entry in enumerate(cfg.get("metric_list") or [])
                  if isinstance(entry, dict) for k in ("metric", "aggregation")}
    for key, value in [*((k, cfg.get(k)) for k in FUNCTION_KEYS), *fewshot.items(), *metric_fns.items()]:
        if isinstance(value, FunctionRef):
            funcs[key], file, digest = _resolve(value, key, src)
            depends[f"code:{Path(file).name}:{value.qual}"] = digest
    return funcs, depends


def _no_functions_elsewhere(value: Any, src: str, field: str) -> None:
    """A `!function` where tunegate does not call one (metrics, filters, few-shot options) is refused by name."""
    if isinstance(value, FunctionRef):
        raise UserError(f"!function {excerpt(value.qual)}: custom Python here is not supported", source=src,
                        field=field)
    if isinstance(value, dict):
        for key, item in value.items():
            _no_functions_elsewhere(item, src, f"{field}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_functions_elsewhere(item, src, f"{field}[{i}]")


def _required(raw: dict[str, Any], key: str, src: str) -> Any:
    if key not in raw:
        raise UserError("required field is missing", source=src, field=key)
    return raw[key]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _doc_call(fn: Callable[[dict[str, Any]], Any], doc: dict[str, Any], src: str, index: int) -> Any:
    """Render one document; a template or function error becomes one line naming the row."""
    try:
        return fn(doc)
    except UserError:
        raise
    except jinja2.UndefinedError as exc:
        raise UserError(f"{excerpt(str(exc))} (row {index + 1}; columns: {excerpt(', '.join(map(str, doc)))})",
                        source=src) from None
    except Exception as exc:  # noqa: BLE001 - a user template or function: its failure is the task's problem
        raise UserError(f"{type(exc).__name__}: {excerpt(str(exc), 200)} (row {index + 1})", source=src) from None


def _processed(rows: list[dict[str, Any]], fn: Callable[..., Any] | None, src: str) -> list[dict[str, Any]]:
    """process_docs applied as lm-eval applies it: to a `datasets.Dataset` of the split."""
    if fn is None:
        return rows
    import datasets

    datasets.disable_progress_bars()  # a map or filter bar per split would bury tunegate's own output
    try:
        out = fn(datasets.Dataset.from_list(rows))
        return list(out.to_list() if hasattr(out, "to_list") else out)
    except Exception as exc:  # noqa: BLE001 - the user's process_docs: whatever it raises is the task's problem
        raise UserError(f"process_docs failed: {type(exc).__name__}: {excerpt(str(exc), 200)}", source=src,
                        field="process_docs") from None


def _render(cfg: dict[str, Any], r: Docs, docs: list[dict[str, Any]], pool: list[dict[str, Any]], shots: int,
            multiple_input: bool, output_type: str, src: str) -> list[dict[str, Any]]:
    """Every document with the prompt, choices and target lm-eval builds for it (`lmeval__`)."""
    fs_cfg = cfg.get("fewshot_config") or {}
    sampler = fs_cfg.get("sampler", "default")
    rnd = random.Random(FEWSHOT_SEED)  # one sampler for the whole task, drawn in document order, as lm-eval does
    tgt, few = cfg.get("target_delimiter", " "), cfg.get("fewshot_delimiter", "\n\n")
    fs_tgt, fs_few = fs_cfg.get("target_delimiter", tgt), fs_cfg.get("fewshot_delimiter", few)
    has_choice = cfg.get("doc_to_choice") is not None
    out = []
    for i, doc in enumerate(docs):
        def build(doc: dict[str, Any] = doc) -> dict[str, Any]:
            context = r.field(cfg.get("description"), doc)
            if shots:
                # lm-eval compares the configured few-shot split (None under its preconfigured rule) with
                # test_split, so a task with neither also keeps the evaluated document out of its examples
                exclude = doc if fs_cfg.get("split", cfg.get("fewshot_split")) == cfg.get("test_split") else None
                for ex in _sample(rnd, pool, shots, exclude, sampler, src):
                    q = r.text(ex, fs_cfg.get("doc_to_text"))
                    c = r.choices(ex, fs_cfg.get("doc_to_choice")) if has_choice else None
                    a = r.target(ex, fs_cfg.get("doc_to_target"))
                    if multiple_input:
                        q, c = c[q] if c else q, None
                    context += _qa_turn(q, c, a, r.field(fs_cfg.get("gen_prefix", cfg.get("gen_prefix")), ex),
                                        fs_tgt, fs_few)
            text = r.text(doc)
            prefix = r.field(cfg.get("gen_prefix"), doc)
            target = r.target(doc)
            row: dict[str, Any] = {}
            if output_type == "multiple_choice":
                choices = [str(c) for c in r.choices(doc)]
                if multiple_input:  # winogrande: each choice completes the context; the target is the continuation
                    row = {"prompt": context, "choices": choices, "target": text, "continuation": str(target)}
                else:
                    row = {"prompt": context + _qa_turn(text, None, None, prefix, tgt, ""), "choices": choices,
                           "target": _gold(target, choices)}
            elif output_type == "generate_until":
                if has_choice and isinstance(target, int):
                    target = r.choices(doc)[target]
                row = {"prompt": context + _qa_turn(text, None, None, prefix, tgt, ""), "target": [str(t) for t in target]
                       if isinstance(target, list) else str(target)}
            else:
                row = {"prompt": "", "target": str(target)}
            # what the contamination audit compares (harness.data.audit): the task's own decontamination query,
            # else the question without its few-shot examples
            query = cfg.get("doc_to_decontamination_query") if cfg.get("should_decontaminate") else None
            plain = " ".join(row["choices"]) if multiple_input else row["target"] if output_type == \
                "loglikelihood_rolling" else text
            row["query"] = r.field(query, doc) if query else str(plain)
            return row

        out.append({**doc, KEY: _doc_call(lambda _d: build(), doc, src, i)})
    return out


def _gold(target: Any, choices: list[str]) -> int:
    if isinstance(target, list):
        raise ValueError("several gold answers per question (a list target) are not supported for multiple choice")
    if isinstance(target, str):
        if target not in choices:
            raise ValueError(f"target {excerpt(target)} is not one of the choices")
        return choices.index(target)
    return int(target)


def _sample(rnd: random.Random, pool: list[dict[str, Any]], n: int, exclude: dict[str, Any] | None, sampler: str,
            src: str) -> list[dict[str, Any]]:
    """lm-eval's ContextSampler / FirstNSampler: n examples, never the evaluated document itself."""
    if sampler == "first_n":
        pool = [d for d in pool if d != exclude] if exclude is not None else pool
        if n > len(pool):
            raise UserError(f"num_fewshot {n} exceeds the {len(pool)} few-shot documents", source=src,
                            field="num_fewshot")
        return pool[:n]
    if len(pool) < n + (exclude is not None):
        raise UserError(f"num_fewshot {n} exceeds the {len(pool)} few-shot documents", source=src, field="num_fewshot")
    if exclude is None:
        return rnd.sample(pool, n)
    res = [d for d in rnd.sample(pool, n + 1) if d != exclude][:n]
    return res if len(res) == n else rnd.sample([d for d in pool if d != exclude], n)


def _ref(value: FunctionRef, field: str, src: str) -> str:
    """A `!function` as the task spec records it: its file's hash and name, the key `task_function` finds the
    imported function by when scoring (imported here, so only with the user's consent)."""
    _, _, digest = _resolve(value, field, src)
    return f"{digest[:16]}:{value.qual}"


def _resolve(value: FunctionRef, field: str, src: str | None) -> tuple[Callable[..., Any], str, str]:
    """resolve_function, its refusal naming the task file (and the included file the reference is written in)."""
    try:
        return resolve_function(value, field)
    except UserError as exc:
        if src is None or value.source == src:
            raise
        message = str(exc).removeprefix(f"{exc.source}: {exc.field}: ")
        raise UserError(f"{message} (written in {Path(value.source).name})", source=src, field=field) from None


def task_function(key: str) -> Callable[..., Any]:
    """The function a task spec records (`_ref`), imported when its task file was read in this process."""
    digest, _, qual = key.partition(":")
    fn = _IMPORTED.get(key)
    if fn is None:
        raise UserError(f"!function {excerpt(qual)} (file hash {digest}) was not imported when the task file was read")
    return fn


_IMPORTED: dict[str, Callable[..., Any]] = {}  # `_ref` key -> function, filled by resolve_function


def _metrics(cfg: dict[str, Any], output_type: str, src: str
             ) -> tuple[list[str], dict[str, Any], dict[str, str], dict[str, dict[str, Any]]]:
    """Our metric names, the exact_match options, the task's own directions, and the metrics the task's Python
    computes (`custom`: lm-eval name -> its aggregation, `mean` or a `!function`, and its `!function` metric)."""
    entries = cfg.get("metric_list") or [{"metric": next(iter(METRICS[output_type]))}]
    own_results = isinstance(cfg.get("process_results"), FunctionRef)
    out, exact, directions, custom = [], {}, {}, {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "metric" not in entry:
            raise UserError("each entry needs a metric name", source=src, field=f"metric_list[{i}]")
        metric = entry["metric"]
        name = metric.qual.rpartition(".")[2] if isinstance(metric, FunctionRef) else str(metric)
        aggregation = entry.get("aggregation", DEFAULT_AGGREGATION.get(name, "mean"))
        if not isinstance(entry.get("higher_is_better", True), bool):
            raise UserError("must be true or false", source=src, field=f"metric_list[{i}].higher_is_better")
        if own_results or isinstance(metric, FunctionRef) or isinstance(aggregation, FunctionRef) \
                or aggregation in PAIR_AGGREGATIONS:
            # the task's Python computes the per-item values (process_results, a !function metric) or reduces
            # them (a !function aggregation: a corpus-level metric)
            if output_type == "loglikelihood_rolling":
                raise UserError("the task's own metric Python is supported for multiple_choice and generate_until "
                                "tasks", source=src, field="process_results" if own_results else f"metric_list[{i}]")
            if isinstance(metric, FunctionRef) and not own_results and output_type != "generate_until":
                raise UserError("a !function metric is called on generated text: it needs output_type "
                                "generate_until or a process_results", source=src, field=f"metric_list[{i}].metric")
            if not own_results and not isinstance(metric, FunctionRef) and name not in BUILTIN_VALUES[output_type]:
                raise UserError(f"metric {name!r} has no per-item value without process_results (supported: "
                                f"{', '.join(BUILTIN_VALUES[output_type])})", source=src, field=f"metric_list[{i}]")
            if not isinstance(aggregation, FunctionRef) and aggregation not in (*MEANS, *PAIR_AGGREGATIONS):
                raise UserError(f"aggregation {excerpt(str(aggregation))} is not supported for a metric the task's "
                                f"Python computes (mean, {', '.join(PAIR_AGGREGATIONS)}, or a !function)", source=src,
                                field=f"metric_list[{i}].aggregation")
            # the entry's other keys are lm-eval's keyword arguments of the metric function (a built-in
            # passthrough metric ignores them, as under lm-eval)
            kwargs = {k: v for k, v in entry.items() if k not in METRIC_KEYS | {"hf_evaluate"}}
            _no_functions_elsewhere(kwargs, src, f"metric_list[{i}]")
            custom[name] = {"aggregation": _ref(aggregation, f"metric_list[{i}].aggregation", src)
                            if isinstance(aggregation, FunctionRef) else "mean" if aggregation in MEANS
                            else str(aggregation),
                            "metric": _ref(metric, f"metric_list[{i}].metric", src) if isinstance(metric, FunctionRef)
                            else None, "kwargs": kwargs if isinstance(metric, FunctionRef) else {}}
            directions[name] = "higher" if entry.get("higher_is_better", True) else "lower"
            out.append(name)
            continue
        allowed = METRIC_KEYS | {"hf_evaluate"} | (EXACT_MATCH_OPTIONS if metric == "exact_match" else set())
        for key in entry:
            # lm-eval passes other keys to the metric function; its multiple-choice scoring and its passthrough
            # metrics (bleu, chrf, ter) never read them, so only exact_match's and the perplexities' are checked
            ignored = output_type == "multiple_choice" or (output_type == "generate_until" and metric != "exact_match")
            if key not in allowed and not ignored:
                raise UserError("metric option not supported", source=src, field=f"metric_list[{i}].{key}")
        if aggregation not in (*MEANS, *CORPUS) and output_type != "loglikelihood_rolling" or (
                aggregation in CORPUS and aggregation != metric):
            raise UserError(f"aggregation {excerpt(str(aggregation))} is not supported for {metric} "
                            "(mean, bleu/chrf/ter for those metrics, or a !function)", source=src,
                            field=f"metric_list[{i}].aggregation")
        ours = METRICS[output_type].get(name)
        if ours is None:
            raise UserError(f"metric {name!r} is not supported for {output_type} "
                            f"(supported: {', '.join(METRICS[output_type])})", source=src, field=f"metric_list[{i}]")
        for pattern in entry.get("regexes_to_ignore") or []:
            try:
                re.compile(str(pattern))
            except re.error as exc:
                raise UserError(f"bad regex: {exc}", source=src, field=f"metric_list[{i}].regexes_to_ignore") from None
        exact.update({k: v for k, v in entry.items() if k in EXACT_MATCH_OPTIONS})
        if "higher_is_better" in entry:
            directions[ours] = "higher" if entry["higher_is_better"] else "lower"
        out.append(ours)
    if len(set(out)) != len(out):
        raise UserError(f"a metric is listed twice ({', '.join(sorted({m for m in out if out.count(m) > 1}))})",
                        source=src, field="metric_list")
    return out, exact, directions, custom


def _generation(cfg: dict[str, Any], src: str) -> dict[str, Any]:
    """tunegate's generation settings for lm-eval's generation_kwargs, as lm-eval's HF backend decodes: sampling
    only with `do_sample: true` (a temperature without it is ignored by transformers), else greedy; a sampled
    task draws `repeats` completions per document, each with its own seed (harness.data.suite.Generation)."""
    kwargs = dict(cfg.get("generation_kwargs") or {})
    for key in kwargs:
        if key not in GEN_KEYS:
            raise UserError("generation option not supported", source=src, field=f"generation_kwargs.{key}")
    if kwargs.get("num_beams", 1) != 1:
        raise UserError("beam search is not supported (num_beams: 1 is)", source=src, field="generation_kwargs.num_beams")
    until = kwargs.get("until", [cfg.get("fewshot_delimiter", "\n\n")])
    # lm-eval's HF backend default: 256 new tokens (max_gen_toks; max_new_tokens is its alias)
    out: dict[str, Any] = {"max_new_tokens": int(kwargs.get("max_gen_toks") or kwargs.get("max_new_tokens") or 256),
                           "stop": [until] if isinstance(until, str) else [str(u) for u in until]}
    if kwargs.get("do_sample") is True:
        if kwargs.get("top_k") not in (None, 0):  # tunegate's backends sample with top_p only
            raise UserError("top_k sampling is not supported (top_p and temperature are)", source=src,
                            field="generation_kwargs.top_k")
        try:
            temperature, top_p = float(kwargs.get("temperature", 1.0)), float(kwargs.get("top_p", 1.0))
        except (TypeError, ValueError):
            raise UserError("temperature and top_p must be numbers", source=src, field="generation_kwargs") from None
        if temperature <= 0 or not 0 < top_p <= 1:
            raise UserError("sampling needs temperature > 0 and 0 < top_p <= 1", source=src,
                            field="generation_kwargs.temperature")
        out.update(temperature=temperature, top_p=top_p, samples=int(cfg.get("repeats", 1) or 1))
    return out


# ---- files, folders and groups --------------------------------------------------------------------------------

def task_files(folder: Path) -> Iterator[Path]:
    """The YAML files under a folder, as lm-eval indexes them (sorted, bounded)."""
    for i, file in enumerate(sorted(p for p in folder.rglob("*.yaml") if "__pycache__" not in p.parts)):
        if i >= MAX_INDEX_FILES:
            return
        yield file


@dataclass
class Index:
    """The tasks, tags and groups defined by the task files of a folder tree."""

    tasks: dict[str, Path]
    tags: dict[str, list[str]]
    groups: dict[str, Path]


def build_index(folder: Path) -> Index:
    index = Index({}, {}, {})
    for file in task_files(folder):
        try:
            cfg = read_config(file)
        except UserError:
            continue  # a broken neighbour matters only if the group names it (then: not found)
        if is_group(cfg):
            index.groups.setdefault(str(cfg["group"]), file)
        elif isinstance(cfg.get("task"), str):
            index.tasks.setdefault(cfg["task"], file)
            tags = cfg.get("tag") or []
            for tag in [tags] if isinstance(tags, str) else tags:
                index.tags.setdefault(str(tag), []).append(cfg["task"])
    return index


def group_members(cfg: dict[str, Any], path: Path, index: Index, seen: tuple[str, ...] = ()) -> list[tuple[dict[str, Any], Path]]:
    """A group's task configs in order: named tasks, tags, nested groups, and inline task configs."""
    src = str(path)
    out: list[tuple[dict[str, Any], Path]] = []
    for i, member in enumerate(cfg["task"]):
        if isinstance(member, dict):
            sub = dict(member)
            name = sub.get("task")
            if "include" in sub:  # an inline entry may include a file relative to the group file
                base_file = path.parent / str(sub.pop("include"))
                if not base_file.is_file():
                    raise UserError(f"included file {excerpt(str(base_file.name))} does not exist", source=src,
                                    field=f"task[{i}].include")
                sub = {**read_config(base_file), **sub}
            elif isinstance(name, str) and name in index.tasks:  # overrides of a known task
                sub = {**read_config(index.tasks[name]), **sub}
            out.append((sub, path))
            continue
        name = str(member)
        if name in seen:
            raise UserError(f"group {name} contains itself", source=src, field=f"task[{i}]")
        if name in index.groups:
            out += group_members(read_config(index.groups[name]), index.groups[name], index, (*seen, name))
        elif name in index.tasks:
            out.append((read_config(index.tasks[name]), index.tasks[name]))
        elif name in index.tags:
            out += [(read_config(index.tasks[t]), index.tasks[t]) for t in index.tags[name]]
        else:
            raise UserError(f"no task, tag or group {excerpt(name)} in {path.parent}", source=src, field=f"task[{i}]")
    return out


def to_suite(path: Path, read_rows: RowReader) -> tuple[dict[str, Any], list[Rows], dict[str, list[str]]]:
    """A task file, group file or folder of task files as suite.yaml content, each task's rows, and the
    lm-eval names (task, tags, groups) each tunegate task answers to for `--tasks` globs."""
    if path.is_dir():
        members = []
        for file in task_files(path):
            cfg = read_config(file)
            if isinstance(cfg.get("task"), str) and not is_group(cfg):
                members.append((cfg, file))
        if not members:
            raise UserError("no lm-eval task files (*.yaml with a `task:`) in this folder", source=str(path))
        name, description = path.name, f"lm-eval task files in {path}"
    else:
        cfg = read_config(path)
        if is_group(cfg):
            _group_aggregation(cfg, str(path))
            members = group_members(cfg, path, build_index(path.parent))
            name, description = str(cfg["group"]), f"lm-eval group {cfg['group']} ({path.name})"
        else:
            members = [(cfg, path)]
            name, description = str(_required(cfg, "task", str(path))), f"lm-eval task {cfg.get('task')}"
    tasks, rows, aliases = [], [], {}
    for cfg, file in members:
        for task, task_rows in convert_task(cfg, file, read_rows):
            if task["name"] in aliases:
                raise UserError(f"task {task['name']} appears twice", source=str(path), field="task")
            tags = cfg.get("tag") or []
            aliases[task["name"]] = [str(cfg.get("task")), *([tags] if isinstance(tags, str) else map(str, tags))]
            tasks.append(task)
            rows.append(task_rows)
    return {"name": _safe_name(name), "description": description, "tasks": tasks}, rows, aliases


def _group_aggregation(cfg: dict[str, Any], src: str) -> None:
    """A group's score is the suite's pooled metric: every sample of its tasks counted once, which is lm-eval's
    mean with `weight_by_size: true`. An unweighted mean (lm-eval's default) is refused rather than reported
    under the same name with another value."""
    for i, entry in enumerate(cfg.get("aggregate_metric_list") or []):
        if not isinstance(entry, dict):
            raise UserError("each entry needs a metric name", source=src, field=f"aggregate_metric_list[{i}]")
        if entry.get("aggregation", "mean") != "mean":
            raise UserError("only mean aggregation is supported", source=src,
                            field=f"aggregate_metric_list[{i}].aggregation")
        if not entry.get("weight_by_size", False):
            raise UserError("tunegate reports a group pooled over its samples (weight_by_size: true); an "
                            "unweighted mean of task means is not supported", source=src,
                            field=f"aggregate_metric_list[{i}].weight_by_size")


def matches(patterns: list[str], names: list[str]) -> bool:
    """Whether any lm-eval name of a task matches any `--tasks` glob."""
    return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


def looks_like_task_file(path: Path) -> bool:
    """Whether a YAML file is an lm-eval task or group file (read with `!function` allowed, includes unread)."""
    try:
        raw, _ = parse_yaml(path.read_bytes().decode("utf-8"), str(path), _loader(path.parent, str(path)))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError, UserError):
        return False
    return is_lmeval_task(raw) or (isinstance(raw, dict) and "include" in raw and "tasks" not in raw)


def check_config(cfg: dict[str, Any], path: Path) -> str:
    """Every configuration-level check `convert_task` makes before it reads data; the output type."""
    src = str(path)
    _check_keys(cfg, src)
    _required(cfg, "task", src)
    output_type = cfg.get("output_type", "generate_until")
    if output_type not in KINDS:
        raise UserError(f"output_type {output_type!r} is not supported (use {', '.join(KINDS)})", source=src,
                        field="output_type")
    _metrics(cfg, output_type, src)
    if output_type == "generate_until":
        _generation(cfg, src)
        if cfg.get("filter_list"):
            check_filters(cfg["filter_list"], src)
    task_functions(cfg, src)
    if not isinstance(cfg.get("dataset_path"), str):
        raise UserError("the task names no dataset_path", source=src, field="dataset_path")
    return str(output_type)
