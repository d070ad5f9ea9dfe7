"""Prompt and prefix tuning score through the packed path (virtual tokens at the head of each packed group; the
prefix's keys and values before each packed row): both must give what PEFT's plain forward gives, one request at
a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.api import Request
from harness.models import load_backend
from tests.conftest import MC_ROWS

REQUESTS = [Request("loglikelihood", f"{'Some context. ' * (i % 4)}Question: {r['q']}\nAnswer:",
                    tuple(" " + o for o in r["opts"])) for i, r in enumerate(MC_ROWS)]


@pytest.fixture(scope="module")
def adapters(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch
    from peft import PrefixTuningConfig, PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("prompt-learning")
    out = {}
    for kind, config in {"prompt_tuning": PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=5),
                         "prefix_tuning": PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=5)}.items():
        torch.manual_seed(5)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), config)
        for param in model.parameters():
            if param.requires_grad:
                param.data.normal_(0, 0.5)  # trained-looking virtual tokens, so they change the scores
        model.save_pretrained(root / kind)
        out[kind] = root / kind
    return out


def _reference(backend, request: Request) -> list[float]:
    """PEFT's own forward on one unpadded sequence per continuation (full logits, default cache settings)."""
    import torch
    import torch.nn.functional as F

    out = []
    for cont in request.continuations:
        ctx, tail = backend._encode_pair(request.context, cont)
        ids = (ctx + tail)[:-1]
        with torch.no_grad():
            logits = backend.model(input_ids=torch.tensor([ids])).logits[0, -len(ids):]
        lp = F.log_softmax(logits.float(), dim=-1)[len(ids) - len(tail):]
        out.append(float(lp.gather(-1, torch.tensor(tail)[:, None]).sum()))
    return out


@pytest.mark.parametrize("kind,batch,pack", [("prompt_tuning", 1, 16), ("prompt_tuning", 32, 512),
                                              ("prefix_tuning", 1, 16), ("prefix_tuning", 32, 512)])
def test_prompt_learning_scores_match_pefts_forward(tiny_model: Path, adapters: dict[str, Path], kind: str,
                                                    batch: int, pack: int) -> None:
    backend = load_backend(str(tiny_model), batch_size=batch)
    backend.pack_tokens = pack
    # without shared-prefix reuse, which prompt learning never takes: tokens run are then the requests' own
    backend.share_prefix = False
    plain = backend.loglikelihood(REQUESTS)
    base = [r.logliks for r in plain]
    backend.set_adapter(str(adapters[kind]))
    ours = backend.loglikelihood(REQUESTS)
    for request, response in zip(REQUESTS, ours):
        reference = _reference(backend, request)
        assert max(abs(a - b) for a, b in zip(response.logliks, reference)) < 1e-4
    assert [r.logliks for r in ours] != base  # the adapter is applied
    # the request's own tokens, as without the adapter (virtual tokens are the adapter's)
    assert [r.tokens_processed for r in ours] == [r.tokens_processed for r in plain]


def test_rolling_loglikelihood_with_prompt_tuning_matches_a_plain_forward(tiny_model: Path,
                                                                          adapters: dict[str, Path]) -> None:
    import torch
    import torch.nn.functional as F

    text = "The capital of France is Paris. A quick brown fox jumps over the lazy dog."
    backend = load_backend(str(tiny_model))
    backend.set_adapter(str(adapters["prompt_tuning"]))
    ours = backend.loglikelihood_rolling([Request("loglikelihood_rolling", text)])[0].logliks[0]
    ids = [backend._prefix_token()] + backend._encode(text)
    with torch.no_grad():
        logits = backend.model(input_ids=torch.tensor([ids[:-1]])).logits[0, -(len(ids) - 1):]
    ref = float(F.log_softmax(logits.float(), -1).gather(-1, torch.tensor(ids[1:])[:, None]).sum())
    assert abs(ours - ref) < 1e-3
