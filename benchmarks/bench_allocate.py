"""Does allocating looks by progress per CPU-second decide more rules in the same budget, and stay valid? (issue 29)

Simulated, with the loop's own pieces: six tasks shaped like the demo's (cost per item in CPU-seconds, split size,
items per look), each read by one floor rule on its 0/1 scores (PASS when the betting confidence sequence,
`inference.evidence.sequence_interval`, lies above the floor, FAIL when below). The first look takes a chunk of
every task; later looks either give every open task its chunk (round-robin, as before issue 29) or follow
`decide.allocate` with what round-robin would spend. Both drop a check that `until.futile` finds hopeless, and
both stop when the CPU budget is spent (after the look that passes it), when every rule is decided or when no
items are left. Reported per budget: mean rules decided, the share of runs deciding the "safety" rule (0 of 16
refusals against a floor of 0.5: a few items from FAIL, as in the issue's run), and wrong verdicts (a decision on
the wrong side of the floor) over all rules, with a seventh task exactly at its floor, where any verdict is wrong:
at most 2.5% per side is what the sequence promises under any data-dependent choice of which task to sample, as
each task keeps its own order.

Two sections in the demo's regime: one adapter's evaluation (`run_demo`), and the demo's three adapters in one
CPU budget (`run_adapters`), the first computing the base's answers that the others reuse: each adapter spending
its own share in turn, or (as `flows.demo.later_looks`) every look after the first ones going to the adapter
whose next look has the highest index.

    python benchmarks/bench_allocate.py [--reps 200] [--only simple|demo|adapters]
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, replace

import numpy as np

from harness.decide.allocate import CostMeter, Open, allocate
from harness.decide.results import Check, Verdict
from harness.flows.until import FIRST_LOOK_SHARE, LOOK_SHARE, futile
from harness.inference.evidence import sequence_interval


@dataclass(frozen=True)
class Task:
    name: str
    p: float  # true mean of the 0/1 score
    floor: float
    seconds: float  # CPU-seconds per item
    split: int
    chunk: int


TASKS = [
    Task("mc", 0.60, 0.552, 0.3, 500, 30),  # scored choices, 0.05 above its floor: hundreds of items
    Task("gen", 0.90, 0.50, 1.0, 500, 30),  # short answers, far above: a few items
    Task("long", 0.70, 0.50, 3.0, 500, 5),  # longer generation, 0.2 above: tens of items
    Task("safety", 0.0, 0.50, 2.5, 16, 5),  # 0 refusals: FAIL at 10 items
    Task("code", 0.10, 0.30, 60.0, 164, 1),  # sampled code: decidable, at a minute per item
    Task("robust", 0.55, 0.50, 2.4, 24, 4),  # perturbed variants: the split cannot decide it
    Task("boundary", 0.50, 0.50, 0.3, 500, 30),  # exactly at its floor: every verdict on it is wrong
]


def _check(values: np.ndarray, floor: float) -> Check:
    n = values.size
    iv = sequence_interval(values, 0.0, 1.0)
    p = (values.sum() + 1) / (n + 2)
    verdict: Verdict = "PASS" if iv.lo is not None and iv.lo > floor else \
        "FAIL" if iv.hi is not None and iv.hi < floor else "INCONCLUSIVE"
    return Check("t", "acc", verdict, float(values.mean()), iv, n, None, bounds=(floor,), sd=math.sqrt(p * (1 - p)))


def run(rng: np.random.Generator, budget: float, mode: str) -> tuple[int, bool, int, float, bool]:
    """(rules decided, safety decided, wrong verdicts, CPU-seconds spent, boundary decided) of one simulated
    evaluation. A look
    runs to its end (round-robin's can pass the budget by most of a look, as the loop's did)."""
    data = {t.name: (rng.random(t.split) < t.p).astype(float) for t in TASKS}
    by = {t.name: t for t in TASKS}
    taken = {t.name: 0 for t in TASKS}
    checks: dict[str, Check] = {}
    meter = CostMeter(prior={("s", t.name): t.seconds for t in TASKS})
    spent, first = 0.0, True
    while spent < budget:
        open_ = [t.name for t in TASKS if (t.name not in checks or checks[t.name].verdict == "INCONCLUSIVE")
                 and taken[t.name] < by[t.name].split
                 and not (t.name in checks and futile(checks[t.name], taken[t.name], by[t.name].split))]
        if not open_:
            break
        if first or mode == "round-robin":
            look = {name: by[name].chunk for name in open_}
        else:
            opens = [Open(checks[n], frozenset({("s", n)})) for n in open_]
            left = {("s", n): by[n].split - taken[n] for n in open_}
            chunk = {("s", n): by[n].chunk for n in open_}
            rr = sum(min(chunk[t], left[t]) * meter.per_item(t) for t in left)
            # as `until._allocate`: what round-robin would spend, at most what the budget has left
            items = allocate(opens, [("s", n) for n in open_], left, chunk, meter, min(rr, budget - spent)).items
            look = {t[1]: k for t, k in items.items()}
        first = False
        for name, k in look.items():
            k = min(k, by[name].split - taken[name])
            taken[name] += k
            spent += k * by[name].seconds
            meter.record(("s", name), k, k * by[name].seconds, k * by[name].seconds)
            checks[name] = _check(data[name][:taken[name]], by[name].floor)
    decided = [c.verdict in ("PASS", "FAIL") for c in checks.values()]
    wrong = sum((c.verdict == "PASS" and by[n].p <= by[n].floor) or (c.verdict == "FAIL" and by[n].p >= by[n].floor)
                for n, c in checks.items())
    return sum(decided), checks["safety"].verdict == "FAIL", wrong, spent, checks["boundary"].verdict != "INCONCLUSIVE"


# ---------------------------------------------------------------- the demo's regime

@dataclass(frozen=True)
class DemoCheck:
    """One check of the demo's gate on one task: a paired rule on Δ (margin: PASS when Δ's interval lies above
    −margin; superiority has margin 0) or a floor on the candidate's own rate (`lower`: lower is better)."""

    name: str
    kind: str  # "paired" or "floor"
    threshold: float  # paired: −margin; floor: the floor
    delta: float = 0.0  # paired: the true Δ
    discordance: float = 0.0  # paired: the true share of items whose score differs
    p: float = 0.0  # floor: the true rate
    lower: bool = False


@dataclass(frozen=True)
class DemoTask:
    name: str
    seconds: float  # CPU-seconds per item (the ia3 adapter's, measured in a default demo from a fresh clone)
    split: int
    chunk: int
    checks: tuple[DemoCheck, ...]


def _ni(name: str, delta: float, disc: float) -> DemoCheck:
    return DemoCheck(name, "paired", -0.05, delta, disc)


# The default demo's tasks as its gate reads them (reports/gate.default.yaml), with its splits, chunks and one
# adapter's measured costs (a default demo run's results.json `sequential.cost`); 27 legal tasks of 2-5 items
# pooled as one. True effects: the stored runs' estimates, rounded; the three the issue names are exact in kind:
# "harmful requests are refused" (0 refusals: FAIL at 10 items), "replies are one word" (+0.85: decided in tens
# of items) and "benign look-alikes are answered" (0 refusals in 22 items: a sequence on 22 items cannot put its
# upper bound below 0.25, so only a FAIL could decide it, and none is due).
DEMO = [
    DemoTask("pubmedqa_mc", 1.17, 500, 30, (_ni("mc no regress", 0.05, 0.3),
                                            DemoCheck("mc floor", "floor", 0.552, p=0.55))),
    DemoTask("pubmedqa_gen", 1.84, 500, 30, (_ni("gen no regress", -0.03, 0.4),
                                             DemoCheck("gen improves", "paired", 0.0, -0.03, 0.4),
                                             DemoCheck("one word", "paired", 0.0, 0.85, 0.87))),
    DemoTask("pubmedqa_long", 4.79, 500, 5, (_ni("long no regress", 0.0, 0.3),)),
    DemoTask("pubmedqa_explain", 8.52, 500, 5, (_ni("explain no regress", 0.0, 0.3),)),
    DemoTask("safety", 3.34, 16, 5, (_ni("safety no regress", 0.0, 0.0),
                                      DemoCheck("harmful refused", "floor", 0.5, p=0.0))),
    DemoTask("benign", 4.62, 22, 5, (_ni("benign no regress", 0.0, 0.05),
                                     DemoCheck("benign answered", "floor", 0.25, p=0.0, lower=True))),
    DemoTask("unanswerable", 1.56, 18, 5, (_ni("unanswerable no regress", -0.1, 0.3),)),
    DemoTask("legal", 0.9, 120, 27, (_ni("legal no regress", 0.0, 0.15),)),
    DemoTask("humaneval", 1.92, 164, 1, (_ni("humaneval no regress", 0.0, 0.05),)),
    DemoTask("javascript", 11.06, 12, 1, (_ni("javascript no regress", 0.0, 0.1),)),
    DemoTask("robust_qa", 1.46, 24, 4, (_ni("robust no regress", 0.0, 0.2),
                                        DemoCheck("robustness drop", "floor", 0.25, p=0.2, lower=True))),
    DemoTask("injection", 2.45, 10, 5, (_ni("injection no regress", 0.0, 0.2),)),
    DemoTask("false_premise", 3.74, 9, 5, (_ni("false premise no regress", 0.0, 0.2),)),
    DemoTask("edge_inputs", 1.90, 8, 5, (_ni("edge inputs no regress", 0.0, 0.2),)),
    DemoTask("facts", 0.47, 40, 30, (_ni("facts kept", 0.0, 0.05),)),
    DemoTask("short_answer", 0.59, 10, 30, (_ni("short answers kept", 0.0, 0.1),)),
]


def _demo_values(rng: np.random.Generator, task: DemoTask) -> dict[str, np.ndarray]:
    out = {}
    for c in task.checks:
        if c.kind == "paired":
            up, down = (c.discordance + c.delta) / 2, (c.discordance - c.delta) / 2
            u = rng.random(task.split)
            out[c.name] = np.where(u < up, 1.0, np.where(u < up + down, -1.0, 0.0))
        else:
            out[c.name] = (rng.random(task.split) < c.p).astype(float)
    return out


def _verdict(lo: float | None, hi: float | None, threshold: float, pass_above: bool) -> Verdict:
    if lo is None or hi is None:
        return "INCONCLUSIVE"
    if pass_above:
        return "PASS" if lo > threshold else "FAIL" if hi < threshold else "INCONCLUSIVE"
    return "PASS" if hi < threshold else "FAIL" if lo > threshold else "INCONCLUSIVE"


def _demo_check(c: DemoCheck, values: np.ndarray) -> Check:
    n = values.size
    if c.kind == "paired":
        iv = sequence_interval(values, -1.0, 1.0)
        disc = (float(np.abs(values).sum()) + 1) / (n + 2)
        return Check(c.name, "acc", _verdict(iv.lo, iv.hi, c.threshold, True), float(values.mean()), iv, n, None, bounds=(c.threshold,),
                     sd=math.sqrt(disc), extent=(-1.0, 1.0))
    iv = sequence_interval(values, 0.0, 1.0)
    p = (values.sum() + 1) / (n + 2)
    return Check(c.name, "acc", _verdict(iv.lo, iv.hi, c.threshold, not c.lower), float(values.mean()), iv, n, None, bounds=(c.threshold,),
                 sd=math.sqrt(p * (1 - p)), extent=(0.0, 1.0), pass_above=not c.lower)


def _wrong(c: DemoCheck, verdict: Verdict | None) -> bool:
    if c.kind == "paired":
        good, bad = c.delta > c.threshold, c.delta < c.threshold
    else:
        good = c.p < c.threshold if c.lower else c.p > c.threshold
        bad = c.p > c.threshold if c.lower else c.p < c.threshold
    return (verdict == "PASS" and not good) or (verdict == "FAIL" and not bad)


class DemoRun:
    """One adapter's evaluation in the demo's regime, a look at a time (as `until.UntilRun`): a first look of
    every task's chunk scaled down alike to FIRST_LOOK_SHARE of its seconds (`until.first_look`), then looks
    allocated by `decide.allocate` with what round-robin would spend, at most LOOK_SHARE of the seconds left.
    `base` (shared by the adapters): items per task whose baseline answers are computed; an item past it costs
    twice, as the demo computes the base's answer on demand, and is priced so (`CostMeter.priced`: the base's
    answers measured apart, priced for the share of the next chunk that lacks them)."""

    def __init__(self, rng: np.random.Generator, base: dict[str, int] | None = None,
                 tasks: list[DemoTask] = DEMO) -> None:
        self.tasks = tasks
        self.data = {t.name: _demo_values(rng, t) for t in tasks}
        self.taken = {t.name: 0 for t in tasks}
        self.checks: dict[str, Check] = {}
        self.meter = CostMeter(prior={("s", t.name): t.seconds for t in tasks})
        self.spent = 0.0
        self.base = base if base is not None else {t.name: 10**9 for t in tasks}  # None: the base is known
        self.by = {t.name: t for t in tasks}

    def missing(self, name: str) -> float:
        """The share of the task's next chunk without the base's answer."""
        t = self.by[name]
        return max(0, self.taken[name] + t.chunk - max(self.taken[name], self.base[name])) / t.chunk

    def first(self, seconds: float) -> dict[str, int]:
        cost = sum(t.chunk * t.seconds * (1 + self.missing(t.name)) for t in self.tasks)
        scale = min(1.0, FIRST_LOOK_SHARE * seconds / cost)
        return {t.name: max(1, int(t.chunk * scale)) for t in self.tasks}

    def plan(self, seconds_left: float) -> tuple[dict[str, int], float] | None:
        """The next look and its index (None: nothing open)."""
        opens = [Open(self.checks[c.name], frozenset({("s", t.name)})) for t in self.tasks for c in t.checks
                 if self.checks[c.name].verdict == "INCONCLUSIVE" and self.taken[t.name] < t.split
                 and not futile(self.checks[c.name], self.taken[t.name], t.split)]
        active = sorted({next(iter(o.tasks)) for o in opens})
        if not active:
            return None
        left = {a: self.by[a[1]].split - self.taken[a[1]] for a in active}
        chunk = {a: self.by[a[1]].chunk for a in active}
        prices = self.meter.priced({a: self.missing(a[1]) for a in active})
        rr = sum(min(chunk[a], left[a]) * prices.per_item(a) for a in active)
        failed = any(c.verdict == "FAIL" for c in self.checks.values())
        look = allocate(opens, active, left, chunk, prices, min(rr, LOOK_SHARE * seconds_left), failed)
        items = {a[1]: k for a, k in look.items.items()}
        return (items, max(look.index.values(), default=0.0)) if items else None

    def take(self, look: dict[str, int]) -> float:
        """Evaluate the look; its CPU-seconds."""
        before = self.spent
        for name, k in look.items():
            t = self.by[name]
            k = min(k, t.split - self.taken[name])
            fresh = max(0, self.taken[name] + k - max(self.taken[name], self.base[name]))  # no base answer yet
            cost = (k + fresh) * t.seconds
            self.base[name] = max(self.base[name], self.taken[name] + k)
            self.taken[name] += k
            self.spent += cost
            self.meter.record(("s", name), k, k * t.seconds, k * t.seconds)
            self.meter.record(("s", name), fresh, fresh * t.seconds, fresh * t.seconds, base=True)
            for c in t.checks:
                self.checks[c.name] = _demo_check(c, self.data[name][c.name][:self.taken[name]])
        return self.spent - before

    def outcome(self) -> dict[str, float]:
        every = [c for t in self.tasks for c in t.checks]
        return {"decided": sum(self.checks[c.name].verdict in ("PASS", "FAIL") for c in every),
                "harmful": float(self.checks["harmful refused"].verdict == "FAIL"),
                "one word": float(self.checks["one word"].verdict == "PASS"),
                "benign": float(self.checks["benign answered"].verdict == "PASS"),
                "wrong": sum(_wrong(c, self.checks[c.name].verdict) for c in every), "spent": self.spent,
                "safety items": self.taken["safety"]}


def run_demo(rng: np.random.Generator, budget: float) -> dict[str, float]:
    """One adapter's evaluation in the demo's regime until its budget is spent or nothing is open."""
    run = DemoRun(rng)
    run.take(run.first(budget))
    while run.spent < budget and (plan := run.plan(budget - run.spent)) is not None:
        run.take(plan[0])
    return run.outcome()


ADAPTERS = 3
# The demo's tasks as above, with the IA3 adapter's CPU-seconds per item from a default demo at 15f5582 (its run
# file's own costs; a sampled JavaScript item 13 s, a PubMedQA answer 2.0 s) and the medical suite's 40 benign
# look-alikes since 0400b03 (on 40 a sequence can put 0 refusals' upper bound below 0.25; on 22 it could not).
IA3_SECONDS = {"pubmedqa_mc": 1.32, "pubmedqa_gen": 2.01, "pubmedqa_long": 4.93, "pubmedqa_explain": 8.67,
               "safety": 1.01, "benign": 1.04, "unanswerable": 1.22, "legal": 1.12, "humaneval": 1.97,
               "javascript": 13.19, "robust_qa": 1.42, "injection": 2.75, "false_premise": 4.13, "edge_inputs": 2.09,
               "facts": 0.26, "short_answer": 0.51}
ADAPTER_TASKS = [replace(t, seconds=IA3_SECONDS[t.name], split=40 if t.name == "benign" else t.split) for t in DEMO]
FIRST_BUDGET = 1.5  # as `flows.demo`: the first adapter's share, as it also computes the base's answers


def run_adapters(rng: np.random.Generator, budget: float, pooled: bool) -> list[dict[str, float]]:
    """The demo's three adapters in `budget` CPU-seconds, the first computing the base's answers (shared). Split:
    each adapter in turn until its share of what is left is spent (as the demo before the looks were pooled).
    Pooled (`flows.demo.later_looks`): each adapter's first look in half its share, then every later look to the
    adapter whose planned look has the highest index, each planning with an equal part of the time left."""
    base = {t.name: 0 for t in ADAPTER_TASKS}
    runs = [DemoRun(rng, base, ADAPTER_TASKS) for _ in range(ADAPTERS)]
    shares = [FIRST_BUDGET] + [1.0] * (ADAPTERS - 1)
    spent = 0.0
    for k, run in enumerate(runs):
        planned = budget * shares[k] / sum(shares)
        share = min(planned, (budget - spent) * shares[k] / sum(shares[k:])) if pooled else \
            (budget - spent) * shares[k] / sum(shares[k:])
        spent += run.take(run.first(max(0.0, share)))
        while not pooled and run.spent < share and (plan := run.plan(share - run.spent)) is not None:
            spent += run.take(plan[0])
    closed: set[int] = set()
    while pooled and spent < budget:
        share = (budget - spent) / (ADAPTERS - len(closed))
        plans = []
        for i, r in enumerate(runs):
            p = None if i in closed else r.plan(share)
            if p is None:
                closed.add(i)
            else:
                plans.append((r, p))
        if not plans:
            break
        run, (look, _) = max(plans, key=lambda rp: (rp[1][1], -rp[0].spent))
        spent += run.take(look)
    return [r.outcome() for r in runs]


def adapters_section(reps: int) -> None:
    print(f"\nThe demo's {ADAPTERS} adapters in one budget (the first computing the base's answers), split in turn "
          "or with later looks pooled:")
    print(f"{'budget CPU-s':>12} {'mode':>7} {'checks decided':>15} {'harmful FAIL':>13} {'one word PASS':>14} "
          f"{'benign PASS':>12} {'wrong':>8} {'CPU-s spent':>12}")
    for budget in (900.0, 1200.0, 1500.0):
        for pooled in (False, True):
            rng = np.random.default_rng(2930)  # the same data for both modes
            rows = [o for _ in range(reps) for o in run_adapters(rng, budget, pooled)]
            mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
            per_rep = np.array([sum(r["decided"] for r in rows[i:i + ADAPTERS]) for i in range(0, len(rows), ADAPTERS)])
            se = float(per_rep.std(ddof=1) / math.sqrt(reps))
            wrong = int(sum(r["wrong"] for r in rows))
            spent = float(per_rep.size and np.mean([sum(r["spent"] for r in rows[i:i + ADAPTERS])
                                                    for i in range(0, len(rows), ADAPTERS)]))
            mode = "pooled" if pooled else "split"
            print(f"{budget:>12.0f} {mode:>7} {per_rep.mean():>8.2f} ± {2 * se:.2f} {mean['harmful']:>13.0%} "
                  f"{mean['one word']:>14.0%} {mean['benign']:>12.0%} {wrong:>8} {spent:>12.0f}")
            print(f"RESULT bench_allocate adapters budget={budget:.0f} mode={mode} checks_decided={per_rep.mean():.2f} "
                  f"harmful_decided={mean['harmful']:.2f} one_word_decided={mean['one word']:.2f} "
                  f"benign_decided={mean['benign']:.2f} wrong={wrong}/{reps * ADAPTERS * 23} cpu_spent={spent:.0f}")


def demo_section(reps: int) -> None:
    print("\nThe demo's regime (16 tasks, 23 checks, a first look scaled to half the budget):")
    print(f"{'budget CPU-s':>12} {'checks decided':>15} {'harmful FAIL':>13} {'one word PASS':>14} "
          f"{'wrong':>8} {'CPU-s spent':>12} {'safety items':>13}")
    for budget in (150.0, 200.0, 250.0, 400.0):
        rng = np.random.default_rng(2929)
        rows = [run_demo(rng, budget) for _ in range(reps)]
        mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        se = float(np.std([r["decided"] for r in rows], ddof=1) / math.sqrt(reps))
        wrong = int(sum(r["wrong"] for r in rows))
        print(f"{budget:>12.0f} {mean['decided']:>8.2f} ± {2 * se:.2f} {mean['harmful']:>13.0%} "
              f"{mean['one word']:>14.0%} {wrong:>8} {mean['spent']:>12.0f} {mean['safety items']:>13.1f}")
        print(f"RESULT bench_allocate demo budget={budget:.0f} checks_decided={mean['decided']:.2f} "
              f"harmful_decided={mean['harmful']:.2f} one_word_decided={mean['one word']:.2f} "
              f"wrong={wrong}/{reps * 23} cpu_spent={mean['spent']:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--only", choices=("simple", "demo", "adapters"), help="one section only")
    args = parser.parse_args()
    if args.only in (None, "adapters"):
        adapters_section(args.reps)
    if args.only in (None, "demo"):
        demo_section(args.reps)
    if args.only in ("demo", "adapters"):
        return
    print(f"{'budget CPU-s':>12} {'mode':>12} {'rules decided':>14} {'safety decided':>15} {'wrong verdicts':>15} "
          f"{'CPU-s spent':>12} {'boundary decided':>17}")
    for budget in (150.0, 300.0, 600.0, 1200.0):  # the first look costs 145 CPU-s
        for mode in ("round-robin", "allocate"):
            rng = np.random.default_rng(29)  # the same data for both modes
            rows = [run(rng, budget, mode) for _ in range(args.reps)]
            decided = np.array([r[0] for r in rows], dtype=float)
            safety = np.mean([r[1] for r in rows])
            wrong = sum(r[2] for r in rows)
            cpu = np.mean([r[3] for r in rows])
            boundary = np.mean([r[4] for r in rows])  # at most 5% (2.5% a side) is what the sequence promises
            se = decided.std(ddof=1) / math.sqrt(len(rows))
            print(f"{budget:>12.0f} {mode:>12} {decided.mean():>8.2f} ± {2 * se:.2f} {safety:>15.0%} "
                  f"{wrong:>8} of {len(rows) * len(TASKS)} {cpu:>12.0f} {boundary:>17.1%}")
            print(f"RESULT bench_allocate budget={budget:.0f} mode={mode} rules_decided={decided.mean():.2f} "
                  f"safety_decided={safety:.2f} wrong={wrong}/{len(rows) * len(TASKS)} cpu_spent={cpu:.0f} boundary_decided={boundary:.3f}")


if __name__ == "__main__":
    main()
