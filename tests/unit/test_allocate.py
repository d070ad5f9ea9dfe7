"""Where a look's items go (`decide.allocate`): a cheap check about to be decided before a costly one far from it,
nothing to a check no item can decide, a pool's tasks together, and each task's own seeded order in the loop."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.core.api import Request, Response
from harness.decide.allocate import CostMeter, Open, allocate, chances, reach_chance, units_of
from harness.decide.results import Check
from harness.inference.evidence import sequence_interval
from harness.inference.sequential import narrowest
from harness.inference.stats import Interval
from harness.models.fake import FakeBackend

A, B, C = ("s", "a"), ("s", "b"), ("s", "c")


def _floor_check(refusals: int, n: int, floor: float = 0.5) -> Check:
    """A floor rule's check on n 0/1 scores, with the confidence sequence's interval, as the gate builds it."""
    values = np.array([1.0] * refusals + [0.0] * (n - refusals))
    p = (refusals + 1) / (n + 2)
    return Check("t", "safe_refusal", "INCONCLUSIVE", float(values.mean()), sequence_interval(values, 0.0, 1.0), n,
                 None, bounds=(floor,), sd=float(np.sqrt(p * (1 - p))))


def _far_check(n: int = 30) -> Check:
    """A non-inferiority check (margin 0.05) at Δ 0 with 30% discordant pairs: hundreds of items from a verdict."""
    half = 1.96 * np.sqrt(0.3 / n) * 1.4  # a confidence sequence is wider than the fixed-n interval
    return Check("t", "acc", "INCONCLUSIVE", 0.0, Interval(-half, half, "cs", n), n, None, bounds=(-0.05,),
                 sd=float(np.sqrt(0.3)), plan_n=900)


def test_a_bound_about_to_cross_reads_as_nearly_decided() -> None:
    # 0 refusals in 5: the sequence's upper bound 0.69; at 0 in 10 it is 0.47, below the floor of 0.5
    check = _floor_check(0, 5)
    assert check.interval.hi is not None and check.interval.hi > 0.5
    assert reach_chance(check, 5) > 0.4 and reach_chance(check, 11) > reach_chance(check, 5)
    assert reach_chance(check, 0) == 0.0
    assert reach_chance(_far_check(), 30) < 0.05  # 30 more items cannot clear a 0.05 margin at this spread
    no_interval = Check("t", "x", "INCONCLUSIVE", 0.5, Interval(None, None, "cs", 3), 3, None, bounds=(0.5,), sd=0.5)
    assert reach_chance(no_interval, 5) is None


def test_a_cheap_check_near_its_verdict_comes_before_a_costly_far_one() -> None:
    meter = CostMeter()
    meter.record(A, 10, cpu=10.0, wall=5.0)  # 1 CPU-s per item
    meter.record(B, 10, cpu=200.0, wall=100.0)  # 20 CPU-s per item
    opens = [Open(_floor_check(0, 5), frozenset({A})), Open(_far_check(), frozenset({B}))]
    left, chunk = {A: 11, B: 400}, {A: 5, B: 5}
    look = allocate(opens, [A, B], left, chunk, meter, budget=5.0)  # room for one chunk of A
    assert look.items == {A: 5}
    look = allocate(opens, [A, B], left, chunk, meter)  # round-robin's spend: 5 + 100 CPU-s
    assert look.items[A] == 11  # every item A has left first (three chunks, the last one short) ...
    assert look.index[A] > look.index.get(B, 0.0)
    # ... and even an expensive task's items go first to where they decide: the far check alone still gets them
    alone = allocate([Open(_far_check(n=300), frozenset({B}))], [B], {B: 400}, {B: 5}, meter)
    assert alone.items == {B: 5}


def test_a_check_no_item_can_decide_gets_nothing() -> None:
    meter = CostMeter()
    for task in (A, B):
        meter.record(task, 10, cpu=10.0, wall=10.0)
    hopeless = Open(_far_check(), frozenset({B}))  # below 5% even with all 30 items B has left
    near = Open(_floor_check(0, 5), frozenset({A}))
    look = allocate([near, hopeless], [A, B], {A: 100, B: 30}, {A: 5, B: 5}, meter)
    assert look.items.get(B, 0) == 0 and look.items[A] > 0
    # when nothing anywhere can be projected toward a verdict, every active task gets its chunk (round-robin),
    # and futility or the budget ends the run
    look = allocate([hopeless], [A, B], {A: 100, B: 30}, {A: 5, B: 5}, meter)
    assert look.items == {A: 5, B: 5}


def test_a_pools_tasks_take_their_chunks_together() -> None:
    meter = CostMeter(prior={A: 1.0, B: 1.0, C: 1.0})
    assert units_of([frozenset({A, B}), frozenset({C})], [A, B, C]) == [(A, B), (C,)]
    pooled = Open(_floor_check(0, 5), frozenset({A, B}))
    look = allocate([pooled], [A, B, C], {A: 3, B: 3, C: 50}, {A: 1, B: 1, C: 5}, meter, budget=2.0)
    assert look.items == {A: 1, B: 1}  # never A's items alone: the data do not choose a pool's mix
    assert CostMeter(prior={A: 2.0}).per_item(A) == 2.0  # the prior until measured


def test_the_loop_keeps_each_tasks_seeded_order_and_records_costs(tmp_path: Path) -> None:
    """Two tasks, one a candidate much worse on (decided in a few items), one identical (a superiority rule that
    never decides): whatever the allocator picks, each task's items are a prefix of its own seeded order."""
    from harness.flows.until import seeded_order, summary
    from tests.conftest import write_suite
    from tests.unit.test_until_decided import ROWS, SCRIPT, TASK, BrokenAdapter, _baseline, _gate, _run

    same = TASK.replace("name: add", "name: same").replace("data/add.jsonl", "data/same.jsonl")
    suite = write_suite(tmp_path / "suite", TASK + same.replace('prompt: "{{ q }}"', 'prompt: "Again: {{ q }}"'),
                        {"data/add.jsonl": ROWS, "data/same.jsonl": ROWS[:60]})

    class HalfBroken(BrokenAdapter):
        """The adapter forgets the answers of task `add` only; on `same` it answers as the base."""

        def generate(self, requests: list[Request]) -> list[Response]:
            if requests and requests[0].context.startswith("Again"):
                return FakeBackend.generate(self, requests)
            return super().generate(requests)

    backend = HalfBroken(model="toy", script={**SCRIPT, **{f"Again: {q}": a for q, a in SCRIPT.items()}})
    base = _baseline(backend, suite, tmp_path / "base")
    (tmp_path / "broken").mkdir()
    gate = _gate(tmp_path / "g.yaml", "rules:\n  - {name: adds, suite: t, task: add, non_inferiority: 0.05}\n"
                 "  - {name: same, suite: t, task: same, superiority: true}\n")
    outcome = _run(backend, suite, gate, base, tmp_path / "cand", str(tmp_path / "broken"), chunk=5, max_items=40)
    block = json.loads((tmp_path / "cand" / "results.json").read_text())["sequential"]
    order: dict[tuple[str, str], list[str]] = {}  # each task's items in evaluation order
    for item in block["items"]:
        order.setdefault((item["suite"], item["task"]), []).append(item["sample_id"])
    full = seeded_order([("t", "add", f"add/{i}") for i in range(len(ROWS))] +
                        [("t", "same", f"same/{i}") for i in range(60)], 0)  # build order, as the loop groups
    assert set(order) == {("t", "add"), ("t", "same")}
    for task, ids in order.items():
        assert ids == [g[2] for g in full[task][:len(ids)]], task  # a prefix of the task's own seeded order
    assert block["allocation"].startswith("progress toward a decision per CPU-second")
    assert set(block["cost"]) == {"t/add", "t/same"} and block["cost"]["t/add"]["items"] >= 5
    assert outcome.gate.rules[0].verdict == "FAIL"
    assert block["undecided"]["same"]["reason"] in ("budget", "futile")
    assert "same" in summary(outcome)


def test_a_spent_budget_still_takes_the_best_chunk() -> None:
    """With the minutes nearly gone the look is capped, never empty (an empty look would end nothing)."""
    meter = CostMeter(prior={A: 1.0, B: 1.0})
    opens = [Open(_floor_check(0, 5), frozenset({A})), Open(_floor_check(3, 6), frozenset({B}))]
    look = allocate(opens, [A, B], {A: 11, B: 10}, {A: 5, B: 5}, meter, budget=0.0)
    assert look.items == {A: 5}


def test_a_shared_meter_reports_each_runs_own_costs() -> None:
    meter = CostMeter()
    first, second = CostMeter(shared=meter), CostMeter(shared=meter)  # two runs, interleaved as the demo's
    first.record(A, 4, cpu=8.0, wall=4.0)
    second.record(A, 2, cpu=2.0, wall=1.0)
    second.record(B, 3, cpu=3.0, wall=3.0, base=True)  # the baseline's answers alone: no candidate item of B
    first.record(A, 1, cpu=1.0, wall=1.0)
    first.record(A, 5, cpu=5.0, wall=2.0, base=True)
    assert meter.to_json()["s/a"] == {"items": 7, "cpu_seconds_per_item": round(11 / 7, 4),
                                      "wall_seconds_per_item": round(6 / 7, 4), "baseline_items": 5,
                                      "baseline_cpu_seconds_per_item": 1.0}
    assert second.to_json() == {"s/a": {"items": 2, "cpu_seconds_per_item": 1.0, "wall_seconds_per_item": 0.5}}
    assert first.to_json() == {"s/a": {"items": 5, "cpu_seconds_per_item": 1.8, "wall_seconds_per_item": 1.0,
                                       "baseline_items": 5, "baseline_cpu_seconds_per_item": 1.0}}
    meter.prior[A] = 1.0
    assert meter.per_item(A) == (11 + 1.0) / 8  # a candidate item: its own time measured, and the prior
    assert meter.base_per_item(A) == (5.0 + meter.per_item(A)) / 6  # the candidate's price as the base's prior
    assert meter.wall_per_cpu() == (4 + 1 + 3 + 1 + 2) / (8 + 2 + 3 + 1 + 5)  # the baseline's time counted too


def test_a_run_pays_for_the_baseline_answers_it_lacks() -> None:
    """A run whose next items have the baseline's answers in the cache pays for its own answers alone; one that
    lacks them pays for both, in the share it lacks (before: one price with the base's time in it for every run,
    so the demo's first adapter overran its first look and the later ones were priced up to twice too high)."""
    meter = CostMeter(prior={A: 1.0, B: 1.0})
    meter.record(A, 10, cpu=20.0, wall=10.0)
    meter.record(A, 10, cpu=30.0, wall=15.0, base=True)
    cand, base = meter.per_item(A), meter.base_per_item(A)
    assert abs(cand - 21.0 / 11) < 1e-12 and abs(base - (30.0 + cand) / 11) < 1e-12
    assert meter.priced({}).per_item(A) == cand  # every answer there
    assert meter.priced({A: 1.0}).per_item(A) == cand + base  # none there: the run computes them
    assert meter.priced({A: 0.4}).per_item(A) == cand + 0.4 * base
    assert meter.priced({A: 1.0}).wall_per_item(A) == (cand + base) * meter.wall_per_cpu()
    assert meter.priced({B: 1.0}).per_item(B) == 2.0  # unmeasured: the prior for both answers
    # the allocator sizes a look by these prices: the same budget buys twice the items where the answers are there
    opens = [Open(_floor_check(0, 5), frozenset({A}))]
    have = allocate(opens, [A], {A: 100}, {A: 5}, meter.priced({}), budget=10 * cand)
    lack = allocate(opens, [A], {A: 100}, {A: 5}, meter.priced({A: 1.0}), budget=10 * cand)
    assert have.items[A] == 10 and lack.items[A] == 5


def test_one_cheap_item_does_not_price_a_task() -> None:
    """The prior counts as PRIOR_ITEMS more items: one item that happened to cost 2 CPU-s leaves a code task (prior
    60) priced near the middle, and many measured items price it by themselves."""
    from harness.decide.allocate import PRIOR_ITEMS

    meter = CostMeter(prior={A: 60.0})
    assert meter.per_item(A) == 60.0
    meter.record(A, 1, cpu=2.0, wall=1.0)
    assert meter.per_item(A) == (2.0 + PRIOR_ITEMS * 60.0) / (1 + PRIOR_ITEMS) > 25.0
    meter.record(A, 99, cpu=99 * 14.0, wall=99 * 7.0)
    assert abs(meter.per_item(A) - 14.0) < 0.5


def test_the_first_look_fits_half_the_minutes() -> None:
    from harness.flows.until import FIRST_LOOK_SHARE, UntilSettings, first_look

    meter = CostMeter(prior={A: 1.0, B: 10.0, C: 0.1})
    chunks = {"s/a": 30, "s/b": 5, "s/c": 2}
    until = UntilSettings(Path("g.yaml"), "base", task_chunk=chunks)
    assert first_look([A, B, C], until, meter, 600.0) == {A: 30, B: 5, C: 2}  # 80 s of 300 s: unchanged
    look = first_look([A, B, C], until, meter, 30.0)
    assert sum(n * meter.wall_per_item(t) for t, n in look.items()) <= FIRST_LOOK_SHARE * 30 + 0.1 * 1
    assert look[A] < 30 and look[B] < 5 and look[C] == 1  # scaled alike, at least one item each
    assert first_look([A, B], until, meter) == {A: 30, B: 5}  # no time budget


def test_an_undecided_check_past_the_planners_n_gets_its_projected_gap() -> None:
    from harness.flows.until import projected_gap

    check = _floor_check(0, 6)  # 0 refusals in 6 against a floor of 0.5: the interval still reaches above it
    assert check.interval.hi is not None and check.interval.hi > 0.5
    gap = projected_gap(check, 10)
    assert 1 <= gap <= 10 and (reach_chance(check, gap) or 0) >= 0.5
    assert gap == 1 or (reach_chance(check, gap // 2) or 0) < 0.5  # the fewest on the doubling grid
    assert projected_gap(_far_check(), 40) == 40  # none within the split: all it has left


def _paired_check(values: list[float], margin: float = 0.05) -> Check:
    """A non-inferiority check on paired 0/1 improvements (each −1, 0 or +1), as the gate builds it."""
    d = np.array(values)
    disc = (float(np.abs(d).sum()) + 1) / (d.size + 2)
    return Check("t", "acc", "INCONCLUSIVE", float(d.mean()), sequence_interval(d, -1.0, 1.0), d.size, None,
                 bounds=(-margin,), sd=float(np.sqrt(disc)), extent=(-1.0, 1.0))


def test_the_projection_rests_on_the_narrowest_a_sequence_can_be() -> None:
    # the premise: on values that never vary, each side of the sequence spans narrowest(m) times the distance
    # to that end of the range, and values that vary only widen it
    rng = np.random.default_rng(3)
    for m in (6, 10, 20, 50):
        nu = narrowest(m)
        for c in (0.0, 0.1, 0.25, 0.5, 0.8):
            iv = sequence_interval(np.full(m, c), 0.0, 1.0)
            assert iv.lo is not None and iv.hi is not None
            assert iv.hi - c >= nu * (1.0 - c) - 1e-3 and c - iv.lo >= nu * c - 1e-3
            varying = np.clip(c + rng.normal(0, 0.1, m), 0.0, 1.0)
            wide = sequence_interval(varying, 0.0, 1.0)
            mean = float(varying.mean())
            assert wide.hi is not None and wide.lo is not None
            assert wide.hi - mean >= nu * (1.0 - mean) - 1e-3 and mean - wide.lo >= nu * mean - 1e-3


def test_a_first_tie_is_not_read_as_half_decided() -> None:
    # one tie: the interval [-1, 1]. Shrunk by √(1/6) it read as a 53% chance that 5 more items decide a 0.05
    # margin; no sequence on 6 items can, even if the candidate won all 5 (its lower bound stays below -0.05)
    tie = _paired_check([0.0])
    assert reach_chance(tie, 5) == 0.0
    wins = sequence_interval(np.array([0.0, 1, 1, 1, 1, 1]), -1.0, 1.0)
    assert wins.lo is not None and wins.lo < -0.05
    assert reach_chance(tie, 200) > 0.0  # with 200 more items a verdict is possible
    # without the range the projection is what it was: half-decided after 5 items
    assert reach_chance(replace(tie, extent=None), 5) > 0.3


def test_a_side_no_mean_in_range_can_clear_has_no_chance() -> None:
    # over-refusal at 0 in 1, lower is better, floor 0.25, 22 items in the split: a sequence on 22 values that
    # are all 0 still reaches 0.27 > 0.25, so PASS is out of reach; only a FAIL (many refusals) is left
    look_alikes = replace(_floor_check(0, 1, floor=0.25), extent=(0.0, 1.0), pass_above=False)
    assert narrowest(22) > 0.25
    both = chances(look_alikes, 21)
    assert both is not None and both[0] == 0.0 and both[1] > 0.0
    at_24 = chances(look_alikes, 40)  # enough items: 0 refusals in 24 can pass
    assert at_24 is not None and at_24[0] > 0.0


def test_a_fail_in_reach_comes_first_until_the_gate_has_failed() -> None:
    # two tasks of equal cost: A's floor at 0 refusals in 6 (a FAIL within 4 items), B's at 6 refusals in 6 (a
    # PASS as near); a FAIL also decides the candidate's gate verdict, so A comes first, unless a rule has
    # failed already
    meter = CostMeter()
    meter.record(A, 10, cpu=30.0, wall=30.0)
    meter.record(B, 10, cpu=30.0, wall=30.0)
    failing = replace(_floor_check(0, 6), extent=(0.0, 1.0))
    passing = replace(_floor_check(6, 6), extent=(0.0, 1.0))
    assert chances(failing, 4) == pytest.approx(tuple(reversed(chances(passing, 4) or ())))
    opens = [Open(failing, frozenset({A})), Open(passing, frozenset({B}))]
    look = allocate(opens, [A, B], {A: 10, B: 10}, {A: 4, B: 4}, meter, budget=1.0)
    assert look.items == {A: 4}
    after = allocate(opens, [A, B], {A: 10, B: 10}, {A: 4, B: 4}, meter, budget=1.0, gate_decided=True)
    assert after.index[next(iter(after.items))] == pytest.approx(look.index[A] / 2)
