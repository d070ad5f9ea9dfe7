"""A model behind an OpenAI-compatible HTTP API (vLLM, SGLang, llama.cpp, TGI, hosted APIs): `-m openai:MODEL`.

- Where: `--base-url` or `$OPENAI_BASE_URL`; the key from the environment variable `--api-key-env` names
  (default `OPENAI_API_KEY`). Neither can come from a suite file, and the key is kept only in the request
  headers: never in the fingerprint, the cache, results or logs.
- generate: `/v1/chat/completions` for chat-template tasks (the server applies its own template),
  `/v1/completions` for plain prompts; a chat-only API serves plain prompts through chat as well.
- loglikelihood: `/v1/completions` with `echo` and `logprobs`, as lm-evaluation-harness's
  `local-completions` does: the prompt is context + continuation, and the continuation's tokens are those
  that end after the context (by `text_offset`). One probe request finds out whether the server returns
  prompt logprobs; if not, the backend lacks the capability and the engine refuses such tasks up front.
- Requests run on a thread pool (`--concurrency`), with retries (exponential backoff with full jitter) on
  429, 5xx, timeouts and lost connections, a per-request timeout and an overall budget. A request that still
  fails comes back as `Response.error`: the engine records the sample as failed, and `--resume` retries it.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import httpx

from harness.core.api import Backend, Capability, GenSettings, Request, Response, UserError

PROTOCOL_VERSION = 1  # bump when the requests sent or the parsing of replies change what a request returns
CHAT_PREFIX = "<tunegate:chat>"  # a chat-templated prompt: this prefix, then the messages as JSON
NOT_FINGERPRINTED = ("an endpoint cannot be fingerprinted by its weights: the cache and the comparison trust "
                     "the model name the server reports and the --revision you declare")
PROBE_PROMPT = "The capital of France is Paris"  # the token after it is predictable, and is not " Paris"
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
DEFAULTS = {"concurrency": 8, "timeout": 120.0, "retries": 5}


class EndpointOptionError(UserError):
    """A bad base URL, key or model name (exit 2)."""


class OpenAIBackend(Backend):
    """A served model, reached over HTTP."""

    name: ClassVar[str] = "openai"

    def __init__(self, model: str, base_url: str, *, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 8, timeout: float = 120.0, budget: float | None = None, retries: int = 5,
                 revision: str | None = None, backoff: float = 0.5, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.model, self.base_url, self.revision = model, base_url.rstrip("/"), revision
        self.api_key_env = api_key_env
        self.concurrency, self.timeout, self.budget, self.retries = concurrency, timeout, budget, retries
        self.backoff, self._sleep = backoff, sleep
        key = os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        # the key lives only in this client's default headers
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport,
                                    limits=httpx.Limits(max_connections=concurrency))
        self._probed: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._deadline: float | None = None
        self._usage = {"requests": 0, "retries": 0, "failed_requests": 0, "prompt_tokens": 0, "completion_tokens": 0}

    @classmethod
    def from_spec(cls, rest: str | None, *, base_url: str | None = None, api_key_env: str | None = None,
                  concurrency: int | None = None, timeout: float | None = None, budget: float | None = None,
                  retries: int | None = None, revision: str | None = None, **_: Any) -> OpenAIBackend:
        """`rest` is the model name; in-process options (dtype, device, batch_size) do not apply and are ignored."""
        if not rest:
            raise UserError("an endpoint model needs a name: -m openai:MODEL", field="-m/--model")
        url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not url:
            raise UserError("-m openai:MODEL needs --base-url URL (or $OPENAI_BASE_URL), e.g. "
                            "http://127.0.0.1:8000/v1", field="--base-url")
        if not re.match(r"^https?://[^/\s]+", url):
            raise UserError(f"base URL {redact_url(url)!r} is not an http:// or https:// URL", field="--base-url")
        env = api_key_env or "OPENAI_API_KEY"
        if api_key_env and api_key_env not in os.environ:
            raise UserError(f"environment variable {api_key_env} (named by --api-key-env) is not set",
                            field="--api-key-env")
        return cls(rest, url, api_key_env=env, concurrency=concurrency or DEFAULTS["concurrency"],  # type: ignore[arg-type]
                   timeout=timeout or DEFAULTS["timeout"], budget=budget,
                   retries=DEFAULTS["retries"] if retries is None else retries, revision=revision)  # type: ignore[arg-type]

    def __repr__(self) -> str:  # never the client (its headers hold the key)
        return f"OpenAIBackend(model={self.model!r}, base_url={redact_url(self.base_url)!r})"

    @property
    def label(self) -> str:
        return f"openai:{self.model}"

    # ---- identity and capabilities --------------------------------------------------------------------
    @property
    def capabilities(self) -> frozenset[Capability]:  # type: ignore[override]
        return self._probe()["capabilities"]

    def lacking_reason(self, capability: Capability) -> str | None:
        """Why the server lacks a capability, for the engine's refusal."""
        return self._probe()["reasons"].get(capability)

    def fingerprint(self) -> dict[str, Any]:
        """The model name asked for and reported, the declared revision; not the URL (it may carry secrets,
        and one deployment moves between hosts) and never the key."""
        return {"backend": "openai", "model": self.model, "server_model": self._probe()["server_model"],
                "revision": self.revision, "weights": NOT_FINGERPRINTED, "protocol_version": PROTOCOL_VERSION}

    def tokenizer_hash(self) -> str:
        return f"openai-chat/{PROTOCOL_VERSION}"  # the templated prompt is the messages: the server templates

    def usage(self) -> dict[str, int]:
        with self._lock:
            return dict(self._usage)

    def _probe(self) -> dict[str, Any]:
        """Once: the model list (URL, key, model), then whether /completions returns prompt logprobs."""
        if self._probed is None:
            listed = self._check_response(self._get("/models"), "GET /models")
            ids = [m.get("id") for m in listed.get("data", []) if isinstance(m, dict)]
            entry = next((m for m in listed.get("data", []) if isinstance(m, dict) and m.get("id") == self.model), None)
            if entry is None:
                raise EndpointOptionError(f"model {self.model!r} is not served at {redact_url(self.base_url)} "
                                          f"(it serves: {', '.join(map(str, ids)) or 'nothing'})", field="-m/--model")
            caps: set[Capability] = {"generate", "chat_template"}
            reasons: dict[str, str] = {}
            completions, why = self._probe_logprobs()
            if why is None:
                caps |= {"loglikelihood", "loglikelihood_rolling"}
            else:
                reasons = {"loglikelihood": why, "loglikelihood_rolling": why}
            self._probed = {"capabilities": frozenset(caps), "reasons": reasons, "completions": completions,
                            "server_model": {"id": entry.get("id"), "owned_by": entry.get("owned_by")}}
        return self._probed

    def _probe_logprobs(self) -> tuple[bool, str | None]:
        """(has /completions, why prompt logprobs are unusable or None): one small echo request."""
        prompt = PROBE_PROMPT
        try:
            reply = self._send("/completions", _loglik_payload(self.model, prompt))
        except _RequestFailed as exc:
            raise EndpointOptionError(f"cannot reach {redact_url(self.base_url)} ({exc})", field="--base-url") from None
        if reply.status_code in (404, 405, 501):
            return False, "the server has no /completions endpoint (chat only)"
        none = "the server returns no prompt logprobs from /completions with echo and logprobs"
        if reply.status_code >= 400:
            return True, f"{none} (HTTP {reply.status_code})"
        try:
            choice = reply.json()["choices"][0]
            lp = choice["logprobs"]
            values, offsets, tops = lp["token_logprobs"], lp["text_offset"], lp.get("top_logprobs") or []
            if len(values) < 2 or not any(v is not None for v in values[1:]) or not offsets:
                return True, none
            generated = (choice.get("text") or "")[len(prompt):]
            last = max(i for i, off in enumerate(offsets) if off < len(prompt))
        except (ValueError, KeyError, IndexError, TypeError):
            return True, none
        top = tops[last] if last < len(tops) else None
        # The entry of the last prompt token must hold the distribution that predicted it, not the one that
        # follows it: the greedy token generated next is argmax of the latter (llama-cpp-python 0.3.x bug).
        if top and generated and max(top, key=top.get) != lp["tokens"][last] and generated.startswith(max(top, key=top.get)):
            return True, ("the server's echoed prompt logprobs are shifted by one token (each token scored by "
                          "the distribution after it: abetlen/llama-cpp-python#1983); serve llama.cpp models "
                          "with `python -m harness.models.llama_cpp_server`, which fixes it")
        return True, None

    # ---- requests -------------------------------------------------------------------------------------
    def apply_chat_template(self, user_text: str, system: str | None = None) -> str:
        """The messages themselves: the server applies the model's template."""
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user_text}]
        return CHAT_PREFIX + json.dumps(messages, ensure_ascii=False)

    def generate(self, requests: list[Request]) -> list[Response]:
        return self._map(self._generate_one, requests)

    def loglikelihood(self, requests: list[Request]) -> list[Response]:
        pairs = [(i, ctx, cont) for i, r in enumerate(requests) for ctx, cont in [_split(r.context, c) for c in r.continuations]]
        scored = self._map(lambda p: self._score_one(p[1], p[2]), pairs)
        out = [Response() for _ in requests]
        for (i, _, _), part in zip(pairs, scored):
            resp = out[i]
            resp.error = resp.error or part.error
            resp.logliks += part.logliks
            resp.is_greedy += part.is_greedy
            resp.n_tokens += part.n_tokens
            resp.tokens_processed += part.tokens_processed
        return out

    def loglikelihood_rolling(self, requests: list[Request]) -> list[Response]:
        return self._map(lambda r: self._score_one("", r.context), requests)

    def _generate_one(self, req: Request) -> Response:
        gen = req.gen or GenSettings()
        payload: dict[str, Any] = {"model": self.model, "max_tokens": gen.max_new_tokens, "temperature": gen.temperature,
                                   "top_p": gen.top_p, "seed": gen.seed}
        if gen.stop:
            payload["stop"] = list(gen.stop)
        chat = req.context.startswith(CHAT_PREFIX)
        if chat or not self._probe()["completions"]:
            payload["messages"] = (json.loads(req.context[len(CHAT_PREFIX):]) if chat
                                   else [{"role": "user", "content": req.context}])
            data = self._post("/chat/completions", payload)
            text = (data["choices"][0].get("message") or {}).get("content") or ""
        else:
            payload["prompt"] = req.context
            data = self._post("/completions", payload)
            text = data["choices"][0].get("text") or ""
        from harness.models.hf import truncate_at_stop  # start-up time: hf loads the adapter machinery

        usage = data.get("usage") or {}
        return Response(text=truncate_at_stop(text, gen.stop), n_tokens=[int(usage.get("completion_tokens") or 0)],
                        tokens_processed=int(usage.get("total_tokens") or 0))

    def _score_one(self, context: str, continuation: str) -> Response:
        """Loglikelihood of `continuation` after `context` from one echoed prompt."""
        prompt = context + continuation
        data = self._post("/completions", _loglik_payload(self.model, prompt))
        lp = data["choices"][0]["logprobs"]
        tokens, values, offsets = lp["tokens"], lp["token_logprobs"], lp["text_offset"]
        tops = lp.get("top_logprobs") or [None] * len(tokens)
        boundary = len(context)
        total, greedy, count = 0.0, True, 0
        for token, value, offset, top in zip(tokens, values, offsets, tops):
            if offset >= len(prompt):  # the token generated after the echoed prompt
                break
            if offset + len(token) <= boundary and offset < boundary:  # a context token
                continue
            count += 1
            total += float(value) if value is not None else 0.0  # None: the first token, which nothing predicts
            if top:
                greedy = greedy and max(top, key=top.get) == token
        usage = data.get("usage") or {}
        return Response(logliks=[total], is_greedy=[greedy], n_tokens=[count],
                        tokens_processed=int(usage.get("prompt_tokens") or 0))

    # ---- transport ------------------------------------------------------------------------------------
    def _map(self, fn: Callable[[Any], Response], items: list[Any]) -> list[Response]:
        """`fn` over `items` with at most `concurrency` in flight; a failure becomes `Response.error`."""
        if self._deadline is None and self.budget is not None:
            self._deadline = time.monotonic() + self.budget

        def guarded(item: Any) -> Response:
            try:
                return fn(item)
            except _RequestFailed as exc:
                return Response(error=str(exc))
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                return Response(error=f"unexpected reply from the server ({exc.__class__.__name__}: {exc})"[:300])

        if len(items) <= 1 or self.concurrency == 1:
            return [guarded(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(guarded, items))

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _get(self, path: str) -> httpx.Response:
        try:
            return self._client.get(self._url(path))
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: Exception) -> UserError:
        return EndpointOptionError(f"cannot reach {redact_url(self.base_url)} ({exc.__class__.__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else 'no answer'})", field="--base-url")

    def _check_response(self, reply: httpx.Response, what: str) -> dict[str, Any]:
        """The JSON of a probe reply, or a one-line user error naming what is wrong."""
        if reply.status_code in (401, 403):
            raise EndpointOptionError(f"the server at {redact_url(self.base_url)} refused the API key from "
                                      f"${self.api_key_env} (HTTP {reply.status_code})", field="--api-key-env")
        if reply.status_code == 404:
            raise EndpointOptionError(f"no OpenAI-compatible API at {redact_url(self.base_url)} ({what}: HTTP 404; "
                                      "the base URL usually ends in /v1)", field="--base-url")
        if reply.status_code >= 400:
            raise EndpointOptionError(f"{what} at {redact_url(self.base_url)} failed: HTTP {reply.status_code}",
                                      field="--base-url")
        try:
            data = reply.json()
        except ValueError:
            raise EndpointOptionError(f"{redact_url(self.base_url)} is not an OpenAI-compatible API ({what} "
                                      "returned no JSON)", field="--base-url") from None
        if not isinstance(data, dict):
            raise EndpointOptionError(f"{what} at {redact_url(self.base_url)} returned no model list", field="--base-url")
        return data

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST with retries; the reply's JSON, or _RequestFailed naming the last problem."""
        reply = self._send(path, payload)
        if reply.status_code >= 400:
            with self._lock:
                self._usage["failed_requests"] += 1
            raise _RequestFailed(f"HTTP {reply.status_code}: {_snippet(reply.text)}" + (
                f" (after {self.retries + 1} attempts)" if reply.status_code in RETRY_STATUS else ""))
        data = reply.json()
        self._count(data.get("usage") or {})
        return data

    def _send(self, path: str, payload: dict[str, Any]) -> httpx.Response:
        """POST, retried on 429, 5xx, timeouts and lost connections with exponential backoff and full jitter
        (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015); a Retry-After header wins. Returns
        the last reply; raises _RequestFailed when no reply came at all or the --budget is spent."""
        attempt = 0
        while True:
            if self._deadline is not None and time.monotonic() > self._deadline:
                raise _RequestFailed(f"the --budget of {self.budget:g} s is spent")
            reply, wait = None, None
            try:
                reply = self._client.post(self._url(path), json=payload)
                with self._lock:
                    self._usage["requests"] += 1
                if reply.status_code not in RETRY_STATUS:
                    return reply
                problem = f"HTTP {reply.status_code}: {_snippet(reply.text)}"
                wait = _retry_after(reply)
            except httpx.TimeoutException:
                problem = f"no answer within --timeout {self.timeout:g} s"
            except httpx.TransportError as exc:
                problem = f"connection failed ({exc.__class__.__name__})"
            attempt += 1
            delay = wait if wait is not None else random.uniform(0, min(30.0, self.backoff * 2 ** (attempt - 1)))
            out_of_budget = self._deadline is not None and time.monotonic() + delay > self._deadline
            if attempt > self.retries or out_of_budget:
                if reply is not None and not out_of_budget:
                    return reply
                with self._lock:
                    self._usage["failed_requests"] += 1
                why = f"the --budget of {self.budget or 0:g} s allows no other retry" if out_of_budget \
                    else f"after {attempt} attempts"
                raise _RequestFailed(f"{problem} ({why})")
            with self._lock:
                self._usage["retries"] += 1
            self._sleep(delay)

    def _count(self, usage: dict[str, Any]) -> None:
        with self._lock:
            self._usage["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
            self._usage["completion_tokens"] += int(usage.get("completion_tokens") or 0)


class _RequestFailed(Exception):
    """A request that failed for good: its message becomes the sample's error."""


def _loglik_payload(model: str, prompt: str) -> dict[str, Any]:
    # lm-evaluation-harness local-completions: one generated token (some servers refuse max_tokens 0)
    return {"model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0.0, "echo": True, "logprobs": 1,
            "seed": 1234}


def _split(context: str, continuation: str) -> tuple[str, str]:
    """lm-evaluation-harness's split, as the in-process backend does: the context's trailing spaces move
    to the continuation."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        return context[:-spaces], context[-spaces:] + continuation
    return context, continuation


def _retry_after(reply: httpx.Response) -> float | None:
    value = reply.headers.get("retry-after")
    try:
        return min(float(value), 60.0) if value is not None else None
    except ValueError:
        return None


def _snippet(text: str) -> str:
    return " ".join(text.split())[:200]


def redact_url(url: str) -> str:
    """The URL without user:password@ and without a query string (either may hold a secret)."""
    url = re.sub(r"//[^/@]*@", "//", url)
    return url.split("?", 1)[0]
