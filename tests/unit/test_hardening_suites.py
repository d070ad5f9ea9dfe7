"""Issue 18, suites: templates run in a sandbox, data stays in the suite's folder, errors quote little,
and --limit bounds what is rendered."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

import jinja2
import pytest

from harness.cli import main
from harness.data.suite import SUITE_FILE, Sample, Task, builtin_roots, load_suite
from tests.conftest import MC_ROWS, MC_TASK, write_suite
from tests.unit.test_bad_input import assert_one_line_error

REPO = Path(__file__).resolve().parents[2]


def one_line_error(code: int, err: str, *needles: str) -> str:
    """The one `tunegate: error` line of exit status 2 (test_bad_input's check), for more checks of its text."""
    assert_one_line_error(code, err, *needles)
    return next(line for line in err.splitlines() if line.startswith("tunegate: error"))


def validate(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = main(["suites", "validate", *args])
    return code, capsys.readouterr().err


# ---- 1. templates render in a sandbox -------------------------------------------------------------------

def test_a_template_that_reaches_for_globals_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "pwned"
    attack = "{{ lipsum.__globals__['os'].popen('id > " + str(marker) + "').read() }}"
    suite = write_suite(tmp_path / "s", MC_TASK.replace("Question: {{ q }}\\nAnswer:", attack),
                        {"data/mc.jsonl": MC_ROWS})
    one_line_error(*validate(capsys, str(suite)), "unsafe")
    code = main(["eval", "-m", str(tmp_path / "no-model"), "-s", str(suite), "--out", str(tmp_path / "out")])
    one_line_error(code, capsys.readouterr().err)
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("where,template", [
    ("prompt", "{{ q.__class__.__mro__[1].__subclasses__() }}"),
    ("prompt", "{{ cycler.__init__.__globals__.os.system('true') }}"),
    ("prompt", "{% set x = opts.append('mutated') %}{{ q }}"),  # the immutable sandbox: no mutation
    ("prompt", "{{ 'x' * 10**9 }}"),  # no memory bomb either
    ("prompt", "{{ 9 ** 999999999 }}"),
    ("target", "opts.__class__.__base__.__subclasses__()"),
    ("choices", "opts.pop()"),
])
def test_every_template_field_is_sandboxed(tmp_path: Path, capsys: pytest.CaptureFixture, where: str,
                                           template: str) -> None:
    field = {"prompt": 'prompt: "Question: {{ q }}\\nAnswer:"', "target": "target: gold", "choices": "choices: opts"}
    replacement = f"{where}: {json.dumps(template)}"
    suite = write_suite(tmp_path / "s", MC_TASK.replace(field[where], replacement), {"data/mc.jsonl": MC_ROWS})
    started = time.monotonic()
    one_line_error(*validate(capsys, str(suite)))
    assert time.monotonic() - started < 10


def _old_env() -> jinja2.Environment:
    """The environment suites rendered in before the sandbox (the reference for unchanged prompts)."""
    return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _old_samples(task: Task) -> list[Sample]:
    """Today's samples of a task rendered the old, unsandboxed way (a copy of the old code)."""
    env, spec = _old_env(), task.spec

    def choices_of(row: dict[str, Any]) -> list[str] | None:
        if spec.choices is None:
            return None
        if isinstance(spec.choices, list):
            return [env.from_string(c).render(**row) for c in spec.choices]
        value = env.compile_expression(spec.choices, undefined_to_none=False)(**row)
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("[") else value.split("|")
        return [str(v) for v in value]

    def target_of(row: dict[str, Any], choices: list[str] | None) -> Any:
        if spec.target is None:
            return None
        value = env.compile_expression(spec.target, undefined_to_none=False)(**row)
        if choices is None:
            return [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit() and value not in choices:
            value = int(value)
        return choices.index(value) if isinstance(value, str) else value

    def prompt_of(row: dict[str, Any]) -> str:
        return env.from_string(spec.prompt).render(**row)

    def fewshot(index: int) -> str:
        shot = spec.fewshot
        if shot.n == 0:
            return ""
        pool = list(enumerate(task.rows[shot.split]))
        if shot.split == spec.split:
            pool = [item for item in pool if item[0] != index]
        rng = random.Random(f"{shot.seed}/{task.name}/{index}")
        parts = []
        for _, row in rng.sample(pool, min(shot.n, len(pool))):
            choices = choices_of(row)
            example = Sample("", row, prompt_of(row), target_of(row, choices), choices)
            parts.append(example.prompt + spec.target_delimiter + task.target_text(example))
        return shot.delimiter.join(parts) + shot.delimiter

    out = []
    for i, row in enumerate(task.rows[spec.split]):
        doc_id = str(row[spec.id_field]) if spec.id_field else str(i)
        choices = choices_of(row)
        sample_id = f"{task.name}/{doc_id}"
        out.append(Sample(sample_id, row, fewshot(i) + prompt_of(row), target_of(row, choices), choices, sample_id))
    return out


BUILTIN = sorted({p.parent.name for root in builtin_roots() for p in root.glob(f"*/{SUITE_FILE}")})
LMEVAL = sorted(str(p.relative_to(REPO)) for p in (REPO / "benchmarks" / "data").glob("*.yaml"))


@pytest.mark.parametrize("ref", BUILTIN + LMEVAL)
def test_builtin_suites_render_exactly_todays_prompts_in_the_sandbox(ref: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # lm-eval task files name their data relative to the checkout
    suite = load_suite(ref)
    for task in suite.tasks:
        new, old = task.samples(full=True), _old_samples(task)
        assert [(s.sample_id, s.prompt, s.target, s.choices) for s in new] == \
               [(s.sample_id, s.prompt, s.target, s.choices) for s in old], (ref, task.name)
        for rows in task.rows.values():  # every other row renders the same too
            env = _old_env()
            assert [task.render_prompt(r) for r in rows] == [env.from_string(task.spec.prompt).render(**r) for r in rows]
        task.render_all()


# ---- 2. data paths stay inside the suite's folder ---------------------------------------------------------

def _suite_reading(tmp_path: Path, data_path: str) -> Path:
    suite = write_suite(tmp_path / "suites" / "s", MC_TASK.replace("data/mc.jsonl", data_path), {})
    return suite


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink_file", "symlink_dir"])
def test_data_paths_that_leave_the_suite_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                    kind: str) -> None:
    outside = tmp_path / "outside.jsonl"
    outside.write_text("".join(json.dumps(r) + "\n" for r in MC_ROWS))
    if kind == "dotdot":
        suite = _suite_reading(tmp_path, "../../outside.jsonl")
    elif kind == "absolute":
        suite = _suite_reading(tmp_path, str(outside))
    elif kind == "symlink_file":
        suite = _suite_reading(tmp_path, "data/link.jsonl")
        (suite / "data").mkdir()
        (suite / "data" / "link.jsonl").symlink_to(outside)
    else:
        suite = _suite_reading(tmp_path, "data/mc.jsonl")
        (suite / "data").symlink_to(tmp_path / "elsewhere")
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "mc.jsonl").write_text(outside.read_text())
    one_line_error(*validate(capsys, str(suite)), "outside the suite's folder", "--allow-outside-data",
                   "tasks[mc].data.test")
    code = main(["eval", "-m", str(tmp_path / "no-model"), "-s", str(suite)])
    one_line_error(code, capsys.readouterr().err, "outside the suite's folder")
    code, err = validate(capsys, "--allow-outside-data", str(suite))
    assert code == 0, err


def test_a_symlink_to_etc_passwd_leaks_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    suite = _suite_reading(tmp_path, "data/pw.csv")
    (suite / "data").mkdir()
    (suite / "data" / "pw.csv").symlink_to("/etc/passwd")
    line = one_line_error(*validate(capsys, str(suite)), "outside the suite's folder")
    assert "root:x:0:0" not in line
    # Allowed explicitly, the error about the file's columns quotes only a short, escaped excerpt.
    code, err = validate(capsys, "--allow-outside-data", str(suite))
    line = one_line_error(code, err, "missing from the data")
    assert len(line) < 400 and "daemon" not in err and "nologin" not in err


def test_inside_paths_and_symlinks_within_the_suite_still_work(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    suite = _suite_reading(tmp_path, "data/link.jsonl")
    (suite / "data").mkdir()
    (suite / "data" / "real.jsonl").write_text("".join(json.dumps(r) + "\n" for r in MC_ROWS))
    (suite / "data" / "link.jsonl").symlink_to("real.jsonl")
    code, err = validate(capsys, str(suite))
    assert code == 0, err


def test_an_lmeval_task_reads_only_its_own_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "outside.json").write_text(json.dumps([{"q": "x", "choices": ["a", "b"], "answer": 0}]))
    task = tmp_path / "tasks" / "task.yaml"
    task.parent.mkdir()
    task.write_text("task: t\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: ../outside.json\n"
                    "output_type: multiple_choice\ndoc_to_text: q\ndoc_to_choice: choices\ndoc_to_target: answer\n")
    one_line_error(*validate(capsys, str(task)), "outside the suite's folder")
    assert validate(capsys, "--allow-outside-data", str(task))[0] == 0


def test_error_messages_quote_a_short_escaped_excerpt(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    hostile = "\x1b[31m" + "A" * 5000 + "\u202e"
    rows = [{"q": "x", "opts": ["a", "b"], "gold": hostile}]
    suite = write_suite(tmp_path / "s", MC_TASK, {"data/mc.jsonl": rows})
    line = one_line_error(*validate(capsys, str(suite)), "is not one of the choices")
    assert len(line) < 500 and "\x1b" not in line and "\u202e" not in line and "\\x1b" in line
    header = "col\x1b]0;title\x07," + "B" * 3000
    suite = write_suite(tmp_path / "c", MC_TASK.replace("data/mc.jsonl", "data/mc.csv"),
                        {"data/mc.csv": header + "\n1,2\n"})
    line = one_line_error(*validate(capsys, str(suite)), "missing from the data")
    assert len(line) < 500 and "\x1b" not in line and "\x07" not in line


# ---- 14. --limit bounds rendering; the schema is checked on every row ----------------------------------------

def _big_suite(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    return write_suite(tmp_path / "big", MC_TASK, {"data/mc.jsonl": rows})


def test_limit_renders_only_what_is_evaluated(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = [dict(MC_ROWS[i % len(MC_ROWS)]) for i in range(200)]
    rows[150]["gold"] = 9  # a data error only rendering finds
    suite = _big_suite(tmp_path, rows)
    assert validate(capsys, "--limit", "10", str(suite))[0] == 0
    one_line_error(*validate(capsys, str(suite)), "row 151", "out of range")


def test_every_row_is_checked_for_its_columns(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = [dict(MC_ROWS[i % len(MC_ROWS)]) for i in range(200)]
    del rows[180]["q"]
    suite = _big_suite(tmp_path, rows)
    one_line_error(*validate(capsys, "--limit", "5", str(suite)), "'q' is named by the template", "row 181")


def test_optional_columns_used_under_is_defined_are_not_required(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = [{**r, "hint": "h"} if i % 2 else r for i, r in enumerate(MC_ROWS)]
    task = MC_TASK.replace("Question: {{ q }}\\nAnswer:", "{% if hint is defined %}{{ hint }} {% endif %}{{ q }}")
    assert "hint" in task
    suite = write_suite(tmp_path / "opt", task, {"data/mc.jsonl": rows})
    code, err = validate(capsys, str(suite))
    assert code == 0, err
    assert load_suite(suite).tasks[0].samples()[1].prompt.startswith("h ")


def test_loading_a_large_suite_with_limit_renders_a_handful(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [dict(MC_ROWS[i % len(MC_ROWS)]) for i in range(20_000)]
    suite = load_suite(_big_suite(tmp_path, rows))
    task = suite.tasks[0]
    rendered = []
    original = Task.render_prompt
    monkeypatch.setattr(Task, "render_prompt", lambda self, row: rendered.append(1) or original(self, row))
    assert len(task.samples(limit=7)) == 7 and len(rendered) == 7


def test_jsonl_rows_stream_with_line_numbers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = "".join(json.dumps(r) + "\n" for r in MC_ROWS)
    suite = write_suite(tmp_path / "s", MC_TASK, {"data/mc.jsonl": good.encode() + b'{"q": "caf\xe9"}\n'})
    one_line_error(*validate(capsys, str(suite)), "not valid UTF-8", f"line {len(MC_ROWS) + 1}")
    deep = "[" * 100_000 + "]" * 100_000
    suite = write_suite(tmp_path / "d", MC_TASK, {"data/mc.jsonl": good + deep + "\n"})
    one_line_error(*validate(capsys, str(suite)), "cannot parse")
    suite = write_suite(tmp_path / "n", MC_TASK, {"data/mc.jsonl": good + '{"q": ' + "9" * 5000 + "}\n"})
    one_line_error(*validate(capsys, str(suite)), "cannot parse")


# ---- 8. an lm-eval task whose data file is binary -------------------------------------------------------------

@pytest.mark.parametrize("content", [os.urandom(4096) + b"\xff\xfe", b"\x00\x01\x02 not json at all\n", b"[1, 2, 3]"])
def test_an_lmeval_task_with_a_binary_data_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                          content: bytes) -> None:
    (tmp_path / "data.json").write_bytes(content)
    task = tmp_path / "task.yaml"
    task.write_text(f"task: t\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {tmp_path / 'data.json'}\n"
                    "output_type: multiple_choice\ndoc_to_text: q\ndoc_to_choice: choices\ndoc_to_target: answer\n")
    one_line_error(*validate(capsys, str(task)), "data.json")
