"""The small shared contracts: requests, responses, records, the backend protocol, user errors.

Every other module may import from here; this module imports nothing of ours.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

RequestKind = Literal["loglikelihood", "loglikelihood_rolling", "generate"]


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit status 2, no traceback."""

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None,
                 line: int | None = None) -> None:
        self.source, self.field, self.line = source, field, line
        where = ""
        if source:
            where = str(source) + (f":{line}" if line else "")
        if field:
            where = f"{where}: {field}" if where else field
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True)
class GenSettings:
    """Generation settings; part of every generate request's cache key."""

    max_new_tokens: int = 128
    stop: tuple[str, ...] = ()
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    seed: int = 1234

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass(frozen=True)
class Request:
    """One unit of model work.

    - loglikelihood: `context` plus every string in `continuations` (all choices of one question share
      the context, so a backend can run the context once).
    - loglikelihood_rolling: the whole of `context` is scored.
    - generate: `context` is the prompt; `gen` says how to continue it.
    """

    kind: RequestKind
    context: str
    continuations: tuple[str, ...] = ()
    gen: GenSettings | None = None

    def key(self) -> str:
        """Stable hash of everything in the request (the model part of the cache key is added by the engine)."""
        payload = {"kind": self.kind, "context": self.context, "continuations": list(self.continuations),
                   "gen": asdict(self.gen) if self.gen else None}
        return sha256_json(payload)


@dataclass
class Response:
    """What a backend returns for one request."""

    logliks: list[float] = field(default_factory=list)  # one per continuation, or one for rolling
    is_greedy: list[bool] = field(default_factory=list)  # continuation == greedy decoding of it
    n_tokens: list[int] = field(default_factory=list)  # tokens per continuation (rolling: of the text)
    text: str | None = None  # generate only
    tokens_processed: int = 0  # tokens the model actually ran for this request (throughput accounting)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Response:
        return cls(**data)


@dataclass
class SampleRecord:
    """One evaluated sample: the row of samples.jsonl and of the store's records table."""

    suite: str
    task: str
    sample_id: str
    prompt: str
    target: Any
    response: str | None = None
    choices: list[str] | None = None
    logliks: list[float] | None = None
    scores: dict[str, float] = field(default_factory=dict)
    source_id: str | None = None
    perturbation: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if data["source_id"] is None:
            data["source_id"] = self.sample_id
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SampleRecord:
        return cls(**data)


@runtime_checkable
class Backend(Protocol):
    """A model that answers requests. Loads lazily: a fully cached run never loads weights."""

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes answers: model, adapter, tokenizer, dtype. Cheap to compute."""
        ...

    def apply_chat_template(self, user_text: str, system: str | None = None) -> str:
        """Wrap a user turn in the model's chat template, ready for the assistant's reply."""
        ...

    def loglikelihood(self, requests: list[Request]) -> list[Response]: ...

    def loglikelihood_rolling(self, requests: list[Request]) -> list[Response]: ...

    def generate(self, requests: list[Request]) -> list[Response]: ...


def sha256_json(obj: Any) -> str:
    """Hash of the canonical JSON form of `obj`."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
