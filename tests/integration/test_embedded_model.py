"""The real embedded SmolLM2-135M: load, known facts, the CLI end to end."""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness.cli import main
from harness.core.api import Request
from harness.models import load_backend


def test_prefers_paris() -> None:
    backend = load_backend("smollm2-135m")
    [response] = backend.loglikelihood([Request("loglikelihood", "Question: What is the capital of France?\nAnswer:",
                                                (" Paris", " London", " Berlin", " Madrid"))])
    assert max(range(4), key=lambda i: response.logliks[i]) == 0
    assert response.logliks[0] > response.logliks[1] + 1.0  # clearly, not by a rounding error


def test_converted_cache_loads_fast() -> None:
    backend = load_backend("smollm2-135m")
    start = time.perf_counter()
    backend.model  # noqa: B018 - the load is what is measured
    assert backend.source.path.endswith("smollm2-135m-v1")
    assert sum(p.numel() for p in backend.model.parameters()) == 134_515_008
    # informational, not asserted: loads from the converted safetensors take well under a second here
    print(f"load from converted cache: {time.perf_counter() - start:.2f} s")


def test_eval_basics_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["eval", "-q", "-s", "basics", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    capitals = results["suites"]["basics"]["tasks"]["capitals"]["metrics"]["acc"]
    assert capitals["value"] >= 0.8 and capitals["n"] == 36
    arithmetic = results["suites"]["basics"]["tasks"]["arithmetic"]["metrics"]["exact_match"]
    assert arithmetic["n"] == 30 and 0 <= arithmetic["ci95"][0] <= arithmetic["value"] <= arithmetic["ci95"][1]
    # a second identical run is answered from the cache and does not load the model
    assert main(["eval", "-q", "-s", "basics", "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert again["timing"]["cache_misses"] == 0 and again["timing"]["model_load_seconds"] == 0
    assert again["suites"] == results["suites"]
