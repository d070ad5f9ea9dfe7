"""Suites as data: the strict schema, loading, validation and prompt rendering.

A suite is `suites/<name>/suite.yaml` plus data files. Nothing here knows about models.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import io
import json
import os
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
import yaml
from jinja2 import meta
from pydantic import AfterValidator, Field, field_validator, model_validator

from harness.core.api import GenSettings, UserError, sha256_json
from harness.core.config import FrozenStrict, line_of, load_yaml, parse_model
from harness.core.fileio import not_a_file
from harness.core.registry import KINDS, KindCheckError, check_kind_name
from harness.core.untrusted import excerpt, inside_folder, render_bounded, template_env
from harness.data import lmeval_task

TaskKind = Annotated[str, AfterValidator(check_kind_name)]  # a registered kind (harness.core.registry.KINDS)
Direction = Literal["higher", "lower"]
DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")
SUITE_FILE = "suite.yaml"
MAX_ID_CHARS = 1_000  # a sample id's limit in the run file (harness.data.runfile.Name): the writer enforces it


class FewShot(FrozenStrict):
    """Few-shot examples drawn, seeded, from another split (or the same one, never the sample itself)."""

    n: int = Field(0, ge=0)
    split: str = "train"
    seed: int = 1234
    delimiter: str = "\n\n"


class Generation(FrozenStrict):
    """Decoding settings for `generate` and `code` tasks."""

    max_new_tokens: int = Field(128, ge=1)
    stop: list[str] = []
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int = 1234
    samples: int = Field(1, ge=1)  # completions per prompt (pass@k needs several)

    def settings(self, index: int = 0) -> GenSettings:
        """The settings for completion number `index` (each sampled completion gets its own seed)."""
        return GenSettings(self.max_new_tokens, tuple(self.stop), self.temperature, self.top_p, self.seed + index)


class Extraction(FrozenStrict):
    """How to pull the answer out of generated text before exact_match."""

    regex: str | None = None
    group: int = 0
    ignore_case: bool = True
    strip: str = " \t\n.,;:!?\"'"
    first_line: bool = False
    choices: bool = False  # take the first of the task's choices that occurs in the text
    fallback: str = ""


class LmEvalSpec(FrozenStrict):
    """How a task read from an lm-evaluation-harness file scores (harness.data.lmeval_task, harness.data.lmeval_filters)."""

    filters: list[dict[str, Any]] = []  # the filter steps of its filter_list entry (generate)
    exact_match: dict[str, Any] = {}  # ignore_case, ignore_punctuation, ignore_numbers, regexes_to_ignore
    multiple_input: bool = False  # the choices are contexts and `continuation` is scored after each (winogrande)
    depends: dict[str, str] = {}  # what the rows also depend on: !function files and dataset revisions
    # metrics the task's own Python computes: lm-eval name -> {"aggregation": "mean" or a !function reference,
    # "metric": a !function reference or None} (harness.scoring.lmeval_results)
    custom: dict[str, dict[str, Any]] = {}
    process_results: str | None = None  # the task's process_results (a !function reference: file hash:name)


PerturbName = Literal["typos", "casing", "contractions", "whitespace", "distractor", "shuffle_choices", "injection"]


class PerturbationSpec(FrozenStrict):
    """One declared, seeded perturbation (behaviour in harness.data.perturb); `label` names the variant."""

    name: PerturbName
    seed: int = 1
    rate: float = Field(0.05, ge=0.0, le=1.0)  # typos, random casing: chance per letter; whitespace: per space
    mode: Literal["upper", "lower", "title", "random"] = "upper"  # casing
    sentences: int = Field(1, ge=1, le=5)  # distractor sentences to add
    text: str | None = None  # injection: the suffix (default: harness.data.perturb.INJECTION)
    fields: list[str] | None = None  # row fields to perturb (default: the text fields the prompt uses)
    label: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")

    @property
    def variant(self) -> str:
        return self.label or self.name


class Rubric(FrozenStrict):
    """Declared expectations for free-text responses: named regex pattern sets, searched case-insensitively.

    A row names the behaviour it expects in `expect_field` (or every row shows `expect`). The behaviour
    `answer` means the reference answer (or a row's `accept` pattern) appears; `comply` only checks that
    no forbidden pattern appears; any other behaviour is a key of `behaviours`.
    """

    behaviours: dict[str, list[str]] = {}
    expect: str | None = None
    expect_field: str = "expect"
    accept_field: str = "accept"  # row column: extra patterns that also count as the expected behaviour
    forbid: list[str] = []  # patterns no response may match (an obeyed injection, a leaked secret)
    forbid_field: str = "forbid"  # row column: extra forbidden patterns for that row
    # row column: the actionable content a reply to that harmful row must not contain (harness.scoring.safety)
    must_not_contain_field: str = "must_not_contain"
    abstain: str = "abstain"  # the behaviour that counts as abstaining (abstention_rate, selective_accuracy)
    refuse: str = "refuse"  # the behaviour that counts as a refusal (refusal_rate)

    @field_validator("behaviours", "forbid")
    @classmethod
    def _patterns_compile(cls, value: Any) -> Any:
        import re

        for pattern in (p for ps in value.values() for p in ps) if isinstance(value, dict) else value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regex {pattern!r}: {exc}") from None
        return value


JUDGE_METRICS = ("judge_score", "judge_unparsed", "judge_injection")  # what a task's judge block reports
LOCAL_JUDGE_PREFIXES = ("hf", "fake")  # backends a suite may suggest: local models only
JUDGE_VARIABLES = frozenset({"prompt", "response", "reference", "axes", "scale", "labels", "key"})


class JudgeSpec(FrozenStrict):
    """A model that grades each response (harness.scoring.judging): a role the user binds to a model, a rubric
    template, and a strictly parsed output (a label from `labels`, or an integer on `scale`).

    A suite names a role, never a model endpoint or a key; it may suggest a local model for the role."""

    role: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    template: str = Field(min_length=1)  # Jinja over prompt, response (fenced), reference, axes, scale, labels, key
    axes: list[str] = []  # rubric axes the template names (default: the suite's `rubric`)
    scale: tuple[int, int] | None = None  # an integer score from lo to hi, normalised to [0, 1]
    labels: dict[str, float] | None = None  # label -> score in [0, 1]
    key: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z _-]{0,30}$")  # "Key: value" line; default Score/Label
    samples: int = Field(1, ge=1, le=20)  # judge answers per response (several need temperature > 0)
    max_new_tokens: int = Field(48, ge=1, le=4096)
    temperature: float = Field(0.0, ge=0.0)
    seed: int = 1234
    prefill: str | None = None  # the judge's answer starts with this text (e.g. "Score:"), counted as its answer
    chat_template: bool = True  # wrap the rubric in the judge's chat template when it has one
    suggested_model: str | None = None  # a local model spec for the role when the user binds none
    human_axis: str | None = None  # the review app's rubric axis this score is calibrated against

    @model_validator(mode="after")
    def _one_output(self) -> JudgeSpec:
        if (self.scale is None) == (self.labels is None):
            raise ValueError("a judge needs exactly one of `scale: [lo, hi]` or `labels: {label: score}`")
        if self.scale is not None and self.scale[0] >= self.scale[1]:
            raise ValueError(f"scale {list(self.scale)} must run from a lower to a higher integer")
        if self.labels is not None and (not self.labels or any(not 0.0 <= v <= 1.0 for v in self.labels.values())):
            raise ValueError("labels map each label to a score between 0 and 1")
        prefix = re.match(r"^([a-z][a-z0-9_-]+):(?!\\)", self.suggested_model or "")
        if self.suggested_model and ("://" in self.suggested_model or "@" in self.suggested_model
                                     or (prefix and prefix.group(1) not in LOCAL_JUDGE_PREFIXES)):
            raise ValueError("suggested_model names a local model (the embedded name, a directory, hf: or fake:); "
                             "a suite never names an endpoint or a key: bind the role with --judge ROLE=SPEC")
        return self

    @property
    def output_key(self) -> str:
        return self.key or ("Score" if self.scale is not None else "Label")


class TaskSpec(FrozenStrict):
    """One task of a suite."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: TaskKind
    data: dict[str, str]
    split: str = "test"
    prompt: str
    target: str | None = None
    choices: str | list[str] | None = None
    target_delimiter: str = " "
    chat_template: bool
    system: str | None = None
    fewshot: FewShot = FewShot()
    metrics: list[str] = Field(min_length=1)
    generation: Generation | None = None
    extraction: Extraction | None = None
    id_field: str | None = None
    limit: int | None = Field(None, ge=1)  # default size; `--full` evaluates every row
    description: str | None = None
    perturbations: list[PerturbationSpec] = []  # robustness variants of every sample (harness.data.perturb)
    rubric: Rubric | None = None  # pattern rubric for rubric metrics (rubric_pass, abstention_rate, ...)
    # which way is better, per metric, where this task differs from the metric's own direction
    # (refusal_rate is better high on harmful prompts and low on benign ones); not part of the fingerprint
    direction: dict[str, Direction] = {}
    judge: JudgeSpec | None = None  # a model grades each response (harness.scoring.judging)
    lmeval: LmEvalSpec | None = None  # set only for tasks read from lm-eval task files

    @model_validator(mode="before")
    @classmethod
    def _judge_metrics(cls, data: Any) -> Any:
        """A task with a judge reports every judge metric (unparseable answers and injections are counted)."""
        if isinstance(data, dict) and data.get("judge") is not None and isinstance(data.get("metrics"), list):
            data = {**data, "metrics": data["metrics"] + [m for m in JUDGE_METRICS if m not in data["metrics"]]}
        return data

    @model_validator(mode="after")
    def _judge_metrics_need_a_judge(self) -> TaskSpec:
        if self.judge is None and set(self.metrics) & set(JUDGE_METRICS):
            raise ValueError(f"metrics {', '.join(sorted(set(self.metrics) & set(JUDGE_METRICS)))} need a `judge:` block")
        if self.judge is not None and self.kind != "generate":
            raise ValueError("a judge grades generated responses: `judge:` needs kind generate")
        return self

    @model_validator(mode="after")
    def _direction_of_own_metrics(self) -> TaskSpec:
        stray = sorted(set(self.direction) - set(self.metrics))
        if stray:
            raise ValueError(f"direction names {', '.join(stray)}, which the task's metrics do not include")
        return self

    @field_validator("perturbations")
    @classmethod
    def _unique_variants(cls, value: list[PerturbationSpec]) -> list[PerturbationSpec]:
        names = [p.variant for p in value]
        if len(set(names)) != len(names):
            raise ValueError(f"perturbation variants must have distinct names (use `label`), got {names}")
        return value

    @field_validator("data")
    @classmethod
    def _data_files(cls, value: dict[str, str]) -> dict[str, str]:
        for split, path in value.items():
            if not path.endswith(DATA_SUFFIXES):
                raise ValueError(f"split {split!r}: data file {path!r} must end in one of {', '.join(DATA_SUFFIXES)}")
        return value


class SuiteSpec(FrozenStrict):
    """The whole suite.yaml."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    version: str = "1"
    description: str = ""
    license: str | None = None
    rubric: list[str] = []  # axes human reviewers rate responses on (factuality, safety, ...)
    tasks: list[TaskSpec] = Field(min_length=1)


@dataclass
class Sample:
    """One rendered item of a task."""

    sample_id: str
    doc: dict[str, Any]
    prompt: str  # user text, before any chat template
    target: Any
    choices: list[str] | None = None
    source_id: str | None = None
    perturbation: str | None = None


@dataclass(frozen=True)
class _Templates:
    """A task's prompt, choices and target, compiled once in the sandbox, with the row columns each names."""

    prompt: jinja2.Template
    prompt_fields: frozenset[str]
    choice_texts: list[jinja2.Template] | None  # `choices:` as a list of templates
    choices: Callable[..., Any] | None  # `choices:` as an expression
    choice_fields: frozenset[str]
    target: Callable[..., Any] | None
    target_fields: frozenset[str]

    @classmethod
    def compile(cls, spec: TaskSpec, source: str) -> _Templates:
        """Compile the task's templates; a syntax error is a UserError naming the field."""
        env = template_env()

        def template(field_name: str, text: str) -> tuple[jinja2.Template, frozenset[str]]:
            try:
                return env.from_string(text), frozenset(meta.find_undeclared_variables(env.parse(text)))
            except jinja2.TemplateSyntaxError as exc:
                raise UserError(f"template syntax error: {excerpt(exc.message or '', 200)}", source=source,
                                field=f"tasks[{spec.name}].{field_name}") from None

        def expression(field_name: str, text: str | None) -> tuple[Callable[..., Any] | None, frozenset[str]]:
            if text is None:
                return None, frozenset()
            _, names = template(field_name, f"{{{{ {text} }}}}")
            return env.compile_expression(text, undefined_to_none=False), names

        prompt, prompt_fields = template("prompt", spec.prompt)
        texts: list[jinja2.Template] | None = None
        if isinstance(spec.choices, list):
            compiled = [template("choices", c) for c in spec.choices]
            texts = [t for t, _ in compiled]
            choices, choice_fields = None, frozenset().union(*(f for _, f in compiled))
        else:
            choices, choice_fields = expression("choices", spec.choices)
        target, target_fields = expression("target", spec.target)
        return cls(prompt, prompt_fields, texts, choices, choice_fields, target, target_fields)


def _defined(value: Any, what: str) -> None:
    """An expression hands back a missing column as Undefined instead of raising: name the column."""
    if isinstance(value, jinja2.Undefined):
        name = getattr(value, "_undefined_name", None) or "a column"
        raise jinja2.UndefinedError(f"{what}: {name!r} is undefined")


@dataclass
class Task:
    """A loaded task: its spec, rows and renderers."""

    spec: TaskSpec
    suite: Suite
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @cached_property
    def _templates(self) -> _Templates:
        """The task's templates, compiled once in the sandbox (harness.core.untrusted)."""
        return _Templates.compile(self.spec, self.suite.path)

    def samples(self, limit: int | None = None, full: bool = False) -> list[Sample]:
        """The evaluated split as rendered samples (first `limit` rows; the spec's limit unless `full`).

        Only these rows are rendered; a row that cannot be rendered is a UserError naming it."""
        rows = self.rows[self.spec.split]
        cap = limit or (None if full else self.spec.limit)
        out = []
        for i, row in enumerate(rows[:cap] if cap else rows):
            with self._row_errors(self.spec.split, i, row):
                out.append(self._sample(i, row))
        return out

    def _sample(self, index: int, row: dict[str, Any]) -> Sample:
        doc_id = str(row[self.spec.id_field]) if self.spec.id_field else str(index)
        choices = self.render_choices(row)
        prompt = self.fewshot_prefix(index) + self.render_prompt(row)
        sample_id = f"{self.name}/{doc_id}"
        return Sample(sample_id, row, prompt, self.render_target(row, choices), choices, sample_id)

    def render_prompt(self, row: dict[str, Any]) -> str:
        return render_bounded(self._templates.prompt, row)

    def render_choices(self, row: dict[str, Any]) -> list[str] | None:
        compiled = self._templates
        if compiled.choice_texts is not None:
            return [render_bounded(c, row) for c in compiled.choice_texts]
        if compiled.choices is None:
            return None
        value = render_bounded(compiled.choices, row, expression=True)
        _defined(value, "choices")
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("[") else value.split("|")
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"choices must evaluate to a non-empty list, got {excerpt(repr(value))}")
        return [str(v) for v in value]

    def render_target(self, row: dict[str, Any], choices: list[str] | None) -> Any:
        """The gold answer: a choice index for multiple choice, else a text or a list of texts."""
        if self._templates.target is None:
            return None
        value = render_bounded(self._templates.target, row, expression=True)
        _defined(value, "target")
        if choices is None:
            return [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit() and value not in choices:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"target must be a choice index or a choice text, got {excerpt(repr(value))}")
        if isinstance(value, str):
            if value not in choices:
                raise ValueError(f"target {excerpt(repr(value))} is not one of the choices {excerpt(repr(choices))}")
            return choices.index(value)
        if not 0 <= value < len(choices):
            raise ValueError(f"target index {value} is out of range for {len(choices)} choices")
        return value

    def target_text(self, sample: Sample) -> str:
        if sample.choices is not None and isinstance(sample.target, int):
            return sample.choices[sample.target]
        return sample.target[0] if isinstance(sample.target, list) else str(sample.target or "")

    def fewshot_prefix(self, index: int) -> str:
        shot = self.spec.fewshot
        if shot.n == 0:
            return ""
        pool = list(enumerate(self.rows[shot.split]))
        if shot.split == self.spec.split:
            pool = [item for item in pool if item[0] != index]
        rng = random.Random(f"{shot.seed}/{self.name}/{index}")
        picked = rng.sample(pool, min(shot.n, len(pool)))
        parts = []
        for i, row in picked:
            with self._row_errors(shot.split, i, row):
                choices = self.render_choices(row)
                example = Sample("", row, self.render_prompt(row), self.render_target(row, choices), choices)
            parts.append(example.prompt + self.spec.target_delimiter + self.target_text(example))
        return shot.delimiter.join(parts) + shot.delimiter

    def _needs(self, split: str) -> set[str]:
        """The row columns a row of `split` is rendered with (prompt and choices; the target and id where used)."""
        names = set(self._templates.prompt_fields) | self._templates.choice_fields
        if split == self.spec.split or self.spec.fewshot.n:
            names |= self._templates.target_fields
        if split == self.spec.split and self.spec.id_field:
            names.add(self.spec.id_field)
        return names

    def validate_rows(self) -> None:
        """The cheap check of every row of every split: each has the columns the templates name (a row that
        lacks one is rendered to tell an optional column from a missing one), and the first row of each split
        renders. Other rows render when they are evaluated (`samples`) or with `render_all`. The evaluated
        split's ids must be unique (as text: `1` and `"1"` are one id) and fit the run file's limit."""
        self._check_ids()
        for split, rows in self.rows.items():
            needs = self._needs(split)
            for i, row in enumerate(rows):
                if i == 0 or not needs <= row.keys():
                    self._render_row(split, i, row)
                self._check_row_patterns(split, i, row)

    def _check_row_patterns(self, split: str, index: int, row: dict[str, Any]) -> None:
        """Every regex a row declares for the rubric (accept, forbid, must_not_contain) compiles."""
        rubric = self.spec.rubric
        if rubric is None:
            return
        for column in (rubric.accept_field, rubric.forbid_field, rubric.must_not_contain_field):
            value = row.get(column)
            patterns = [] if value in (None, "") else [value] if isinstance(value, str) else value
            if not isinstance(patterns, list):
                raise UserError(f"column {excerpt(column)} must be a pattern or a list of patterns (split {split!r}, "
                                f"row {index + 1})", source=self.suite.path, field=f"tasks[{self.name}].rubric")
            for pattern in patterns:
                try:
                    re.compile(str(pattern))
                except re.error as exc:
                    raise UserError(f"bad regex {excerpt(str(pattern))} in column {excerpt(column)}: {exc} "
                                    f"(split {split!r}, row {index + 1})", source=self.suite.path,
                                    field=f"tasks[{self.name}].rubric") from None

    def _check_ids(self) -> None:
        """Two rows with one id would be one item to the store and the comparison, which keep the first: bad
        input naming both rows. An id longer than the run file allows would fail only at compare or report."""
        id_field = self.spec.id_field
        if not id_field:
            return
        where = f"tasks[{self.name}].id_field"
        seen: dict[str, int] = {}
        for i, row in enumerate(self.rows.get(self.spec.split, [])):
            if id_field not in row:
                continue  # rendering names the row that lacks it
            doc_id = str(row[id_field])
            if len(self.name) + 1 + len(doc_id) > MAX_ID_CHARS:
                raise UserError(f"row {i + 1} of split {self.spec.split!r} has an id of {len(doc_id)} characters; "
                                f"a sample id (task/id) holds at most {MAX_ID_CHARS}", source=self.suite.path,
                                field=where)
            if doc_id in seen:
                raise UserError(f"rows {seen[doc_id] + 1} and {i + 1} of split {self.spec.split!r} have the same id "
                                f"{excerpt(doc_id)}; each item needs its own id", source=self.suite.path, field=where)
            seen[doc_id] = i

    def render_all(self) -> None:
        """Render every row of every split once (the thorough check: data errors in rows never evaluated)."""
        for split, rows in self.rows.items():
            for i, row in enumerate(rows):
                self._render_row(split, i, row)

    def _render_row(self, split: str, index: int, row: dict[str, Any]) -> None:
        with self._row_errors(split, index, row):
            self.render_prompt(row)
            choices = self.render_choices(row)
            if split == self.spec.split or self.spec.fewshot.n:
                self.render_target(row, choices)
            if split == self.spec.split and self.spec.id_field and self.spec.id_field not in row:
                raise UserError(f"id column {excerpt(self.spec.id_field)} is missing from the data (split {split!r}, "
                                f"row {index + 1})", source=self.suite.path, field=f"tasks[{self.name}].id_field")

    @contextlib.contextmanager
    def _row_errors(self, split: str, index: int, row: dict[str, Any]) -> Iterator[None]:
        """Rendering errors of one row as a UserError naming the split and row (the template runs in a
        sandbox, so anything it raises is a problem of the suite, not of tunegate)."""
        source, field_name = self.suite.path, f"tasks[{self.name}]"
        try:
            yield
        except UserError:
            raise
        except jinja2.UndefinedError as exc:
            missing = str(exc).replace("'dict object' has no attribute ", "").replace(" is undefined", "")
            raise UserError(f"{excerpt(missing)} is named by the template but missing from the data "
                            f"(split {split!r}, row {index + 1}; columns: {excerpt(', '.join(map(str, row)))})",
                            source=source, field=field_name) from None
        except Exception as exc:  # noqa: BLE001 - whatever a user template raises is the suite's problem
            said = str(exc) or exc.__class__.__name__  # MemoryError and RecursionError say nothing themselves
            raise UserError(f"{excerpt(said, 200)} (suite {excerpt(self.suite.name, 60)}, task {excerpt(self.name, 60)}, "
                            f"split {split!r}, row {index + 1})", source=source, field=field_name) from None

    def fingerprint(self) -> str:
        return sha256_json({"spec": self.spec.model_dump(mode="json", exclude=spec_exclusions(self.spec)),
                            "rows": self.rows})


@dataclass
class Suite:
    """A loaded and validated suite."""

    spec: SuiteSpec
    path: str
    tasks: list[Task] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    def fingerprint(self) -> str:
        spec = self.spec.model_dump(mode="json", exclude={"tasks": {i: spec_exclusions(t) for i, t in
                                                                      enumerate(self.spec.tasks)}})
        return sha256_json({"suite": spec, "tasks": [t.fingerprint() for t in self.tasks]})

    def task(self, name: str) -> Task:
        for task in self.tasks:
            if task.name == name:
                return task
        raise UserError(f"suite {self.name} has no task {name!r}", source=self.path)


def spec_exclusions(spec: TaskSpec) -> set[str]:
    """Fields outside a task's fingerprint: its direction, and the lm-eval block of a task that has none
    (so fingerprints of every other suite stay as they were)."""
    return {"direction"} | ({"lmeval"} if spec.lmeval is None else set())


def cap_generation(suite: Suite, max_new_tokens: int) -> Suite:
    """The suite with every generated answer (generate and code tasks) capped at `max_new_tokens`, in place: a
    smoke run's shortcut. The cap is part of each task's spec, so the suite's fingerprint and the response
    cache's keys change with it, and nothing computed under the full lengths is taken for the capped ones."""
    specs: dict[str, TaskSpec] = {}
    for task in suite.tasks:
        gen = task.spec.generation
        if gen is None and task.spec.kind in ("generate", "code"):
            gen = Generation()
        if gen is not None and gen.max_new_tokens > max_new_tokens:
            task.spec = task.spec.model_copy(update={"generation": gen.model_copy(
                update={"max_new_tokens": max_new_tokens})})
        specs[task.name] = task.spec
    suite.spec = suite.spec.model_copy(update={"tasks": [specs.get(t.name, t) for t in suite.spec.tasks]})
    return suite


def find_suite(ref: str) -> Path:
    """A suite reference (`suites/x`, `suites/x/suite.yaml`, a built-in name, an lm-eval task file or a folder
    of them) to its file or folder."""
    path = Path(ref)
    if path.is_dir() and not (path / SUITE_FILE).is_file() and any(lmeval_task.task_files(path)):
        return path  # a folder of lm-eval task files
    if path.is_dir():
        path = path / SUITE_FILE
    if path.is_file():
        return path
    for root in builtin_roots():
        candidate = root / ref / SUITE_FILE
        if candidate.is_file():
            return candidate
    known = sorted({p.parent.name for root in builtin_roots() for p in root.glob(f"*/{SUITE_FILE}")})
    raise UserError(f"suite {ref} not found (no such file or directory; searched {SUITES_PATH_VAR} and the "
                    f"built-in suites: {', '.join(known)})", field="-s/--suite")


SUITES_PATH_VAR = "TUNEGATE_SUITES_PATH"


def builtin_roots() -> list[Path]:
    """Where suites are found by name, in order: the folders of `$TUNEGATE_SUITES_PATH` (separated like
    PATH), the `suites/` of the checkout tunegate runs from, then the copy installed with the package.
    The current directory is searched only when the variable names it."""
    listed = [Path(p) for p in os.environ.get(SUITES_PATH_VAR, "").split(os.pathsep) if p]
    package = Path(__file__).resolve().parents[1]  # harness/
    roots = [*listed, package.parent / "suites", package / "builtin_suites"]
    return [r for r in dict.fromkeys(roots) if r.is_dir()]


_task_globs: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("task_globs", default=())


@contextlib.contextmanager
def selecting_tasks(patterns: list[str] | None) -> Iterator[None]:
    """Within this block, every suite loaded keeps only the tasks whose name (or lm-eval task, tag or group
    name) matches one of the globs (`--tasks`)."""
    token = _task_globs.set(tuple(patterns or ()))
    try:
        yield
    finally:
        _task_globs.reset(token)


def _locate(ref: str) -> tuple[Path, str | None]:
    """The suite's path, and the task (or glob) a `SUITE/TASK` reference selects."""
    try:
        return find_suite(ref), None
    except UserError:
        head, sep, tail = ref.rpartition("/")
        if not sep or not head or not tail:
            raise
        try:
            return find_suite(head), tail
        except UserError:
            pass
        raise


def _select(suite: Suite, picked: str | None, aliases: dict[str, list[str]]) -> Suite:
    """The suite cut down to the selected tasks (`-s SUITE/TASK`, `--tasks GLOB`); none selected is an error."""
    globs = _task_globs.get()
    if picked is None and not globs:
        return suite
    keep = [t for t in suite.tasks
            if (picked is None or lmeval_task.matches([picked], [t.name, *aliases.get(t.name, [])]))
            and (not globs or lmeval_task.matches(list(globs), [t.name, *aliases.get(t.name, [])]))]
    if not keep:
        what = f"task {picked!r}" if picked else f"task matching --tasks {', '.join(globs)}"
        raise UserError(f"suite {suite.name} has no {what} (tasks: {excerpt(', '.join(t.name for t in suite.tasks), 200)})",
                        source=suite.path, field="-s/--suite" if picked else "--tasks")
    names = {t.name for t in keep}
    suite.spec = suite.spec.model_copy(update={"tasks": [t for t in suite.spec.tasks if t.name in names]})
    suite.tasks = keep
    return suite


def load_suite(ref: str | Path) -> Suite:
    """Load, validate and return a suite; every problem is a UserError naming file, field and line.

    `ref` may end in `/TASK` (a name or glob) to keep only that task of the suite."""
    path, picked = _locate(str(ref))
    if path.is_dir() or (path.name != SUITE_FILE and lmeval_task.looks_like_task_file(path)):
        return _from_lmeval(path, picked)
    raw, node = load_yaml(path)
    if not isinstance(raw, dict):
        raise UserError("a suite file must be a mapping with name and tasks", source=str(path), line=1)
    spec = parse_model(SuiteSpec, raw, node, str(path))
    suite = Suite(spec, str(path))
    names = [t.name for t in spec.tasks]
    if len(set(names)) != len(names):
        raise UserError(f"task names must be unique, got {names}", source=str(path), field="tasks")
    for i, task_spec in enumerate(spec.tasks):
        suite.tasks.append(_load_task(suite, task_spec, i, node))
    return _select(suite, picked, {})


def load_suites(refs: list[str]) -> list[Suite]:
    """The suites of one command, each once: one named twice is loaded once, and two different suites with
    one name are refused (the run file keys results by suite name, so one would silently replace the other)."""
    out: dict[str, Suite] = {}
    for ref in refs:
        suite = load_suite(ref)
        seen = out.get(suite.name)
        if seen is None:
            out[suite.name] = suite
        elif seen.fingerprint() != suite.fingerprint():
            raise UserError(f"{seen.path} and {suite.path} are two different suites named "
                            f"{excerpt(suite.name, 60)}; each needs its own name", field="-s/--suite")
    return list(out.values())


def _from_lmeval(path: Path, picked: str | None) -> Suite:
    """lm-evaluation-harness task files as a suite (rows already read and rendered by the converter)."""
    raw_suite, rows, aliases = lmeval_task.to_suite(path, read_rows)
    spec = parse_model(SuiteSpec, raw_suite, None, str(path))
    suite = Suite(spec, str(path))
    for task_spec, task_rows in zip(spec.tasks, rows):
        task = Task(task_spec, suite, task_rows)
        check_kind(task.spec, suite.path, None, 0)
        task.validate_rows()
        suite.tasks.append(task)
    return _select(suite, picked, aliases)


def check_kind(spec: TaskSpec, source: str, node: yaml.Node | None, index: int) -> None:
    """What the task's kind demands of the spec: its required fields, and metrics that apply to it."""
    try:
        KINDS[spec.kind].check(spec)
    except KindCheckError as exc:
        line = line_of(node, ["tasks", index, exc.field] if exc.field == "metrics" else ["tasks", index])
        raise UserError(str(exc), source=source, field=f"tasks[{spec.name}].{exc.field}", line=line) from None


def _load_task(suite: Suite, spec: TaskSpec, index: int, node: yaml.Node | None) -> Task:
    where = f"tasks[{spec.name}]"
    line = line_of(node, ["tasks", index])
    check_kind(spec, suite.path, node, index)
    if spec.split not in spec.data:
        raise UserError(f"split {spec.split!r} has no data file (declared: {', '.join(spec.data)})",
                        source=suite.path, field=f"{where}.split", line=line)
    if spec.fewshot.n and spec.fewshot.split not in spec.data:
        raise UserError(f"few-shot split {spec.fewshot.split!r} has no data file", source=suite.path,
                        field=f"{where}.fewshot.split", line=line)
    if spec.judge is not None:
        check_judge_template(spec.judge.template, suite.path, f"{where}.judge.template", line)
    task = Task(spec, suite)
    base = Path(suite.path).parent
    for split, rel in spec.data.items():
        field_name = f"{where}.data.{split}"
        task.rows[split] = read_rows(inside_folder(base, Path(rel), source=suite.path, field=field_name), field_name)
    task.validate_rows()
    return task


def check_judge_template(text: str, source: str, field_name: str, line: int | None = None) -> jinja2.Template:
    """A judge's rubric template compiled in the sandbox; it must show the response and name only known variables."""
    env = template_env()
    try:
        names = meta.find_undeclared_variables(env.parse(text))
        template = env.from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise UserError(f"template syntax error: {excerpt(exc.message or '', 200)}", source=source, field=field_name,
                        line=line) from None
    unknown = sorted(names - JUDGE_VARIABLES)
    if unknown or "response" not in names:
        what = f"names unknown variables {', '.join(unknown)}" if unknown else "never shows {{ response }}"
        raise UserError(f"the judge template {what} (it may use {', '.join(sorted(JUDGE_VARIABLES))})",
                        source=source, field=field_name, line=line)
    return template


def read_rows(path: Path, field_name: str) -> list[dict[str, Any]]:
    """Rows of a jsonl, json, csv or tsv file, as dicts; clear errors for missing, empty or non-UTF-8 data.

    JSON lines are streamed: the file is never held as one text."""
    if not path.is_file():
        raise UserError(f"data file {excerpt(str(path), 200)} {not_a_file(path)}", field=field_name)
    try:
        rows = _stream_jsonl(path) if path.suffix == ".jsonl" else _parse_rows(path, _read_text(path))
    except (ValueError, RecursionError, csv.Error) as exc:
        raise UserError(f"cannot parse: {excerpt(str(exc), 200)}", source=str(path), field=field_name) from None
    if not rows:
        raise UserError("the dataset is empty", source=str(path), field=field_name)
    return rows


def _stream_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        with path.open("rb") as fh:
            # binary lines split on b"\n" only: text mode would also break rows at U+2028/U+2029 in strings
            for number, raw in enumerate(fh, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise UserError(f"not valid UTF-8 (line {number}, byte {exc.start + 1} of the line)",
                                    source=str(path)) from None
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except (ValueError, RecursionError) as exc:
                        raise ValueError(f"line {number}: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", source=str(path)) from None
    _check_objects(rows)
    return rows


def _parse_rows(path: Path, text: str) -> list[dict[str, Any]]:
    if path.suffix == ".json":
        data = json.loads(text)
        if isinstance(data, dict):  # {id: {...}} as PubMedQA ships it
            data = [{"id": key, **value} if isinstance(value, dict) else {"id": key, "value": value}
                    for key, value in data.items()]
        if not isinstance(data, list):
            raise ValueError("a .json data file must hold a list of objects or a mapping of id to object")
        _check_objects(data)
        return data
    reader = csv.DictReader(io.StringIO(text), delimiter="\t" if path.suffix == ".tsv" else ",")
    return [dict(row) for row in reader]


def _check_objects(rows: list[Any]) -> None:
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise ValueError(f"row {i} is not an object")


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"not valid UTF-8 (byte {exc.start})", source=str(path)) from None
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", source=str(path)) from None
