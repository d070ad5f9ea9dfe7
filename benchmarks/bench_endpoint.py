"""The same suite in process and through the endpoint backend on a llama.cpp server, side by side.

Starts llama-cpp-python's server (through harness.models.llama_cpp_server) on the embedded GGUF
(127.0.0.1, a free port), evaluates the basics suite (multiple choice, chat generation, perplexity) and
legal (multiple choice) through both backends with a fresh store each, and prints requests/s, tokens/s
and agreement (per-choice loglikelihood difference, share of identical choices, identical generations).

    python benchmarks/bench_endpoint.py [--limit 4] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.cli import main  # noqa: E402
from tests.integration.llama_server import MODEL_NAME, LlamaServer  # noqa: E402


def run(label: str, args: list[str], out: Path) -> dict:
    os.environ["TUNEGATE_STORE"] = str(out.parent / f"{label}.sqlite")  # a fresh store: nothing cached
    start = time.perf_counter()
    code = main(["eval", *args, "--out", str(out), "-q"])
    wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"{label}: tunegate exited {code}")
    results = json.loads((out / "results.json").read_text())
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return {"results": results, "samples": {(r["suite"], r["task"], r["sample_id"]): r for r in rows}, "wall": wall}


def main_bench() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=2)
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-endpoint-"))
    server = LlamaServer(log=tmp / "server.log").start()
    os.environ["OPENAI_API_KEY"] = server.api_key
    suites = ["-s", "basics", "-s", "legal", "--limit", str(opts.limit)]
    try:
        local = run("in-process", ["-m", MODEL_NAME, "--device", "cpu", *suites], tmp / "local")
        served = run("endpoint", ["-m", f"openai:{MODEL_NAME}", "--base-url", server.url,
                                  "--concurrency", str(opts.concurrency), *suites], tmp / "served")
    finally:
        server.stop()
    print(f"limit {opts.limit} per task; basics (multiple choice, chat generation, perplexity) and legal (8 "
          f"multiple-choice tasks); llama.cpp server with --n_threads 2, --concurrency {opts.concurrency}\n")
    print("| backend | wall s | scoring s | model load s | requests | requests/s | tokens | tokens/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in (("in process (hf, cpu float32)", local), ("endpoint (llama.cpp, Q4_1 GGUF)", served)):
        t = r["results"]["timing"]
        print(f"| {label} | {r['wall']:.1f} | {t['compute_seconds']:.1f} | {t['model_load_seconds']:.1f} | "
              f"{t.get('requests', '–')} | {t.get('requests_per_second') or '–'} | {t['tokens_processed']} | "
              f"{t['tokens_per_second']} |")
    keys = sorted(local["samples"].keys() & served["samples"].keys())
    mc = [k for k in keys if local["samples"][k]["choices"]]
    gen = [k for k in keys if local["samples"][k]["response"] is not None and not local["samples"][k]["logliks"]]
    diffs = [abs(a - b) for k in mc for a, b in zip(local["samples"][k]["logliks"], served["samples"][k]["logliks"])]
    same = [argmax(local["samples"][k]["logliks"]) == argmax(served["samples"][k]["logliks"]) for k in mc]
    same_text = [local["samples"][k]["response"] == served["samples"][k]["response"] for k in gen]
    print(f"\nagreement: {len(mc)} multiple-choice questions ({len(diffs)} choices): |Δ loglik| median "
          f"{statistics.median(diffs):.3f}, mean {statistics.mean(diffs):.3f}, max {max(diffs):.3f}; "
          f"same choice {sum(same)}/{len(same)} ({sum(same) / len(same):.0%})")
    print(f"generations: identical text {sum(same_text)}/{len(same_text)} "
          "(the chat template is applied by the server on one side and by transformers on the other)")
    for suite in ("basics", "legal"):
        a = local["results"]["suites"][suite]["metrics"]
        b = served["results"]["suites"][suite]["metrics"]
        shown = ", ".join(f"{m} {a[m]['value']:.3f} vs {b[m]['value']:.3f}" for m in sorted(a.keys() & b.keys()))
        print(f"{suite}: in process vs endpoint: {shown}")


def argmax(values: list[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


if __name__ == "__main__":
    main_bench()
