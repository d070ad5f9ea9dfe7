"""`eval --until-decided` on the fake backend: stops early when decided, evaluates the baseline on demand,
writes a sequential run that compare and gate accept, and refuses bad input with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.api import Request, Response
from harness.data.suite import load_suite
from harness.flows.until import UntilSettings, run_until_decided
from harness.models.fake import FakeBackend
from harness.run.engine import EvalSettings, run_variant, write_run_dir
from harness.storage.store import Store
from tests.conftest import write_suite

N = 400
ROWS = [{"q": f"What is {i} + 1?", "a": str(i + 1)} for i in range(N)]
TASK = """  - name: add
    kind: generate
    data: {test: data/add.jsonl}
    prompt: "{{ q }}"
    target: a
    chat_template: false
    generation: {max_new_tokens: 4}
    metrics: [exact_match]
"""
MC_TASK = """  - name: add
    kind: multiple_choice
    data: {test: data/add.jsonl}
    prompt: "{{ q }}"
    choices: c
    target: g
    chat_template: false
    metrics: [acc]
"""
SCRIPT = {f"What is {i} + 1?": str(i + 1) for i in range(N)}


class BrokenAdapter(FakeBackend):
    """The fake backend whose every adapter forgets the answers (a much worse candidate)."""

    def generate(self, requests: list[Request]) -> list[Response]:
        if self.adapter is None:
            return super().generate(requests)
        return [Response(text="no idea", n_tokens=[2], tokens_processed=2) for _ in requests]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, BrokenAdapter, Path]:
    suite = write_suite(tmp_path / "suite", TASK, {"data/add.jsonl": ROWS})
    backend = BrokenAdapter(model="toy", script=SCRIPT)
    return suite, backend, tmp_path


def _baseline(backend: FakeBackend, suite: Path, out: Path, limit: int | None = None) -> Path:
    store = Store(None)
    try:
        results, records = run_variant(backend, [load_suite(str(suite))], store, EvalSettings(limit=limit, progress=False),
                                       "fake:toy")
    finally:
        store.close()
    write_run_dir(out, results, records)
    return out


def _gate(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _run(backend: FakeBackend, suite: Path, gate: Path, base: Path, out: Path, candidate: str | None, **kw):
    from harness.data.runs import load_run

    store = Store(None)
    try:
        return run_until_decided(backend, [load_suite(str(suite))], store, EvalSettings(progress=False),
                                 UntilSettings(gate, str(base), **kw), "fake:toy", candidate, load_run(base), out)
    finally:
        store.close()


def test_identical_candidate_stops_early_with_a_pass(setup) -> None:
    suite, backend, tmp = setup
    base = _baseline(backend, suite, tmp / "base")
    gate = _gate(tmp / "g.yaml", "rules:\n  - suite: t\n    non_inferiority: 0.1\n")
    outcome = _run(backend, suite, gate, base, tmp / "cand", None)
    assert outcome.gate.verdict == "PASS" and outcome.stopped == "decided"
    assert outcome.evaluated < N and outcome.available == N
    # the demo's way (`UntilRun` a look at a time): time that runs out just after the look that decided every rule
    # leaves the run "decided", not "max_minutes"
    from harness.data.runs import load_run
    from harness.flows.until import UntilRun

    store = Store(None)
    try:
        run = UntilRun(backend, [load_suite(str(suite))], store, EvalSettings(progress=False),
                       UntilSettings(gate, str(base)), "fake:toy", None, load_run(base), tmp / "stepped")
        while run.result is None or run.result.verdict != "PASS":
            look = run.next_look(None)
            assert look is not None and sum(look.items.values()) > 0
            run.take(look)
        stepped = run.finish("max_minutes")
    finally:
        store.close()
    assert stepped.stopped == "decided" and stepped.evaluated == outcome.evaluated  # same looks as the loop's
    assert outcome.rules[0].decided_at == outcome.evaluated
    assert outcome.baseline_evaluated == 0  # every answer came from the baseline run
    results = json.loads((tmp / "cand" / "results.json").read_text())
    assert results["sequential"]["stopped"] == "decided"
    assert len(results["sequential"]["items"]) == outcome.evaluated
    assert results["suites"]["t"]["tasks"]["add"]["n"] == outcome.evaluated
    verdict = json.loads((tmp / "cand" / "verdict.json").read_text())
    assert verdict["rules"][0]["method"].startswith("betting confidence sequence")
    assert verdict["sequential"]["stopped"] == "decided"
    assert verdict["sequential"]["evaluated"] == {"t/add": outcome.evaluated}
    # the written run gates the same way against the complete baseline
    assert main(["gate", str(gate), "--baseline", str(base), "--candidate", str(tmp / "cand"),
                 "--verdict", str(tmp / "v2.json")]) == 0


def test_much_worse_candidate_stops_early_with_a_fail(setup) -> None:
    suite, backend, tmp = setup
    base = _baseline(backend, suite, tmp / "base")
    (tmp / "broken").mkdir()
    gate = _gate(tmp / "g.yaml", "rules:\n  - suite: t\n    non_inferiority: 0.05\n")
    outcome = _run(backend, suite, gate, base, tmp / "cand", str(tmp / "broken"), chunk=5)
    assert outcome.gate.verdict == "FAIL" and outcome.stopped == "decided"
    assert outcome.evaluated <= 20  # every answer flips: a handful of items decide it
    assert outcome.gate.exit_code == 1


def test_baseline_items_are_evaluated_on_demand_and_written(setup, capsys) -> None:
    suite, backend, tmp = setup
    base = _baseline(backend, suite, tmp / "base", limit=15)  # the baseline holds only 15 items
    gate = _gate(tmp / "g.yaml", "rules:\n  - suite: t\n    non_inferiority: 0.1\n")
    outcome = _run(backend, suite, gate, base, tmp / "cand", None)
    assert outcome.gate.verdict == "PASS"
    assert outcome.baseline_evaluated > 0 and outcome.baseline_dir == tmp / "cand" / "baseline"
    # against the written baseline it gates; against the original one the missing ids are bad input
    assert main(["gate", str(gate), "--baseline", str(outcome.baseline_dir), "--candidate", str(tmp / "cand"),
                 "--verdict", str(tmp / "v.json")]) == 0
    capsys.readouterr()
    assert main(["gate", str(gate), "--baseline", str(base), "--candidate", str(tmp / "cand"),
                 "--verdict", str(tmp / "v.json")]) == 2
    assert "lacks" in capsys.readouterr().err


def test_budget_stops_an_undecidable_rule(setup) -> None:
    suite, backend, tmp = setup
    base = _baseline(backend, suite, tmp / "base")
    gate = _gate(tmp / "g.yaml", "rules:\n  - suite: t\n    superiority: true\n")  # identical: never superior
    # 8 items: under FUTILITY_MIN_N, so the budget stops it before futility is judged
    outcome = _run(backend, suite, gate, base, tmp / "cand", None, max_items=8)
    assert outcome.stopped == "max_items" and outcome.evaluated == 8
    assert outcome.gate.verdict == "INCONCLUSIVE"
    from harness.flows.until import summary

    text = summary(outcome)  # a budget stop is not a saving
    assert "stopped by max_items with rules undecided" in text and "saved" not in text
    # issue 29: an undecided rule says what stopped it and what deciding it would take
    planned = outcome.gate.rules[0].plan_n
    assert f"ran out of budget: ≈{planned - 8} more items per task would decide it by the planner" in text
    assert "at the cost measured here" in text
    block = json.loads((tmp / "cand" / "results.json").read_text())["sequential"]
    need = block["undecided"][outcome.rules[0].name]
    assert need["reason"] == "budget" and need["more_items"] == planned - 8 and need["evaluated"] == 8
    assert need["minutes"] >= 0 and need["split"] == N


def test_cli_says_a_rule_ran_out_of_items(tmp_path: Path, capsys) -> None:
    """Every item of a 12-item split evaluated and the rule still open: out of items, with the planner's n."""
    rows = [{"q": r["q"], "c": [r["a"], "x", "y"], "g": 0} for r in ROWS[:12]]
    suite = write_suite(tmp_path / "suite", MC_TASK, {"data/add.jsonl": rows})
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--out", str(tmp_path / "base")]) == 0
    gate = _gate(tmp_path / "g.yaml", "rules:\n  - {name: better, suite: t, superiority: true}\n")
    code = main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--until-decided", str(gate), "--baseline",
                 str(tmp_path / "base"), "--out", str(tmp_path / "cand"), "--chunk", "12"])
    out = capsys.readouterr().out
    assert code == 3, out
    assert "better  items 12 of 12 available; not decided: ran out of items: all 12 of its split evaluated; " \
           "the planner asks for ≈" in out
    block = json.loads((tmp_path / "cand" / "results.json").read_text())["sequential"]
    need = block["undecided"]["better"]
    assert need["reason"] == "items" and need["split"] == need["evaluated"] == 12 and need["planned_n"] > 12


def test_cli_prints_items_per_rule_and_the_saving(tmp_path: Path, capsys) -> None:
    suite = write_suite(tmp_path / "suite", MC_TASK,
                        {"data/add.jsonl": [{"q": r["q"], "c": [r["a"], "x", "y"], "g": 0} for r in ROWS]})
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--out", str(tmp_path / "base")]) == 0
    gate = _gate(tmp_path / "g.yaml", "rules:\n  - suite: t\n    non_inferiority: 0.1\n")
    code = main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--until-decided", str(gate), "--baseline",
                 str(tmp_path / "base"), "--out", str(tmp_path / "cand")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"of {N} available" in out and "% saved" in out and "decided at" in out


def test_progress_shows_from_the_start(tmp_path: Path, capsys) -> None:
    """Issue 28: before the first look, the plan and the items being evaluated; then items so far, rules decided
    and the time left, before each look."""
    suite = write_suite(tmp_path / "suite", MC_TASK,
                        {"data/add.jsonl": [{"q": r["q"], "c": [r["a"], "x", "y"], "g": 0} for r in ROWS]})
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--out", str(tmp_path / "base")]) == 0
    gate = _gate(tmp_path / "g.yaml", "rules:\n  - suite: t\n    non_inferiority: 0.1\n")
    capsys.readouterr()
    assert main(["eval", "-m", "fake:toy", "-s", str(suite), "--until-decided", str(gate), "--baseline",
                 str(tmp_path / "base"), "--out", str(tmp_path / "cand"), "--max-minutes", "5"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tunegate: ")]
    assert err[0] == "tunegate: until decided: loading fake:toy"
    assert err[1].startswith("tunegate: until decided: preparing the prompts of 1 tasks")
    assert err[2].startswith(f"tunegate: until decided: 1 rules over {N} items available in 1 tasks")
    first = next(line for line in err if "evaluating items 1–" in line)
    assert f"of {N} (0 so far" in first and "no rule judged yet" in first and "min of the budget left" in first
    assert err.index(first) < next(i for i, line in enumerate(err) if " items: PASS" in line)
    later = [line for line in err if "evaluating items" in line][1:]
    assert all("rules decided: 0 of 1" in line for line in later)


@pytest.mark.parametrize("args, message", [
    (["--until-decided", "g.yaml"], "--until-decided GATE and --baseline RUN go together"),
    (["--baseline", "base"], "--until-decided GATE and --baseline RUN go together"),
    (["--until-decided", "g.yaml", "--baseline", "b", "--seed", "-1"], "--seed must lie in"),
    (["--until-decided", "g.yaml", "--baseline", "b", "--max-minutes", "nan"], "--max-minutes must be"),
    (["--until-decided", "g.yaml", "--baseline", "b", "-a", "x", "-a", "y"], "at most one --adapter"),
    (["--until-decided", "missing.yaml", "--baseline", "b"], "gate file not found"),
])
def test_bad_flags_are_exit_2(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    code = main(["eval", "-q", "-m", "fake:toy", "-s", "nowhere", *args])
    assert code == 2 and message in capsys.readouterr().err


def test_task_chunk_sizes_the_looks_and_is_recorded(setup) -> None:
    suite, backend, tmp = setup
    base = _baseline(backend, suite, tmp / "base")
    (tmp / "broken").mkdir()
    gate = _gate(tmp / "g.yaml", "rules:\n  - suite: t\n    non_inferiority: 0.05\n")
    outcome = _run(backend, suite, gate, base, tmp / "cand", str(tmp / "broken"), chunk=10, task_chunk={"t/add": 3})
    assert outcome.looks[:2] == [3, 6] and outcome.gate.verdict == "FAIL"
    block = json.loads((tmp / "cand" / "results.json").read_text())["sequential"]
    assert block["task_chunk"] == {"t/add": 3} and block["chunk"] == 10


def _empty_shared_base(backend: FakeBackend, suite: Path, tmp: Path):
    """The demo's base: a run with no answers yet, which the candidates' runs fill on demand (and a candidate
    adapter directory, `broken`, whose answers are all wrong)."""
    from harness.core.api import sha256_json
    from harness.data.runs import Run
    from harness.run.engine import assemble_results

    suites = [load_suite(str(suite))]
    backend.set_adapter(None)
    fp = backend.fingerprint()
    info = {"spec": "fake:toy", "adapter": None, "fingerprint": fp, "fingerprint_hash": sha256_json(fp)}
    (tmp / "broken").mkdir()
    return suites, Run(assemble_results("base", info, suites, [], [], EvalSettings()), [], tmp / "base", "base")


def test_an_empty_shared_baseline_is_filled_on_demand_once(setup) -> None:
    """The demo's way: the base starts with no answers; the first candidate evaluates the ones it needs, the
    next one (same seeded order) finds them in the same run and evaluates only the items beyond them."""
    suite, backend, tmp = setup
    suites, shared = _empty_shared_base(backend, suite, tmp)
    gate = _gate(tmp / "g.yaml", "rules:\n  - suite: t\n    non_inferiority: 0.1\n")
    store = Store(None)
    try:
        def until(candidate: str | None, out: Path):
            return run_until_decided(backend, suites, store, EvalSettings(progress=False),
                                     UntilSettings(gate, "base", chunk=5), "fake:toy", candidate, shared, out)

        worse = until(str(tmp / "broken"), tmp / "a")
        same = until(None, tmp / "b")
    finally:
        store.close()
    assert worse.gate.verdict == "FAIL" and same.gate.verdict == "PASS"
    assert worse.baseline_evaluated == worse.evaluated  # all on demand
    assert same.evaluated > worse.evaluated
    assert same.baseline_evaluated == same.evaluated - worse.evaluated  # the first ones were shared
    assert len(shared.samples) == same.evaluated


def test_a_run_prices_only_the_baseline_answers_it_lacks(setup) -> None:
    """Two runs on one shared, empty baseline and one meter (the demo's way): the first computes the base's
    answers and the meter measures them apart from its own; the second, whose next items find those answers in
    the cache, is priced for its own answers alone, and for both where it goes beyond them."""
    from harness.decide.allocate import CostMeter
    from harness.flows.until import UntilRun

    suite, backend, tmp = setup
    suites, shared = _empty_shared_base(backend, suite, tmp)
    gate = _gate(tmp / "g.yaml", "rules:\n  - suite: t\n    non_inferiority: 0.01\n")
    meter, store = CostMeter(), Store(None)
    task = ("t", "add")
    try:
        def start(candidate: str | None, out: Path) -> UntilRun:
            return UntilRun(backend, suites, store, EvalSettings(progress=False), UntilSettings(gate, "base", chunk=5),
                            "fake:toy", candidate, shared, out, meter=meter)

        first = start(str(tmp / "broken"), tmp / "a")
        assert first._prices([task], next_chunk=True).missing == {task: 1.0}  # nothing there yet
        first.take(first.next_look(None))
        first.take(first.next_look(None))
        assert meter.items[task] == 10 and meter.base_items[task] == 10  # measured apart
        second = start(None, tmp / "b")
        prices = second._prices([task], next_chunk=True)
        assert prices.missing == {task: 0.0}  # its next chunk: the answers the first run computed
        assert prices.per_item(task) == meter.per_item(task)
        assert second._prices([task], next_chunk=False).missing == {task: (N - 10) / N}  # all its items left
        second.take(second.next_look(None))
        second.take(second.next_look(None))
        assert second._prices([task], next_chunk=True).missing == {task: 1.0}  # beyond them: both answers
        outcome = first.finish("max_minutes")
    finally:
        store.close()
    cost = outcome.results["sequential"]["cost"]["t/add"]
    assert cost["items"] == 10 and cost["baseline_items"] == 10 and cost["baseline_cpu_seconds_per_item"] >= 0


def test_each_tasks_order_is_its_own_and_seeded() -> None:
    from harness.flows.until import seeded_order

    a = [("s", "a", str(i)) for i in range(50)]
    b = [("s", "b", str(i)) for i in range(50)]
    alone = seeded_order(a, 0)[("s", "a")]
    with_other = seeded_order(b + a, 0)[("s", "a")]
    assert alone == with_other  # another task, drawn first, leaves this task's order as it was
    assert sorted(alone) == sorted(a) and alone != a  # a permutation, not the build order
    assert seeded_order(a, 1)[("s", "a")] != alone  # the seed matters
    assert [g[2] for g in seeded_order(b, 0)[("s", "b")]] != [g[2] for g in alone]  # tasks differ


class NoisyAdapter(FakeBackend):
    """Base wrong on every tenth item, the adapter wrong on another tenth: no difference, 20% discordant pairs."""

    def generate(self, requests: list[Request]) -> list[Response]:
        out = super().generate(requests)
        if self.adapter is None:
            return out
        return [self._noisy(int(r.context.split()[2]), o) for r, o in zip(requests, out)]

    @staticmethod
    def _noisy(i: int, base: Response) -> Response:
        if i % 10 == 5:  # wrong where the base is right
            return Response(text="no idea", n_tokens=[2], tokens_processed=2)
        if i % 10 == 0:  # right where the base is wrong
            return Response(text=str(i + 1), n_tokens=[1], tokens_processed=1)
        return base


def test_a_rule_the_split_cannot_decide_stops_as_futile(tmp_path: Path, capsys) -> None:
    suite = write_suite(tmp_path / "suite", TASK, {"data/add.jsonl": ROWS})
    script = {q: ("wrong" if i % 10 == 0 else a) for i, (q, a) in enumerate(SCRIPT.items())}
    backend = NoisyAdapter(model="toy", script=script)
    base = _baseline(backend, suite, tmp_path / "base")
    (tmp_path / "noisy").mkdir()
    # margin 0.01 at 20% discordance: the planner needs ~16,000 items, the split has 400
    gate = _gate(tmp_path / "g.yaml", "rules:\n  - suite: t\n    non_inferiority: 0.01\n")
    outcome = _run(backend, suite, gate, base, tmp_path / "cand", str(tmp_path / "noisy"), chunk=25)
    assert outcome.gate.verdict == "INCONCLUSIVE" and outcome.stopped == "futile"
    assert outcome.rules[0].futile and outcome.evaluated < N
    assert outcome.gate.rules[0].plan_n > N
    from harness.flows.until import summary

    assert "chance to be decided within the split's items is below 5%" in summary(outcome)
    # a margin the split can decide is not dropped: it runs to a verdict
    lenient = _gate(tmp_path / "l.yaml", "rules:\n  - suite: t\n    non_inferiority: 0.2\n")
    outcome = _run(backend, suite, lenient, base, tmp_path / "cand2", str(tmp_path / "noisy"), chunk=25)
    assert outcome.stopped == "decided" and outcome.gate.verdict == "PASS" and not outcome.rules[0].futile
    # an identical candidate is never superior: it stops as futile before the split ends, but not after one look
    # of ties, which cannot rule out a small gain (issue 23: futility stopped checks that would be decided)
    same = _run(backend, suite, _gate(tmp_path / "s.yaml", "rules:\n  - suite: t\n    superiority: true\n"), base,
                tmp_path / "cand3", None, chunk=25)
    assert same.stopped == "futile" and 25 < same.evaluated < N


class ScriptedJudge(FakeBackend):
    """A judge that always answers in format (Score: 4)."""

    def generate(self, requests: list[Request]) -> list[Response]:
        return [Response(text=" 4", n_tokens=[1], tokens_processed=1) for _ in requests]


def test_judged_tasks_are_graded_and_a_rule_waiting_for_people_takes_no_items(tmp_path: Path) -> None:
    """Issue 27: the loop grades a judged task with the bound judge, and a min_human_agreement rule with nobody's
    ratings is INCONCLUSIVE saying why without drawing the split's items."""
    from harness.data.runs import load_run

    judged = TASK + """    judge:
      role: grader
      template: "Grade {{ response }} against {{ reference }}. {{ key }}: N"
      scale: [1, 5]
      prefill: "Score:"
"""
    suite = write_suite(tmp_path / "suite", judged, {"data/add.jsonl": ROWS})
    backend, judges = BrokenAdapter(model="toy", script=SCRIPT), {"grader": ScriptedJudge(model="judge")}
    store = Store(None)
    try:
        results, records = run_variant(backend, [load_suite(str(suite))], store, EvalSettings(progress=False),
                                       "fake:toy", judges)
        write_run_dir(tmp_path / "base", results, records)
        gate = _gate(tmp_path / "g.yaml", "rules:\n  - {name: sums, suite: t, metric: exact_match, non_inferiority: 0.1}\n"
                     "  - {name: judged, suite: t, task: add, metric: judge_score, non_inferiority: 0.05, "
                     "min_human_agreement: 0.6}\n")
        outcome = run_until_decided(backend, [load_suite(str(suite))], store, EvalSettings(progress=False),
                                    UntilSettings(gate, str(tmp_path / "base")), "fake:toy", None,
                                    load_run(tmp_path / "base"), tmp_path / "cand", judges)
    finally:
        store.close()
    sums, judge_rule = outcome.gate.rules
    assert sums.verdict == "PASS" and judge_rule.verdict == "INCONCLUSIVE" and judge_rule.awaits_people
    assert "no human ratings" in judge_rule.detail
    assert outcome.stopped == "futile" and outcome.evaluated < N  # only people can decide the rest
    rows = [json.loads(r) for r in (tmp_path / "cand" / "samples.jsonl").read_text().splitlines()]
    assert rows and all(r["scores"]["judge_score"] == 0.75 for r in rows)


def test_progress_line_time_left() -> None:
    from harness.flows.until import progress_line

    assert progress_line(0, 10, 100, None, 3.0, None).endswith("time left known after the first look")
    line = progress_line(20, 10, 100, None, 60.0, None)  # 3 s per item, 80 items at most still to go
    assert line.startswith("evaluating items 21–30 of 100 (20 so far, 60 s)") and "at most 4.0 min left" in line
    assert "9.0 min of the budget left" in progress_line(20, 10, 100, None, 60.0, 540.0)
