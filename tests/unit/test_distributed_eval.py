"""Evaluation sharded over 2 real processes (torchrun, gloo) equals a single-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # real training or several processes: the full tier only


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)


def test_two_processes_match_one(tiny_model: Path, small_suite: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = _run([sys.executable, "-m", "harness.cli", "eval", "-q", "-m", str(tiny_model), "-s", str(small_suite),
                   "--store", str(tmp_path / "one.sqlite"), "--out", str(tmp_path / "one")], env)
    assert single.returncode == 0, single.stderr
    multi = _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                  "-m", "harness.cli", "eval", "-q", "-m", str(tiny_model), "-s", str(small_suite),
                  "--store", str(tmp_path / "two.sqlite"), "--out", str(tmp_path / "two")], env)
    assert multi.returncode == 0, multi.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert one["suites"] == two["suites"]
    rows_one = (tmp_path / "one" / "samples.jsonl").read_text().splitlines()
    rows_two = (tmp_path / "two" / "samples.jsonl").read_text().splitlines()
    assert len(rows_one) == len(rows_two) == 36
    for a, b in zip(map(json.loads, rows_one), map(json.loads, rows_two)):
        assert a["sample_id"] == b["sample_id"] and a["response"] == b["response"] and a["scores"] == b["scores"]
        if a["logliks"]:
            assert max(abs(x - y) for x, y in zip(a["logliks"], b["logliks"])) < 1e-4
    assert two["timing"]["cache_misses"] == 36  # both ranks' work was gathered and counted
    assert multi.stdout.count("wrote") == 1  # only rank 0 writes and prints
