"""Shared-prefix key-value reuse: contexts that begin with the same tokens (a fixed few-shot block) run that prefix
once and every packed row of their suffixes attends to its keys and values. The loglikelihoods must be those of
the plain packed path, and of one unpacked forward per choice, for any packing, with and without padding, with a
LoRA adapter; prompt-learning adapters (virtual tokens) never take the shared path."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.api import Request
from harness.models import load_backend
from harness.models.hf import HFBackend, _Group, _shared_prefixes

SHOTS = "".join(f"Question: what is {i} plus {i + 1}?\nA. {2 * i}\nB. {2 * i + 1}\nAnswer: B\n\n" for i in range(5))
CHOICES = (" A", " B", " C, a much longer choice", " D")


def _requests(n: int, shots: str = SHOTS) -> list[Request]:
    # suffixes of different lengths; odd ones end in a space, which moves into the continuation (lm-eval's split)
    return [Request("loglikelihood", shots + f"Question: what is {i} times {'big ' * (i % 5)}{i}?\nAnswer:"
                    + " " * (i % 2), CHOICES) for i in range(n)]


def _scores(backend: HFBackend, requests: list[Request], share: bool) -> list[list[float]]:
    backend.share_prefix = share
    return [r.logliks for r in backend.loglikelihood(requests)]


def _max_diff(a: list[list[float]], b: list[list[float]]) -> float:
    """The largest difference beyond float32 rounding of the values themselves: a long choice scores about -130,
    where one float32 step is 1.5e-5, so differences are measured in units of max(1, |x| / 8)."""
    return max(abs(x - y) / max(1.0, abs(x) / 8)
               for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True))


def _unpacked(backend: HFBackend, request: Request) -> list[float]:
    """One plain forward per choice over context + continuation: what lm-eval computes."""
    import torch
    import torch.nn.functional as F

    out = []
    for cont in request.continuations:
        ctx, tail = backend._encode_pair(request.context, cont)
        ids = (ctx + tail)[:-1]
        with torch.inference_mode():
            logits = backend.model(input_ids=torch.tensor([ids])).logits[0, -len(ids):]  # after any virtual tokens
        lp = F.log_softmax(logits.float(), dim=-1)[len(ids) - len(tail):]
        out.append(float(lp.gather(-1, torch.tensor(tail)[:, None]).sum()))
    return out


@pytest.mark.parametrize("n,pack", [(1, 512), (2, 32), (7, 64), (20, 512), (20, 96)])
def test_shared_prefix_scores_equal_the_plain_path(tiny_model: Path, n: int, pack: int) -> None:
    backend = load_backend(str(tiny_model))
    backend.pack_tokens = pack
    requests = _requests(n)
    backend.share_prefix = False
    plain = backend.loglikelihood(requests)
    backend.share_prefix = True
    shared = backend.loglikelihood(requests)
    assert _max_diff([r.logliks for r in plain], [r.logliks for r in shared]) < 1e-5
    assert [r.n_tokens for r in plain] == [r.n_tokens for r in shared]
    if n > 1:  # the few-shot block ran once, not n times
        saved = sum(r.tokens_processed for r in plain) - sum(r.tokens_processed for r in shared)
        block = len(backend._encode(SHOTS))
        assert saved >= (n - 1) * (block - 2)
    for request, response in zip(requests[:3], shared):
        assert max(abs(a - b) for a, b in zip(response.logliks, _unpacked(backend, request))) < 1e-4


def test_share_prefix_is_on_by_default_and_can_be_turned_off(tiny_model: Path) -> None:
    backend = load_backend(str(tiny_model))
    assert backend.share_prefix
    requests = _requests(6)
    shared = sum(r.tokens_processed for r in backend.loglikelihood(requests))
    backend.share_prefix = False
    plain = sum(r.tokens_processed for r in backend.loglikelihood(requests))
    assert shared < plain / 2


def test_mixed_blocks_each_share_their_own_prefix(tiny_model: Path) -> None:
    """Two few-shot blocks and contexts without one, interleaved: each block is a cluster, the rest run plainly."""
    backend = load_backend(str(tiny_model))
    backend.pack_tokens = 128
    other = SHOTS.replace("plus", "minus")
    requests = [r for pair in zip(_requests(5), _requests(5, other), _requests(5, "")) for r in pair]
    plain, shared = _scores(backend, requests, False), _scores(backend, requests, True)
    assert _max_diff(plain, shared) < 1e-5
    groups = [_Group(i, *backend._pair_group(r)) for i, r in enumerate(requests)]
    clusters = [(cut, sorted(g.index % 3 for g in members)) for cut, members in
                _shared_prefixes(groups, backend.min_shared_prefix) if cut]
    assert sorted(c[1] for c in clusters) == [[0] * 5, [1] * 5]
    assert all(cut >= len(backend._encode(SHOTS)) - 2 for cut, _ in clusters)


def test_prefix_is_cut_at_a_token_boundary_and_keeps_the_last_context_token() -> None:
    a = _Group(0, list(range(50)), [[7]])
    b = _Group(1, list(range(50)), [[8], [9]])  # the same context: every token but the last is shared
    c = _Group(2, list(range(40)) + [99, 98], [[7]])
    clusters = _shared_prefixes([a, b, c], minimum=32)
    assert [(cut, sorted(g.index for g in members)) for cut, members in clusters] == [(40, [0, 1, 2])]
    assert _shared_prefixes([a, b], minimum=32) == [(49, [a, b])]
    assert _shared_prefixes([a, c], minimum=41) == [(0, [a]), (0, [c])]  # 40 shared tokens: below the minimum


def test_one_odd_context_does_not_shrink_a_long_block() -> None:
    block = list(range(100, 300))
    members = [_Group(i, block + [i, i + 1], [[1]]) for i in range(4)]
    odd = _Group(9, block[:40] + [5], [[1]])  # shares 40 tokens only: it starts a cluster of its own
    clusters = _shared_prefixes([*members, odd], minimum=32)
    assert [(cut, len(m)) for cut, m in clusters] == [(0, 1), (200, 4)]


def test_lora_adapter_scores_equal_with_and_without_sharing(tiny_model: Path, lora_adapter: Path) -> None:
    backend = load_backend(str(tiny_model))
    backend.pack_tokens = 96
    requests = _requests(8)
    base = _scores(backend, requests, True)
    backend.set_adapter(str(lora_adapter))
    plain, shared = _scores(backend, requests, False), _scores(backend, requests, True)
    assert _max_diff(plain, shared) < 1e-5
    assert _max_diff(base, shared) > 1e-3  # the adapter is applied on the shared path
    assert max(abs(a - b) for a, b in zip(shared[0], _unpacked(backend, requests[0]))) < 1e-4


@pytest.mark.parametrize("kind", ["prompt_tuning", "prefix_tuning"])
def test_prompt_learning_never_takes_the_shared_path(tiny_model: Path, tmp_path: Path, kind: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Virtual tokens (prompt tuning) or the adapter's own keys and values (prefix tuning) come before the context,
    so a prefix's keys and values computed by the bare base would be wrong: these adapters keep their own paths."""
    import torch
    from peft import PrefixTuningConfig, PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    config = {"prompt_tuning": PromptTuningConfig, "prefix_tuning": PrefixTuningConfig}[kind]
    torch.manual_seed(5)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           config(task_type="CAUSAL_LM", num_virtual_tokens=5))
    for param in model.parameters():
        if param.requires_grad:
            param.data.normal_(0, 0.5)
    model.save_pretrained(tmp_path / kind)
    backend = load_backend(str(tiny_model))
    backend.set_adapter(str(tmp_path / kind))
    requests = _requests(4)

    def refuse(self: HFBackend, groups: list[_Group]):
        raise AssertionError("a prompt-learning adapter must not reuse a prefix computed without its virtual tokens")

    monkeypatch.setattr(HFBackend, "_score_sharing", refuse)
    assert backend.share_prefix
    shared = backend.loglikelihood(requests)
    for request, response in zip(requests[:2], shared):
        assert max(abs(a - b) for a, b in zip(response.logliks, _unpacked(backend, request))) < 1e-4


def test_eval_no_share_prefix_reaches_the_backend(tiny_model: Path) -> None:
    from harness.cli import build_parser
    from harness.cli.evaluate import _backend_options

    parser = build_parser()
    on = parser.parse_args(["eval", "-m", str(tiny_model), "-s", "suite"])
    off = parser.parse_args(["eval", "-m", str(tiny_model), "-s", "suite", "--no-share-prefix"])
    assert load_backend(on.model, **_backend_options(on)).share_prefix
    assert not load_backend(off.model, **_backend_options(off)).share_prefix


def test_a_later_call_reuses_the_prefix_until_the_adapter_changes(tiny_model: Path, lora_adapter: Path) -> None:
    """The engine scores a task in chunks: the second chunk finds the block's keys and values from the first."""
    backend = load_backend(str(tiny_model))
    requests = _requests(8)
    first, second = backend.loglikelihood(requests[:4]), backend.loglikelihood(requests[4:])
    backend.share_prefix = False
    plain = backend.loglikelihood(requests)
    assert _max_diff([r.logliks for r in first + second], [r.logliks for r in plain]) < 1e-5
    block = len(backend._encode(SHOTS))
    assert sum(r.tokens_processed for r in first) - sum(r.tokens_processed for r in second) >= block - 2
    backend.set_adapter(str(lora_adapter))
    assert not backend._prefix_memo  # keys and values of the bare base are no use to the adapter
