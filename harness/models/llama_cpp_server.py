"""llama-cpp-python's OpenAI-compatible server with echoed prompt logprobs fixed: `python -m harness.models.llama_cpp_server`.

llama-cpp-python (0.3.x, abetlen/llama-cpp-python#1983) reports, for each echoed prompt token, its
log-probability under the distribution that *follows* it instead of the one that predicts it: every
loglikelihood from `/v1/completions` with `echo` is off by one position. The endpoint backend detects
that with its probe and refuses loglikelihood tasks on such a server. This launcher runs the same server
(same arguments) with the echo path reading the row before: then `token_logprobs[i]` is log p(token i |
tokens before i), as the OpenAI API defines it. Generation is unchanged.
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

    Llama.logits_to_logprobs = staticmethod(logits_to_logprobs)  # type: ignore[method-assign, assignment]
    Llama._create_completion = create_completion  # type: ignore[method-assign, assignment]
    Llama._tunegate_echo_fix = True  # type: ignore[attr-defined]


def main() -> None:
    patch()
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
