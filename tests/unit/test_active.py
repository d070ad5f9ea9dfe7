"""Active paired evaluation: the importance-weighted estimator (unbiased on a fixed population, bounded
weights, the floor), its confidence sequence's coverage, the baseline's flip scores, the difference estimator
(unbiased, predictable offsets), and `eval --until-decided --active` end to end on the fake backend (compare and
gate judge it with the difference estimator rebuilt from the run file and its baseline, refuse another baseline,
and judge an active run written before the difference estimator with the importance weights)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.decide import proposal as flip
from harness.inference import active, sequential
from tests.conftest import write_suite
from tests.unit.test_until_decided import MC_TASK  # the same multiple-choice task

POP_D = np.array([-1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0])  # Δ = -0.2
POP_R = np.array([5.0, 0.1, 0.0, 0.2, 0.0, 1.0, 3.0, 0.0, 0.5, 0.0])


def test_proposal_respects_the_floor_and_sums_to_one() -> None:
    for floor in (0.1, 0.5, 1.0):
        q = active.proposal(POP_R, floor)
        assert q.sum() == pytest.approx(1.0)
        assert q.min() >= floor / q.size - 1e-15
        assert active.weight_bound(q) <= 1.0 / floor + 1e-9
        assert np.all(active.weights(q, q.size) <= active.weight_bound(q) + 1e-12)
    assert np.allclose(active.proposal(np.zeros(4), 0.3), 0.25)  # no signal: uniform
    assert np.allclose(active.proposal(POP_R, 1.0), 0.1)  # floor 1: uniform whatever the signal
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError):
            active.proposal(POP_R, bad)
    with pytest.raises(ValueError):
        active.proposal([1.0, -1.0], 0.5)


def test_estimator_is_unbiased_by_exact_enumeration() -> None:
    """E[(1/T) Σ d_K/(N q_K)] over all N^T ordered draws (T = 1, 2, 3) equals the population mean exactly."""
    q = active.proposal(POP_R, 0.3)
    n = POP_D.size
    for t in (1, 2, 3):
        expected = 0.0
        for draw in itertools.product(range(n), repeat=t):
            idx = np.array(draw)
            expected += float(np.prod(q[idx])) * active.estimate(POP_D[idx], q[idx], n)
        assert expected == pytest.approx(POP_D.mean(), abs=1e-12)


def test_estimator_is_unbiased_over_many_draws() -> None:
    rng = np.random.default_rng(1)
    q = active.proposal(POP_R, 0.5)
    est = [active.estimate(POP_D[i], q[i], POP_D.size) for i in (active.draw(q, 20, rng) for _ in range(20000))]
    sd = float(np.std(est)) / np.sqrt(len(est))
    assert abs(float(np.mean(est)) - POP_D.mean()) < 4 * sd
    assert active.estimate([], [], 10) != active.estimate([], [], 10)  # nan without draws


def test_weighted_sequence_matches_active_interval_and_checks_its_weights() -> None:
    q = active.proposal(POP_R, 0.5)
    idx = active.draw(q, 60, np.random.default_rng(2))
    bound = active.weight_bound(q)
    iv = active.active_interval(POP_D[idx], q[idx], POP_D.size, bound)
    assert iv.method == active.ACTIVE_METHOD and iv.n == 60 and iv.lo <= iv.hi
    z = POP_D[idx] / (POP_D.size * q[idx])
    by_hand = sequential.sequence_interval(z, -bound, bound)  # the same CS on the weighted terms
    assert (iv.lo, iv.hi) == pytest.approx((by_hand.lo, by_hand.hi))
    design = sequential.Design(0, None, (1.0, 1.0), 2.0)
    with pytest.raises(ValueError, match="importance weights"):
        sequential.sequence_interval([0.0, 1.0, 0.0], -1, 1, design=design)
    with pytest.raises(ValueError, match="must lie in"):
        sequential.sequence_interval([0.0, 1.0], -1, 1, design=sequential.Design(0, None, (1.0, 3.0), 2.0))


def test_confidence_sequence_covers_on_a_skewed_population() -> None:
    """The true Δ stays inside every interval of the sequence up to 300 draws in >= 95% of runs (+ MC error)."""
    rng = np.random.default_rng(3)
    n = 200
    d = np.zeros(n)
    d[:30], d[30:40] = -1.0, 1.0  # Δ = -0.1, discordance 0.2
    scores = np.where(d != 0, rng.uniform(0.5, 1.0, n), rng.uniform(0.0, 0.6, n))
    q = active.proposal(scores, 0.3)
    bound = active.weight_bound(q)
    reps = 300
    idx = rng.choice(n, size=(reps, 300), p=q)
    y = (d[idx] / (n * q[idx]) + bound) / (2 * bound)
    m = (d.mean() + bound) / (2 * bound)
    miss = (sequential.first_exclusion(y, m, upper=False) > 0) | (sequential.first_exclusion(y, m, upper=True) > 0)
    assert miss.mean() <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / reps)


def test_flip_scores_from_margins_lengths_or_nothing() -> None:
    rows = [{"logliks": [-1.0, -1.1, -5.0]}, {"logliks": [-1.0, -4.0, -5.0]}, None]
    scores, signal = flip.flip_scores(rows)  # type: ignore[arg-type]
    assert signal == "margin" and scores[0] > scores[1] and scores[2] == pytest.approx(np.median(scores[:2]))
    assert flip.margin_of({"logliks": [-2.0, -1.0]}) == pytest.approx(1.0)  # type: ignore[typeddict-item]
    assert flip.margin_of({"logliks": [-2.0]}) is None  # type: ignore[typeddict-item]
    scores, signal = flip.flip_scores([{"response": "ab"}, {"response": "abcdef"}])  # type: ignore[list-item]
    assert signal == "length" and scores[1] > scores[0]
    assert flip.flip_scores([{"scores": {}}])[1] == "none"  # type: ignore[list-item]
    assert flip.active_refusal("floor", False) and flip.active_refusal("non_inferiority", True)
    assert flip.active_refusal("non_inferiority", False) is None


# ---------------------------------------------------------------- end to end on the fake backend

N = 300
ROWS = [{"q": f"What is {i} + 1?", "c": [str(i + 1), "x", "y"], "g": 0} for i in range(N)]


def test_cli_until_decided_active_writes_draws_and_gates_with_the_weighted_sequence(tmp_path: Path, capsys) -> None:
    suite = write_suite(tmp_path / "suite", MC_TASK, {"data/add.jsonl": ROWS})
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--out", str(tmp_path / "base")]) == 0
    gate = tmp_path / "g.yaml"
    gate.write_text("rules:\n  - suite: t\n    non_inferiority: 0.1\n")
    code = main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--until-decided", str(gate), "--baseline",
                 str(tmp_path / "base"), "--out", str(tmp_path / "cand"), "--active", "--floor", "0.6"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "active: floor 0.6" in out and "distinct items" in out
    block = json.loads((tmp_path / "cand" / "results.json").read_text())["sequential"]
    assert block["method"] == active.DIFFERENCE_METHOD
    info = block["active"]
    assert info["floor"] == 0.6 and info["tasks"]["t/add"]["population"] == N
    assert info["tasks"]["t/add"]["signal"] == "margin"
    assert info["tasks"]["t/add"]["estimator"] == "difference" and len(info["tasks"]["t/add"]["scores"]) == N
    draws = info["draws"]["t/add"]
    assert len(draws) >= len(block["items"])  # an item drawn twice is evaluated once
    assert len({src for src, _ in draws}) == len(block["items"])
    assert all(q >= 0.6 / N - 1e-12 for _, q in draws)
    verdict = json.loads((tmp_path / "cand" / "verdict.json").read_text())
    assert verdict["rules"][0]["verdict"] == "PASS"
    assert verdict["rules"][0]["method"] == active.DIFFERENCE_METHOD
    assert verdict["sequential"]["active"]["floor"] == 0.6
    assert verdict["sequential"]["active"]["draws"] == {"t/add": len(draws)}
    assert verdict["sequential"]["active"]["distinct_items"] == {"t/add": len(block["items"])}
    assert verdict["sequential"]["active"]["estimators"] == {"t/add": "difference"}
    assert f"draws {len(draws)} over {N} available" in out
    # gate judges the written run again with the same sequence, never a fixed-n test
    capsys.readouterr()
    assert main(["gate", str(gate), "--baseline", str(tmp_path / "base"), "--candidate", str(tmp_path / "cand"),
                 "--verdict", str(tmp_path / "v.json")]) == 0
    again = json.loads((tmp_path / "v.json").read_text())
    assert again["rules"][0]["method"] == active.DIFFERENCE_METHOD
    # the report says how the items were chosen: not a uniform sample
    assert main(["report", str(tmp_path / "base"), str(tmp_path / "cand"), "--md", str(tmp_path / "r.md")]) == 0
    assert "seeded draws toward likely flips (floor 0.6" in (tmp_path / "r.md").read_text()
    # a floor rule is not what the weights estimate: one line, exit 2
    floor_gate = tmp_path / "floor.yaml"
    floor_gate.write_text("rules:\n  - suite: t\n    floor: 0.5\n")
    assert main(["gate", str(floor_gate), "--baseline", str(tmp_path / "base"), "--candidate",
                 str(tmp_path / "cand"), "--verdict", str(tmp_path / "v2.json")]) == 2
    assert "evaluated with --active" in capsys.readouterr().err


def test_active_refuses_rules_it_cannot_judge_and_flags_without_until(tmp_path: Path, capsys) -> None:
    suite = write_suite(tmp_path / "suite", MC_TASK, {"data/add.jsonl": ROWS[:20]})
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--out", str(tmp_path / "base")]) == 0
    gate = tmp_path / "g.yaml"
    gate.write_text("rules:\n  - suite: t\n    floor: 0.5\n")
    capsys.readouterr()
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--until-decided", str(gate), "--baseline",
                 str(tmp_path / "base"), "--out", str(tmp_path / "cand"), "--active"]) == 2
    assert "--active cannot decide rule 1" in capsys.readouterr().err
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--active"]) == 2
    assert "--active draws the items of an evaluation until decided" in capsys.readouterr().err
    gate.write_text("rules:\n  - suite: t\n    non_inferiority: 0.1\n")
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--until-decided", str(gate), "--baseline",
                 str(tmp_path / "base"), "--out", str(tmp_path / "c2"), "--active", "--floor", "0"]) == 2
    assert "--floor must lie in (0, 1]" in capsys.readouterr().err


def test_second_moment_by_hand_and_its_bound_over_proposals() -> None:
    p = np.array([1.0, 0.0, 0.0, 0.0])  # one item always flips: uniform draws find it a quarter of the time
    assert active.second_moment(p, np.full(4, 0.25)) == pytest.approx(0.25)  # (1/16) · 1 / 0.25 = Σp/N
    assert active.second_moment(p) == pytest.approx(1 / 16)  # q = (1, 0, 0, 0): z = 1/4 on every draw
    # the bound equals E[z²] by exact enumeration at q ∝ √p, and no proposal with a floor goes below it
    p = np.array([0.9, 0.5, 0.1, 0.1, 0.0, 0.05])
    q_opt = np.sqrt(p) / np.sqrt(p).sum()
    exact = sum(q_opt[i] * (1.0 / (p.size * q_opt[i])) ** 2 * p[i] for i in range(p.size) if q_opt[i] > 0)
    assert active.second_moment(p) == pytest.approx(exact)
    for floor in (0.2, 0.5, 0.9, 1.0):
        q = active.proposal(np.sqrt(p), floor)
        assert active.second_moment(p, q) >= active.second_moment(p) - 1e-12
    assert active.second_moment(p, np.full(6, 1 / 6)) == pytest.approx(p.mean())
    for bad in ([], [1.2], [float("nan")]):
        with pytest.raises(ValueError):
            active.second_moment(bad)
    with pytest.raises(ValueError):
        active.second_moment(p, np.zeros(6))


def test_shifted_sequence_keeps_its_level_with_predictable_offsets() -> None:
    # y_t has conditional mean m − s_t, with s_t chosen from y_{t−1} (predictable, data-dependent): the
    # capital against the true m stays a martingale, so each side fires in at most alpha/2 of the rows.
    rng = np.random.default_rng(7)
    rows, n, m = 4000, 300, 0.5
    y = np.empty((rows, n))
    s = np.zeros((rows, n))
    for t in range(n):
        if t:
            s[:, t] = np.where(y[:, t - 1] > 0.5, 0.2, -0.2)
        y[:, t] = (rng.random(rows) < m - s[:, t]).astype(float)
    se = 3 * np.sqrt(0.025 * 0.975 / rows)
    for upper in (False, True):
        assert (sequential.first_exclusion(y, m, upper=upper, shift=s) > 0).mean() <= 0.025 + se
    # zero offsets are the plain sequence
    assert np.array_equal(sequential.first_exclusion(y, m, upper=False, shift=np.zeros(n)),
                          sequential.first_exclusion(y, m, upper=False))
    assert (sequential.first_exclusion(y, 0.3, upper=False, shift=s) > 0).mean() > 0.9  # power against a wrong m
    lo, hi = sequential.cs_bounds(y[:50], shift=s[:50])
    assert np.mean((lo <= m) & (m <= hi)) >= 0.95 - 3 * np.sqrt(0.05 * 0.95 / 50)


POP_SIGN = np.where(POP_D != 0, np.sign(POP_D), np.array([1.0, -1.0] * 5))  # the side each item can flip to


def test_difference_terms_are_unbiased_bounded_and_predictable() -> None:
    q = active.proposal(POP_R, 0.5)
    x = active.flip_features(POP_R)
    rng = np.random.default_rng(3)
    idx = rng.choice(q.size, size=(300, 60), p=q)
    e, gbar = active.difference_terms(POP_D, POP_SIGN, x, q, idx)
    bound = active.weight_bound(q)
    assert np.all(np.abs(e) <= bound + 1e-12)
    assert np.all(gbar[:, :active.REFITS[0]] == 0)  # nothing to fit before the first refit: plain weights
    # exact conditional unbiasedness at a draw after a refit: ḡ + Σ_i q_i (d_i − g_i)/(N q_i) = Δ
    seen = idx[0, :20]
    g = active.control_variate(POP_SIGN, x, seen, POP_D[seen] != 0)
    assert g.mean() == pytest.approx(gbar[0, 25])
    assert g.mean() + sum(q[i] * (POP_D[i] - g[i]) / (q.size * q[i]) for i in range(q.size)) == pytest.approx(POP_D.mean())
    assert np.all(np.sign(g[g != 0]) == POP_SIGN[g != 0]) and np.all(np.abs(g) < 1)
    # the mean term over many runs at every t is Δ (Monte Carlo: 300 runs, each term's sd <= bound)
    assert np.abs((e + gbar).mean(axis=0) - POP_D.mean()).max() < 4 * bound / np.sqrt(300)
    # predictable: changing the draws from 30 on leaves every earlier term and the centers up to the refit at 50
    later = idx.copy()
    later[:, 30:] = rng.choice(q.size, size=(300, 30), p=q)
    e2, gbar2 = active.difference_terms(POP_D, POP_SIGN, x, q, later)
    assert np.array_equal(e2[:, :30], e[:, :30]) and np.array_equal(gbar2[:, :50], gbar[:, :50])
    with pytest.raises(ValueError):
        active.difference_terms(POP_D, np.zeros(10), x, q, idx)
    with pytest.raises(ValueError):
        active.difference_terms(POP_D, -POP_SIGN, x, q, idx)


def test_difference_terms_are_unbiased_by_exact_enumeration(monkeypatch) -> None:
    """With refits after 1 and 2 draws, E[z_t] over all N^t ordered draws equals Δ exactly at t = 1, 2, 3: each
    term's control variate is fitted on the draws before it only."""
    monkeypatch.setattr(active, "REFITS", (1, 2))
    d, r = POP_D[:6], POP_R[:6]
    sign = POP_SIGN[:6]
    q, x = active.proposal(r, 0.4), active.flip_features(r)
    draws = np.array(list(itertools.product(range(d.size), repeat=3)))
    e, gbar = active.difference_terms(d, sign, x, q, draws)
    prob = np.prod(q[draws], axis=1)
    assert prob.sum() == pytest.approx(1.0)
    assert np.any(gbar[:, 1:] != 0)  # the control variate is in use from the second draw
    for t in range(3):
        assert float(prob @ (e[:, t] + gbar[:, t])) == pytest.approx(d.mean(), abs=1e-12)
    # the estimate shown (the terms' mean at a fixed number of draws) is unbiased too
    assert float(prob @ (e + gbar).mean(axis=1)) == pytest.approx(d.mean(), abs=1e-12)


def test_difference_design_offsets_are_predictable_and_match_the_terms() -> None:
    rng = np.random.default_rng(5)
    q = active.proposal(POP_R, 0.6)
    idx = rng.choice(q.size, size=80, p=q)
    draws = active.Draws(tuple(q[idx]), q.size, active.weight_bound(q))
    design = active.difference_design(POP_D[idx], idx, POP_SIGN, POP_R, draws, None)
    e, gbar = active.difference_terms(POP_D, POP_SIGN, active.flip_features(POP_R), q, idx)
    assert np.allclose(design.offsets, gbar[0])
    assert sequential.term_mean(POP_D[idx], design) == pytest.approx(float((e + gbar).mean()))
    # the sequence on the design is the shifted sequence on the terms
    iv = sequential.sequence_interval(POP_D[idx], -1.0, 1.0, design=design)
    b = draws.bound
    lo, hi = sequential.cs_bounds(((e + b) / (2 * b)), shift=gbar / (2 * b))
    assert (iv.lo, iv.hi) == pytest.approx((-b + 2 * b * lo[0], -b + 2 * b * hi[0]))
    assert iv.method == active.DIFFERENCE_METHOD
    # a lower-is-better metric: the negated values with the negated design give the negated interval
    neg = sequential.sequence_interval(-POP_D[idx], -1.0, 1.0, design=design.flipped())
    assert (neg.lo, neg.hi) == pytest.approx((-iv.hi, -iv.lo), abs=1e-6)  # type: ignore[operator]
    assert sequential.term_mean(-POP_D[idx], design.flipped()) == pytest.approx(-sequential.term_mean(POP_D[idx], design))
    # a term's offset and control variate stay put when later draws change (up to the refit after 50 draws)
    later = idx.copy()
    later[30:] = rng.choice(q.size, size=50, p=q)
    moved = active.difference_design(POP_D[later], later, POP_SIGN, POP_R,
                                     active.Draws(tuple(q[later]), q.size, draws.bound), None)
    assert moved.offsets[:50] == design.offsets[:50] and moved.control[:30] == design.control[:30]
    assert moved.offsets[50:] != design.offsets[50:]
    with pytest.raises(ValueError):  # one item drawn twice with two differences: not the pairs of one run
        active.difference_design(np.array([POP_SIGN[3], 0.0]), np.array([3, 3]), POP_SIGN, POP_R,
                                 active.Draws((q[3], q[3]), q.size, draws.bound), None)
    # the p-value of the same capital agrees with the interval on each side
    for threshold in (iv.lo - 0.05, iv.hi + 0.05):  # type: ignore[operator]
        above = threshold < iv.lo  # type: ignore[operator]
        assert sequential.anytime_p(POP_D[idx], -1.0, 1.0, threshold, above=above, design=design) <= 0.025
    with pytest.raises(ValueError):  # a flip to the side its sign excludes: not a 0/1 pair of this baseline
        active.difference_design(-POP_D[idx], idx, POP_SIGN, POP_R, draws, None)


def _flipped_candidate(tmp_path: Path, capsys) -> tuple[Path, Path, Path]:
    """A baseline run, and an active run of a candidate (an adapter the fake backend answers differently)."""
    suite = write_suite(tmp_path / "suite", MC_TASK, {"data/add.jsonl": ROWS})
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--out", str(tmp_path / "base")]) == 0
    (tmp_path / "adapter").mkdir()
    gate = tmp_path / "g.yaml"
    gate.write_text("rules:\n  - suite: t\n    non_inferiority: 0.1\n")
    # the fake backend's adapter answers by a hash of its path: any verdict (exit 0 pass, 1 fail, 3 undecided)
    assert main(["eval", "-q", "-m", "fake:toy", "-a", str(tmp_path / "adapter"), "-s", str(suite), "--until-decided",
                 str(gate), "--baseline", str(tmp_path / "base"), "--out", str(tmp_path / "cand"), "--active"]) in (0, 1, 3)
    capsys.readouterr()
    return gate, tmp_path / "base", tmp_path / "cand"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "samples.jsonl").read_text().splitlines()]


def test_cli_gate_rebuilds_the_difference_estimator_from_the_run_file(tmp_path: Path, capsys) -> None:
    gate, base, cand = _flipped_candidate(tmp_path, capsys)
    block = json.loads((cand / "results.json").read_text())["sequential"]
    assert block["method"] == active.DIFFERENCE_METHOD
    info, draws = block["active"]["tasks"]["t/add"], block["active"]["draws"]["t/add"]
    assert info["estimator"] == "difference" and info["bound"] <= 1 / active.DEFAULT_FLOOR + 1e-9
    b = {r["sample_id"]: r["scores"]["acc"] for r in _rows(base)}
    c = {r["sample_id"]: r["scores"]["acc"] for r in _rows(cand)}
    assert sum(b[k] != c[k] for k in c) > 10  # the candidate flips items: the control variate has work to do
    # the estimate, rebuilt here from the run file and the baseline alone
    items = list(info["scores"])
    pos = {item: k for k, item in enumerate(items)}
    d = np.array([c[i] - b[i] if i in c else 0.0 for i in items])
    sign = np.array([-1.0 if b[i] == 1 else 1.0 for i in items])
    idx = np.array([pos[i] for i, _ in draws])
    q = np.zeros(len(items))
    q[idx] = [p for _, p in draws]
    e, gbar = active.difference_terms(d, sign, active.flip_features(list(info["scores"].values())), q, idx)
    loop = json.loads((cand / "verdict.json").read_text())["rules"][0]
    assert main(["gate", str(gate), "--baseline", str(base), "--candidate", str(cand), "--verdict",
                 str(tmp_path / "v.json")]) in (0, 1, 3)
    again = json.loads((tmp_path / "v.json").read_text())["rules"][0]
    assert again["verdict"] == loop["verdict"] and again["method"] == active.DIFFERENCE_METHOD
    assert again["figure"] == pytest.approx(float((e + gbar).mean())) == pytest.approx(loop["figure"])
    assert again["interval"]["lo"] == pytest.approx(loop["interval"]["lo"])
    assert again["n"] == len(draws)  # the draws it rests on (the distinct items: the run's summary and items)
    # compare shows the same estimate, beside the baseline's exact mean over the task
    from harness.data.runs import load_run
    from harness.decide.compare import compare_runs
    row = compare_runs(load_run(base), load_run(cand)).get("t", "add", "acc")
    assert row is not None and row.delta == pytest.approx(again["figure"])
    assert row.base == pytest.approx(np.mean(list(b.values()))) and row.cand == pytest.approx(row.base + row.delta)


def test_cli_judges_an_active_run_with_the_bets_it_recorded(tmp_path: Path, capsys) -> None:
    """The run file records the bets (`active.BETS`) and compare rebuilds the design with them; a run recorded
    before them is judged with WSR's, as it ran; a bet out of range is bad input naming the field."""
    from harness.decide.compare import sequential_design
    gate, base, cand = _flipped_candidate(tmp_path, capsys)
    path = cand / "results.json"
    results = json.loads(path.read_text())
    block = results["sequential"]
    assert block["active"]["tasks"]["t/add"]["bets"] == active.BETS
    design = sequential_design(block, "t", ["add"])
    assert design is not None and design.weights is not None
    assert (design.prior_variance, design.truncation) == (active.BETS["prior_variance"], active.BETS["truncation"])
    args = ["gate", str(gate), "--baseline", str(base), "--candidate", str(cand), "--verdict", str(tmp_path / "v.json")]
    main(args)
    tuned = json.loads((tmp_path / "v.json").read_text())["rules"][0]
    block["active"]["tasks"]["t/add"].pop("bets")
    path.write_text(json.dumps(results))
    old = sequential_design(block, "t", ["add"])
    assert old is not None and (old.prior_variance, old.truncation) == (0.25, sequential.CS_TRUNCATION)
    main(args)
    wsr = json.loads((tmp_path / "v.json").read_text())["rules"][0]
    assert wsr["figure"] == pytest.approx(tuned["figure"])  # the same estimate: only the bets differ
    assert wsr["interval"]["lo"] != pytest.approx(tuned["interval"]["lo"])
    block["active"]["tasks"]["t/add"]["bets"] = {"prior_variance": 0.05, "truncation": 1.5}
    path.write_text(json.dumps(results))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "truncation" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_refuses_a_baseline_the_active_run_was_not_planned_against(tmp_path: Path, capsys) -> None:
    gate, base, cand = _flipped_candidate(tmp_path, capsys)
    drawn = {r["sample_id"] for r in _rows(cand)}
    rows = _rows(base)
    other = next(r for r in rows if r["sample_id"] not in drawn)  # an item never drawn: only its sign moves
    other["scores"]["acc"] = 1.0 - other["scores"]["acc"]
    (base / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["gate", str(gate), "--baseline", str(base), "--candidate", str(cand), "--verdict",
                 str(tmp_path / "v.json")]) == 2
    err = capsys.readouterr().err
    assert "is not the baseline the active run" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["compare", str(base), str(cand)]) == 2


def test_cli_judges_an_active_run_written_before_the_difference_estimator(tmp_path: Path, capsys) -> None:
    gate, base, cand = _flipped_candidate(tmp_path, capsys)
    path = cand / "results.json"
    results = json.loads(path.read_text())
    block = results["sequential"]
    block["method"] = active.ACTIVE_METHOD
    for info in block["active"]["tasks"].values():
        for key in ("estimator", "scores", "baseline"):
            info.pop(key)
    path.write_text(json.dumps(results))
    assert main(["gate", str(gate), "--baseline", str(base), "--candidate", str(cand), "--verdict",
                 str(tmp_path / "v.json")]) != 2
    rule = json.loads((tmp_path / "v.json").read_text())["rules"][0]
    assert rule["method"] == active.ACTIVE_METHOD
    draws = block["active"]["draws"]["t/add"]
    b = {r["sample_id"]: r["scores"]["acc"] for r in _rows(base)}
    c = {r["sample_id"]: r["scores"]["acc"] for r in _rows(cand)}
    d = np.array([c[i] - b[i] for i, _ in draws])
    qd = np.array([p for _, p in draws])
    assert rule["figure"] == pytest.approx(active.estimate(d, qd, N))  # the importance-weighted estimate
    # a difference entry without its scores is bad input naming the field, one line
    info = block["active"]["tasks"]["t/add"]
    info["estimator"] = "difference"
    path.write_text(json.dumps(results))
    assert main(["gate", str(gate), "--baseline", str(base), "--candidate", str(cand)]) == 2
    assert "sequential.active" in capsys.readouterr().err
