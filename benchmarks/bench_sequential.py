"""Does "evaluate until decided" keep its error rates, and how many items does it save? (issue 17, part 2)

Paired 0/1 scores (accuracy): each item is right→wrong with probability (D − Δ)/2, wrong→right with (D + Δ)/2,
unchanged otherwise (D: discordance, Δ: true improvement). Items arrive in chunks of CHUNK; after each chunk a
rule is judged; the run stops when it is decided or MAX_ITEMS are used.

1. Validity at the decision boundary (a non-inferiority rule with margin m at Δ = −m; superiority at Δ = 0):
   - naive: re-test the fixed-n interval the gate uses on complete runs (continuity-adjusted Tango) after every
     chunk and stop at the first pass: the false-pass rate climbs far above 2.5%;
   - sequential: the betting confidence sequence of harness.inference.sequential (Waudby-Smith & Ramdas 2024), whose
     running intersection is valid at any stopping time: stays <= 2.5% (+ Monte Carlo error).
2. Items needed by the sequential rule at Δ = +0.10, +0.05, 0, −m and −m − 0.10 (where it should FAIL): mean and 90th percentile of the stopping
   n (a run that reaches MAX_ITEMS undecided counts as MAX_ITEMS), the share decided and passed, against the
   fixed n of harness/inference/power.py for the same error rates (one-sided 2.5%) and 80% power: the n `tunegate plan`
   asks (non-inferiority planned at Δ = 0, superiority at Δ = 0.05 when min_effect is 0), and the n a planner
   that knew the true Δ would ask.

Run: .venv/bin/python benchmarks/bench_sequential.py [--reps 2000] [--seed 0]. Not part of the tests.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.inference import power, sequential, stats  # noqa: E402

CHUNK = 20
MAX_ITEMS = 4000
MARGIN = 0.05
DISCORDANCES = (0.15, 0.3)
LIMIT = 0.025


def deltas(rng: np.random.Generator, reps: int, disc: float, delta: float) -> np.ndarray:
    u = rng.random((reps, MAX_ITEMS))
    p10, p01 = (disc - delta) / 2, (disc + delta) / 2
    return np.where(u < p10, -1.0, np.where(u < p10 + p01, 1.0, 0.0))


def at_look(first: np.ndarray) -> np.ndarray:
    """The look (a multiple of CHUNK) at which an exclusion first seen after item t is acted on; 0: never."""
    return np.where(first > 0, np.ceil(first / CHUNK) * CHUNK, 0).astype(int)


def sequential_decisions(d: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(stopping n, verdict) per run: 1 PASS (lower limit > threshold), -1 FAIL (upper limit < threshold),
    0 undecided at MAX_ITEMS."""
    y = (d + 1.0) / 2.0
    m = (threshold + 1.0) / 2.0
    passes = at_look(sequential.first_exclusion(y, m, upper=False))
    fails = at_look(sequential.first_exclusion(y, m, upper=True))
    big = MAX_ITEMS + 1
    p, f = np.where(passes > 0, passes, big), np.where(fails > 0, fails, big)
    stop = np.minimum(np.minimum(p, f), MAX_ITEMS)
    verdict = np.where(p < f, 1, np.where(f < p, -1, 0))
    return stop, verdict


def naive_pass_rate(d: np.ndarray, threshold: float, max_items: int) -> float:
    """Share of runs whose fixed-n Tango lower limit exceeds the threshold at some look up to max_items."""
    passed = np.zeros(d.shape[0], dtype=bool)
    b = np.cumsum(d == -1.0, axis=1)
    c = np.cumsum(d == 1.0, axis=1)
    for n in range(CHUNK, max_items + 1, CHUNK):
        lo, _ = stats.tango_bounds(b[:, n - 1], c[:, n - 1], n)
        passed |= lo > threshold
    return float(passed.mean())


def se(p: float, reps: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / reps)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    failures: list[str] = []
    print(f"paired 0/1 scores; chunk {CHUNK}; at most {MAX_ITEMS} items; {args.reps} simulated runs per cell; "
          f"one-sided error target {LIMIT:.1%}\n")

    print("1. false passes at the decision boundary (rate ± 2 Monte Carlo SE)")
    print(f"{'rule':<28} {'D':>5} {'naive, 1000 items':>18} {'naive, 4000 items':>18} {'sequential':>16}")
    for disc in DISCORDANCES:
        for rule, threshold, true in ((f"non-inferiority m={MARGIN}", -MARGIN, -MARGIN), ("superiority", 0.0, 0.0)):
            d = deltas(rng, args.reps, disc, true)
            naive_short = naive_pass_rate(d, threshold, 1000)
            naive_long = naive_pass_rate(d, threshold, MAX_ITEMS)
            _, verdict = sequential_decisions(d, threshold)
            seq = float(np.mean(verdict == 1))
            ok = seq <= LIMIT + 2 * se(LIMIT, args.reps)
            if not ok:
                failures.append(f"{rule}, D={disc}: sequential false-pass rate {seq:.4f}")
            print(f"{rule:<28} {disc:>5} {naive_short:>11.3f} ± {2 * se(naive_short, args.reps):.3f} "
                  f"{naive_long:>11.3f} ± {2 * se(naive_long, args.reps):.3f} "
                  f"{seq:>9.4f} ± {2 * se(seq, args.reps):.3f}{'' if ok else ' !'}")

    print("\n2. items needed by the sequential rule (stopping n; undecided runs count as "
          f"{MAX_ITEMS}) against the planner's fixed n (80% power, one-sided 2.5%)")
    print(f"{'rule':<28} {'D':>5} {'true Δ':>7} {'mean n':>7} {'p90 n':>6} {'decided':>8} {'PASS':>6} {'FAIL':>6} "
          f"{'plan n':>7} {'mean/plan':>9} {'plan n, Δ known':>16} {'mean/that':>9}")
    for disc in DISCORDANCES:
        for rule, threshold, plan_effect in ((f"non-inferiority m={MARGIN}", -MARGIN, 0.0),
                                             ("superiority", 0.0, 0.05)):
            margin = -threshold
            plan_n = power.paired_binary_n(margin, plan_effect, max(disc, plan_effect))
            for true in (0.10, 0.05, 0.0, -MARGIN, round(-MARGIN - 0.10, 10)):
                if rule == "superiority" and true < -MARGIN:
                    continue
                if abs(true) > disc:
                    continue
                d = deltas(rng, args.reps, disc, true)
                stop, verdict = sequential_decisions(d, threshold)
                known = power.paired_binary_n(margin, true, disc) if true > threshold else None
                mean = float(stop.mean())
                known_s = f"{known:>16}" if known else f"{'–':>16}"
                ratio_known = f"{mean / known:>9.2f}" if known else f"{'–':>9}"
                print(f"{rule:<28} {disc:>5} {true:>+7.2f} {mean:>7.0f} {np.quantile(stop, 0.9):>6.0f} "
                      f"{np.mean(verdict != 0):>8.3f} {np.mean(verdict == 1):>6.3f} {np.mean(verdict == -1):>6.3f} {plan_n:>7} "
                      f"{mean / plan_n:>9.2f} {known_s} {ratio_known}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    print("sequential false-pass rates within 2.5% + 2 SE in every cell")
    return 0


if __name__ == "__main__":
    sys.exit(main())
