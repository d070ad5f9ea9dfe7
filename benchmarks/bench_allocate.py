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

    python benchmarks/bench_allocate.py [--reps 200]
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np

from harness.decide.allocate import CostMeter, Open, allocate
from harness.decide.results import Check
from harness.flows.until import futile
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
    verdict = "PASS" if iv.lo is not None and iv.lo > floor else "FAIL" if iv.hi is not None and iv.hi < floor \
        else "INCONCLUSIVE"
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args()
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
