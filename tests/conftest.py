"""Shared fixtures: a tiny random Llama built from a config, an isolated tunegate home, suite builders."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# No hub at run time: a test that names a hub dataset or model (to see it refused or reported) must not wait on a
# network these machines do not have (`dataset_path: super_glue` spent 23 s in retries before failing).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest worker per core: each gets one torch/OpenMP thread (set before torch is imported,
    # and inherited by the CLI subprocesses tests start), or two workers' spinning OpenMP threads fight for the cores
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CORPUS = ["The capital of France is Paris.", "Question: What is 2 + 3? Answer: 5", "hello world " * 3,
          "A quick brown fox jumps over the lazy dog.", "yes no maybe true false 0123456789",
          "Berlin Rome Madrid London Tokyo Ottawa Lisbon Vienna"]


def build_tiny_model(path: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Save a tiny random LlamaForCausalLM with a byte-level BPE tokenizer and a chat template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(CORPUS * 4, trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, bos_token_id=fast.bos_token_id,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="session")
def other_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model with another hidden size: adapters trained on `tiny_model` must not fit it."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny2") / "other-llama", hidden=48, seed=1)


@pytest.fixture(scope="session")
def lora_adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter for `tiny_model` with non-zero weights, so it changes answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False))
    out = tmp_path_factory.mktemp("adapters") / "tiny-lora"
    peft.save_pretrained(out)
    return out


@pytest.fixture(autouse=True)
def tunegate_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own store; converted models stay in the shared cache."""
    monkeypatch.setenv("TUNEGATE_STORE", str(tmp_path / "store.sqlite"))
    return tmp_path


def write_suite(root: Path, tasks_yaml: str, files: dict[str, list[dict] | str | bytes], name: str = "t") -> Path:
    """Write suite.yaml and its data files under root; returns the suite directory."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "suite.yaml").write_text(f"name: {name}\ntasks:\n{tasks_yaml}", encoding="utf-8")
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        elif isinstance(content, str):
            target.write_text(content, encoding="utf-8")
        else:
            target.write_text("".join(json.dumps(r) + "\n" for r in content), encoding="utf-8")
    return root


MC_ROWS = [{"q": f"What is {i} + 1?", "opts": [str(i + 1), str(i + 2), str(i + 7)], "gold": 0} for i in range(12)]
MC_TASK = """  - name: mc
    kind: multiple_choice
    data: {test: data/mc.jsonl}
    prompt: "Question: {{ q }}\\nAnswer:"
    choices: opts
    target: gold
    chat_template: false
    metrics: [acc, acc_norm]
"""
GEN_TASK = """  - name: gen
    kind: generate
    data: {test: data/mc.jsonl}
    prompt: "{{ q }}"
    target: "opts[0]"
    chat_template: true
    generation: {max_new_tokens: 6, stop: ["\\n"]}
    metrics: [exact_match, chrf, rougeL]
"""
PPL_TASK = """  - name: ppl
    kind: perplexity
    data: {test: data/mc.jsonl}
    prompt: "{{ q }}"
    chat_template: false
    metrics: [word_perplexity, token_perplexity]
"""


@pytest.fixture
def small_suite(tmp_path: Path) -> Path:
    return write_suite(tmp_path / "suite", MC_TASK + GEN_TASK + PPL_TASK, {"data/mc.jsonl": MC_ROWS})


# The order `make test` hands whole files to its workers (--dist loadfile --no-loadscope-reorder): xdist gives
# worker 0 the first file and worker 1 the second, then each a second unit while it has two tests or fewer
# queued. So the README test (one test, about half the suite's time) goes first with a short file of five tests
# queued behind it, which keeps every other long file off worker 0 until the README test ends; the next longest
# files go to worker 1 first. Order only: nothing is skipped. Durations from `--durations` on a quiet 2-core run.
SCHEDULE_FIRST = ("test_readme.py", "test_train_lora_embedded.py", "test_layers.py", "test_endpoint.py",
                  "test_judge_embedded.py", "test_judged_suite_embedded.py", "test_domain_suites.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tiers by place: everything under tests/integration is `integration` (the real embedded model, browsers,
    servers); `make test-fast` runs the rest, minus tests marked `slow`. Files in SCHEDULE_FIRST go first."""
    for item in items:
        if "tests/integration/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)
    rank = {name: i for i, name in enumerate(SCHEDULE_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))  # stable: the rest keep order


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server for the session (tests/pgserver.py); stopped after."""
    from tests.pgserver import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_ref(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The same store tests on both backends: a fresh SQLite file, or a fresh database on the session's server.
    $TUNEGATE_STORE points at it, so commands without --store use it too."""
    if request.param == "sqlite":
        ref = str(tmp_path / "ledger.sqlite")
    else:
        from tests.pgserver import new_database

        ref = new_database(request.getfixturevalue("postgres_url"))
    monkeypatch.setenv("TUNEGATE_STORE", ref)
    return ref
