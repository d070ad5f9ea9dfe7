"""Loglikelihood throughput of the HF backend per adapter kind, on the embedded model (smollm2-135m).

The base and LoRA take the packed path (tree mask, output projection only where scored); prompt and prefix
tuning go through PEFT's forward. Adapters are freshly initialised (their weights do not change the cost).
Prints samples/s and tokens/s per kind from CPU time (process time, one torch thread by default: on a shared
machine wall time measures the neighbours), plus the wall time, interleaving repeats across kinds.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_prompt_learning_scoring.py [--n 12] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from harness.core.api import Request
from harness.data.suite import load_suite
from harness.models.hf import HFBackend


def make_adapters(model_path: str, folder: Path) -> dict[str, Path]:
    import torch
    from peft import LoraConfig, PrefixTuningConfig, PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    configs = {"lora": LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
               "prompt_tuning": PromptTuningConfig(num_virtual_tokens=16, task_type="CAUSAL_LM"),
               "prefix_tuning": PrefixTuningConfig(num_virtual_tokens=16, task_type="CAUSAL_LM")}
    out = {}
    for name, config in configs.items():
        torch.manual_seed(0)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_path), config)
        out[name] = folder / name
        model.save_pretrained(out[name])
    return out


def requests(n: int) -> list[Request]:
    """n PubMedQA multiple-choice questions (long abstracts, three short answers): the demo's slowest scoring."""
    task = load_suite("medical").task("pubmedqa_mc")
    return [Request("loglikelihood", s.prompt, tuple(f" {c}" for c in s.choices or ())) for s in task.samples(limit=n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--kinds", default="base,lora,prompt_tuning,prefix_tuning")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    backend = HFBackend.from_spec(None)
    reqs = requests(args.n)
    tokens = sum(len(backend._encode(r.context)) + 3 for r in reqs)
    print(f"{len(reqs)} requests, {tokens} context tokens, torch threads {torch.get_num_threads()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        adapters = make_adapters(backend.source.path, Path(tmp))
        kinds = args.kinds.split(",")
        times: dict[str, list[float]] = {k: [] for k in kinds}
        walls: dict[str, list[float]] = {k: [] for k in kinds}
        results: dict[str, list[float]] = {}
        for _ in range(args.repeats):
            for kind in kinds:
                backend.set_adapter(str(adapters[kind]) if kind != "base" else None)
                _ = backend.model  # load and attach outside the timing
                start, wall = time.process_time(), time.perf_counter()
                out = backend.loglikelihood(reqs)
                times[kind].append(time.process_time() - start)
                walls[kind].append(time.perf_counter() - wall)
                results[kind] = [x for r in out for x in r.logliks or []]
                print(f"  {kind}: {times[kind][-1]:.2f} s CPU, {walls[kind][-1]:.2f} s wall", flush=True)
        for kind in kinds:
            best = min(times[kind])
            print(f"{kind:>14}: {len(reqs) / best:7.2f} samples/s  {tokens / best:8.0f} tokens/s per CPU second  "
                  f"(best of {args.repeats}: {best:.2f} s CPU; median {statistics.median(times[kind]):.2f} s; "
                  f"wall {min(walls[kind]):.2f} s)")
        print("first logliks:", {k: [round(x, 3) for x in v[:3]] for k, v in results.items()})


if __name__ == "__main__":
    main()
