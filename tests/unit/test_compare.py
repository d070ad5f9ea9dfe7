"""compare_runs and load_run on synthetic run directories."""

import json

import pytest

from harness.core.api import UserError
from harness.data.runs import load_run, load_runs
from harness.decide.compare import compare_runs
from harness.report.cost import run_costs
from harness.report.terminal import format_comparison
from tests.unit.runfixtures import binary_scores, build_run, demo_pair


def _pair(tmp_path, base_scores, cand_scores, **kw):
    base = build_run(tmp_path / "base", scores=base_scores, **kw.get("base", {}))
    cand = build_run(tmp_path / "cand", scores=cand_scores, adapter="lora-a", **kw.get("cand", {}))
    return load_run(base), load_run(cand)


def test_deltas_mcnemar_and_flips(tmp_path):
    base, cand = _pair(tmp_path, {("s", "t"): {"acc": [1, 1, 0, 0, 1, 0]}}, {("s", "t"): {"acc": [1, 0, 1, 1, 1, 1]}})
    comp = compare_runs(base, cand, n_resamples=500)
    row = comp.get("s", "t", "acc")
    assert row.delta == pytest.approx(5 / 6 - 3 / 6)
    assert (row.b, row.c) == (1, 3) and row.binary and row.test == "exact McNemar"
    assert row.p_value == pytest.approx(0.625)
    assert row.lo <= row.delta <= row.hi
    suite = comp.get("s", None, "acc")
    assert suite.p_holm == pytest.approx(suite.p_value)  # one suite: Holm changes nothing
    directions = sorted((f.sample_id, f.direction) for f in comp.flips)
    assert directions == [("t/1", "right→wrong"), ("t/2", "wrong→right"), ("t/3", "wrong→right"),
                          ("t/5", "wrong→right")]
    assert comp.flips[0].prompt.startswith("Question")


def test_suite_pools_tasks_and_holm_across_suites(tmp_path):
    b = {("a", "t1"): {"acc": binary_scores(50, 0.5, 1)}, ("a", "t2"): {"acc": binary_scores(50, 0.5, 2)},
         ("b", "t3"): {"acc": binary_scores(50, 0.5, 3)}}
    c = {k: {"acc": binary_scores(50, 0.8, i + 10)} for i, k in enumerate(b)}
    comp = compare_runs(*_pair(tmp_path, b, c), n_resamples=500)
    pooled = comp.get("a", None, "acc")
    assert pooled.n == 100
    assert pooled.base == pytest.approx((sum(b[("a", "t1")]["acc"]) + sum(b[("a", "t2")]["acc"])) / 100)
    rows = comp.suite_rows()
    ps = sorted(r.p_value for r in rows)
    assert min(r.p_holm for r in rows) == pytest.approx(min(1.0, 2 * ps[0]))
    assert [r.task for r in comp.metrics][:3] == [None, "t1", "t2"]  # suite row first, then its tasks


def test_continuous_metric_uses_sign_flip(tmp_path):
    comp = compare_runs(*_pair(tmp_path, {("s", "t"): {"rougeL": [0.1, 0.2, 0.3, 0.4]}},
                               {("s", "t"): {"rougeL": [0.3, 0.5, 0.4, 0.6]}}), n_resamples=500)
    row = comp.get("s", "t", "rougeL")
    assert not row.binary and row.test == "sign-flip permutation"
    assert row.p_value == pytest.approx(2 / 16)  # exact: 4 positive differences
    assert comp.flips == []


def test_corpus_metric_has_no_paired_test(tmp_path):
    scores = {("s", "t"): {"chrf_sample": [0.5, 0.6]}}
    comp = compare_runs(*_pair(tmp_path, scores, scores, base={"corpus": {("s", "t"): {"bleu": 20.0}}},
                               cand={"corpus": {("s", "t"): {"bleu": 23.5}}}), n_resamples=200)
    row = comp.get("s", "t", "bleu")
    assert not row.paired and row.p_value is None and row.lo is None
    assert row.delta == pytest.approx(3.5)
    assert "no paired test" in row.test
    assert "corpus-level" in format_comparison(comp)


def test_refuses_different_suite_fingerprint(tmp_path):
    scores = {("medical", "t"): {"acc": [1, 0]}}
    b, c = _pair(tmp_path, scores, scores, cand={"suite_fingerprints": {"medical": "other"}})
    with pytest.raises(UserError, match="suite 'medical' differs"):
        compare_runs(b, c)


def test_refuses_different_prompt_hash(tmp_path):
    scores = {("medical", "t"): {"acc": [1, 0]}}
    b, c = _pair(tmp_path, scores, scores, cand={"prompt_hashes": {("medical", "t"): "zzz"}})
    with pytest.raises(UserError, match="prompts of task 'medical/t' differ"):
        compare_runs(b, c)


def test_robustness_and_efficiency(tmp_path):
    base_dir, cand_dir = demo_pair(tmp_path)
    comp = compare_runs(load_run(base_dir), load_run(cand_dir), n_resamples=300)
    rob = comp.robustness_row("adversarial", "traps", "acc")
    assert set(rob.perturbations) == {"typos", "case"}
    assert rob.worst_case[1] <= min(rob.clean[1], *(v[1] for v in rob.perturbations.values()))
    # recomputed from samples, it matches what results.json says
    results = json.loads((cand_dir / "results.json").read_text())
    expected = results["suites"]["adversarial"]["tasks"]["traps"]["robustness"]["worst_case_acc"]["value"]
    assert rob.worst_case[1] == pytest.approx(expected)
    base_eff, cand_eff = run_costs(comp.baseline, comp.candidate)
    assert base_eff.trainable_params is None and cand_eff.trainable_params == 460_800
    assert cand_eff.adapter_bytes == 1_853_440 and cand_eff.tokens_per_second == 407.5
    assert len(cand_eff.curve) == 5
    text = format_comparison(comp)
    assert "medical-lora vs base" in text and "460.80k" in text


def test_load_run_errors_name_file_and_field(tmp_path):
    with pytest.raises(UserError, match="no such run directory"):
        load_run(tmp_path / "missing")
    run = build_run(tmp_path / "r", scores={("s", "t"): {"acc": [1.0]}})
    (run / "samples.jsonl").write_text('{"suite": "s", "task": "t"}\n')
    with pytest.raises(UserError, match=r"samples.jsonl:1: sample_id"):
        load_run(run)
    (run / "samples.jsonl").write_text("not json\n")
    with pytest.raises(UserError, match=r"samples.jsonl:1: not valid JSON"):
        load_run(run)
    data = json.loads((run / "results.json").read_text())
    del data["suites"]["s"]["fingerprint"]
    (run / "results.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"results.json: suites.s.fingerprint"):
        load_run(run)


def test_sweep_directory_expands_base_first(tmp_path):
    build_run(tmp_path / "sweep" / "lora", scores={("s", "t"): {"acc": [1.0]}}, adapter="lora")
    build_run(tmp_path / "sweep" / "base", scores={("s", "t"): {"acc": [0.0]}})
    runs = load_runs([tmp_path / "sweep"])
    assert [r.label for r in runs] == ["base", "lora"]
    with pytest.raises(UserError, match="sweep directory"):
        load_run(tmp_path / "sweep")
