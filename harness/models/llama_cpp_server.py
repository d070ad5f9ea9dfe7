"""llama-cpp-python's OpenAI-compatible server with echoed prompt logprobs fixed: `python -m harness.models.llama_cpp_server`.

llama-cpp-python (0.3.x, abetlen/llama-cpp-python#1983) reports, for each echoed prompt token, its
log-probability under the distribution that *follows* it instead of the one that predicts it: every
loglikelihood from `/v1/completions` with `echo` is off by one position. It is also slow there: it sorts
the whole vocabulary in Python for every prompt token (about 0.3 s per token measured on 2 busy cores).
The endpoint backend detects the shift with its probe and refuses loglikelihood tasks on such a server.

This launcher runs the same server (same arguments) with two changes, generation untouched:
- a scoring request (`echo` with `logprobs` and `max_tokens` <= 1, what lm-evaluation-harness and
  tunegate send) is answered by evaluating the prompt once and reading row i - 1 for token i, with the
  top logprobs from `numpy.argpartition`: no token is generated (`completion_tokens` 0);
- any other echo request reads the row before as well (the shift fixed in the library's own path).
Then `token_logprobs[i]` is log p(token i | tokens before i), as the OpenAI API defines it.

A scoring request also reuses the prompt prefix the context already holds (as the library's own `generate`
does, and as tunegate's in-process backend does for a shared few-shot block): the choices of one question
share everything but their last tokens, so only those are evaluated. Reset made every choice re-evaluate the
whole prompt; on the legal suite's 27 two-choice tasks that was most of the server's time.
"""

from __future__ import annotations

from typing import Any

from harness.core.api import common_prefix

_ECHO = {"on": False}  # set while a completion with echo runs (the server runs one request at a time per model)


def patch() -> None:
    """Shift the echo path's logprob rows by one; idempotent."""
    import numpy as np
    from llama_cpp import Llama

    if getattr(Llama, "_tunegate_echo_fix", False):
        return
    original_logprobs = Llama.logits_to_logprobs
    original_create = Llama._create_completion

    def logits_to_logprobs(logits: Any, axis: int = -1) -> Any:
        out = original_logprobs(logits, axis)
        if _ECHO["on"] and getattr(out, "ndim", 1) == 2 and len(out) > 0:
            # row i must predict token i: that is the model's output after token i - 1 (row 0: none, so
            # the API's null for the first token stays null)
            out = np.concatenate([np.zeros_like(out[:1]), out[:-1]])
        return out

    def create_completion(self: Any, *args: Any, **kwargs: Any) -> Any:
        _ECHO["on"] = bool(kwargs.get("echo"))
        try:
            yield from original_create(self, *args, **kwargs)
        finally:
            _ECHO["on"] = False

    original_public = Llama.create_completion

    def create_completion_public(self: Any, prompt: Any = "", *args: Any, **kwargs: Any) -> Any:
        max_tokens = kwargs.get("max_tokens", 16)
        if (kwargs.get("echo") and kwargs.get("logprobs") is not None and isinstance(prompt, str) and prompt
                and max_tokens is not None and 0 <= max_tokens <= 1 and not kwargs.get("stream") and not args):
            return score_prompt(self, prompt, int(kwargs["logprobs"]), kwargs.get("model"))
        return original_public(self, prompt, *args, **kwargs)

    Llama.logits_to_logprobs = staticmethod(logits_to_logprobs)  # type: ignore[method-assign, assignment]
    Llama._create_completion = create_completion  # type: ignore[method-assign, assignment]
    Llama.create_completion = create_completion_public  # type: ignore[method-assign, assignment]
    Llama._tunegate_echo_fix = True  # type: ignore[attr-defined]


def score_prompt(llama: Any, prompt: str, top_n: int, model: str | None) -> dict[str, Any]:
    """An OpenAI `text_completion` that echoes `prompt` with the log-probability of each of its tokens."""
    import time
    import uuid


    bos = llama.tokenize(b"", add_bos=True, special=True)  # [BOS] where the model adds one, else []
    tokens = bos + llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    kept = cached_prefix(llama, tokens)
    if kept:
        llama.n_tokens = kept  # eval() drops the cache past n_tokens and appends the rest
    else:
        llama.reset()
    llama.eval(tokens[kept:])
    scores = llama.scores[: len(tokens)]  # float32 logits, one row per evaluated token
    k = max(1, min(top_n, scores.shape[-1]))
    norm, best = row_summaries(scores, tokens, kept, k)
    out_tokens: list[str] = []
    offsets: list[int] = []
    values: list[float | None] = []
    tops: list[dict[str, float] | None] = []
    text = b""
    for i in range(len(bos), len(tokens)):
        piece = llama.detokenize([tokens[i]], prev_tokens=tokens[:i])
        offsets.append(len(text.decode("utf-8", errors="ignore")))
        text += piece
        out_tokens.append(piece.decode("utf-8", errors="ignore"))
        if i == 0:  # nothing predicts the first token (the API's null)
            values.append(None)
            tops.append(None)
            continue
        row, shift = scores[i - 1], norm[i - 1]  # the distribution after token i - 1 predicts token i
        value = float(row[tokens[i]]) - shift
        values.append(value)
        top = {llama.detokenize([int(t)], prev_tokens=tokens[:i]).decode("utf-8", errors="ignore"):
               float(row[t]) - shift for t in best[i - 1]}
        top[out_tokens[-1]] = value
        tops.append(top)
    return {"id": f"cmpl-{uuid.uuid4()}", "object": "text_completion", "created": int(time.time()),
            "model": model or llama.model_path,
            "choices": [{"text": prompt, "index": 0, "finish_reason": "length",
                         "logprobs": {"tokens": out_tokens, "text_offset": offsets, "token_logprobs": values,
                                      "top_logprobs": tops}}],
            "usage": {"prompt_tokens": len(tokens), "completion_tokens": 0, "total_tokens": len(tokens)}}


_ROWS: dict[str, Any] = {"tokens": [], "norm": None, "best": None, "k": 0}  # the last prompt's row summaries


def row_summaries(scores: Any, tokens: list[int], kept: int, k: int) -> tuple[Any, Any]:
    """Per logits row: log-softmax's normaliser and the k best token ids, best first.

    Rows of a prefix the last prompt shared (and whose logits the context kept) are taken from the last call:
    with the logits' exp-sum and partition over the vocabulary per row, they cost as much as evaluating it."""
    import numpy as np

    same = common_prefix(_ROWS["tokens"], tokens[:kept]) if _ROWS["k"] == k else 0
    new = scores[same:]
    # the max-shift with float64 sums: np.logaddexp.reduce took 1.5 s for a 260-token prompt
    peak = new.max(axis=-1, keepdims=True)
    norm = peak[:, 0].astype(np.float64) + np.log(np.exp(new - peak).sum(axis=-1, dtype=np.float64))
    best = np.argpartition(-new, k - 1, axis=-1)[:, :k]
    best = np.take_along_axis(best, np.argsort(-np.take_along_axis(new, best, axis=-1), axis=-1), axis=-1)
    if same:
        norm, best = np.concatenate([_ROWS["norm"][:same], norm]), np.concatenate([_ROWS["best"][:same], best])
    _ROWS.update(tokens=list(tokens), norm=norm, best=best, k=k)
    return norm, best


def cached_prefix(llama: Any, tokens: list[int]) -> int:
    """How many leading `tokens` the context already holds with their logits, at most all but the last (0: none).

    Only with `logits_all` (the scores of the kept rows were saved when they were evaluated) and where the cache
    can be cut at a position (not for recurrent models)."""
    if not getattr(llama, "_logits_all", False) or llama.n_tokens == 0:
        return 0
    kept = common_prefix([int(t) for t in llama.input_ids[: llama.n_tokens]], tokens[:-1])
    if kept and not llama._ctx.kv_cache_seq_rm(-1, kept, -1):
        return 0
    return kept


def main() -> None:
    patch()
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
