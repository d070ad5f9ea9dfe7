"""Do method-vs-method verdicts keep their promises? Simultaneous coverage of rankings, and the gate's best of k.

Issue 29, item 1. harness.decide.ranking states "A > B" from pairwise intervals each at 1 − α/m (Bonferroni over the
m = k(k − 1)/2 pairs), so every stated order of one ranking should hold together at 1 − α; the gate with k candidates
judges each at α/k, so a false PASS of the picked one should stay within the single gate's rate.

1. Rankings (the real `rank`, on in-memory runs): k runs of 0/1 scores (Tango's interval) or bounded scores in
   [0, 1] (the betting interval), n items shared, each run's items correlated through a shared item effect (a share
   rho of the items draw one quantile for every run, as easy and hard items do). Truths: all runs equal (a null
   family), and spread means (0.1 apart). Figures: joint coverage (every pair's interval covers its true Δ) and the
   rate of rankings that state an order the truth lacks (a false "A > B" where Δ ≤ 0).
2. Best of k at a superiority rule's boundary (every candidate's true Δ is 0 against one shared baseline, so any
   PASS is false), with the gate's paired 0/1 interval: the rate at which some candidate passes when each is judged
   at α (naive) and at α/k (what `tunegate gate --candidate … --candidate …` does).

Criteria: joint coverage >= 0.95 and false-order rate <= 0.05 (within 2 Monte Carlo standard errors); best of k at
α/k: false PASS <= 2.5% (the single gate's one-sided rate) within 2 Monte Carlo SE.

Run: .venv/bin/python benchmarks/bench_ranking.py [--sims 300] [--seed 0]. Not part of the tests.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.data.runs import Run  # noqa: E402
from harness.decide.ranking import rank  # noqa: E402
from harness.inference.evidence import paired_binary_gate_interval  # noqa: E402

ALPHA = 0.05


def memory_runs(scores: np.ndarray) -> list[Run]:
    """Runs held in memory: one task, one metric (acc for 0/1 scores, a bounded registered one otherwise)."""
    metric = "acc" if np.isin(scores, (0.0, 1.0)).all() else "judge_score"
    out = []
    for j in range(scores.shape[1]):
        samples: list[Any] = [{"suite": "s", "task": "t", "sample_id": str(i), "source_id": None, "perturbation": None,
                               "prompt": str(i), "scores": {metric: float(v)}} for i, v in enumerate(scores[:, j])]
        results = {"suites": {"s": {"tasks": {"t": {"metrics": {metric: {"higher_is_better": True}}}},
                                    "metrics": {metric: {"higher_is_better": True}}}}}
        out.append(Run(results, samples, Path(f"r{j}"), f"r{j}"))
    return out


def draw(means: np.ndarray, n: int, rho: float, binary: bool, rng: np.random.Generator) -> np.ndarray:
    """n items × k runs; a share rho of the items use one quantile for all runs (a shared item effect)."""
    k = means.size
    u = rng.random((n, k))
    shared = rng.random(n) < rho
    u[shared] = rng.random((int(shared.sum()), 1))
    if binary:
        return (u < means).astype(float)
    conc = 4.0  # Beta(conc * m, conc * (1 - m)): mean m, bounded in [0, 1]
    return np.asarray(sps.beta.ppf(u, conc * means, conc * (1 - means)), dtype=float)


def ranking_cell(means: tuple[float, ...], n: int, rho: float, binary: bool, sims: int, seed: int
                 ) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    m = np.array(means)
    covered = wrong = 0
    for _ in range(sims):
        r = rank(memory_runs(draw(m, n, rho, binary, rng)), "s", "t", "acc" if binary else "judge_score")
        truth = {(f"r{i}", f"r{j}"): m[i] - m[j] for i in range(m.size) for j in range(m.size)}
        ok = True
        for p in r.pairs:
            t = truth[(p.a, p.b)]
            ok &= p.interval.defined and p.interval.lo <= t <= p.interval.hi  # type: ignore[operator]
        covered += ok
        wrong += any((p.relation == ">" and truth[(p.a, p.b)] <= 0) or (p.relation == "<" and truth[(p.a, p.b)] >= 0)
                     for p in r.pairs)
    return covered / sims, wrong / sims


def best_of_k(k: int, n: int, disc: float, sims: int, seed: int) -> tuple[float, float]:
    """(naive, adjusted) rate at which some of k candidates with true Δ = 0 passes superiority (lower bound > 0)."""
    rng = np.random.default_rng(seed)
    naive = adjusted = 0
    for _ in range(sims):
        base = rng.random(n) < 0.5
        hit_naive = hit_adj = False
        for _ in range(k):
            flip = rng.random(n) < disc
            cand = base ^ flip
            b, c = int((base & ~cand).sum()), int((~base & cand).sum())
            lo = paired_binary_gate_interval(b, c, n, alpha=ALPHA).lo
            hit_naive |= lo is not None and lo > 0
            lo = paired_binary_gate_interval(b, c, n, alpha=ALPHA / k).lo
            hit_adj |= lo is not None and lo > 0
        naive += hit_naive
        adjusted += hit_adj
    return naive / sims, adjusted / sims


def se(p: float, sims: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.01 * 0.99) / sims)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    fails: list[str] = []
    checked = 0
    print("1. Rankings: joint coverage of every pair's interval (each at 1 - 0.05/m) and false-order rate")
    print(f"{'scores':8} {'k':>2} {'n':>4} {'rho':>4} {'truth':8} {'coverage':>9} {'false order':>12}")
    worst_cov, worst_wrong = 1.0, 0.0
    for binary in (True, False):
        for k in (3, 4):
            for n in (30, 100, 300):
                if not binary and n == 300:
                    continue  # the betting interval costs more; 30 and 100 cover small and moderate n
                for rho in (0.0, 0.5):
                    for truth, means in (("equal", (0.6,) * k), ("spread", tuple(0.45 + 0.1 * j for j in range(k)))):
                        cov, wrong = ranking_cell(means, n, rho, binary, args.sims, args.seed + 7 * k + n)
                        checked += 1
                        worst_cov, worst_wrong = min(worst_cov, cov), max(worst_wrong, wrong)
                        mark = ""
                        if cov < 0.95 - 2 * se(cov, args.sims) or wrong > ALPHA + 2 * se(wrong, args.sims):
                            fails.append(f"{'0/1' if binary else 'bounded'} k {k} n {n} rho {rho} {truth}")
                            mark = "  !"
                        print(f"{'0/1' if binary else 'bounded':8} {k:>2} {n:>4} {rho:>4} {truth:8} {cov:>9.3f} "
                              f"{wrong:>12.3f}{mark}", flush=True)
    print("\n2. Best of k at a superiority boundary (true Δ 0 for every candidate): P(some candidate passes)")
    print(f"{'k':>2} {'n':>4} {'disc':>5} {'naive (each at α)':>18} {'at α/k':>8}")
    worst_sel = 0.0
    for k in (2, 3, 5):
        for n in (50, 200):
            for disc in (0.1, 0.3):
                naive, adj = best_of_k(k, n, disc, args.sims * 4, args.seed + 100 * k + n)
                checked += 1
                worst_sel = max(worst_sel, adj)
                mark = ""
                if adj > ALPHA / 2 + 2 * se(adj, args.sims * 4):
                    fails.append(f"best of {k} n {n} disc {disc}")
                    mark = "  !"
                print(f"{k:>2} {n:>4} {disc:>5} {naive:>18.3f} {adj:>8.3f}{mark}", flush=True)
    print(f"\n({time.perf_counter() - t0:.0f} s, {args.sims} rankings per cell, {4 * args.sims} gates per best-of-k "
          "cell; timings on a shared machine)")
    summary = (f"rankings: joint coverage >= {worst_cov:.3f}, false-order rate <= {worst_wrong:.3f}; best of k at α/k: "
               f"false PASS <= {worst_sel:.3f}")
    if fails:
        print(f"\nRESULT: {len(fails)} of {checked} checks FAIL ({summary}): {'; '.join(fails)}")
        return 1
    print(f"\nRESULT: all {checked} checks pass: {summary} (goals >= 0.95, <= 0.05, <= 0.025, within 2 MC SE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
