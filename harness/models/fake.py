"""A deterministic backend for tests that need no model: spec `fake:NAME`, optionally `fake:NAME?caps=a,b`.

Every answer is a function of the request (and the active adapter) alone: loglikelihoods come from a
hash, generations from `script` (the first key found in the prompt gives the reply) or else from a
hash. Every call is recorded in `calls`, so a test can check what the engine asked for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from harness.core.api import CAPABILITIES, Backend, Capability, Request, Response, UserError
from harness.models.adapters import AdapterInfo


@dataclass
class FakeBackend(Backend):
    """Answers without a model; `capabilities` can be narrowed to test the engine's refusals."""

    name: ClassVar[str] = "fake"
    model: str = "fake"
    capabilities: frozenset[Capability] = frozenset(CAPABILITIES)
    script: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # what load_backend passed (dtype, batch_size)
    calls: list[tuple[str, list[Request]]] = field(default_factory=list)
    load_seconds: float = 0.0
    _adapter: AdapterInfo | None = None

    @classmethod
    def from_spec(cls, rest: str | None, **options: Any) -> FakeBackend:
        name, _, query = (rest or "fake").partition("?")
        capabilities = frozenset(CAPABILITIES)
        if query:
            key, _, value = query.partition("=")
            wanted = [c for c in value.split(",") if c]
            unknown = [c for c in wanted if c not in CAPABILITIES]
            if key != "caps" or unknown:
                raise UserError(f"fake backend: expected ?caps=a,b with capabilities from {', '.join(CAPABILITIES)}",
                                field="-m/--model")
            capabilities = frozenset(c for c in CAPABILITIES if c in wanted)
        return cls(model=name or "fake", capabilities=capabilities, options=options)

    @property
    def label(self) -> str:
        return f"fake:{self.model}"

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": "fake", "model": self.model, "tokenizer_hash": self.tokenizer_hash(),
                "adapter_hash": self._adapter.hash if self._adapter else None}

    def tokenizer_hash(self) -> str:
        return f"fake:{self.model}"

    # ---- adapters: any existing directory, named by its path -------------------------------------------
    @property
    def adapter(self) -> AdapterInfo | None:
        return self._adapter

    def check_adapter(self, adapter_dir: str) -> None:
        if not Path(adapter_dir).is_dir():
            raise UserError(f"adapter directory {adapter_dir} does not exist", field="-a/--adapter")

    def set_adapter(self, adapter_dir: str | None) -> None:
        if adapter_dir is None:
            self._adapter = None
            return
        self.check_adapter(adapter_dir)
        self._adapter = AdapterInfo(Path(adapter_dir).name, adapter_dir, _hash(str(Path(adapter_dir).resolve())),
                                    "fake")

    # ---- requests -------------------------------------------------------------------------------------
    def apply_chat_template(self, user_text: str, system: str | None = None) -> str:
        return (f"<|system|>{system}\n" if system else "") + f"<|user|>{user_text}\n<|assistant|>"

    def loglikelihood(self, requests: list[Request]) -> list[Response]:
        self.calls.append(("loglikelihood", list(requests)))
        out = []
        for req in requests:
            logliks = [self._loglik(req.context, cont) for cont in req.continuations]
            best = max(logliks, default=0.0)
            out.append(Response(logliks=logliks, is_greedy=[ll == best for ll in logliks],
                                n_tokens=[_tokens(c) for c in req.continuations],
                                tokens_processed=_tokens(req.context) + sum(_tokens(c) for c in req.continuations)))
        return out

    def loglikelihood_rolling(self, requests: list[Request]) -> list[Response]:
        self.calls.append(("loglikelihood_rolling", list(requests)))
        return [Response(logliks=[self._loglik("", req.context)], n_tokens=[_tokens(req.context)],
                         tokens_processed=_tokens(req.context)) for req in requests]

    def generate(self, requests: list[Request]) -> list[Response]:
        self.calls.append(("generate", list(requests)))
        out = []
        for req in requests:
            text = next((reply for key, reply in self.script.items() if key in req.context), None)
            if text is None:
                text = f"answer {self._digest(req.context, str(req.gen))[:6]}"
            stops = [text.find(s) for s in (req.gen.stop if req.gen else ()) if s and s in text]
            text = text[:min(stops)] if stops else text
            out.append(Response(text=text, n_tokens=[_tokens(text)], tokens_processed=_tokens(req.context) + _tokens(text)))
        return out

    def _digest(self, *parts: str) -> str:
        return _hash("\0".join([self.model, self._adapter.hash if self._adapter else "", *parts]))

    def _loglik(self, context: str, continuation: str) -> float:
        return -(int(self._digest(context, continuation)[:8], 16) % 10_000) / 1000 - 0.01 * len(continuation)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _tokens(text: str) -> int:
    return max(len(text.split()), 1)
