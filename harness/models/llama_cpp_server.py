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
"""

from __future__ import annotations

from typing import Any

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

    import numpy as np

    bos = llama.tokenize(b"", add_bos=True, special=True)  # [BOS] where the model adds one, else []
    tokens = bos + llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    llama.reset()
    llama.eval(tokens)
    scores = np.asarray(llama.scores[: len(tokens)], dtype=np.float64)
    logprobs = scores - np.logaddexp.reduce(scores, axis=-1, keepdims=True)  # log-softmax per row
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
        row = logprobs[i - 1]  # the distribution after token i - 1 predicts token i
        value = float(row[tokens[i]])
        values.append(value)
        k = max(1, min(top_n, len(row)))
        best = np.argpartition(-row, k - 1)[:k]
        top = {llama.detokenize([int(t)], prev_tokens=tokens[:i]).decode("utf-8", errors="ignore"): float(row[t])
               for t in best[np.argsort(-row[best])]}
        top[out_tokens[-1]] = value
        tops.append(top)
    return {"id": f"cmpl-{uuid.uuid4()}", "object": "text_completion", "created": int(time.time()),
            "model": model or llama.model_path,
            "choices": [{"text": prompt, "index": 0, "finish_reason": "length",
                         "logprobs": {"tokens": out_tokens, "text_offset": offsets, "token_logprobs": values,
                                      "top_logprobs": tops}}],
            "usage": {"prompt_tokens": len(tokens), "completion_tokens": 0, "total_tokens": len(tokens)}}


def main() -> None:
    patch()
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
