"""Fuzzed gate files: every malformed file is one line and exit 2, never a traceback and never 1, 3 or 4."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from tests.unit.runfixtures import build_run, paired_binary

KEYS = ["name", "suite", "task", "metric", "floor", "non_inferiority", "superiority", "min_effect",
        "max_robustness_drop", "max_general_drop", "pool", "min_n", "decide_on", "bogus"]
TOP = ["version", "general_suite", "n_resamples", "seed", "allow_partial", "on_inconclusive", "reason", "rules", "x"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.text(max_size=12),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["s", "t", "acc", "micro", "macro", "tasks", "estimate", "pass", "fail", "general"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                      max_leaves=6)
rules = st.dictionaries(st.sampled_from(KEYS), values, max_size=5)
gates = st.one_of(values, st.dictionaries(st.sampled_from(TOP), values, max_size=4),
                  st.builds(lambda top, rs: {**top, "rules": rs},
                            st.dictionaries(st.sampled_from(TOP[:-2]), values, max_size=3),
                            st.lists(rules, min_size=1, max_size=3)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fuzz")
    base_s, cand_s = paired_binary(40, 20, 2, 6)
    perts = {("s", "t"): {"typos": {"acc": base_s}}}
    scores = {("s", "t"): {"acc": base_s}, ("general", "g"): {"acc": base_s}}
    cand = {("s", "t"): {"acc": cand_s}, ("general", "g"): {"acc": base_s}}
    return (build_run(root / "b", scores=scores, perturbed=perts),
            build_run(root / "c", scores=cand, perturbed=perts, adapter="c"))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=gates)
def test_fuzzed_gate_files_never_crash(tmp_path_factory, runs, doc):
    path = tmp_path_factory.mktemp("g") / "gate.yaml"
    try:
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    except (yaml.YAMLError, UnicodeEncodeError):
        return
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(["gate", str(path), "--baseline", str(runs[0]), "--candidate", str(runs[1]),
                     "--verdict", str(path.parent / "verdict.json")])
    assert code in (0, 1, 2, 3), err.getvalue()
    assert "Traceback" not in err.getvalue()
    if code == 2:
        assert len(err.getvalue().strip().splitlines()) == 1 and str(path) in err.getvalue()
        assert not (path.parent / "verdict.json").exists()
