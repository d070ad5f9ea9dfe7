"""`tunegate demo`: the main job on the embedded default model.

Fine-tune with three methods, then evaluate each adapter against the base *until the gate is decided*
(`harness.flows.until`): items in one seeded random order, a chunk per task at a time, every rule judged after each
chunk with the betting confidence sequence; a check that even every item of its split would not decide stops
taking items (`until.futile`), and an adapter stops when every rule is PASS or FAIL or when only such checks are
left. Each adapter's first look takes a chunk of every task; every later look goes to the adapter whose next look
is nearest a decision per CPU-second (`later_looks`), until the evaluation's minutes run out. The base is loaded once; its answers are evaluated on demand, through the response
cache, and shared by the three adapters (same seed, same order), so each base item is computed once. Then the
reports, and an exit with the gate's status: 0 when every adapter passes, 1 when any fails, 3 when none fails
but some rule is still undecided when the budget runs out (the report says how many items would decide it).

`--quick` is a smoke run (one training step, one item per task): its verdicts are not evidence, and every page
says so.
"""

# Local imports: each stage imports its heavy modules (training, reports) when it starts, so that the demo
# shows its first stage at once.

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.core.fileio import atomic_write_text
from harness.core.quiet import active_log
from harness.run.engine import EvalSettings

SUITES = ["medical", "legal", "code", "adversarial", "general"]
RECIPES = ["lora", "ia3", "prompt-tuning"]
GATE_FILE = Path("reports/gate.default.yaml")
SEED = 0  # one evaluation order for the base and every adapter, so base answers are shared
# A smoke run cuts every generated answer (generate and code tasks) at this many tokens: long answers are most of
# its time, and it shows that the stages work, not what the model says.
SMOKE_TOKENS = 32
SMOKE = (f"Smoke run (`tunegate demo --quick`): one training step, about one item per task, generated answers cut "
         f"at {SMOKE_TOKENS} tokens. It shows that every stage works; its verdicts are not evidence. Run "
         "`tunegate demo` for verdicts that are.")


@dataclass(frozen=True)
class Sizes:
    """How much the demo does; --quick shrinks every knob and says so on every page."""

    name: str
    max_steps: int | None  # None: the shipped recipe's own
    train_rows: int | None
    chunk: int  # items per task between two looks of the sequential evaluation
    max_minutes: float  # per adapter when `total_minutes` is None (pooled: FIRST_BUDGET + adapters - 1 times this)
    max_items: int | None  # per adapter
    cheap: int = 1  # times `chunk` for cheap tasks (scored choices, short single answers)
    smoke: bool = False  # a smoke run: every page says its verdicts are not evidence
    held_out: int = 8  # held-out rows for the training loss curve (evaluated before and after training)
    # The whole demo's allowance in minutes (set-up excluded): the evaluation stage gets what training and loading
    # left of it, less `reserve_minutes` for the reports and the last look's overrun, shared by the adapters.
    total_minutes: float | None = None
    reserve_minutes: float = 1.5
    max_new_tokens: int | None = None  # every generated answer cut at this many tokens (None: the suites' own)


def task_chunks(suites: list[Any], sizes: Sizes, pooled: Mapping[str, int] | None = None) -> dict[str, int]:
    """Items per look for each task, by its cost, fixed before any answer is seen.

    `cheap` x chunk for multiple-choice and short single answers (most of the evidence per second), chunk for
    longer generation, a fifth of it for sampled code (several completions of up to 128 tokens each, run in the
    sandbox). Then divided by the model calls per item (a task with 7 perturbations costs 8) and by the tasks a
    pooled rule shares (`pooled`: task -> tasks in its pool; 27 legal tasks share one look), at least 1."""
    out = {}
    for suite in suites:
        for task in suite.tasks:
            gen = task.spec.generation
            if task.spec.kind == "code":
                n = max(1, sizes.chunk // 5)
            elif task.spec.kind == "multiple_choice" or (gen is not None and gen.max_new_tokens <= 16
                                                          and gen.samples == 1):
                n = sizes.chunk * sizes.cheap
            else:
                n = sizes.chunk
            key = f"{suite.name}/{task.name}"
            calls = 1 + len(task.spec.perturbations)
            out[key] = max(1, round(n / calls / (pooled or {}).get(key, 1)))
    return out


def pooled_tasks(spec: Any, reads: list[set[tuple[str, str]]]) -> dict[str, int]:
    """For each task that a pooled (micro or macro) rule reads (`reads`: `until.rule_tasks`): how many tasks share
    that pool (the largest)."""
    out: dict[str, int] = {}
    for rule, tasks in zip(spec.rules, reads):
        if rule.pool in ("micro", "macro") and len(tasks) > 1:
            for suite, task in tasks:
                out[f"{suite}/{task}"] = max(out.get(f"{suite}/{task}", 1), len(tasks))
    return out


# Budgets (2 quiet cores, set-up excluded): the default demo has 20 minutes in all. Training (about 2.1 min per
# recipe; nothing when an adapter is reused) and loading are measured as they happen, and what they leave, less
# 1.5 min for the reports and the last look's overrun, is the evaluation's. Each adapter has a share of it (the
# first FIRST_BUDGET shares: it also computes the base's answers, which the others reuse from the cache), and its
# first look takes a chunk of every task, scaled down to half of its share at the cost per item known
# (`until.first_look`: the adapters share one cost meter). Every later look, until the time is out, goes to the
# adapter whose next look is nearest a decision per CPU-second (`later_looks`, `decide.allocate`): "replies are one
# word" one item from PASS on one adapter comes before a long shot on another. Measured on a quiet 2-core machine:
# training 6.5 min; the first adapter's first look with the base's answers 3.0 min, another adapter's 1.1-1.3 min.
# Quick: one look of one item per task per adapter, generated answers cut at SMOKE_TOKENS.
DEFAULT = Sizes("demo", max_steps=12, train_rows=None, chunk=5, max_minutes=1.0, max_items=None, cheap=6,
                total_minutes=20.0)
FIRST_BUDGET = 1.5
QUICK = Sizes("demo-quick", max_steps=1, train_rows=8, chunk=1, max_minutes=0.01, max_items=None, smoke=True,
              held_out=2, max_new_tokens=SMOKE_TOKENS)


@dataclass
class Stage:
    name: str
    seconds: float = 0.0
    # CPU seconds of this process and its children (code sandboxes): on a busy machine the wall time says
    # little, and CPU / cores bounds what a quiet machine needs.
    cpu_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_demo(quick: bool = False, store_path: str | None = None, root: Path = Path(".")) -> int:
    """Run the five stages and return the gate's exit status."""
    sizes = QUICK if quick else DEFAULT
    out = root / "reports" / sizes.name
    stages: list[Stage] = []
    if quick:
        print(f"\n{SMOKE}", flush=True)

    stage = _begin(stages, 1, f"fine-tuning with {', '.join(RECIPES)} on the PubMedQA train split (its answer format)")
    adapters = [_train(root, name, sizes, stage) for name in RECIPES]
    _end(stage)
    return decide(adapters, root / GATE_FILE, out, sizes, stages, store_path)


def decide(adapters: list[Path], gate: Path, out: Path, sizes: Sizes, stages: list[Stage],
           store_path: str | None = None, suites: list[str] = SUITES) -> int:
    """Stages 2-5: evaluate each adapter against the base until `gate` is decided, report, and return the exit
    status."""
    quick = sizes.smoke
    stage = _begin(stages, 2, f"loading the base model and the suites {', '.join(suites)}")
    session = _Session(gate, store_path, out / "runs" / "base", suites, sizes.max_new_tokens)
    _end(stage, f"{session.available} items available to the gate's rules; evaluation order seeded ({SEED})")

    looks = (f"per look {sizes.chunk * sizes.cheap} items of each cheap task, {sizes.chunk} of each longer "
             f"generation, {max(1, sizes.chunk // 5)} of each code task, fewer where an item has perturbed variants "
             "or a pooled rule's tasks share the look" if sizes.cheap > 1 else
             f"{sizes.chunk} item{'s' if sizes.chunk != 1 else ''} of each task")
    total = eval_minutes(sizes, stages)
    each = total is None
    if total is None:  # a budget per adapter: pooled, so that one adapter's unused minutes serve another's looks
        total = sizes.max_minutes * (FIRST_BUDGET + len(adapters) - 1)
    whole = "" if each else f", of the demo's {sizes.total_minutes:g} min"
    stage = _begin(stages, 3, f"evaluating each adapter until the gate is decided ({looks}; budget {total:.{1 if total >= 0.1 else 2}f} min "
                              f"for {len(adapters)} adapter{'s' if len(adapters) != 1 else ''}{whole}): each "
                              f"adapter's first look takes at most half its share ({FIRST_BUDGET:g} shares for the "
                              "first, which also computes the base's answers, shared by the others); every later look "
                              "goes to the adapter whose next look is nearest a decision per CPU-second")
    deadline = time.perf_counter() + 60 * total
    try:
        runs = []
        for k, adapter in enumerate(adapters):
            minutes = adapter_minutes(total, deadline, len(adapters) - k, len(adapters), not session.base.samples)
            runs.append(session.first_look(adapter, out / "runs" / adapter.name, sizes, minutes, deadline))
        later_looks(runs, deadline)
        outcomes = [session.finish(name, run, stage) for name, run in runs]
        base = session.write_base()
    finally:
        session.close()
    _end(stage, f"base: {session.base_items} items evaluated on demand, shared by the {len(adapters)} adapters")

    stage = _begin(stages, 4, f"reports, gated with {gate}")
    gates = [o.gate for o in outcomes]
    _report(out, base, outcomes, quick)
    _end(stage)

    code = max(g.exit_code for g in gates)  # 1 (a failure) outranks 3 (inconclusive), which outranks 0
    _write_summary(out, sizes, stages, base, outcomes, code, suites)
    _print_verdicts(outcomes, quick)
    _print_ranking(gate, outcomes)
    _print_closing(out, code, quick)
    return code


def eval_minutes(sizes: Sizes, stages: list[Stage]) -> float | None:
    """The evaluation stage's minutes: the demo's allowance less the stages so far and the reserve (None: the
    per-adapter budget of `sizes.max_minutes`)."""
    if sizes.total_minutes is None:
        return None
    spent = sum(s.seconds for s in stages) / 60
    return max(0.0, sizes.total_minutes - spent - sizes.reserve_minutes)


# The least an adapter is given when the time is spent: its first look (a chunk of every task) always runs, so that
# every adapter has a verdict.
LEAST_MINUTES = 0.01


def adapter_minutes(total: float, deadline: float, adapters_left: int, adapters: int, first: bool) -> float:
    """One adapter's share of the evaluation's `total` minutes (the first, which also computes the base's answers,
    FIRST_BUDGET shares), less when the adapters before it overran theirs: at most its share of what is left
    until `deadline`. Its first look takes at most half of it (`until.first_look`); the rest is pooled."""
    share = FIRST_BUDGET if first else 1.0
    left = (deadline - time.perf_counter()) / 60
    planned = total * share / (FIRST_BUDGET + adapters - 1)
    return max(LEAST_MINUTES, min(planned, left * share / (share + adapters_left - 1)))


def later_looks(runs: list[tuple[str, Any]], deadline: float) -> None:
    """Every look after the first ones, until `deadline` or until no run has a look left: each to the run whose
    next look has the highest index (expected progress toward a decision per CPU-second, `decide.allocate`), so
    that a rule one item from a verdict on one adapter comes before a long shot on another. Each run plans with
    an equal part of the time left (a look takes at most half of that, `until.LOOK_SHARE`), so looks stay short
    enough to change course. Choosing the run from the data changes no error rate: each run's confidence
    sequences hold at any data-dependent stopping time."""
    first = True
    while (left := deadline - time.perf_counter()) > 0:
        open_runs = [(name, run) for name, run in runs if run.stopped is None]
        plans = [(name, run, look) for name, run in open_runs
                 if (look := run.next_look(left / max(1, len(open_runs)))) is not None]
        if not plans:
            return
        if first:
            print("      later looks, each to the adapter whose next look is nearest a decision per CPU-second:",
                  flush=True)
            first = False
        # the highest index; where no run can project one (every look round-robin), the run with least time so far
        name, run, look = max(plans, key=lambda p: (max(p[2].index.values(), default=0.0), -p[1].seconds))
        before = set(run.decided_at)
        spent = run.seconds
        run.take(look)
        decided = [f"{run.result.rules[i].verdict} '{run.result.rules[i].name}'" for i in sorted(run.decided_at)
                   if i not in before]
        print(f"        {name}: {_look_items(look.items)} ({run.seconds - spent:.0f} s; "
              f"{max(0.0, deadline - time.perf_counter()) / 60:.1f} min left)"
              + (f": {', '.join(decided)}" if decided else ""), flush=True)


def _look_items(items: Mapping[tuple[str, str], int], each: int = 3) -> str:
    """A look's items in a few words: the tasks with the most, and how many more."""
    ranked = sorted(((n, task) for (_, task), n in items.items() if n > 0), reverse=True)
    words = ", ".join(f"{n} {task}" for n, task in ranked[:each])
    more = len(ranked) - each
    return f"{sum(items.values())} items ({words}{f' and {more} more tasks' if more > 0 else ''})"


class _Session:
    """The base loaded once, the store, the suites and the gate: what every adapter's sequential run shares."""

    def __init__(self, gate: Path, store_path: str | None, base_dir: Path, suites: list[str],
                 max_new_tokens: int | None = None) -> None:
        from harness.core.api import sha256_json
        from harness.data.runs import Run
        from harness.data.suite import cap_generation, load_suite
        from harness.decide.gate import load_gate
        from harness.flows.until import rule_tasks
        from harness.models import load_backend
        from harness.run.engine import assemble_results
        from harness.storage.store import Store

        self.gate = gate
        self.settings = EvalSettings(full=True)  # the sequential order draws from every row
        self.suites = [load_suite(name) for name in suites]
        if max_new_tokens is not None:
            self.suites = [cap_generation(s, max_new_tokens) for s in self.suites]
        self.backend = load_backend(None)
        self.backend.set_adapter(None)
        from harness.scoring import judging  # like the imports above: the demo loads models only once it runs

        # judged tasks are graded by the role's suggested (embedded) model
        self.judges, _ = judging.bind(self.suites, {})
        fp = self.backend.fingerprint()
        self.model_info = {"spec": "smollm2-135m", "adapter": None, "fingerprint": fp,
                           "fingerprint_hash": sha256_json(fp)}
        self.store = Store(store_path)
        from harness.decide.allocate import CostMeter

        # One cost meter for every adapter: the first measures each task's cost per item, so the next ones size
        # their first look by it (`until.first_look`) rather than by the prior. The base's answers the first
        # adapter computes are measured apart: each run prices them only for the items it would compute them for
        # (`allocate.CostMeter.priced`), which the next adapters mostly find in the cache.
        self.meter = CostMeter()
        spec, _ = load_gate(gate)
        reads = rule_tasks(spec, self.suites, str(gate))
        self.pooled = pooled_tasks(spec, reads)
        counts = {(s.name, t.name): len(t.samples(None, True)) for s in self.suites for t in s.tasks}
        self.available = sum(counts[t] for t in set().union(*reads))
        # The base starts with no answers: each adapter's run evaluates the ones it needs on demand and adds them
        # to this run, so the next adapter (same seeded order) finds them here.
        results = assemble_results("demo-base", self.model_info, self.suites, [], [], self.settings)
        self.base = Run(results, [], base_dir, "base")

    @property
    def base_items(self) -> int:
        return len({(s["suite"], s["task"], s.get("source_id") or s["sample_id"]) for s in self.base.samples})

    def first_look(self, adapter: Path, out: Path, sizes: Sizes, minutes: float,
                   deadline: float) -> tuple[str, Any]:
        """Start the adapter's sequential run and take its first look (a chunk of every task, at most half of
        `minutes`); the later looks are `later_looks`', until `deadline`."""
        from harness.flows.until import UntilRun, UntilSettings
        from harness.run.engine import check_capabilities

        check_capabilities(self.backend, self.suites, [str(adapter)])
        self.backend.check_adapter(str(adapter))
        until = UntilSettings(self.gate, str(self.base.path), sizes.max_items, None, sizes.chunk, SEED,
                              task_chunks(self.suites, sizes, self.pooled))
        run = UntilRun(self.backend, self.suites, self.store, self.settings, until, "smollm2-135m", str(adapter),
                       self.base, out, self.judges, self.meter, adapter.name, deadline)
        look = run.next_look(60 * minutes)
        if look is not None:
            run.take(look)
            print(f"        {adapter.name}: first look, {_look_items(look.items)} ({run.seconds:.0f} s)", flush=True)
        return adapter.name, run

    def finish(self, name: str, run: Any, stage: Stage) -> Any:
        """Write the adapter's run and print what it decided."""
        from harness.flows.until import summary

        outcome = run.finish("max_minutes")  # a run still open when the time is out
        stage.notes.append(f"{name}: {outcome.evaluated} of {outcome.available} items in "
                           f"{outcome.seconds:.0f} s, stopped: {outcome.stopped}"
                           + (f"; {_cache_note(outcome.results)}" if "timing" in outcome.results else ""))
        print(f"      {name}:", flush=True)
        for line in summary(outcome).splitlines():
            print(f"        {line}", flush=True)
        return outcome

    def write_base(self) -> Any:
        """The base's answers on every item any adapter evaluated, as a run directory (what the reports read)."""
        from harness.data.runs import load_run
        from harness.flows.until import _record_json
        from harness.run.engine import assemble_results, build_items, write_run_dir

        self.backend.set_adapter(None)
        keys = {(s["suite"], s["task"], s["sample_id"]) for s in self.base.samples}
        items = [i for i in build_items(self.backend, self.suites, self.settings, self.store)
                 if (i.task.suite.name, i.task.name, i.sample.sample_id) in keys]
        records = [_record_json(s) for s in self.base.samples]
        results = assemble_results("demo-base", self.model_info, self.suites, items, records, self.settings)
        write_run_dir(self.base.path, results, records)
        return load_run(self.base.path)

    def close(self) -> None:
        from harness.core import distributed

        self.store.close()
        distributed.shutdown()


def _begin(stages: list[Stage], number: int, text: str) -> Stage:
    print(f"\n[{number}/5] {text}", flush=True)
    stages.append(Stage(text))
    stages[-1].seconds = time.perf_counter()
    stages[-1].cpu_seconds = _cpu()
    return stages[-1]


def _end(stage: Stage, *notes: str) -> None:
    stage.seconds = round(time.perf_counter() - stage.seconds, 1)
    stage.cpu_seconds = round(_cpu() - stage.cpu_seconds, 1)
    stage.notes += [n for n in notes if n]
    for note in stage.notes:
        print(f"      {note}")
    print(f"      done in {stage.seconds} s (CPU {stage.cpu_seconds} s)", flush=True)


def _cache_note(results: dict[str, Any]) -> str:
    timing = results["timing"]
    if timing["cache_misses"] == 0:
        return f"reused every answer from the cache ({timing['cache_hits']} requests; nothing changed)"
    speed = timing.get("tokens_per_second")
    rate = f"; {timing.get('tokens_processed', 0)} tokens at {speed:.0f} tokens/s" if speed else ""
    return f"{timing['cache_misses']} requests computed, {timing['cache_hits']} from the cache{rate}"


def _train(root: Path, name: str, sizes: Sizes, stage: Stage) -> Path:
    from harness.train import is_up_to_date, load_recipe, train

    recipe = _demo_recipe(root / "adapters" / f"{name}.yaml", sizes)
    if is_up_to_date(recipe):
        stage.notes.append(f"{name}: unchanged recipe, data and base: reusing the trained adapter")
        return load_recipe(recipe).output_dir
    out = train(recipe)
    try:
        speed = json.loads((out / "provenance.json").read_text(encoding="utf-8")).get("tokens_per_second")
    except (OSError, ValueError):
        speed = None
    stage.notes.append(f"{name}: trained into {os.path.normpath(out)}" + (f" ({speed:.0f} tokens/s)" if speed else ""))
    return out


def _demo_recipe(recipe: Path, sizes: Sizes) -> Path:
    """The shipped recipe as the demo trains it, written to adapters/.demo/: no suite evaluation during training
    (the demo's sequential evaluation replaces it), a few held-out rows for the loss curve, and the demo's steps
    and rows. It trains into adapters/<name>/ (adapters/<name>-quick/ for --quick)."""
    raw = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    if sizes.max_steps is not None:
        raw.setdefault("train", {})["max_steps"] = sizes.max_steps
    if sizes.train_rows is not None:
        raw["data"]["limit"] = min(raw["data"].get("limit") or sizes.train_rows, sizes.train_rows)
    raw["data"]["eval_limit"] = sizes.held_out
    raw["eval"] = {"suites": []}
    suffix = "-quick" if sizes.smoke else ""
    raw["output"] = f"../{recipe.stem}{suffix}"
    target = recipe.parent / ".demo" / f"{recipe.stem}{suffix}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    text = (f"# generated by `tunegate demo{' --quick' if sizes.smoke else ''}` from {recipe.name}\n"
            + yaml.safe_dump(raw, sort_keys=False))
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        atomic_write_text(target, text)  # rewritten only when it changes, so reuse checks stay valid
    return target


def _report(out: Path, base: Any, outcomes: list[Any], quick: bool) -> None:
    """Model cards, JUnit, verdict.json and the HTML and Markdown reports of the gated adapters."""
    from harness.data.runs import load_run
    from harness.decide.verdict import write_junit, write_verdict
    from harness.report.write import write_reports
    from harness.train import update_model_card

    candidates = []
    for outcome in outcomes:
        run = load_run(Path(outcome.gate.comparison.candidate.path))
        adapter_dir = Path(run.adapter["path"]) if run.adapter else None
        if adapter_dir is not None and adapter_dir.is_dir():
            update_model_card(adapter_dir, run.results)
        candidates.append(run)
    gates = [o.gate for o in outcomes]
    write_junit(gates, out / "junit.xml")
    write_verdict(gates, out / "verdict.json")
    runs = [base, *candidates]
    if quick:
        for run in runs:  # say so in every label of the report
            run.label = f"{run.label} (quick)"
    write_reports(runs, gate=gates, html_path=out / "report.html", md_path=out / "report.md")
    if quick:
        _label_smoke(out / "report.html", out / "report.md")


def _label_smoke(html_path: Path, md_path: Path) -> None:
    """Put the smoke-run notice at the top of both reports (a constant text: nothing to escape)."""
    md = md_path.read_text(encoding="utf-8")
    head, _, rest = md.partition("\n")
    atomic_write_text(md_path, f"{head}\n\n> **{SMOKE}**\n{rest}")
    html = html_path.read_text(encoding="utf-8")
    at = html.find(">", html.find("<body")) + 1
    banner = ('<div role="alert" class="smoke-run" style="background:#fff3cd;border:2px solid #b58100;'
              'padding:.6em 1em;margin:.5em 0;font-weight:bold">' + _html_code(SMOKE) + "</div>")
    atomic_write_text(html_path, html[:at] + banner + html[at:])


def _html_code(text: str) -> str:
    import html

    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _rules(outcome: Any) -> list[dict[str, Any]]:
    """Per rule: verdict, n, items available, and for an undecided rule the planner's n and how many more that is."""
    from harness.report.fmt import more_items

    out = []
    for rule, progress in zip(outcome.gate.rules, outcome.rules):
        row: dict[str, Any] = {"rule": rule.name, "verdict": rule.verdict, "n": rule.n,
                               "available": progress.available, "decided_at": progress.decided_at}
        if rule.verdict == "INCONCLUSIVE":
            row["planned_n"] = rule.plan_n
            row["more_items"] = more_items(rule)
            row["reason"] = progress.reason  # budget, items, futile or people (`until.undecided_reason`)
            row["need"] = progress.need
        out.append(row)
    return out


def _write_summary(out: Path, sizes: Sizes, stages: list[Stage], base: Any, outcomes: list[Any], code: int,
                   suites: list[str]) -> None:
    variants = {"base": _headline(base.results),
                **{o.gate.comparison.candidate.label: _headline(o.results) for o in outcomes}}
    summary = {
        "format": "tunegate.demo/2", "mode": sizes.name, "quick": sizes.smoke,
        "notice": SMOKE if sizes.smoke else None, "suites": suites,
        "sizes": {"max_steps": sizes.max_steps, "train_rows": sizes.train_rows, "chunk": sizes.chunk, "cheap_chunk_factor": sizes.cheap,
                  "max_new_tokens": sizes.max_new_tokens,
                  "max_minutes_per_adapter": sizes.max_minutes if sizes.total_minutes is None else None,
                  "total_minutes": sizes.total_minutes, "reserve_minutes": sizes.reserve_minutes,
                  "max_items_per_adapter": sizes.max_items,
                  "seed": SEED},
        "variants": variants,
        "gate": {o.gate.comparison.candidate.label: {
            "verdict": o.gate.verdict, "failed_rules": o.gate.failures, "inconclusive_rules": o.gate.inconclusive,
            "evaluated": o.evaluated, "available": o.available, "stopped": o.stopped, "seconds": round(o.seconds, 1),
            "rules": _rules(o)} for o in outcomes},
        "exit_code": code,
        "stages": [{"name": s.name, "seconds": s.seconds, "cpu_seconds": s.cpu_seconds, "notes": s.notes}
                   for s in stages],
    }
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


def _headline(results: dict[str, Any]) -> dict[str, Any]:
    """Suite-level figures of one run, for the summary."""
    return {suite: {name: m["value"] for name, m in data["metrics"].items()}
            for suite, data in results["suites"].items()}


def _print_ranking(gate: Path, outcomes: list[Any]) -> None:
    """Which method is better, on each gate rule's metric: the adapters paired item by item on the items both
    evaluated (each pair's confidence sequence at 1 − α/m, Bonferroni over the m pairs), ties where the data cannot
    separate them."""
    from harness.core.api import UserError
    from harness.data.runs import load_run
    from harness.decide.gate import load_gate
    from harness.decide.ranking import rank_runs, rule_keys
    from harness.report.ranking import lines

    if len(outcomes) < 2:
        return
    runs = [load_run(Path(o.gate.comparison.candidate.path)) for o in outcomes]
    spec, _ = load_gate(gate)
    print("      which method is better (every pair on the items both evaluated; all pairs of a line hold together "
          "at 95%, Bonferroni):")
    try:
        rankings = rank_runs(runs, rule_keys(spec, runs))
    except UserError as exc:
        print(f"        not ranked: {exc}")
        return
    for r in rankings:
        head, pairs = lines(r)  # one line when no pair is separated, with the n it rests on
        print(f"        {head}")
        for line in pairs:
            print(f"          {line}")
    sys.stdout.flush()


def _print_verdicts(outcomes: list[Any], quick: bool) -> None:
    """Per adapter: the gate's verdict, each rule's, and for an undecided rule why and what would decide it."""
    from harness.core.untrusted import excerpt
    from harness.flows.until import reason_text

    print("\n[5/5] verdict" + (" (smoke run: not evidence)" if quick else ""))
    for outcome in outcomes:
        gate = outcome.gate
        decided = sum(r.verdict in ("PASS", "FAIL") for r in gate.rules)
        print(f"      {excerpt(gate.comparison.candidate.label)}: {gate.verdict} ({decided} of "
              f"{len(gate.rules)} rules decided on {outcome.evaluated} of {outcome.available} items)")
        for row in _rules(outcome):
            more = ""
            if row["verdict"] == "INCONCLUSIVE":
                more = f"; {reason_text(row.get('reason'), row.get('need') or {})}"
            print(f"        {row['verdict']:<12} {excerpt(row['rule'])}: n {row['n']}{more}")


def _print_closing(out: Path, code: int, quick: bool) -> None:
    """The files written, the library log, and last the exit status (the ranking comes before it)."""
    for name in ("report.html", "report.md", "results.json", "junit.xml"):
        print(f"      {out / name}")
    if (log := active_log()) is not None:
        print(f"      library output (warnings, progress bars, trainer logs): {log}")
    meaning = {0: "every adapter passes the gate", 1: "the gate failed",
               3: "inconclusive: some rule is undecided (why, above); see `tunegate plan`"}[code]
    print(f"      exit status {code} ({meaning})")
    if quick:
        print(f"      {SMOKE}")
    sys.stdout.flush()
