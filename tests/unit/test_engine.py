"""The engine on a tiny random Llama: outputs, cache, adapters, sweeps, invariance, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.api import GenSettings, Request, sha256_json
from harness.flows.evaluate import evaluate
from harness.models import load_backend
from harness.run.engine import EvalSettings
from tests.conftest import MC_ROWS, write_suite


def eval_cli(*args: str) -> None:
    assert main(["eval", "-q", *args]) == 0


def read_run(path: Path) -> tuple[dict, list[dict]]:
    results = json.loads((path / "results.json").read_text())
    samples = [json.loads(line) for line in (path / "samples.jsonl").read_text().splitlines()]
    return results, samples


def test_results_shape(tiny_model: Path, small_suite: Path, tmp_path: Path) -> None:
    eval_cli("-m", str(tiny_model), "-s", str(small_suite), "--out", str(tmp_path / "run"))
    results, samples = read_run(tmp_path / "run")
    assert results["model"]["spec"] == str(tiny_model) and results["model"]["adapter"] is None
    assert len(results["model"]["fingerprint_hash"]) == 64
    tasks = results["suites"]["t"]["tasks"]
    assert set(tasks) == {"mc", "gen", "ppl"}
    for task in tasks.values():
        for metric in task["metrics"].values():
            assert set(metric) == {"value", "ci95", "n", "higher_is_better"} and metric["n"] == len(MC_ROWS)
            assert metric["ci95"][0] <= metric["value"] <= metric["ci95"][1]
    assert {"acc", "acc_norm"} <= set(tasks["mc"]["metrics"])
    assert {"exact_match", "chrf", "rougeL"} <= set(tasks["gen"]["metrics"])
    assert {"word_perplexity", "token_perplexity"} <= set(tasks["ppl"]["metrics"])
    assert tasks["mc"]["metrics"]["acc"]["higher_is_better"] is True
    assert tasks["ppl"]["metrics"]["word_perplexity"]["higher_is_better"] is False
    assert all(m["higher_is_better"] is True for m in results["suites"]["t"]["metrics"].values())
    assert results["timing"]["tokens_processed"] > 0 and results["timing"]["cache_misses"] == 3 * len(MC_ROWS)
    assert len(samples) == 3 * len(MC_ROWS)
    mc = [s for s in samples if s["task"] == "mc"]
    assert all(len(s["logliks"]) == 3 and s["response"] in s["choices"] for s in mc)
    gen = [s for s in samples if s["task"] == "gen"]
    assert all(s["prompt"].startswith("<|im_start|>user\n") for s in gen)  # chat template applied
    assert not list((tmp_path / "run").glob(".*"))  # no temporary files left behind


def test_rerun_is_served_from_cache(tiny_model: Path, small_suite: Path, tmp_path: Path) -> None:
    eval_cli("-m", str(tiny_model), "-s", str(small_suite), "--out", str(tmp_path / "a"))
    eval_cli("-m", str(tiny_model), "-s", str(small_suite), "--out", str(tmp_path / "b"))
    first, first_samples = read_run(tmp_path / "a")
    second, second_samples = read_run(tmp_path / "b")
    assert second["timing"]["cache_misses"] == 0 and second["timing"]["cache_hits"] == 3 * len(MC_ROWS)
    assert first["suites"] == second["suites"]
    assert first_samples == second_samples


def test_every_fingerprint_part_misses_the_cache(tiny_model: Path, lora_adapter: Path) -> None:
    """Changing any one part (model, adapter, tokenizer, dtype, chat mode, generation, prompt) changes the key."""
    base = load_backend(str(tiny_model))
    with_adapter = load_backend(str(tiny_model))
    with_adapter.set_adapter(str(lora_adapter))
    bf16 = load_backend(str(tiny_model), dtype="bfloat16")
    request = Request("generate", "Hello", gen=GenSettings(max_new_tokens=8))
    key = lambda backend, req: sha256_json([sha256_json(backend.fingerprint()), req.key()])  # noqa: E731
    reference = key(base, request)
    variants = [
        key(with_adapter, request),
        key(bf16, request),
        key(base, Request("generate", "Hello!", gen=request.gen)),
        key(base, Request("generate", base.apply_chat_template("Hello"), gen=request.gen)),
        key(base, Request("generate", "Hello", gen=GenSettings(max_new_tokens=9))),
        key(base, Request("generate", "Hello", gen=GenSettings(max_new_tokens=8, temperature=0.7))),
        key(base, Request("generate", "Hello", gen=GenSettings(max_new_tokens=8, stop=("\n",)))),
    ]
    assert reference not in variants and len(set(variants)) == len(variants)
    fp = base.fingerprint()
    assert {"model_hash", "tokenizer_hash", "adapter_hash", "dtype"} <= set(fp)


def test_tokenizer_change_changes_fingerprint(tiny_model: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    config = json.loads((copy / "tokenizer_config.json").read_text())
    config["model_max_length"] = 77
    (copy / "tokenizer_config.json").write_text(json.dumps(config))
    a, b = load_backend(str(tiny_model)).fingerprint(), load_backend(str(copy)).fingerprint()
    assert a["model_hash"] == b["model_hash"] and a["tokenizer_hash"] != b["tokenizer_hash"]


def test_adapter_gives_distinct_fingerprint_and_results(tiny_model: Path, lora_adapter: Path, small_suite: Path,
                                                        tmp_path: Path) -> None:
    eval_cli("-m", str(tiny_model), "-s", str(small_suite), "--out", str(tmp_path / "base"))
    eval_cli("-m", str(tiny_model), "-a", str(lora_adapter), "-s", str(small_suite), "--out", str(tmp_path / "tuned"))
    base, base_samples = read_run(tmp_path / "base")
    tuned, tuned_samples = read_run(tmp_path / "tuned")
    assert base["model"]["fingerprint_hash"] != tuned["model"]["fingerprint_hash"]
    assert tuned["model"]["adapter"]["name"] == "tiny-lora" and tuned["model"]["adapter"]["method"] == "lora"
    assert tuned["timing"]["cache_hits"] == 0
    assert [s["logliks"] for s in base_samples if s["logliks"]] != [s["logliks"] for s in tuned_samples if s["logliks"]]


def test_sweep_loads_base_once_and_matches_single_runs(tiny_model: Path, lora_adapter: Path, small_suite: Path,
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    loads = []
    original = transformers.AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained",
                        lambda *a, **k: loads.append(a) or original(*a, **k))
    second = tmp_path / "second-lora"
    import shutil

    shutil.copytree(lora_adapter, second)
    settings = EvalSettings(progress=False)
    evaluate(str(tiny_model), [str(lora_adapter), str(second)], [str(small_suite)], tmp_path / "sweep", settings,
             include_base=True)
    assert len(loads) == 1
    assert {p.name for p in (tmp_path / "sweep").iterdir()} == {"base", "tiny-lora", "second-lora"}
    monkeypatch.setenv("TUNEGATE_STORE", str(tmp_path / "fresh.sqlite"))
    evaluate(str(tiny_model), [str(lora_adapter)], [str(small_suite)], tmp_path / "single", settings)
    _, sweep_samples = read_run(tmp_path / "sweep" / "tiny-lora")
    _, single_samples = read_run(tmp_path / "single")
    for a, b in zip(sweep_samples, single_samples):
        assert a["response"] == b["response"]
        if a["logliks"]:
            assert max(abs(x - y) for x, y in zip(a["logliks"], b["logliks"])) < 1e-4
    _, base_samples = read_run(tmp_path / "sweep" / "base")
    assert [s["logliks"] for s in base_samples] != [s["logliks"] for s in sweep_samples]


@pytest.mark.parametrize("adapter", [False, True])
def test_batch_size_and_packing_invariance(tiny_model: Path, lora_adapter: Path, adapter: bool) -> None:
    """Batch size 1 and 32, packed and padded scoring: identical choices, loglikelihoods within 1e-4."""
    requests = [Request("loglikelihood", f"Question: What is {r['q']}\nAnswer:", tuple(" " + o for o in r["opts"]))
                for r in MC_ROWS]
    outputs = []
    for batch, pack in ((1, 1), (32, 1024), (32, 64)):
        backend = load_backend(str(tiny_model), batch_size=batch)
        backend.pack_tokens = pack
        if adapter:
            backend.set_adapter(str(lora_adapter))
        outputs.append(backend.loglikelihood(requests))
    padded = load_backend(str(tiny_model), batch_size=5)
    if adapter:
        padded.set_adapter(str(lora_adapter))
    outputs.append(list(padded._score_padded_all(requests)))
    reference = outputs[0]
    for other in outputs[1:]:
        for a, b in zip(reference, other):
            assert max(abs(x - y) for x, y in zip(a.logliks, b.logliks)) < 1e-4
            assert max(range(3), key=lambda i: a.logliks[i]) == max(range(3), key=lambda i: b.logliks[i])


def test_batched_generation_matches_batch_one(tiny_model: Path) -> None:
    prompts = [f"{'word ' * (i % 5)}What is {i} + 1?" for i in range(10)]
    requests = [Request("generate", p, gen=GenSettings(max_new_tokens=8)) for p in prompts]
    one = load_backend(str(tiny_model), batch_size=1).generate(requests)
    many = load_backend(str(tiny_model), batch_size=8).generate(requests)
    assert [r.text for r in one] == [r.text for r in many]


def test_rolling_loglikelihood_matches_plain_forward(tiny_model: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    text = "The capital of France is Paris. A quick brown fox jumps over the lazy dog."
    backend = load_backend(str(tiny_model))
    ours = backend.loglikelihood_rolling([Request("loglikelihood_rolling", text)])[0]
    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    ids = [tok.bos_token_id] + tok(text, add_special_tokens=False).input_ids
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1], -1)
    expected = float(logprobs.gather(-1, torch.tensor(ids[1:])[:, None]).sum())
    assert abs(ours.logliks[0] - expected) < 1e-4 and ours.n_tokens == [len(ids) - 1]


KILL_TASK = """  - name: gen
    kind: generate
    data: {test: data/rows.jsonl}
    prompt: "Say something about {{ n }}"
    target: "n"
    chat_template: false
    generation: {max_new_tokens: 16}
    metrics: [exact_match]
"""


@pytest.mark.slow  # a child process loads the model twice: about 2 minutes on a loaded 2-core machine
def test_kill_and_resume(tiny_model: Path, tmp_path: Path) -> None:
    """SIGKILL a real run mid-way; --resume finishes it with no sample lost or scored twice."""
    rows = [{"n": str(i)} for i in range(100)]
    suite = write_suite(tmp_path / "suite", KILL_TASK, {"data/rows.jsonl": rows})
    store = tmp_path / "kill.sqlite"
    cmd = [sys.executable, "-m", "harness.cli", "eval", "-q", "-m", str(tiny_model), "-s", str(suite),
           "--batch-size", "2", "--store", str(store)]
    proc = subprocess.Popen(cmd + ["--out", str(tmp_path / "killed")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    done = 0
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        done = _count_records(store)
        if done >= 10:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted = _count_records(store)
    assert 10 <= interrupted < len(rows), interrupted
    assert not (tmp_path / "killed" / "results.json").exists()  # nothing half-written
    subprocess.run(cmd + ["--resume", "--out", str(tmp_path / "resumed")], check=True, capture_output=True)
    resumed, samples = read_run(tmp_path / "resumed")
    assert resumed["timing"]["resumed"] is True
    assert resumed["timing"]["cache_misses"] == len(rows) - interrupted
    assert len(samples) == len(rows) and len({s["sample_id"] for s in samples}) == len(rows)
    subprocess.run([*cmd[:-1], str(tmp_path / "clean.sqlite"), "--out", str(tmp_path / "clean")], check=True,
                   capture_output=True)
    _, clean = read_run(tmp_path / "clean")
    assert [s["response"] for s in clean] == [s["response"] for s in samples]


def _count_records(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_switching_adapters_restores_the_exact_base(tiny_model: Path, lora_adapter: Path) -> None:
    """Adapters are merged for speed while active; switching back leaves the base untouched."""
    requests = [Request("loglikelihood", f"Question: {r['q']}\nAnswer:", tuple(" " + o for o in r["opts"]))
                for r in MC_ROWS[:4]]
    backend = load_backend(str(tiny_model))
    before = {k: v.clone() for k, v in backend.model.state_dict().items()}
    reference = backend.loglikelihood(requests)
    backend.set_adapter(str(lora_adapter))
    tuned = backend.loglikelihood(requests)
    backend.set_adapter(None)
    again = backend.loglikelihood(requests)
    assert [r.logliks for r in tuned] != [r.logliks for r in reference]
    for a, b in zip(reference, again):
        assert max(abs(x - y) for x, y in zip(a.logliks, b.logliks)) < 1e-5
    after = backend.model.state_dict()
    assert set(after) == set(before)
    assert max(float((after[k] - before[k]).abs().max()) for k in before) < 1e-6
    assert not any("lora" in name for name, _ in backend.model.named_modules())
