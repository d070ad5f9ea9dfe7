"""The small shared contracts: requests, responses, records, the backend contract, user errors.

Every other module may import from here; this module imports nothing of ours.
"""

from __future__ import annotations

import abc
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal, NoReturn, Protocol

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


class RunIncomplete(Exception):
    """Some requests failed for good; finished samples are saved and `--resume` retries the rest (exit 5)."""

    exit_code = 5

    def __init__(self, variants: list[tuple[str, list[dict[str, Any]]]], out: Any) -> None:
        self.variants = variants
        failed = sum(len(errors) for _, errors in variants)
        first = variants[0][1][0]
        where = f"; each failed sample is listed in {out}/errors.jsonl" if out is not None else ""
        super().__init__(f"{failed} sample(s) failed ({', '.join(name for name, _ in variants)}), e.g. "
                         f"{first['suite']}/{first['task']}/{first['sample_id']}: {first['error']}{where}. "
                         "Finished samples are saved: rerun the same command with --resume to retry the failed ones")


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
    error: str | None = None  # the request failed for good (an endpoint after its retries): never cached

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


class ResponseCache(Protocol):
    """Where answers already computed are kept by key (the store is one): scorers, judges and pairwise judging
    read and add entries through this, and know nothing else of storage."""

    def cached(self, keys: list[str]) -> dict[str, Response]:
        """The entries found among `keys`."""
        ...

    def add_cached(self, entries: list[tuple[str, Response]]) -> None:
        """Keep new entries (an existing key is replaced)."""
        ...


@dataclass(frozen=True)
class HumanJudgments:
    """What people said in the review app, as values: the review items (each with `item_id`, `mode`, `suite`,
    `task`, `sample_id` and `models`) and the rating and pairwise judgments. Read from the store by the
    command that needs them and handed to the gate and the calibration, which never open a database."""

    items: list[Any] = field(default_factory=list)
    ratings: list[dict[str, Any]] = field(default_factory=list)
    pairwise: list[dict[str, Any]] = field(default_factory=list)


Capability = Literal["loglikelihood", "loglikelihood_rolling", "generate", "chat_template", "adapters"]
CAPABILITIES: tuple[Capability, ...] = ("loglikelihood", "loglikelihood_rolling", "generate", "chat_template",
                                        "adapters")


class AdapterRef(Protocol):
    """What a backend reports about its active adapter (harness.models.adapters.AdapterInfo is one)."""

    @property
    def name(self) -> str: ...

    @property
    def hash(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


class Backend(abc.ABC):
    """A model that answers requests: the whole contract the engine relies on.

    A backend loads lazily (a fully cached run never loads weights) and declares what it can do in
    `capabilities`; the engine refuses a task that needs anything else before any work starts. Only
    `fingerprint` is abstract. Every declared capability must have its method overridden (checked when
    the subclass is defined); the defaults below refuse with a clear error.

    - Identity: `fingerprint()` names everything that changes answers (model, adapter, tokenizer, dtype,
      scoring code); the response cache is keyed on its hash. `tokenizer_hash()` names what a
      chat-templated prompt depends on; templated prompts are cached under it.
    - Adapters: `adapter` and `set_adapter` switch variants on one loaded base. A backend without the
      `adapters` capability only accepts `set_adapter(None)`.
    - Accounting: `load_seconds` is the time spent loading so far (the engine subtracts it from scoring
      time), and every `Response.tokens_processed` holds the tokens the model ran for that request.
    """

    name: ClassVar[str] = "backend"  # the spec prefix it is registered under (harness.models.registry)
    capabilities: frozenset[Capability] = frozenset()
    load_seconds: float = 0.0

    _METHODS: ClassVar[dict[str, str]] = {"loglikelihood": "loglikelihood",
                                          "loglikelihood_rolling": "loglikelihood_rolling",
                                          "generate": "generate", "chat_template": "apply_chat_template",
                                          "adapters": "set_adapter"}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("capabilities")
        if isinstance(declared, frozenset):
            unknown = declared - set(CAPABILITIES)
            if unknown:
                raise TypeError(f"{cls.__name__} declares unknown capabilities {sorted(unknown)}")
            missing = [c for c in declared if getattr(cls, Backend._METHODS[c]) is getattr(Backend, Backend._METHODS[c])]
            if missing:
                raise TypeError(f"{cls.__name__} declares {sorted(missing)} but does not override "
                                f"{', '.join(Backend._METHODS[c] for c in sorted(missing))}")

    @property
    def label(self) -> str:
        """How messages name this backend and model, e.g. `hf:smollm2-135m`."""
        return self.name

    # ---- identity -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes answers: model, adapter, tokenizer, dtype. Cheap to compute."""

    def tokenizer_hash(self) -> str:
        """What chat-templated prompts depend on. The default, the whole fingerprint, is always safe."""
        return sha256_json(self.fingerprint())

    def lacking_reason(self, capability: Capability) -> str | None:
        """Why this backend lacks `capability` (for the engine's refusal), when it depends on more than the class."""
        return None

    def usage(self) -> dict[str, int]:
        """Counters a backend keeps beyond tokens (an endpoint: requests, retries, tokens the server reported);
        the engine puts the difference over a run into its timing block."""
        return {}

    # ---- adapters -------------------------------------------------------------------------------------
    @property
    def adapter(self) -> AdapterRef | None:
        """The active adapter, or None for the bare base."""
        return None

    def check_adapter(self, adapter_dir: str) -> None:
        """Raise UserError if `adapter_dir` cannot be used; called for every adapter before a sweep starts."""
        self._lacks("adapters", f"adapter {adapter_dir}")

    def set_adapter(self, adapter_dir: str | None) -> None:
        """Switch to another adapter (None: the bare base) without reloading the base."""
        if adapter_dir is not None:
            self._lacks("adapters", f"adapter {adapter_dir}")

    # ---- requests -------------------------------------------------------------------------------------
    def apply_chat_template(self, user_text: str, system: str | None = None) -> str:
        """Wrap a user turn in the model's chat template, ready for the assistant's reply."""
        self._lacks("chat_template", "a chat-templated prompt")

    def loglikelihood(self, requests: list[Request]) -> list[Response]:
        """Per request: the summed log-probability of each continuation given the context."""
        self._lacks("loglikelihood", "loglikelihood requests")

    def loglikelihood_rolling(self, requests: list[Request]) -> list[Response]:
        """Per request: the log-probability of the whole context."""
        self._lacks("loglikelihood_rolling", "rolling loglikelihood requests")

    def generate(self, requests: list[Request]) -> list[Response]:
        """Per request: the continuation of the context under its generation settings."""
        self._lacks("generate", "generate requests")

    def answer(self, kind: RequestKind, requests: list[Request]) -> list[Response]:
        """Dispatch requests of one kind to the method that answers them."""
        calls = {"loglikelihood": self.loglikelihood, "loglikelihood_rolling": self.loglikelihood_rolling,
                 "generate": self.generate}
        return calls[kind](requests)

    def _lacks(self, capability: Capability, what: str) -> NoReturn:
        raise UserError(f"backend {self.label} cannot serve {what}: it lacks the {capability} capability "
                        f"(it offers: {', '.join(sorted(self.capabilities)) or 'nothing'})", field="-m/--model")


def common_prefix(a: list[int], b: list[int]) -> int:
    """The number of leading tokens `a` and `b` share (the HF backend's shared-prefix groups, the llama.cpp
    launcher's reused context)."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def sha256_json(obj: Any) -> str:
    """Hash of the canonical JSON form of `obj`."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
