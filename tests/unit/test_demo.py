"""The demo's pieces that need no model: looks sized by cost, the smoke-run label, what an undecided rule needs."""

from __future__ import annotations

from types import SimpleNamespace

from harness.data.suite import load_suite
from harness.flows.demo import DEFAULT, QUICK, SMOKE, SUITES, _label_smoke, task_chunks
from harness.report.fmt import fmt_plan, more_items


def test_looks_take_more_of_cheap_tasks_and_few_code_items():
    from harness.decide.gate import load_gate
    from harness.flows.demo import GATE_FILE, pooled_tasks
    from harness.flows.until import rule_tasks

    suites = [load_suite(name) for name in SUITES]
    spec = load_gate(GATE_FILE)[0]
    pooled = pooled_tasks(spec, rule_tasks(spec, suites, str(GATE_FILE)))
    chunks = task_chunks(suites, DEFAULT, pooled)
    assert chunks["medical/pubmedqa_mc"] == 30  # scored choices
    assert chunks["medical/pubmedqa_gen"] == 30  # one short answer (6 tokens)
    assert chunks["medical/pubmedqa_long"] == 5  # 48 generated tokens
    assert chunks["code/humaneval"] == 1  # three sampled completions of up to 128 tokens
    assert chunks["adversarial/robust_qa"] == round(30 / 8)  # each item comes with 7 perturbed variants
    legal = [k for k in chunks if k.startswith("legal/")]
    # 27 LegalBench tasks and the judged rule_explain (issue 27) share one pooled rule: one item a look each
    assert len(legal) == 28 and all(pooled[k] == 28 and chunks[k] == 1 for k in legal)
    assert set(chunks) == {f"{s.name}/{t.name}" for s in suites for t in s.tasks}
    assert set(task_chunks(suites, QUICK, pooled).values()) == {1}  # the smoke run: one item per task


def test_quick_reports_say_smoke_run_on_every_page(tmp_path):
    html, md = tmp_path / "report.html", tmp_path / "report.md"
    html.write_text("<!doctype html><html><head><title>t</title></head><body class=\"x\"><h1>tunegate</h1></body></html>")
    md.write_text("# tunegate report\n\nbody\n")
    _label_smoke(html, md)
    text = md.read_text()
    assert text.startswith("# tunegate report\n\n> **Smoke run") and "not evidence" in text and text.endswith("body\n")
    page = html.read_text()
    body = page.index('<body class="x">') + len('<body class="x">')
    assert page[body:].startswith('<div role="alert" class="smoke-run"')
    assert "<code>tunegate demo --quick</code>" in page and "not evidence" in page and "`" not in page
    assert "not evidence" in SMOKE


def test_an_undecided_rule_says_how_many_more_items_per_task():
    check = SimpleNamespace(verdict="INCONCLUSIVE", plan_n=310, n=40)
    done = SimpleNamespace(verdict="PASS", plan_n=None, n=40)
    rule = SimpleNamespace(verdict="INCONCLUSIVE", plan_n=310, n=80, checks=[check, done])
    assert more_items(rule) == 270  # per task: the planner's n minus that task's n, not minus the rule's sum
    assert "≈310 items per task" in fmt_plan(rule) and "≈270 more than evaluated here" in fmt_plan(rule)
    single = SimpleNamespace(verdict="INCONCLUSIVE", plan_n=50, n=60, checks=[])
    assert more_items(single) == 0 and "more than" not in fmt_plan(single)
    assert fmt_plan(SimpleNamespace(verdict="PASS", plan_n=5, n=1, checks=[])) == ""


def test_the_sequential_note_folds_a_suite_of_many_tasks():
    from harness.report.fmt import fmt_sequential

    evaluated = {"medical/pubmedqa_mc": 40, **{f"legal/t{i}": 1 for i in range(27)}}
    available = {"medical/pubmedqa_mc": 500, **{f"legal/t{i}": 4 for i in range(27)}}
    line = fmt_sequential({"method": "CS", "evaluated": evaluated, "available": available, "stopped": "futile"})
    assert "medical/pubmedqa_mc 40 of 500" in line and "legal (27 tasks) 27 of 108" in line
    assert "legal/t3" not in line and line.endswith("stopped: futile")


def test_the_demo_trains_the_shipped_recipes_without_train_time_suite_evaluation(tmp_path):
    import shutil

    import yaml

    from harness.flows.demo import _demo_recipe

    shutil.copy("adapters/lora.yaml", tmp_path / "lora.yaml")
    default = yaml.safe_load(_demo_recipe(tmp_path / "lora.yaml", DEFAULT).read_text())
    assert default["eval"] == {"suites": []} and default["data"]["eval_limit"] == 8
    assert default["train"]["max_steps"] == DEFAULT.max_steps and default["output"] == "../lora"
    quick_path = _demo_recipe(tmp_path / "lora.yaml", QUICK)
    quick = yaml.safe_load(quick_path.read_text())
    assert quick["train"]["max_steps"] == 1 and quick["data"]["limit"] == 8 and quick["data"]["eval_limit"] == QUICK.held_out == 2
    assert quick["output"] == "../lora-quick" and quick_path.parent.name == ".demo"
    before = quick_path.stat().st_mtime_ns
    _demo_recipe(tmp_path / "lora.yaml", QUICK)
    assert quick_path.stat().st_mtime_ns == before  # unchanged text is not rewritten (reuse checks stay valid)


def test_the_demo_shares_one_allowance_and_carries_time_left_over():
    """Issue 29: the evaluation gets what training and loading left of the 20 minutes (less the reserve for the
    reports); each adapter's first look takes half its share (the first 1.5 shares: it computes the base), less
    when those before it overran theirs."""
    import time

    from harness.flows.demo import FIRST_BUDGET, LEAST_MINUTES, Stage, adapter_minutes, eval_minutes

    assert DEFAULT.total_minutes == 20 and QUICK.total_minutes is None
    stages = [Stage("train", seconds=480.0), Stage("load", seconds=30.0)]
    assert eval_minutes(DEFAULT, stages) == 20 - 8.5 - DEFAULT.reserve_minutes
    assert eval_minutes(QUICK, stages) is None  # the smoke run keeps its per-adapter minutes
    assert eval_minutes(DEFAULT, [Stage("train", seconds=1500.0)]) == 0.0
    deadline = time.perf_counter() + 60 * 10.0
    first = adapter_minutes(10.0, deadline, 3, 3, first=True)
    assert abs(first - 10.0 * FIRST_BUDGET / (FIRST_BUDGET + 2)) < 0.01
    # later adapters: their planned share, though less was spent before them (the rest is pooled for later looks)
    assert abs(adapter_minutes(10.0, deadline, 2, 3, first=False) - 10.0 / (FIRST_BUDGET + 2)) < 0.01
    assert abs(adapter_minutes(10.0, deadline, 1, 3, first=False) - 10.0 / (FIRST_BUDGET + 2)) < 0.01
    # overrun: no more than an equal part of what is left
    assert abs(adapter_minutes(10.0, time.perf_counter() + 60 * 2.0, 2, 3, first=False) - 1.0) < 0.01
    assert adapter_minutes(10.0, time.perf_counter() - 60, 2, 3, first=False) == LEAST_MINUTES  # spent: one look


def test_later_looks_go_to_the_run_nearest_a_decision(capsys):
    """Issue 29: after the first looks, each look goes to the adapter whose next look has the highest index
    (progress toward a decision per CPU-second); a run with nothing left drops out, and the time ends the rest."""
    import time

    from harness.decide.allocate import Look
    from harness.flows.demo import later_looks

    class Run:
        def __init__(self, index: float, looks: int) -> None:
            self.index, self.left, self.seconds, self.taken = index, looks, 0.0, 0
            self.stopped: str | None = None
            self.decided_at: dict[int, int] = {}
            self.result = None

        def next_look(self, seconds_left: float) -> Look | None:
            assert seconds_left > 0
            if self.left == 0:
                self.stopped = "decided"
                return None
            return Look({("s", "t"): 5}, {("s", "t"): self.index})

        def take(self, look: Look) -> None:
            self.left -= 1
            self.taken += 1
            self.seconds += 0.01

    near, far = Run(0.5, 2), Run(0.1, 3)
    later_looks([("far", far), ("near", near)], time.perf_counter() + 60)
    assert near.taken == 2 and far.taken == 3 and near.stopped == far.stopped == "decided"
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert [line.split(":")[0] for line in lines[1:]] == ["near", "near", "far", "far", "far"]  # nearest first
    assert lines[0].startswith("later looks") and "5 items (5 t)" in lines[1]
    stuck = Run(0.3, 10**6)
    later_looks([("stuck", stuck)], time.perf_counter() + 0.05)  # the time ends a run that never decides
    assert 0 < stuck.taken < 10**6 and stuck.stopped is None


def test_an_undecided_rule_says_what_stopped_it_and_what_deciding_would_take():
    from harness.flows.until import reason_text

    budget = reason_text("budget", {"planned_n": 506, "split": 500, "evaluated": 30, "more_items": 476,
                                    "minutes": 12.4, "split_short": False})
    assert budget == ("ran out of budget: ≈476 more items per task would decide it by the planner (≈12.4 min at "
                      "the cost measured here)")
    short = reason_text("budget", {"planned_n": 900, "split": 60, "evaluated": 10, "more_items": 890,
                                   "minutes": 0.0, "split_short": True, "priced": 50})
    assert short == ("ran out of budget: ≈890 more items per task would decide it by the planner, more than the split "
                     "has left (under 0.1 min for the 50 items the split has left, at the cost measured here), so more "
                     "budget alone may not decide it")
    assert reason_text("items", {"planned_n": 40, "split": 16, "evaluated": 16}) == \
        "ran out of items: all 16 of its split evaluated; the planner asks for ≈40 per task at 80% power"
    assert "below 5%" in reason_text("futile", {"planned_n": 2000, "split": 50, "evaluated": 20})
    assert "people's ratings" in reason_text("people", {})
    projected = reason_text("budget", {"planned_n": 5, "split": 16, "evaluated": 6, "more_items": 4, "minutes": 0.2,
                                       "split_short": False, "projected": True})
    assert projected.startswith("ran out of budget: ≈4 more items per task would decide it by its interval's "
                                "projection (the planner's fixed-n figure is reached")
    unscored = reason_text("budget", {"split": 500, "evaluated": 2, "unscored": True})
    assert unscored == ("ran out of budget with 498 items left; no evaluated item has the score it reads yet (the "
                        "gate's detail says why)")


def test_the_smoke_run_cuts_generated_answers_and_says_so() -> None:
    from harness.data.suite import cap_generation, load_suite
    from harness.flows.demo import SMOKE_TOKENS

    full = load_suite("medical")
    lengths = {t.name: t.spec.generation.max_new_tokens for t in full.tasks if t.spec.generation}
    assert any(n > SMOKE_TOKENS for n in lengths.values())  # the shipped suite has longer answers to cut
    capped = cap_generation(load_suite("medical"), SMOKE_TOKENS)
    for task, spec in zip(capped.tasks, capped.spec.tasks):
        assert task.spec == spec  # the suite's spec and its tasks' agree (both are fingerprinted)
        if task.spec.kind in ("generate", "code"):
            assert task.spec.generation is not None
            assert task.spec.generation.max_new_tokens == min(lengths.get(task.name, 128), SMOKE_TOKENS)
        else:
            assert task.spec == full.task(task.name).spec
    assert capped.fingerprint() != full.fingerprint()  # nothing cached under the full lengths is reused
    assert f"cut at {SMOKE_TOKENS} tokens" in SMOKE and QUICK.max_new_tokens == SMOKE_TOKENS
    assert DEFAULT.max_new_tokens is None
