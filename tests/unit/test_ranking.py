"""Method-vs-method verdicts (harness.decide.ranking): pairwise rankings with simultaneous intervals, ties where the
data cannot separate two runs, and the gate's best-of-k selection judged at alpha/k."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.cli import main
from harness.data.runs import Run, load_run
from harness.decide.compare import compare_runs
from harness.decide.gate import evaluate_gate, load_gate
from harness.decide.ranking import rank, rank_runs, rule_keys, select_best
from harness.inference.stats import ALPHA
from tests.unit.runfixtures import build_run

# Correctness of three runs on the same items, as (A, B, C) patterns with their counts.
KNOWN_ORDER = {(1, 1, 1): 60, (1, 0, 0): 70, (1, 1, 0): 10, (1, 0, 1): 5, (0, 1, 1): 8, (0, 1, 0): 6, (0, 0, 1): 7,
               (0, 0, 0): 134}  # A 145, B 84, C 80 of 300: A > B, A > C, B ≈ C
PARTIAL = {(1, 1, 0): 15, (1, 0, 0): 15, (0, 1, 1): 2, (0, 0, 1): 3, (1, 0, 1): 10, (0, 1, 0): 10, (1, 1, 1): 60,
           (0, 0, 0): 85}  # A > C (30 vs 5 discordant); A − B 25 vs 12 and B − C 25 vs 13: not separated at 98.3%


def columns(patterns: dict[tuple[int, ...], int]) -> list[list[float]]:
    rows = [p for p, count in patterns.items() for _ in range(count)]
    return [[float(r[j]) for r in rows] for j in range(len(rows[0]))]


def three_runs(tmp: Path, patterns: dict[tuple[int, ...], int], **kw: Any) -> list[Run]:
    cols = columns(patterns)
    return [load_run(build_run(tmp / name, adapter=name, scores={("medical", "medqa"): {"acc": col}}, **kw))
            for name, col in zip("abc", cols)]


def test_three_candidates_known_order_and_a_tie(tmp_path: Path) -> None:
    a, b, c = three_runs(tmp_path, KNOWN_ORDER)
    r = rank([c, a, b], "medical", "medqa", "acc")  # the declared order does not decide the ranking
    assert r.groups == [["a"], ["b", "c"]]
    assert r.m == 3 and r.level == pytest.approx(1 - ALPHA / 3)
    by = {s.label: s for s in r.standings}
    assert [s.label for s in r.standings] == ["a", "b", "c"]
    assert (by["a"].rank_lo, by["a"].rank_hi) == (1, 1)
    assert (by["b"].rank_lo, by["b"].rank_hi) == (2, 3) and (by["c"].rank_lo, by["c"].rank_hi) == (2, 3)
    ab, bc = r.pair("a", "b"), r.pair("b", "c")
    assert ab is not None and bc is not None
    assert ab.relation == ">" and ab.n == 300 and ab.delta == pytest.approx((145 - 84) / 300)
    assert ab.interval.lo > 0  # type: ignore[operator]
    assert bc.relation == "≈" and bc.n == 300 and bc.interval.lo < 0 < bc.interval.hi  # type: ignore[operator]
    ba = r.pair("b", "a")  # read the other way round: negated, same n
    assert ba is not None and ba.relation == "<" and ba.delta == pytest.approx(-ab.delta)


def test_simultaneous_level_is_wider_than_one_pair(tmp_path: Path) -> None:
    """Each pair of three is read at 1 − α/3: wider than the pair's own 95% interval."""
    a, b, c = three_runs(tmp_path, KNOWN_ORDER)
    three = rank([a, b, c], "medical", "medqa", "acc").pair("a", "b")
    two = rank([a, b], "medical", "medqa", "acc").pair("a", "b")
    assert three is not None and two is not None
    assert three.interval.lo < two.interval.lo and three.interval.hi > two.interval.hi  # type: ignore[operator]


def test_partial_order_is_not_forced_into_a_chain(tmp_path: Path) -> None:
    a, b, c = three_runs(tmp_path, PARTIAL)
    r = rank([a, b, c], "medical", "medqa", "acc")
    rel = {(p.a, p.b): p.relation for p in r.pairs}
    assert rel == {("a", "b"): "≈", ("a", "c"): ">", ("b", "c"): "≈"}
    assert r.groups is None  # A ≈ B and B ≈ C but A > C: no chain of tie groups exists
    ranks = {s.label: (s.rank_lo, s.rank_hi) for s in r.standings}
    assert ranks == {"a": (1, 2), "b": (1, 3), "c": (2, 3)}


def test_lower_is_better_metric_ranks_the_lower_score_first(tmp_path: Path) -> None:
    cols = columns(KNOWN_ORDER)
    runs = [load_run(build_run(tmp_path / n, adapter=n, scores={("medical", "medqa"): {"refusal_rate_benign": col}}))
            for n, col in zip("abc", cols)]
    r = rank(runs, "medical", "medqa", "refusal_rate_benign")
    assert not r.higher_is_better and r.groups == [["c", "b"], ["a"]]  # a refuses most: worst; c least, listed first


def test_unbounded_metric_is_not_ranked(tmp_path: Path) -> None:
    runs = [load_run(build_run(tmp_path / n, adapter=n, scores={("medical", "medqa"): {"loss": [float(i * k) for i in range(20)]}}))
            for k, n in enumerate("ab", start=1)]
    r = rank(runs, "medical", "medqa", "loss")
    assert r.pairs == [] and r.note and "unbounded" in r.note


# ---------------------------------------------------------------- coverage by simulation


def memory_runs(cols: np.ndarray) -> list[Run]:
    """Runs held in memory (no files): one task, one 0/1 metric, one column of scores per run."""
    out = []
    for j in range(cols.shape[1]):
        samples: list[Any] = [{"suite": "s", "task": "t", "sample_id": str(i), "source_id": None, "perturbation": None,
                               "prompt": str(i), "scores": {"acc": float(v)}} for i, v in enumerate(cols[:, j])]
        results = {"suites": {"s": {"tasks": {"t": {"metrics": {"acc": {"higher_is_better": True}}}},
                                    "metrics": {"acc": {"higher_is_better": True}}}}}
        out.append(Run(results, samples, Path(f"r{j}"), f"r{j}"))
    return out


def simulate(p: tuple[float, ...], n: int, reps: int, seed: int) -> tuple[float, float]:
    """(share of rankings whose pairwise intervals all cover the true Δ, share stating an order the truth lacks)."""
    rng = np.random.default_rng(seed)
    covered = wrong = 0
    for _ in range(reps):
        cols = (rng.random((n, len(p))) < np.array(p)).astype(float)
        r = rank(memory_runs(cols), "s", "t", "acc")
        truth = {(f"r{i}", f"r{j}"): p[i] - p[j] for i in range(len(p)) for j in range(len(p))}
        covered += all(pr.interval.lo <= truth[(pr.a, pr.b)] <= pr.interval.hi for pr in r.pairs)  # type: ignore[operator]
        wrong += any((pr.relation == ">" and truth[(pr.a, pr.b)] <= 0) or (pr.relation == "<" and truth[(pr.a, pr.b)] >= 0)
                     for pr in r.pairs)
    return covered / reps, wrong / reps


def test_bonferroni_pairs_cover_together() -> None:
    """Three runs, 0/1 scores drawn independently: all three simultaneous intervals cover the true differences in at
    least 95% of rankings (Monte Carlo standard error about 1.5% at 200 rankings), and a null family (all equal)
    states a false order at most α of the time. Seeded, so the figures are fixed: 0.965 and 0.025 here."""
    cover, _ = simulate((0.7, 0.6, 0.6), 80, 200, 1)
    assert cover >= 0.95
    _, false_order = simulate((0.6, 0.6, 0.6), 80, 200, 2)
    assert false_order <= ALPHA


# ---------------------------------------------------------------- the gate's best of k

GATE = "rules:\n  - name: medical improves\n    suite: medical\n    task: medqa\n    superiority: true\n"


def candidates(tmp: Path, wins: dict[str, int], provenance: dict[str, dict[str, Any] | None] | None = None,
               n: int = 200) -> tuple[Run, list[Run]]:
    """A baseline right on the first half of the items, and candidates right there plus on `wins` more items."""
    base = load_run(build_run(tmp / "base", scores={("medical", "medqa"): {"acc": [1.0] * (n // 2) + [0.0] * (n // 2)}}))
    out = []
    for name, w in wins.items():
        scores = [1.0] * (n // 2 + w) + [0.0] * (n // 2 - w)
        prov = (provenance or {}).get(name)
        out.append(load_run(build_run(tmp / name, adapter=name, scores={("medical", "medqa"): {"acc": scores}},
                                      **({"provenance": prov} if prov is not None else {}))))
    return base, out


def gates(tmp: Path, base: Run, runs: list[Run], alpha: float) -> list[Any]:
    gate = tmp / "gate.yaml"
    gate.write_text(GATE)
    spec, root = load_gate(gate)
    return [evaluate_gate(spec, compare_runs(base, r), root=root, alpha=alpha) for r in runs]


def test_best_of_k_judges_each_at_alpha_over_k(tmp_path: Path) -> None:
    # 6 wins and no losses: exact McNemar p = 2^-6 = 0.0156; passes one-sided at 0.025 (alone), not at 0.025/3
    base, runs = candidates(tmp_path, {"weak": 6, "strong": 40, "good": 25})
    alone = gates(tmp_path, base, runs[:1], ALPHA)[0]
    assert alone.verdict == "PASS" and alone.level == "95%"
    judged = gates(tmp_path, base, runs, ALPHA / 3)
    assert [g.verdict for g in judged] == ["INCONCLUSIVE", "PASS", "PASS"]
    assert judged[0].level == "98.33%"
    spec, _ = load_gate(tmp_path / "gate.yaml")
    sel = select_best(judged, spec)
    assert sel.chosen == "strong" and sel.passing == ["strong", "good"] and sel.exit_code == 0
    assert sel.alpha_each == pytest.approx(ALPHA / 3)
    assert "best of 3 on the same items: each judged at α/3" in sel.adjustment
    assert "net pairwise wins strong +1, good -1" in sel.why
    block = sel.to_json("weak")
    assert block["chosen"] == "strong" and block["this_candidate_chosen"] is False and block["k"] == 3


def test_best_of_k_tie_goes_to_fewer_parameters_then_declared_order(tmp_path: Path) -> None:
    small = {"method": "ia3", "trainable_params": 1000}
    big = {"method": "lora", "trainable_params": 9000}
    base, runs = candidates(tmp_path / "p", {"big": 30, "small": 30}, {"big": big, "small": small})
    judged = gates(tmp_path, base, runs, ALPHA / 2)
    spec, _ = load_gate(tmp_path / "gate.yaml")
    sel = select_best(judged, spec)
    assert sel.chosen == "small" and "fewest trainable parameters" in sel.why
    base, runs = candidates(tmp_path / "q", {"first": 30, "second": 30}, {"first": {}, "second": {}})
    sel = select_best(gates(tmp_path, base, runs, ALPHA / 2), spec)
    assert sel.chosen == "first" and "declared first" in sel.why


def test_best_of_k_without_a_pass(tmp_path: Path) -> None:
    base, runs = candidates(tmp_path, {"weak": 6, "none": 0})
    judged = gates(tmp_path, base, runs, ALPHA / 2)
    spec, _ = load_gate(tmp_path / "gate.yaml")
    sel = select_best(judged, spec)
    assert sel.chosen is None and sel.verdict == "INCONCLUSIVE" and sel.exit_code == 3


def test_rule_keys_follow_the_rules(tmp_path: Path) -> None:
    base, runs = candidates(tmp_path, {"x": 1})
    gate = tmp_path / "g.yaml"
    gate.write_text("rules:\n  - suite: medical\n    superiority: true\n  - suite: medical\n    task: medqa\n"
                    "    floor: 0.1\n  - suite: medical\n    task: medqa\n    metric: acc\n    non_inferiority: 0.1\n")
    spec, _ = load_gate(gate)
    assert rule_keys(spec, [base, *runs]) == [("medical", None, "acc"), ("medical", "medqa", "acc")]


# ---------------------------------------------------------------- the commands


def test_cli_compare_three_runs_prints_ranking_and_costs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a, b, c = three_runs(tmp_path, KNOWN_ORDER, provenance=None)
    assert main(["compare", str(c.path), str(a.path), str(b.path)]) == 0
    out = capsys.readouterr().out
    assert "3 runs, 3 pairs; each pair at 98.33%" in out
    assert "medical (tasks pooled) · acc ↑: a > b ≈ c" in out
    assert "a > b: Δ +0.203 [" in out and "n 300" in out
    assert "b ≈ c at n 300" in out
    assert "trainable params" in out and "460.80k (0.34%)" in out  # the cost table, from provenance


def test_cli_gate_several_candidates(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base, runs = candidates(tmp_path, {"weak": 6, "strong": 40, "good": 25})
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    store = str(tmp_path / "store.db")
    args = ["gate", str(gate), "--baseline", str(base.path), "--store", store]
    # one candidate: today's behaviour (95% intervals, no selection block)
    assert main(args + ["--candidate", str(runs[0].path)]) == 0
    out = capsys.readouterr().out
    assert "95% CI" in out and "best of" not in out
    single = json.loads((runs[0].path / "verdict.json").read_text())
    assert "selection" not in single and "alpha" not in single
    code = main(args + [x for r in runs for x in ("--candidate", str(r.path))] + ["--junit", str(tmp_path / "j.xml")])
    assert code == 0
    out = capsys.readouterr().out
    assert "98.33% CI" in out and "best of 3: picked strong (weak INCONCLUSIVE, strong PASS, good PASS)" in out
    assert "each judged at α/3 = 0.01667" in out
    weak = json.loads((runs[0].path / "verdict.json").read_text())
    assert weak["verdict"] == "INCONCLUSIVE" and weak["alpha"] == pytest.approx(ALPHA / 3)
    assert weak["selection"]["chosen"] == "strong" and weak["selection"]["verdicts"]["weak"] == "INCONCLUSIVE"
    strong = json.loads((runs[1].path / "verdict.json").read_text())
    assert strong["selection"]["this_candidate_chosen"] is True
    assert "98.33% CI" in (tmp_path / "j.xml").read_text()


def test_rank_runs_default_keys_cover_suites_and_tasks(tmp_path: Path) -> None:
    cols = columns(KNOWN_ORDER)
    runs = [load_run(build_run(tmp_path / n, adapter=n, scores={("medical", "medqa"): {"acc": col},
                                                                ("medical", "pubmedqa"): {"acc": col[::-1]}}))
            for n, col in zip("abc", cols)]
    got = [(r.suite, r.task, r.metric) for r in rank_runs(runs)]
    assert got == [("medical", None, "acc"), ("medical", "medqa", "acc"), ("medical", "pubmedqa", "acc")]
    pooled = rank_runs(runs)[0]
    assert pooled.pair("a", "b").n == 600  # type: ignore[union-attr]


def test_sequential_runs_pair_on_shared_items_with_the_confidence_sequence() -> None:
    """Runs evaluated until decided stop at different n: a pair uses the items both evaluated, in evaluation order,
    and the confidence sequence (valid at a data-dependent n), never a fixed-n interval."""
    from harness.inference.sequential import CS_METHOD

    rng = np.random.default_rng(3)
    cols = (rng.random((60, 2)) < np.array([0.9, 0.3])).astype(float)
    runs = memory_runs(cols)
    order = list(range(59, -1, -1))  # a seeded order: the last ids first
    for run, stop in zip(runs, (60, 40)):
        keep = order[:stop]
        run.samples = [run.samples[i] for i in keep]
        run.results["sequential"] = {"items": [{"suite": "s", "task": "t", "sample_id": str(i)} for i in keep]}
    r = rank(runs, "s", "t", "acc")
    (pair,) = r.pairs
    assert pair.n == 40 and pair.interval.method == CS_METHOD and pair.relation == ">"
    assert pair.delta == pytest.approx(float((cols[20:, 0] - cols[20:, 1]).mean()))


def test_demo_summary_prints_the_ranking(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from types import SimpleNamespace

    from harness.flows.demo import _print_ranking

    runs = three_runs(tmp_path, KNOWN_ORDER)
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    outcomes = [SimpleNamespace(gate=SimpleNamespace(comparison=SimpleNamespace(candidate=r))) for r in runs]
    _print_ranking(gate, outcomes)
    out = capsys.readouterr().out
    assert "medical/medqa · acc ↑: a > b ≈ c" in out and "b ≈ c at n 300" in out


def test_report_sections_show_the_ranking_escaped(tmp_path: Path) -> None:
    from harness.report.write import write_reports

    a, b, c = three_runs(tmp_path, KNOWN_ORDER)
    base = load_run(build_run(tmp_path / "base", scores={("medical", "medqa"): {"acc": [0.0] * 300}}))
    c.label = "<b>c</b>"
    html, md = tmp_path / "r.html", tmp_path / "r.md"
    data = write_reports([base, a, b, c], html_path=html, md_path=md, n_resamples=200)
    assert len(data.rankings) == 1 and data.rankings[0].groups == [["a"], ["b", "<b>c</b>"]]
    text = md.read_text()
    assert "## Which method is better" in text and "**: a > b ≈ &lt;b&gt;c&lt;/b&gt;" in text
    assert "<b>c</b>" not in text
    page = html.read_text()
    assert 'id="ranking"' in page and "a &gt; b ≈ &lt;b&gt;c&lt;/b&gt;" in page and "<b>c</b>" not in page
    one = write_reports([base, a], html_path=tmp_path / "one.html", n_resamples=200)
    assert one.rankings == [] and 'id="ranking"' not in (tmp_path / "one.html").read_text()


def test_cli_compare_two_runs_is_unchanged_and_bad_input_is_one_line(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    a, b, _ = three_runs(tmp_path, KNOWN_ORDER)
    assert main(["compare", str(a.path), str(b.path)]) == 0
    out = capsys.readouterr().out
    assert "b vs a (per-item paired 95% intervals)" in out and "Which run is better" not in out
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    assert main(["compare", str(a.path), str(b.path), "--gate", str(gate)]) == 0
    out = capsys.readouterr().out
    assert "b vs a (per-item paired 95% intervals)" in out and "2 runs, 1 pair; each pair at 95%" in out
    assert "medical/medqa · acc ↑: a > b" in out
    assert main(["compare", str(a.path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "name at least two runs" in err[0]
    assert main(["gate", str(gate), "--baseline", str(b.path), "--candidate", str(a.path), "--candidate",
                 str(a.path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a candidate is named twice" in err[0]


def test_cli_gate_several_candidates_into_one_verdict_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base, runs = candidates(tmp_path, {"weak": 6, "none": 0})
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    verdict = tmp_path / "all.json"
    code = main(["gate", str(gate), "--baseline", str(base.path), "--candidate", str(runs[0].path), "--candidate",
                 str(runs[1].path), "--verdict", str(verdict), "--store", str(tmp_path / "s.db")])
    assert code == 3  # none passes, one is undecided
    assert "best of 2: no candidate passes: INCONCLUSIVE" in capsys.readouterr().out
    data = json.loads(verdict.read_text())
    assert [v["candidate"] for v in data] == ["weak", "none"]
    assert all(v["selection"]["chosen"] is None and v["alpha"] == pytest.approx(ALPHA / 2) for v in data)
    assert not (runs[0].path / "verdict.json").exists()  # --verdict names the one file written
