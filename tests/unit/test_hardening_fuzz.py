"""Issue 18, fuzzing: generated suite files, run files and gate files give a verdict or one line of error,
never a traceback (exit 4 is tunegate's crash status)."""

from __future__ import annotations

import copy
import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from tests.conftest import MC_ROWS, write_suite
from tests.unit.runfixtures import demo_pair

# Modest and the same every run by default, so the unit tier stays fast and stable; a deeper, random search
# by hand: TUNEGATE_FUZZ_EXAMPLES=2000 pytest tests/unit -k fuzz
EXAMPLES = int(os.environ.get("TUNEGATE_FUZZ_EXAMPLES", "40"))
DERANDOMIZE = "TUNEGATE_FUZZ_EXAMPLES" not in os.environ
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE,
                suppress_health_check=[HealthCheck.too_slow])

SCALARS = (st.none() | st.booleans() | st.integers(min_value=-10**6, max_value=10**6)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
TEMPLATE = st.text(alphabet="{}%|._'\"()[]+*~ abq opts gold 0129-#\n", max_size=40)


def _check(code: int, err: str, allowed: set[int]) -> None:
    assert code in allowed and "internal error" not in err and "Traceback" not in err, err
    if code == 2:
        assert len([line for line in err.splitlines() if line.startswith("tunegate: error")]) == 1, err


# ---- suite files ------------------------------------------------------------------------------------------

VALID_SUITE: dict[str, Any] = {"name": "t", "tasks": [{
    "name": "mc", "kind": "multiple_choice", "data": {"test": "data/mc.jsonl"}, "prompt": "Question: {{ q }}",
    "choices": "opts", "target": "gold", "chat_template": False, "metrics": ["acc"]}]}
TASK_KEYS = ["name", "kind", "data", "split", "prompt", "target", "choices", "target_delimiter", "chat_template",
             "system", "fewshot", "metrics", "generation", "extraction", "id_field", "limit", "perturbations",
             "rubric", "colour"]


@st.composite
def suites(draw: st.DrawFn) -> tuple[Any, list[Any]]:
    """A suite document (a mutated valid one, or anything) and the rows of its data file."""
    if draw(st.booleans()):
        doc = copy.deepcopy(VALID_SUITE)
        task = doc["tasks"][0]
        for _ in range(draw(st.integers(1, 3))):
            key = draw(st.sampled_from(TASK_KEYS))
            choice = draw(st.integers(0, 3))
            if choice == 0:
                task.pop(key, None)
            elif choice == 1 and key in ("prompt", "target", "choices", "id_field"):
                task[key] = draw(TEMPLATE)
            else:
                task[key] = draw(JSON)
    else:
        doc = draw(JSON | st.dictionaries(st.sampled_from(["name", "tasks", "version", "rubric", "task"]), JSON,
                                          max_size=4))
    rows = draw(st.just(MC_ROWS) | st.lists(JSON, max_size=4)
                | st.lists(st.fixed_dictionaries({"q": JSON, "opts": JSON, "gold": JSON}), min_size=1, max_size=3))
    return doc, rows


def test_fuzzed_suites_validate_or_fail_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    counter = itertools.count()

    @FUZZ
    @given(case=suites())
    def check(case: tuple[Any, list[Any]]) -> None:
        doc, rows = case
        root = tmp_path / f"s{next(counter)}"
        write_suite(root, "", {"data/mc.jsonl": "".join(json.dumps(r) + "\n" for r in rows)})
        (root / "suite.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        code = main(["suites", "validate", str(root)])
        _check(code, capsys.readouterr().err, {0, 2})

    check()


@pytest.mark.parametrize("text", ["name: [", "tasks: *x", "\t- a", "a: !!python/object:os.system x",
                                  "&a [*a, *a]", "name: t\ntasks:\n  - " + "[" * 500])
def test_malformed_yaml_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, text: str) -> None:
    (tmp_path / "suite.yaml").write_text(text)
    _check(main(["suites", "validate", str(tmp_path)]), capsys.readouterr().err, {2})


# ---- run files --------------------------------------------------------------------------------------------

def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:3]):
            out += _paths(value, (*prefix, i))
    return out


def _has(container: Any, key: Any) -> bool:
    return (isinstance(container, dict) and key in container) or (
        isinstance(container, list) and isinstance(key, int) and key < len(container))


def _set(node: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    """`node` with the value at `path` replaced (or deleted); unchanged where `path` does not exist in it."""
    if not path:
        return value
    parent = node
    for key in path[:-1]:
        if not _has(parent, key):
            return node
        parent = parent[key]
    if _has(parent, path[-1]):
        if delete and isinstance(parent, dict):
            parent.pop(path[-1])
        else:
            parent[path[-1]] = value
    return node


def test_fuzzed_run_files_compare_or_fail_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base, cand = demo_pair(tmp_path / "runs", n=8)
    results = json.loads((cand / "results.json").read_text())
    samples = [json.loads(line) for line in (cand / "samples.jsonl").read_text().splitlines()]
    result_paths, sample_paths = _paths(results), _paths(samples[0])

    @FUZZ
    @given(target=st.sampled_from(["results", "sample", "bytes"]), data=st.data())
    def check(target: str, data: st.DataObject) -> None:
        new_results, new_samples = copy.deepcopy(results), copy.deepcopy(samples)
        raw_tail = b""
        if target == "results":
            path = data.draw(st.sampled_from(result_paths))
            new_results = _set(new_results, path, data.draw(JSON), data.draw(st.booleans()))
        elif target == "sample":
            path = data.draw(st.sampled_from(sample_paths))
            index = data.draw(st.integers(0, len(new_samples) - 1))
            new_samples[index] = _set(new_samples[index], path, data.draw(JSON), data.draw(st.booleans()))
        else:
            raw_tail = data.draw(st.binary(min_size=1, max_size=40))
        (cand / "results.json").write_text(json.dumps(new_results))
        with (cand / "samples.jsonl").open("wb") as fh:
            fh.write("".join(json.dumps(s) + "\n" for s in new_samples).encode() + raw_tail)
        code = main(["compare", str(base), str(cand), "--resamples", "20"])
        _check(code, capsys.readouterr().err, {0, 2})

    check()


# ---- gate files (through the existing gate loader; the gate's own issue owns its semantics) --------------------

RULE_KEYS = ["name", "suite", "task", "metric", "floor", "non_inferiority", "superiority", "min_effect",
             "max_robustness_drop", "max_general_drop", "pool", "min_n", "decide_on", "colour"]
RULE_VALUES = st.one_of(JSON, st.sampled_from(["medical", "legal", "adversarial", "general", "acc", "medqa",
                                               "tasks", "micro", "macro", "interval", True]),
                        st.floats(min_value=-1, max_value=2))


@st.composite
def gates(draw: st.DrawFn) -> Any:
    rules = draw(st.lists(st.dictionaries(st.sampled_from(RULE_KEYS), RULE_VALUES, max_size=4), max_size=3))
    top = draw(st.dictionaries(st.sampled_from(["version", "general_suite", "n_resamples", "seed", "allow_partial",
                                                "on_inconclusive", "reason"]), JSON, max_size=2))
    return draw(st.just({**top, "rules": rules}) | JSON)


def test_fuzzed_gate_files_give_a_verdict_or_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base, cand = demo_pair(tmp_path / "runs", n=8)
    counter = itertools.count()

    @FUZZ
    @given(doc=gates())
    def check(doc: Any) -> None:
        gate = tmp_path / f"gate{next(counter)}.yaml"
        gate.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        code = main(["gate", str(gate), "--baseline", str(base), "--candidate", str(cand),
                     "--verdict", str(tmp_path / "verdict.json")])
        _check(code, capsys.readouterr().err, {0, 1, 2, 3})

    check()


def test_a_subnormal_margin_is_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base, cand = demo_pair(tmp_path / "runs", n=8)
    gate = tmp_path / "gate.yaml"
    gate.write_text("rules:\n  - {max_general_drop: 1.1125369292536007e-308}\n")
    code = main(["gate", str(gate), "--baseline", str(base), "--candidate", str(cand),
                 "--verdict", str(tmp_path / "verdict.json")])
    _check(code, capsys.readouterr().err, {0, 1, 2, 3})


# ---- issue 24: templates bounded in time and size, ids, store imports ------------------------------------------

BLOCKS = ["{{ q }}", "{{ q * N }}", "{{ 'ab' * N }}", "{{ '%0Nd' % 1 }}", "{{ q|center(N) }}", "{{ q.ljust(N) }}",
          "{{ q|indent(N) }}", "{{ '%0Nd'|format(1) }}", "{{ '{:>N}'.format(q) }}", "{{ q|replace('', q * N) }}",
          "{{ [q]|batch(N, 'x')|list|length }}", "{{ [q]|slice(N, 'x')|list|length }}", "{{ lipsum(N) }}",
          "{% for i in range(N) %}{% for j in range(N) %}{% endfor %}{% endfor %}", "{{ q.zfill(N) }}",
          "{% for i in range(N) %}{{ q }}{% endfor %}", "{{ 2 ** N }}", "{{ [1] + [2] * N }}",
          "{% set ns = namespace(x=q) %}{% for i in range(N % 70) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}"]


def test_fuzzed_templates_stay_within_time_and_size(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TUNEGATE_TEMPLATE_SECONDS", "0.3")
    counter = itertools.count()

    @FUZZ
    @given(parts=st.lists(st.tuples(st.sampled_from(BLOCKS), st.sampled_from([0, 3, 10**5, 10**6 + 1, 10**9, 2**40])),
                          min_size=1, max_size=3))
    def check(parts: list[tuple[str, int]]) -> None:
        template = "".join(block.replace("N", str(n)) for block, n in parts)
        task = ("  - name: mc\n    kind: multiple_choice\n    data: {test: data/mc.jsonl}\n"
                f"    prompt: {json.dumps(template)}\n    choices: opts\n    target: gold\n"
                "    chat_template: false\n    metrics: [acc]\n")
        root = write_suite(tmp_path / f"t{next(counter)}", task, {"data/mc.jsonl": MC_ROWS[:1]})
        start = time.monotonic()
        code = main(["suites", "validate", str(root)])
        _check(code, capsys.readouterr().err, {0, 2})
        assert time.monotonic() - start < 8, template

    check()


ID_VALUES = st.one_of(st.integers(-3, 3), st.sampled_from(["1", "01", "a", "A", "a ", "1.0", "True", "None"]),
                      st.booleans(), st.none(), st.floats(allow_nan=False, min_value=-2, max_value=2), st.text(max_size=3))


def test_fuzzed_ids_are_unique_or_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    counter = itertools.count()

    @FUZZ
    @given(ids=st.lists(ID_VALUES, min_size=1, max_size=6))
    def check(ids: list[Any]) -> None:
        rows = [{**MC_ROWS[i], "id": v} for i, v in enumerate(ids)]
        root = write_suite(tmp_path / f"i{next(counter)}", "  - name: mc\n    kind: multiple_choice\n"
                           "    data: {test: data/mc.jsonl}\n    prompt: \"{{ q }}\"\n    choices: opts\n"
                           "    target: gold\n    chat_template: false\n    metrics: [acc]\n    id_field: id\n",
                           {"data/mc.jsonl": rows})
        code = main(["suites", "validate", str(root)])
        err = capsys.readouterr().err
        _check(code, err, {0, 2})
        texts = [str(v) for v in ids]
        if len(set(texts)) != len(texts):
            assert code == 2 and "same id" in err, (ids, err)
        else:
            assert code == 0, (ids, err)

    check()


def test_fuzzed_store_imports_are_added_or_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base, cand = demo_pair(tmp_path / "runs", n=8)
    gate = tmp_path / "gate.yaml"
    gate.write_text("rules:\n  - name: m\n    suite: medical\n    non_inferiority: 0.5\n")
    source = str(tmp_path / "source.sqlite")
    assert main(["channel", "create", "c", "--gate", str(gate), "--release", str(base), "--store", source]) == 0
    main(["gate", str(gate), "--baseline", "c", "--candidate", str(cand), "--store", source,
          "--verdict", str(tmp_path / "v.json")])
    dump = tmp_path / "dump.jsonl"
    assert main(["store", "export", str(dump), "--store", source]) == 0
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    capsys.readouterr()
    counter = itertools.count()

    @FUZZ
    @given(line=st.integers(0, len(lines) - 1), column=st.integers(0, 12), value=JSON, drop=st.booleans())
    def check(line: int, column: int, value: Any, drop: bool) -> None:
        mutated = copy.deepcopy(lines)
        target = mutated[line]
        if line == 0:
            target[["format", "schema"][column % 2]] = value
        elif drop:
            target["row"] = target["row"][:column]
        elif column < len(target["row"]):
            target["row"][column] = value
        path = tmp_path / f"m{next(counter)}.jsonl"
        path.write_text("".join(json.dumps(m) + "\n" for m in mutated))
        code = main(["store", "import", str(path), "--store", str(tmp_path / f"target{next(counter)}.sqlite")])
        _check(code, capsys.readouterr().err, {0, 2})

    check()
