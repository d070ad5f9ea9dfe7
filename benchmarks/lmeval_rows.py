"""Synthetic rows in the layout an lm-eval task config reads, for `lmeval_compat.py`'s second figure.

The columns a config reads are inferred from its templates (jinja2.meta.find_undeclared_variables on
doc_to_text/target/choice, description, gen_prefix and the few-shot overrides; a plain column name; a
`!function`'s module scanned for `doc["column"]`), and each column's type from how the templates use it:
`x.attr` or `x["key"]` makes a mapping, `x[0]`, a loop over x or a list filter makes a list of strings,
`y[x]` makes an integer index, a choice column is a list and a target column beside choices an index. Rows
are strings "A", "B", "C" otherwise, lists ["A", "B", "C", "D"] (so `labels.index(answerKey)` finds its key). Where the first guess does
not render, integers and then lists are tried for the columns left as strings, then integer columns as
digit strings, letters and 1-based integers, and last lists of ten; `['1', '2'].index(x)` makes x one of
those values.

The task's own Python refines that guess (`task_hints`): a column that indexes one of the module's dicts (or a
dict a functools.partial binds, or a dict literal a function builds) takes its keys; then process_docs runs on
a recording stand-in for the dataset (`_SeenData`, whose one document hands out `_Seen` strings) and each
doc_to_* function on a recording document. What they compare a column with (`==`, `in`, `startswith`: the
subject a filter keeps) becomes that column's values, a string key makes it a mapping, `.keys()` a mapping
keyed by the config's dataset_name parts, an index past the text a list, `.index(s)` a text holding s, and
every column they read, also by a computed key (`doc[f"option_{i}"]`), is added. No task name is special.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta, nodes

from harness.data.lmeval_task import FunctionRef

LIST_FILTERS = {"join", "length", "first", "last", "list", "count", "sort", "unique", "map", "select", "reject",
                "batch", "slice", "max", "min", "sum", "random"}
DOC_NAMES = {"doc", "d", "example", "x", "sample", "row", "item", "ex"}
TEMPLATE_KEYS = ("doc_to_text", "doc_to_target", "doc_to_choice", "description", "gen_prefix",
                 "doc_to_decontamination_query")
_ENV = jinja2.Environment()


def _hint_template(template: str, hints: dict[str, Any]) -> None:
    """Add the columns a Jinja template reads, with the type its use implies, to `hints`."""
    try:
        tree = _ENV.parse(template)
    except jinja2.TemplateSyntaxError:
        return
    for name in meta.find_undeclared_variables(tree):
        hints.setdefault(name, "str")
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name in hints and node.attr not in dir(str):
            hints[node.node.name] = _as_dict(hints[node.node.name], node.attr)
    for node in tree.find_all(nodes.Getitem):
        if isinstance(node.arg, nodes.Name) and node.arg.name in hints:
            hints[node.arg.name] = "int"  # an index into something
        if not isinstance(node.node, nodes.Name) or node.node.name not in hints:
            continue
        if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            hints[node.node.name] = _as_dict(hints[node.node.name], node.arg.value)
        elif hints[node.node.name] == "str":
            hints[node.node.name] = "list"
    for node in tree.find_all(nodes.BinExpr):  # `answer - 1`, `label + 1`: arithmetic on an integer column
        for side, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(side, nodes.Name) and hints.get(side.name) == "str" and isinstance(other, nodes.Const) \
                    and isinstance(other.value, int) and not isinstance(node, nodes.Mul):
                hints[side.name] = "int"
    for node in tree.find_all(nodes.Call):  # `['1', '2'].index(x)`: x is one of those values
        if isinstance(node.node, nodes.Getattr) and node.node.attr == "index" and node.args \
                and isinstance(node.args[0], nodes.Name) and node.args[0].name in hints:
            owner = node.node.node  # a literal list, folded into one constant by find_undeclared_variables
            values = [item.value for item in owner.items if isinstance(item, nodes.Const)] \
                if isinstance(owner, nodes.List) else list(owner.value) \
                if isinstance(owner, nodes.Const) and isinstance(owner.value, (list, tuple)) else []
            if values:
                hints[node.args[0].name] = ("one_of", values)
    for node in tree.find_all(nodes.For):
        if isinstance(node.iter, nodes.Name) and node.iter.name in hints and hints[node.iter.name] == "str":
            hints[node.iter.name] = "list"
    for node in tree.find_all(nodes.Filter):
        if node.name in LIST_FILTERS and isinstance(node.node, nodes.Name) and hints.get(node.node.name) == "str":
            hints[node.node.name] = "list"


def _as_dict(hint: Any, key: str) -> dict[str, Any]:
    out = dict(hint) if isinstance(hint, dict) else {}
    out.setdefault(key, "list")  # choices.text, choices.label: the common nested layout
    return out


def _hint_function(ref: FunctionRef, hints: dict[str, Any]) -> None:
    """Columns a task's Python reads as `doc["column"]` or `doc.get("column")` anywhere in its module, typed by
    the use around them: `int(...)` an integer, a loop, `len`, `[0]` or `.index` a list, else a string."""
    module = ref.qual.rpartition(".")[0]
    file = ref.folder / f"{module.replace('.', '/')}.py"
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        column = None
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in DOC_NAMES \
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            column = node.slice.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id in DOC_NAMES and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            column = node.args[0].value
        if column is None:
            continue
        up = parents.get(node)
        hint = "str"
        call = up.func.attr if isinstance(up, ast.Call) and isinstance(up.func, ast.Attribute) else \
            up.func.id if isinstance(up, ast.Call) and isinstance(up.func, ast.Name) else None
        if call in ("literal_eval", "loads", "eval"):  # a list written as text: `ast.literal_eval(doc["choices"])`
            hint = "list_text"
        elif isinstance(up, ast.Call) and isinstance(up.func, ast.Name) and up.func.id in ("int", "float") \
                or isinstance(up, ast.Subscript) and up.slice is node:
            hint = "int"
        elif isinstance(up, (ast.For, ast.comprehension)) and up.iter is node \
                or isinstance(up, ast.Call) and isinstance(up.func, ast.Name) and up.func.id in ("len", "list",
                                                                                                 "enumerate", "zip") \
                or isinstance(up, ast.Subscript) and up.value is node and isinstance(up.slice, ast.Constant) \
                and isinstance(up.slice.value, int) \
                or isinstance(up, ast.Attribute) and up.attr in ("append", "extend", "keys", "items"):
            hint = "list"
        if hints.get(column, "str") == "str":
            hints[column] = hint


def infer_columns(cfg: dict[str, Any]) -> dict[str, Any]:
    """Column name -> "str" | "int" | "list" | {key: hint} for the columns a task config reads."""
    hints: dict[str, Any] = {}
    specs = [(k, cfg.get(k)) for k in TEMPLATE_KEYS]
    specs += [(k, v) for k, v in (cfg.get("fewshot_config") or {}).items() if k in TEMPLATE_KEYS]
    for key, spec in specs:
        if isinstance(spec, FunctionRef):
            _hint_function(spec, hints)
        elif isinstance(spec, str):
            if "{{" in spec or "{%" in spec:
                _hint_template(spec, hints)
            elif spec and spec.replace("_", "").replace(" ", "").isalnum() and key in ("doc_to_text", "doc_to_target", "doc_to_choice"):
                hints[spec] = "list" if key == "doc_to_choice" else (
                    "int" if key == "doc_to_target" and cfg.get("doc_to_choice") is not None else hints.get(spec, "str"))
    if isinstance(cfg.get("process_docs"), FunctionRef):
        _hint_function(cfg["process_docs"], hints)
    # a choice template that is one column (`{{choices}}`) reads a list
    choice = cfg.get("doc_to_choice")
    if isinstance(choice, str) and choice.strip().startswith("{{") and choice.strip().endswith("}}"):
        inner = choice.strip()[2:-2].strip()
        if inner.replace("_", "").isalnum() and hints.get(inner) == "str":
            hints[inner] = "list"
    return hints


def _value(hint: Any, i: int, width: int = 4) -> Any:
    if isinstance(hint, dict):
        return {k: _value(v, i, width) for k, v in hint.items()}
    if isinstance(hint, tuple):  # ("one_of", values)
        return hint[1][i % len(hint[1])]
    if hint == "int":
        return i % 2
    if hint == "list":
        return list("ABCDEFGHIJ"[:width])
    if hint == "list_text":
        return json.dumps(list("ABCDEFGHIJ"[:width]))  # JSON that is also a Python literal
    return "ABC"[i % 3]


def rows(hints: dict[str, Any], n: int, fallback: str | None = None) -> list[dict[str, Any]]:
    """n rows; `fallback` "int" or "list" replaces every plain string column's type, "digits" writes integer
    columns as the strings "1", "2" (winogrande's answer, a key of a mapping), "letters" as "A", "B", "one_based"
    as 1, 2 (`answer - 1`), "wide" makes every list ten items (`choices[4]`, MMLU-Pro's ten options)."""
    if fallback == "wide":
        return [{k: _value(v, i, 10) for k, v in hints.items()} for i in range(n)]
    if fallback in ("digits", "letters", "one_based"):
        as_int = {"digits": lambda i: str(i % 2 + 1), "letters": lambda i: "AB"[i % 2], "one_based": lambda i: i % 2 + 1}
        return [{k: as_int[fallback](i) if v == "int" else _value(v, i) for k, v in hints.items()} for i in range(n)]
    use = {k: (fallback if fallback and v == "str" else v) for k, v in hints.items()}
    return [{k: _value(v, i) for k, v in use.items()} for i in range(n)]


def splits_of(cfg: dict[str, Any]) -> set[str]:
    """Every split a config may read: evaluation, training, validation and few-shot."""
    fs = cfg.get("fewshot_config") or {}
    names = {cfg.get("test_split"), cfg.get("validation_split"), cfg.get("training_split"), cfg.get("fewshot_split"),
             fs.get("split") if isinstance(fs, dict) else None}
    return {str(s) for s in names if s}


def with_local_data(cfg: dict[str, Any], folder: Path, data: list[dict[str, Any]]) -> dict[str, Any]:
    """The config pointed at `data` written as every split's local JSON file in `folder`."""
    files = {}
    for split in sorted(splits_of(cfg)) or ["test"]:
        path = folder / f"{split}.json"
        path.write_text(json.dumps(data))
        files[split] = path.name
    out = {k: v for k, v in cfg.items() if k not in ("dataset_name", "dataset_kwargs")}
    out.update(dataset_path="json", dataset_kwargs={"data_files": files})
    return out


class TimeUp(BaseException):
    """A task's own code ran past its time limit (a BaseException, so the code's own `except Exception` cannot
    swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise `TimeUp` in the block after `seconds` (SIGALRM: the main thread of a Unix process)."""
    def up(_signum: int, _frame: Any) -> None:
        raise TimeUp(f"ran past {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


PROBE_SECONDS = 2.0  # a probe that loops (a shuffle retried until a one-item list changes) is cut off

KEYS = "\x00keys"  # the log entry of the string keys a column is subscripted with
INDEXED = "\x00indexed"  # the log entry of the integers a column is subscripted with
HOLDS = "\x00holds"  # the log entry of the substrings `.index` looks for in a column


class _Seen(str):
    """A generated string that records what a task's Python compares it with: `==`, `in`, `startswith`,
    `endswith`, a substring test and `.index` give the values a filter keeps or the text must hold; `.lower()`, `.strip()` and the like keep
    recording on their result."""

    column: str
    log: dict[str, list[Any]]

    def __new__(cls, text: str, column: str, log: dict[str, list[Any]]) -> _Seen:
        out = super().__new__(cls, text)
        out.column, out.log = column, log
        return out

    def _saw(self, value: Any) -> None:
        # an empty string is an emptiness test (`x not in [None, ""]`), never the value a filter keeps
        if isinstance(value, (str, int)) and not isinstance(value, (bool, _Seen)) and value != "" \
                and value not in self.log.setdefault(self.column, []):
            self.log[self.column].append(value)

    def __eq__(self, other: object) -> bool:
        self._saw(other)
        return str.__eq__(self, other)  # type: ignore[no-any-return]

    def __ne__(self, other: object) -> bool:
        return str.__ne__(self, other)  # type: ignore[no-any-return]

    __hash__ = str.__hash__

    def startswith(self, prefix: Any, *args: Any) -> bool:
        for p in prefix if isinstance(prefix, tuple) else (prefix,):
            self._saw(p + "A" if isinstance(p, str) and p else p)  # a text that starts so, not only the prefix
        return str.startswith(self, prefix, *args)

    def endswith(self, suffix: Any, *args: Any) -> bool:
        for s in suffix if isinstance(suffix, tuple) else (suffix,):
            self._saw("A" + s if isinstance(s, str) and s else s)
        return str.endswith(self, suffix, *args)

    def index(self, part: Any, *args: Any) -> int:  # `sentence.index("_")`: the text must hold it
        if isinstance(part, str) and not isinstance(part, _Seen):
            self.log.setdefault(self.column + HOLDS, []).append(part)
        return str.index(self, part, *args) if str.__contains__(self, part) else 0

    def __contains__(self, part: object) -> bool:
        self._saw(part)
        return str.__contains__(self, part)  # type: ignore[operator]

    def __getitem__(self, key: Any) -> Any:
        """A string key makes the column a mapping (`doc["options"]["A"]`): the key is recorded under
        `column + KEYS`, and the value read records on as `column.key`."""
        if isinstance(key, int) and not isinstance(key, bool) and not -len(self) <= key < len(self):
            self.log.setdefault(self.column + INDEXED, []).append(key)  # `opt[3]` past the text: a list
        if not isinstance(key, str):
            return str.__getitem__(self, key) if isinstance(key, slice) or -len(self) <= key < len(self) \
                else _Seen("A", f"{self.column}.{key}", self.log)
        keys = self.log.setdefault(self.column + KEYS, [])
        if str(key) not in keys:
            keys.append(str(key))
        return _Seen("A", f"{self.column}.{key}", self.log)

    def keys(self) -> list[str]:
        """`.keys()`, `.items()`, `.values()`: a mapping whose keys the code does not name (`task_hints` takes
        them from the config's dataset_name)."""
        return list(self.log.setdefault(self.column + KEYS, []))

    def items(self) -> list[tuple[str, Any]]:
        return [(k, self[k]) for k in self.keys()]

    def values(self) -> list[Any]:
        return [self[k] for k in self.keys()]

    def _same(name: str) -> Any:  # noqa: N805 - a factory run in the class body
        def method(self: _Seen, *args: Any, **kwargs: Any) -> Any:
            out = getattr(str, name)(self, *args, **kwargs)
            return _Seen(out, self.column, self.log) if isinstance(out, str) else out
        return method

    lower, upper, strip, lstrip = _same("lower"), _same("upper"), _same("strip"), _same("lstrip")
    rstrip, casefold, title, replace = _same("rstrip"), _same("casefold"), _same("title"), _same("replace")


class _SeenRow(dict[str, Any]):
    """A document whose every column read is a `_Seen` string, also the columns no template names."""

    def __init__(self, log: dict[str, list[Any]], read: list[str], known: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.log, self.read, self.known = log, read, known or {}

    def __missing__(self, column: str) -> Any:
        if column not in self.read:
            self.read.append(column)
        hint = self.known.get(column)  # a value already known to be needed (a key of the module's dict)
        text = hint[1][0] if isinstance(hint, tuple) and isinstance(hint[1][0], str) else "A"
        self[column] = _Seen(text, column, self.log)
        return self[column]

    def get(self, column: str, default: Any = None) -> Any:
        return self[column]


class _SeenData:
    """Stands in for the `datasets.Dataset` process_docs receives: `filter` and `map` call their function on
    one recording document; whatever else is called returns this object again."""

    def __init__(self, row: _SeenRow) -> None:
        self.row = row

    def _call(self, fn: Any, kwargs: dict[str, Any]) -> None:
        if kwargs.get("batched") or not callable(fn):
            return
        with contextlib.suppress(Exception):  # the task's own code on a fake document: what it read is kept
            fn(self.row, 0) if kwargs.get("with_indices") else fn(self.row)

    def filter(self, fn: Any = None, *args: Any, **kwargs: Any) -> _SeenData:
        self._call(fn, kwargs)
        return self

    def map(self, fn: Any = None, *args: Any, **kwargs: Any) -> _SeenData:
        self._call(fn, kwargs)
        return self

    def __iter__(self) -> Iterator[_SeenRow]:
        return iter([self.row])

    def __len__(self) -> int:
        return 1

    def __getitem__(self, key: Any) -> Any:
        return self.row if isinstance(key, int) else self.row[key]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self


def probe_process_docs(fn: Any, known: dict[str, Any] | None = None) -> tuple[dict[str, list[Any]], list[str]]:
    """What a task's process_docs compares each column with (the values its filters keep) and every column it
    reads, found by running it on a recording stand-in for the dataset (`_SeenData`)."""
    log: dict[str, list[Any]] = {}
    read: list[str] = []
    with contextlib.suppress(Exception, TimeUp), contextlib.redirect_stdout(io.StringIO()), \
            time_limit(PROBE_SECONDS):
        fn(_SeenData(_SeenRow(log, read, known)))
    return log, read


def probe_doc_function(fn: Any, known: dict[str, Any] | None = None) -> tuple[dict[str, list[Any]], list[str]]:
    """The columns a doc_to_* function reads (also those named by a computed key, `doc[f"option_{i}"]`) and what
    it compares them with, found by calling it on one recording document."""
    log: dict[str, list[Any]] = {}
    read: list[str] = []
    with contextlib.suppress(Exception, TimeUp), contextlib.redirect_stdout(io.StringIO()), \
            time_limit(PROBE_SECONDS):
        fn(_SeenRow(log, read, known))
    return log, read


def with_probed(hints: dict[str, Any], fn: Any, doc_function: bool = False, names: list[str] | None = None
                ) -> dict[str, Any]:
    """`hints` with the columns the task's process_docs (or, `doc_function`, a doc_to_* function) reads added,
    and each column process_docs compares given the values it is compared with (every row one of them, so a
    filter on a subject keeps rows). A mapping whose keys the code never names takes `names`."""
    log, read = probe_doc_function(fn, hints) if doc_function else probe_process_docs(fn, hints)
    if doc_function:
        log = {k: v for k, v in log.items() if k.endswith((KEYS, INDEXED, HOLDS))}  # its comparisons pick an answer
    out = dict(hints)
    for column in read:
        out.setdefault(column, "str")
    for column, keys in log.items():  # a mapping: its keys, also those a membership test asked for first
        name = column.removesuffix(KEYS)
        if column.endswith(KEYS) and name in out and out[name] in ("str", "list"):
            out[name] = {k: "str" for k in [*keys, *(v for v in log.get(name, []) if isinstance(v, str))]
                         or names or ["A", "B"]}
    for column in log:  # a column indexed with integers: a list (of ten, `rows`'s "wide" guess, if it must be)
        if column.endswith(INDEXED) and out.get(column.removesuffix(INDEXED)) == "str":
            out[column.removesuffix(INDEXED)] = "list"
    for column, parts in log.items():  # a text `.index` searches: each row's text holds what it looks for
        name = column.removesuffix(HOLDS)
        if column.endswith(HOLDS) and out.get(name) == "str":
            out[name] = ("one_of", [f"{c} {' '.join(dict.fromkeys(parts))} {c}" for c in "ABC"])
    for column, values in log.items():
        if values and not column.endswith((KEYS, INDEXED, HOLDS)) and out.get(column, "str") in ("str", "int"):
            out[column] = ("one_of", values)
    return out


def with_lookup_keys(hints: dict[str, Any], fn: Any) -> dict[str, Any]:
    """`hints` with a column the task's module uses as a key of one of its own dicts (`level_ar[doc["Level"]]`,
    or one a partial binds) taking that dict's keys as values: a generated string would be a KeyError."""
    # the module's names, and the dicts a functools.partial binds (`partial(doc_to_text, connector={...})`)
    namespace = {**getattr(getattr(fn, "func", fn), "__globals__", {}), **(getattr(fn, "keywords", None) or {})}
    try:
        tree = ast.parse(Path(namespace["__file__"]).read_text(encoding="utf-8"))
    except (KeyError, TypeError, OSError, SyntaxError, UnicodeDecodeError):
        return hints
    for node in ast.walk(tree):  # a dict literal a function builds for itself (`answer_to_num = {"1": 0, ...}`)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and node.value.keys \
                and all(isinstance(k, ast.Constant) for k in node.value.keys):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id not in namespace:
                    namespace[target.id] = {k.value: None for k in node.value.keys if isinstance(k, ast.Constant)}
    out = dict(hints)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
                and isinstance(namespace.get(node.value.id), dict) and isinstance(node.slice, ast.Subscript)
                and isinstance(node.slice.value, ast.Name) and node.slice.value.id in DOC_NAMES
                and isinstance(node.slice.slice, ast.Constant) and isinstance(node.slice.slice.value, str)):
            continue
        keys = [k for k in namespace[node.value.id] if isinstance(k, (str, int)) and not isinstance(k, bool)]
        if keys and out.get(node.slice.slice.value, "str") in ("str", "int"):
            out[node.slice.slice.value] = ("one_of", keys)
    return out


def task_hints(cfg: dict[str, Any], funcs: dict[str, Any]) -> dict[str, Any]:
    """The columns and types a config reads (`infer_columns`), refined by its `!function`s: the keys of the
    module's own dicts a column indexes, then what process_docs and the doc_to_* functions read and compare
    when run on a recording document."""
    hints = infer_columns(cfg)
    # a mapping keyed by what the config is about (`translation` keyed by the language codes of "fr-fon")
    names = [p for p in re.split(r"[^A-Za-z0-9]+", str(cfg.get("dataset_name") or "")) if p]
    for key in ("process_docs", "fewshot_config.process_docs", "doc_to_text", "doc_to_target", "doc_to_choice"):
        if key in funcs:  # first, so the probes below read these columns with a value the module's dicts hold
            hints = with_lookup_keys(hints, funcs[key])
    for key in ("process_docs", "fewshot_config.process_docs"):
        if key in funcs:  # the values its filters keep, and the columns it reads that no template names
            hints = with_probed(hints, funcs[key], names=names)
    for key in ("doc_to_text", "doc_to_target", "doc_to_choice"):
        if key in funcs:  # columns a computed key reads (`doc[f"option_{i}"]`), which the module's text hides
            hints = with_probed(hints, funcs[key], doc_function=True, names=names)
    return hints
