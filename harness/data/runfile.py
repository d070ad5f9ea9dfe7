"""The run-file schema: results.json (`tunegate.results/1`) and the rows of samples.jsonl (docs/run-format.md).

Run files come from other machines and other tunegate versions, so a run is checked before any analysis
reads it: types without coercion (a score of "yes" is an error, not a 1), finite numbers, bounded sizes,
bounded JSON (no 5,000-digit integers, no nesting past the parser's depth), and results.json and
samples.jsonl describing the same samples. Every problem is one UserError naming the file and the field.

Keys this version does not read are kept and not checked, so a newer writer may add some; every key this
version reads is typed. The checked data is the parsed JSON itself: `Results.model_validate(results)
.model_dump(exclude_unset=True)` gives back the same dict shapes (numbers as floats where the schema says
float), and the runs module hands the parsed dicts on unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from harness.core.api import UserError
from harness.core.fileio import require_file
from harness.core.untrusted import excerpt

FORMAT = "tunegate.results/1"
FORMAT_PREFIX = "tunegate.results/"
MAX_RESULTS_BYTES = 256 * 2**20
MAX_SAMPLE_BYTES = 64 * 2**20  # one line of samples.jsonl
MAX_INT_DIGITS = 20  # JSON integers longer than this are refused while parsing (no 5,000-digit numbers)
MAX_ITEMS = 1_000_000  # entries of any list or mapping the schema types
MAX_COUNT = 10**12

Name = Annotated[str, StringConstraints(min_length=1, max_length=1_000)]  # suite, task, metric, id, hash
Text = Annotated[str, StringConstraints(max_length=64 * 2**20)]  # prompts and responses
Finite = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Number = Annotated[float, Field(allow_inf_nan=False, ge=-1e300, le=1e300)]
Probability = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]  # in (0, 1]: a floor, a draw's q


class _Entry(BaseModel):
    """Strict (no coercion) and open (unknown keys kept, for newer writers)."""

    model_config = ConfigDict(strict=True, extra="allow")


class Metric(_Entry):
    """{"value", "ci95": [lo, hi], "n"}: finite unless n is 0 (an empty mean is NaN). An interval the method
    cannot give at this n is [null, null], with `ci_note` saying why."""

    value: float
    ci95: list[float | None] = Field(min_length=2, max_length=2)
    n: Count
    higher_is_better: bool | None = None
    ci_note: Text | None = None

    @model_validator(mode="after")
    def _finite(self) -> Metric:
        if (self.ci95[0] is None) != (self.ci95[1] is None):
            raise ValueError("ci95 is two numbers, or [null, null] where the interval is undefined")
        numbers = [self.value, *(x for x in self.ci95 if x is not None)]
        if any(math.isinf(x) for x in numbers) or (self.n > 0 and any(math.isnan(x) for x in numbers)):
            raise ValueError("value and ci95 must be finite numbers (NaN only where n is 0)")
        return self


Metrics = Annotated[dict[Name, Metric], Field(max_length=MAX_ITEMS)]


class TaskEntry(_Entry):
    kind: Name | None = None
    n: Count
    split_rows: Count | None = None  # rows in the evaluated split: n below it means the first n were taken
    prompt_hash: Name | None = None
    chat_template: bool | None = None
    metrics: Metrics
    perturbations: Annotated[dict[Name, Metrics], Field(max_length=MAX_ITEMS)] | None = None
    robustness: Metrics | None = None


class SuiteEntry(_Entry):
    fingerprint: Name
    tasks: Annotated[dict[Name, TaskEntry], Field(min_length=1, max_length=MAX_ITEMS)]
    metrics: Metrics = {}


class CurvePoint(_Entry):
    step: Number | None = None  # the report draws points that have one


class Provenance(_Entry):
    """adapters/<name>/provenance.json as copied into results.json: the figures compare and report read."""

    method: Name | None = None
    trainable_params: Annotated[Number, Field(ge=0)] | None = None
    total_params: Annotated[Number, Field(ge=0)] | None = None
    adapter_bytes: Annotated[Number, Field(ge=0)] | None = None
    train_seconds: Number | None = None
    tokens_per_second: Number | None = None
    curve: Annotated[list[CurvePoint], Field(max_length=MAX_ITEMS)] | None = None


class Adapter(_Entry):
    name: Name
    path: Text | None = None
    hash: Name | None = None
    method: Name | None = None
    provenance: Provenance | None = None


class ModelInfo(_Entry):
    spec: Text | None = None
    adapter: Adapter | None = None
    fingerprint: dict[Name, Any] | None = None
    fingerprint_hash: Name | None = None


class Settings(_Entry):
    limit: Count | None = None
    full: bool | None = None
    batch_size: Count | None = None
    seed: int | None = None


class Timing(_Entry):
    wall_seconds: Number | None = None
    model_load_seconds: Number | None = None
    compute_seconds: Number | None = None
    tokens_processed: Annotated[Number, Field(ge=0)] | None = None
    tokens_per_second: Number | None = None
    cache_hits: Count | None = None
    cache_misses: Count | None = None
    resumed: bool | None = None


class SequentialItem(_Entry):
    """One evaluated sample of a sequential run, in evaluation order, with the hash of its model input."""

    suite: Name
    task: Name
    sample_id: Name
    prompt_hash: Name


class SequentialDesign(_Entry):
    """The horizon design of one task's sequence, fixed before the first look (`harness.flows.until.plan_design`)."""

    horizon: Annotated[int, Field(ge=1)]
    center: Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)] | None = None
    planned_n: Annotated[int, Field(ge=0)] | None = None
    discordance: Annotated[float, Field(gt=0, le=1)] | None = None


class SequentialCost(_Entry):
    """One task's measured cost in a sequential run (`harness.decide.allocate.CostMeter`)."""

    items: Count
    cpu_seconds_per_item: Number
    wall_seconds_per_item: Number
    # the baseline's answers this run computed on demand for the task, measured apart from the candidate's
    baseline_items: Count | None = None
    baseline_cpu_seconds_per_item: Number | None = None


class Undecided(_Entry):
    """Why a rule of a sequential run stayed INCONCLUSIVE (`harness.flows.until.undecided_reason`)."""

    reason: Name  # budget, items, futile or people
    planned_n: Count | None = None
    split: Count | None = None
    evaluated: Count | None = None
    more_items: Count | None = None
    minutes: Number | None = None
    split_short: bool | None = None
    priced: Count | None = None  # the items `minutes` prices: the planner's gap, at most what the split has left
    projected: bool | None = None  # more_items from the interval's projection: the planner's n was reached



class ActiveBets(_Entry):
    """How an active run's betting sequence bets (`harness.inference.active.BETS`): fixed before the first draw."""

    prior_variance: Annotated[float, Field(gt=0, le=0.25, allow_inf_nan=False)]
    truncation: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]


class ActiveTask(_Entry):
    """One task of an active run (`eval --until-decided --active`): its population, signal and weight bound,
    and how it is judged: the importance weights alone, or the difference estimator, whose control variate
    compare rebuilds from each item's flip score and the baseline the fingerprint names."""

    population: Annotated[int, Field(ge=1)]
    signal: Name
    bound: Annotated[float, Field(ge=1, le=1e9, allow_inf_nan=False)]  # 1 / (N min q)
    estimator: Literal["importance", "difference"] = "importance"  # absent in runs from before the difference
    # the difference estimator: every item of the population with its flip score r >= 0, in population order
    scores: Annotated[dict[Name, Annotated[float, Field(ge=0, le=1e300, allow_inf_nan=False)]],
                      Field(max_length=MAX_ITEMS)] | None = None
    baseline: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None  # sha256 of its scores
    bets: ActiveBets | None = None  # absent in runs from before them: judged with WSR's bets, as they ran

    @model_validator(mode="after")
    def _difference_complete(self) -> ActiveTask:
        if self.estimator == "difference" and (self.scores is None or self.baseline is None
                                               or len(self.scores) != self.population):
            raise ValueError("the difference estimator needs `scores` (one per item of the population) and "
                             "`baseline` (the fingerprint of the baseline's scores)")
        return self


class SequentialActive(_Entry):
    """How an active run drew its items: the floor, per task the proposal's summary, and every draw with its q."""

    floor: Probability
    max_draws_x: Count | None = None
    tasks: Annotated[dict[Name, ActiveTask], Field(max_length=MAX_ITEMS)]
    # per task, every draw in order: [item id, q] (q in (0, 1])
    draws: Annotated[dict[Name, list[Annotated[list[Name | Probability], Field(min_length=2, max_length=2)]]],
                     Field(max_length=MAX_ITEMS)]


class Sequential(_Entry):
    """A run evaluated until decided (`eval --until-decided`): which items, in which order, judged how."""

    method: Name
    alpha: Annotated[float, Field(gt=0, lt=1)]
    seed: int
    chunk: Count
    items: Annotated[list[SequentialItem], Field(min_length=1, max_length=MAX_ITEMS)]
    available: Annotated[dict[Name, Count], Field(max_length=MAX_ITEMS)] = {}
    evaluated: Annotated[dict[Name, Count], Field(max_length=MAX_ITEMS)] = {}
    stopped: Name | None = None
    # absent in runs written before issue 23's horizon design: judged with the LIL schedule, as then
    design: Annotated[dict[Name, SequentialDesign], Field(max_length=MAX_ITEMS)] = {}
    # issue 29: how looks were allocated, the cost per item measured per task, and why each rule is undecided
    allocation: Name | None = None
    cost: Annotated[dict[Name, SequentialCost], Field(max_length=MAX_ITEMS)] = {}
    undecided: Annotated[dict[Name, Undecided], Field(max_length=MAX_ITEMS)] = {}
    active: SequentialActive | None = None  # `--active`: draws with replacement, importance-weighted


class Results(_Entry):
    """results.json."""

    format: str
    tunegate_version: Name | None = None
    run_id: Name | None = None
    created: Name | None = None
    model: ModelInfo | None = None
    settings: Settings | None = None
    suites: Annotated[dict[Name, SuiteEntry], Field(min_length=1, max_length=MAX_ITEMS)]
    timing: Timing | None = None
    isolation: Name | None = None
    sequential: Sequential | None = None


class Sample(_Entry):
    """One row of samples.jsonl."""

    suite: Name
    task: Name
    sample_id: Name
    source_id: Name | None = None
    perturbation: Name | None = None
    prompt: Text | None = None
    target: Text | Annotated[list[Text], Field(max_length=MAX_ITEMS)] | int | None = None
    response: Text | None = None
    choices: Annotated[list[Text], Field(max_length=MAX_ITEMS)] | None = None
    logliks: Annotated[list[Finite], Field(max_length=MAX_ITEMS)] | None = None
    scores: Annotated[dict[Name, Finite | None], Field(max_length=MAX_ITEMS)] = {}
    extra: dict[Name, Any] = {}


class SampleRow(TypedDict, total=False):
    """One row of samples.jsonl once `Sample` has checked it: what every reader of a run's samples holds."""

    suite: str
    task: str
    sample_id: str
    source_id: str  # the sample id itself when the row names none (runs._with_defaults)
    perturbation: str | None
    prompt: str | None
    target: str | list[str] | int | None
    response: str | None
    choices: list[str] | None
    logliks: list[float] | None
    scores: dict[str, float | None]
    extra: dict[str, Any]


# ---- parsing -------------------------------------------------------------------------------------------------

def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits, longer than any a run file holds "
                         f"(at most {MAX_INT_DIGITS})")
    return int(text)


def parse_json(data: bytes, source: str, line: int | None = None) -> Any:
    """Bytes of one JSON document (a file, or one line of a file) to Python, as one-line UserErrors."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"not valid UTF-8 (byte {exc.start + 1}{' of the line' if line else ''})", source=source,
                        line=line) from None
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON ({exc.msg}, column {exc.colno})", source=source,
                        line=line or exc.lineno) from None
    except RecursionError:
        raise UserError("not valid JSON: nested too deeply", source=source, line=line) from None
    except ValueError as exc:  # an over-long integer
        raise UserError(str(exc), source=source, line=line) from None


_PLAIN = {"model_type": "expected a JSON object", "dict_type": "expected a JSON object",
          "list_type": "expected a JSON array", "string_type": "expected a string", "float_type": "expected a number",
          "int_type": "expected an integer", "bool_type": "expected true or false"}


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = excerpt(str(part), 40)
            out += f".{name}" if out else name
    return out or "(top level)"


def _validate(model: type[BaseModel], data: Any, source: str, line: int | None = None, prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (p.startswith(("function-", "constrained-"))
                                                                         or p in ("float", "int", "str", "list[str]",
                                                                                  "bool", "none"))))
        msg = _PLAIN.get(err["type"]) or str(err["msg"]).removeprefix("Value error, ")
        field = _field(loc)
        raise UserError(msg, source=source, field=f"{prefix}{field}" if prefix else field, line=line) from None


def check_results(data: Any, source: str) -> Results:
    """Validate parsed results.json content (the format version first)."""
    if not isinstance(data, dict):
        raise UserError("expected a JSON object (a tunegate results.json)", source=source)
    fmt = data.get("format")
    if not isinstance(fmt, str) or not fmt.startswith(FORMAT_PREFIX):
        raise UserError(f"expected a {FORMAT_PREFIX}N results file, got {excerpt(fmt)}", source=source, field="format")
    if fmt != FORMAT:
        raise UserError(f"{excerpt(fmt)} is a run format this tunegate does not read (it reads {FORMAT}): "
                        "use the tunegate version that wrote it", source=source, field="format")
    return _validate(Results, data, source)


def check_sample(data: Any, source: str, line: int | None = None, index: int | None = None) -> Sample:
    """Validate one parsed samples.jsonl row (`line` in a file, or `index` in a stored list)."""
    prefix = f"[{index}]." if index is not None else ""
    if not isinstance(data, dict):
        raise UserError("expected a JSON object (one sample)", source=source, line=line,
                        field=prefix.rstrip(".") or None)
    return _validate(Sample, data, source, line, prefix)


def read_results(path: Path) -> dict[str, Any]:
    """results.json, parsed and validated; the parsed dict itself is returned."""
    require_file(path)
    try:
        size = path.stat().st_size
        if size > MAX_RESULTS_BYTES:
            raise UserError(f"{size} bytes: larger than any results.json this tunegate reads "
                            f"({MAX_RESULTS_BYTES} bytes)", source=str(path))
        data = parse_json(path.read_bytes(), str(path))
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", source=str(path)) from None
    check_results(data, str(path))
    return data


def iter_sample_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, parsed and validated row) for every non-blank line of samples.jsonl."""
    require_file(path)
    try:
        with path.open("rb") as fh:
            number = 0
            while True:
                raw = fh.readline(MAX_SAMPLE_BYTES + 1)
                if not raw:
                    return
                number += 1
                if len(raw) > MAX_SAMPLE_BYTES:
                    raise UserError(f"a line over {MAX_SAMPLE_BYTES} bytes", source=str(path), line=number)
                if not raw.strip():
                    continue
                row = parse_json(raw, str(path), number)
                check_sample(row, str(path), number)
                yield number, row
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", source=str(path)) from None


def check_consistency(results: dict[str, Any], samples: Sequence[Mapping[str, Any]], results_source: str,
                      samples_source: str, lines: list[int | None] | None = None) -> None:
    """results.json and samples.jsonl must describe the same run: every sample's task is in the results, each
    task's `n` counts its unperturbed samples, and a perturbed sample's variant is among the task's."""
    counts: dict[tuple[str, str], int] = {}
    _check_sequential(results, samples, results_source, samples_source)
    for i, sample in enumerate(samples):
        key = (sample["suite"], sample["task"])
        task = results["suites"].get(key[0], {}).get("tasks", {}).get(key[1])
        line = lines[i] if lines else None
        if task is None:
            raise UserError(f"sample {excerpt(sample['sample_id'], 40)} is of task {excerpt(key[0], 40)}/"
                            f"{excerpt(key[1], 40)}, which {results_source} does not list; the two files disagree",
                            source=samples_source, field="task", line=line)
        perturbation = sample.get("perturbation")
        if perturbation is None:
            counts[key] = counts.get(key, 0) + 1
        elif perturbation not in (task.get("perturbations") or {}):
            raise UserError(f"sample {excerpt(sample['sample_id'], 40)} is a {excerpt(perturbation, 40)} variant, "
                            f"which {results_source} does not list for {excerpt(key[0], 40)}/{excerpt(key[1], 40)}",
                            source=samples_source, field="perturbation", line=line)
    for suite_name, suite in results["suites"].items():
        for task_name, task in suite["tasks"].items():
            held = counts.get((suite_name, task_name), 0)
            if held != task["n"]:
                raise UserError(f"holds {held} samples of {excerpt(suite_name, 40)}/{excerpt(task_name, 40)} but "
                                f"{results_source} says n={task['n']}; the two files disagree (a truncated or "
                                "mixed-up copy?)", source=samples_source)


def _check_sequential(results: dict[str, Any], samples: Sequence[Mapping[str, Any]], results_source: str,
                      samples_source: str) -> None:
    """A sequential run lists exactly the samples samples.jsonl holds, each once."""
    block = results.get("sequential")
    if not block:
        return
    listed = [(i["suite"], i["task"], i["sample_id"]) for i in block["items"]]
    if len(set(listed)) != len(listed):
        raise UserError("sequential.items lists a sample twice", source=results_source, field="sequential.items")
    held = {(s["suite"], s["task"], s["sample_id"]) for s in samples}
    if held != set(listed):
        extra = sorted(held - set(listed)) or sorted(set(listed) - held)
        where = "is not in sequential.items" if held - set(listed) else f"is missing from {samples_source}"
        suite, task, sid = extra[0]
        raise UserError(f"sample {excerpt(suite, 40)}/{excerpt(task, 40)}/{excerpt(sid, 40)} {where}; the two files "
                        "disagree", source=results_source, field="sequential.items")
