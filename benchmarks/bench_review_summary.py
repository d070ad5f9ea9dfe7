"""Coverage of `tunegate review summary`'s intervals at small n (issue 28).

The summary's win rate (ties and both-bad as half a win) and its rubric means (1–5) use the gate's interval for a
bounded mean: the hedged-capital betting interval of Waudby-Smith & Ramdas (2024) over per-item means
(harness.review.summary.item_interval -> harness.inference.stats.bounded_mean_interval). The bootstrap it
replaced gave [1, 1] at n = 1. This simulates judged items from known distributions, one interval per replicate
exactly as the summary computes it (items' means in item-id order, then the betting bounds), and counts how
often the interval covers the true mean, from n = 1 up.

    python benchmarks/bench_review_summary.py [--reps 2000]

prints one line per cell and a `RESULT` line: the smallest coverage over the grid (it must be ≥ 0.95) and the
mean width at n = 1 (near the whole range: a single judgment says little).
"""

from __future__ import annotations

import argparse

import numpy as np

from harness.inference.stats import betting_bounds, to_unit

# (name, support, probabilities, range): win/tie/loss as 1 / 0.5 / 0, and 1–5 ratings
CELLS = [
    ("win rate, p(win) .5 tie .2", np.array([1.0, 0.5, 0.0]), np.array([0.5, 0.2, 0.3]), (0.0, 1.0)),
    ("win rate, p(win) .9 tie .05", np.array([1.0, 0.5, 0.0]), np.array([0.9, 0.05, 0.05]), (0.0, 1.0)),
    ("win rate, always wins", np.array([1.0, 0.5, 0.0]), np.array([0.98, 0.01, 0.01]), (0.0, 1.0)),
    ("rating 1-5, skewed high", np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([0.02, 0.03, 0.1, 0.35, 0.5]),
     (1.0, 5.0)),
    ("rating 1-5, spread", np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.full(5, 0.2), (1.0, 5.0)),
]
SIZES = (1, 2, 3, 5, 10, 30)


def coverage(support: np.ndarray, probs: np.ndarray, bounds: tuple[float, float], n: int, reps: int,
             rng: np.random.Generator) -> tuple[float, float]:
    """Share of replicates whose interval covers the true mean, and the mean width (on the values' scale)."""
    truth = float(support @ probs)
    values = rng.choice(support, size=(reps, n), p=probs)
    lo, hi = betting_bounds(to_unit(values, *bounds).reshape(values.shape))
    span = bounds[1] - bounds[0]
    lo, hi = bounds[0] + span * lo, bounds[0] + span * hi
    return float(np.mean((lo <= truth) & (truth <= hi))), float(np.mean(hi - lo))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    worst, width_at_1 = 1.0, []
    for name, support, probs, bounds in CELLS:
        for n in SIZES:
            cov, width = coverage(support, probs, bounds, n, args.reps, rng)
            worst = min(worst, cov)
            if n == 1:
                width_at_1.append(width / (bounds[1] - bounds[0]))
            print(f"{name:<30} n {n:>3}: coverage {cov:.3f}, mean width {width:.3f}")
    print(f"RESULT review-summary intervals: min coverage {worst:.3f} over {len(CELLS)} distributions x n in "
          f"{SIZES} ({args.reps} reps each; nominal 0.95); mean width at n = 1: {np.mean(width_at_1):.2f} of the range")


if __name__ == "__main__":
    main()
