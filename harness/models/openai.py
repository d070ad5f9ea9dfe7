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

import contextlib
import json
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from harness.core.api import Backend, Capability, GenSettings, Request, Response, UserError
from harness.core.redact import add_secret, redact, redact_secrets
from harness.core.untrusted import excerpt

PROTOCOL_VERSION = 1  # bump when the requests sent or the parsing of replies change what a request returns
CHAT_PREFIX = "<tunegate:chat>"  # a chat-templated prompt: this prefix, then the messages as JSON
NOT_FINGERPRINTED = ("an endpoint cannot be fingerprinted by its weights: the cache and the comparison trust "
                     "the model name the server reports and the --revision you declare")
PROBE_PROMPT = "The capital of France is Paris"  # the token after it is predictable, and is not " Paris"
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_RESPONSE_BYTES = 32 * 2**20  # half the run file's line limit (harness.data.runfile.MAX_SAMPLE_BYTES)
DEFAULTS = {"concurrency": 8, "timeout": 120.0, "retries": 5, "max_response_mb": 4.0}


class EndpointOptionError(UserError):
    """A bad base URL, key or model name (exit 2)."""


class OpenAIBackend(Backend):
    """A served model, reached over HTTP."""

    name: ClassVar[str] = "openai"

    def __init__(self, model: str, base_url: str, *, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 8, timeout: float = 120.0, budget: float | None = None, retries: int = 5,
                 revision: str | None = None, backoff: float = 0.5, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, max_response_mb: float = 4.0) -> None:
        self.model, self.base_url, self.revision = model, base_url.rstrip("/"), revision
        self.api_key_env = api_key_env
        self.concurrency, self.timeout, self.budget, self.retries = concurrency, timeout, budget, retries
        self.backoff, self._sleep = backoff, sleep
        self.max_response_bytes = int(max_response_mb * 2**20)
        key = os.environ.get(api_key_env)
        add_secret(key)  # before anything can fail: a server may echo the key back in an error body
        if key and (key != key.strip() or any(not ch.isprintable() for ch in key)):
            raise EndpointOptionError(f"the API key in ${api_key_env} has surrounding whitespace or control "
                                      "characters (a trailing newline?); the key is not shown", field="--api-key-env")
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
                  retries: int | None = None, revision: str | None = None, max_response_mb: float | None = None,
                  **_: Any) -> OpenAIBackend:
        """`rest` is the model name; in-process options (dtype, device, batch_size) do not apply and are ignored."""
        if not rest:
            raise UserError("an endpoint model needs a name: -m openai:MODEL", field="-m/--model")
        url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not url:
            raise UserError("-m openai:MODEL needs --base-url URL (or $OPENAI_BASE_URL), e.g. "
                            "http://127.0.0.1:8000/v1", field="--base-url")
        if not re.match(r"^https?://[^/\s]+", url):
            raise UserError(f"base URL {redact_url(url)!r} is not an http:// or https:// URL", field="--base-url")
        with contextlib.suppress(ValueError):
            add_secret(urlsplit(url).password)
        env = api_key_env or "OPENAI_API_KEY"
        if api_key_env and api_key_env not in os.environ:
            raise UserError(f"environment variable {api_key_env} (named by --api-key-env) is not set",
                            field="--api-key-env")
        for name, value in (("--timeout", timeout), ("--budget", budget), ("--max-response-mb", max_response_mb)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise UserError(f"must be a positive number of {'MB' if 'mb' in name else 'seconds'}, got {value}",
                                field=name)
        if max_response_mb is not None and max_response_mb * 2**20 > MAX_RESPONSE_BYTES:
            raise UserError(f"at most {MAX_RESPONSE_BYTES // 2**20} MB: a larger response would make a samples.jsonl "
                            "line that tunegate cannot read back", field="--max-response-mb")
        if retries is not None and retries < 0:
            raise UserError(f"must be 0 or more, got {retries}", field="--retries")
        return cls(rest, url, api_key_env=env, concurrency=concurrency or DEFAULTS["concurrency"],  # type: ignore[arg-type]
                   timeout=timeout or DEFAULTS["timeout"], budget=budget,  # type: ignore[arg-type]
                   retries=DEFAULTS["retries"] if retries is None else retries, revision=revision,  # type: ignore[arg-type]
                   max_response_mb=max_response_mb or DEFAULTS["max_response_mb"])

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
            message = _field(_first_choice(data), "message", dict)
            text = _field(message, "content", str, optional=True) or ""
        else:
            payload["prompt"] = req.context
            data = self._post("/completions", payload)
            text = _field(_first_choice(data), "text", str, optional=True) or ""
        from harness.models.hf import truncate_at_stop  # start-up time: hf loads the adapter machinery

        usage = _usage(data)
        text = redact_secrets(text)  # a server that echoes the key into a completion must not get it stored
        return Response(text=truncate_at_stop(text, gen.stop), n_tokens=[usage["completion_tokens"]],
                        tokens_processed=usage["total_tokens"])

    def _score_one(self, context: str, continuation: str) -> Response:
        """Loglikelihood of `continuation` after `context` from one echoed prompt. A reply whose logprob lists
        disagree in length, hold a value that is not a finite number <= 0, or do not cover the continuation is
        malformed: a failed request (recorded, retried by --resume), never a score."""
        prompt = context + continuation
        data = self._post("/completions", _loglik_payload(self.model, prompt))
        lp = _field(_first_choice(data), "logprobs", dict)
        tokens, values, offsets = (_field(lp, k, list) for k in ("tokens", "token_logprobs", "text_offset"))
        tops = lp.get("top_logprobs") or [None] * len(tokens)
        if not (len(tokens) == len(values) == len(offsets) == len(tops)):
            raise MalformedReply(f"logprobs lists of unequal length (tokens {len(tokens)}, token_logprobs "
                                 f"{len(values)}, text_offset {len(offsets)}, top_logprobs {len(tops)})")
        boundary = len(context)
        total, greedy, count, covered, previous, past_end = 0.0, True, 0, boundary, -1, False
        for index, (token, value, offset, top) in enumerate(zip(tokens, values, offsets, tops)):
            if not isinstance(token, str) or not _int(offset) or offset < previous:
                raise MalformedReply(f"token {index}: a token that is not text or an offset that is not a "
                                     "non-decreasing integer")
            previous = offset
            if offset >= len(prompt):  # the token generated after the echoed prompt
                past_end = True
                break
            if offset + len(token) <= boundary and offset < boundary:  # a context token
                continue
            if value is None and index > 0:  # only the first token has nothing to predict it
                raise MalformedReply(f"token {index} of the continuation has no logprob")
            if value is not None and not (_number(value) and math.isfinite(value) and value <= 1e-6):
                raise MalformedReply(f"token {index} has logprob {excerpt(value, 30)} (not a finite number <= 0)")
            count += 1
            total += float(value) if value is not None else 0.0
            covered = max(covered, offset + max(len(token), 1))  # a byte-piece token may show as ""
            if top:
                if not isinstance(top, dict) or not all(_number(v) for v in top.values()):
                    raise MalformedReply(f"token {index}: top_logprobs is not a mapping of token to number")
                greedy = greedy and max(top, key=lambda t: top[t]) == token
        if continuation and (count == 0 or (covered < len(prompt) and not past_end)):
            raise MalformedReply(f"the logprobs cover {max(covered - boundary, 0)} of the continuation's "
                                 f"{len(continuation)} characters")
        return Response(logliks=[total], is_greedy=[greedy], n_tokens=[count],
                        tokens_processed=_usage(data)["prompt_tokens"])

    # ---- transport ------------------------------------------------------------------------------------
    def _map(self, fn: Callable[[Any], Response], items: list[Any]) -> list[Response]:
        """`fn` over `items` with at most `concurrency` in flight; a failure becomes `Response.error`."""
        if self._deadline is None and self.budget is not None:
            self._deadline = time.monotonic() + self.budget

        def guarded(item: Any) -> Response:
            """A malformed reply is retried like a 5xx (a proxy may have cut it), then recorded as the error."""
            attempt = 0
            while True:
                try:
                    return fn(item)
                except _RequestFailed as exc:
                    return Response(error=str(exc))
                except (KeyError, IndexError, TypeError, ValueError, RecursionError) as exc:
                    attempt += 1
                    problem = f"malformed reply from the server ({exc.__class__.__name__}: {excerpt(str(exc), 240)})"
                    delay = random.uniform(0, min(30.0, self.backoff * 2 ** (attempt - 1)))
                    spent = self._deadline is not None and time.monotonic() + delay > self._deadline
                    if attempt > self.retries or spent:
                        with self._lock:
                            self._usage["failed_requests"] += 1
                        return Response(error=redact(f"{problem} (after {attempt} attempts)"))
                    with self._lock:
                        self._usage["retries"] += 1
                    self._sleep(delay)

        if len(items) <= 1 or self.concurrency == 1:
            return [guarded(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(guarded, items))

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _get(self, path: str) -> _Reply:
        if self._deadline is None and self.budget is not None:
            self._deadline = time.monotonic() + self.budget
        try:
            return self._attempt(path, method="GET")
        except (_AttemptTimeout, _TooLarge) as exc:
            raise EndpointOptionError(f"GET {path} at {redact_url(self.base_url)} failed: {exc}",
                                      field="--base-url") from None
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: Exception) -> UserError:
        first = redact(str(exc).splitlines()[0]) if str(exc) else "no answer"
        return EndpointOptionError(f"cannot reach {redact_url(self.base_url)} ({exc.__class__.__name__}: "
                                   f"{first})", field="--base-url")

    def _check_response(self, reply: _Reply, what: str) -> dict[str, Any]:
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
        if not isinstance(data, dict):
            raise MalformedReply(f"the reply is a JSON {type(data).__name__}, not an object")
        self._count(_usage(data))
        return data

    def _send(self, path: str, payload: dict[str, Any]) -> _Reply:
        """POST, retried on 429, 5xx, timeouts and lost connections with exponential backoff and full jitter
        (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015); a Retry-After header wins. Returns
        the last reply; raises _RequestFailed when no reply came at all or the --budget is spent. Each attempt
        ends by its deadline (--timeout, connect to last byte, and what is left of --budget), however slowly
        the server trickles bytes."""
        attempt = 0
        while True:
            if self._deadline is not None and time.monotonic() > self._deadline:
                raise _RequestFailed(f"the --budget of {self.budget:g} s is spent")
            reply, wait = None, None
            try:
                reply = self._attempt(path, payload)
                with self._lock:
                    self._usage["requests"] += 1
                if reply.status_code not in RETRY_STATUS:
                    return reply
                problem = f"HTTP {reply.status_code}: {_snippet(reply.text)}"
                wait = _retry_after(reply)
            except _AttemptTimeout as exc:
                problem = str(exc)
            except _TooLarge as exc:  # the same server would send the same reply again: no retry
                with self._lock:
                    self._usage["failed_requests"] += 1
                raise _RequestFailed(str(exc)) from None
            except httpx.TimeoutException:
                problem = f"no answer within --timeout {self.timeout:g} s"
            except (httpx.TransportError, httpx.StreamError) as exc:
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

    def _attempt(self, path: str, payload: dict[str, Any] | None = None, method: str = "POST") -> _Reply:
        """One POST, read to its last byte by its deadline and under --max-response-mb.

        httpx's timeouts bound each socket operation, not the whole exchange, so the exchange runs in a daemon
        thread and the caller stops waiting at the deadline; the response is then closed, which ends the
        thread's next read (and httpx's own timeout, set to the same span, ends a read that never returns)."""
        now = time.monotonic()
        limit = min(self.timeout, self._deadline - now) if self._deadline is not None else self.timeout
        if limit <= 0:
            raise _AttemptTimeout(f"the --budget of {self.budget or 0:g} s is spent")
        box: dict[str, Any] = {}
        done = threading.Event()
        max_bytes = self.max_response_bytes

        def exchange() -> None:
            try:
                with self._client.stream(method, self._url(path), json=payload, timeout=limit) as response:
                    box["response"] = response
                    body = bytearray()
                    for chunk in response.iter_bytes():  # decoded: a compressed bomb counts at its real size
                        body += chunk
                        if len(body) > max_bytes:
                            raise _TooLarge(f"the response is over --max-response-mb "
                                            f"{max_bytes / 2**20:g} MB (refused while reading)")
                        if box.get("abandoned"):
                            return
                    box["reply"] = _Reply(response.status_code, httpx.Headers(response.headers), bytes(body))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=exchange, name="tunegate-http", daemon=True).start()
        if not done.wait(limit):
            box["abandoned"] = True
            response = box.get("response")
            if response is not None:
                with contextlib.suppress(Exception):
                    response.close()
            budget_bound = self._deadline is not None and self._deadline - now < self.timeout
            raise _AttemptTimeout(f"the --budget of {self.budget or 0:g} s ran out mid-request" if budget_bound
                                  else f"no complete answer within --timeout {self.timeout:g} s")
        if "error" in box:
            raise box["error"]
        return box["reply"]

    def _count(self, usage: dict[str, int]) -> None:
        with self._lock:
            self._usage["prompt_tokens"] += usage["prompt_tokens"]
            self._usage["completion_tokens"] += usage["completion_tokens"]


class _RequestFailed(Exception):
    """A request that failed for good: its message becomes the sample's error (secrets redacted)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class _AttemptTimeout(Exception):
    """One attempt ran past its deadline (retried like a timeout)."""


class _TooLarge(Exception):
    """A response over --max-response-mb (not retried)."""


class _Reply:
    """A response read whole, within its deadline and size limit."""

    def __init__(self, status_code: int, headers: httpx.Headers, content: bytes) -> None:
        self.status_code, self.headers, self.content = status_code, headers, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class MalformedReply(ValueError):
    """A reply that parses but does not hold what was asked for: a failed request, never a score."""


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _field(data: Any, key: str, kind: type, optional: bool = False) -> Any:
    """data[key], which must be of `kind` (or absent/None when optional), else MalformedReply."""
    if not isinstance(data, dict):
        raise MalformedReply(f"expected a JSON object holding {key!r}, got {type(data).__name__}")
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise MalformedReply(f"{key!r} is {type(value).__name__}, not {kind.__name__}")
    return value


def _first_choice(data: Any) -> Any:
    choices = _field(data, "choices", list)
    if not choices:
        raise MalformedReply("no choices in the reply")
    return choices[0]


def _usage(data: dict[str, Any]) -> dict[str, int]:
    """Token counts from `usage`; a missing or non-integer count is 0 (accounting only, never a score)."""
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    counts = {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    return {k: v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**12 else 0
            for k, v in counts.items()}


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


def _retry_after(reply: _Reply) -> float | None:
    value = reply.headers.get("retry-after")
    try:
        return min(float(value), 60.0) if value is not None else None
    except ValueError:
        return None


def _snippet(text: str) -> str:
    return excerpt(redact(" ".join(text.split())), 200)


def redact_url(url: str) -> str:
    """The URL without user:password@ and without a query string (either may hold a secret)."""
    url = re.sub(r"//[^/@]*@", "//", url)
    return url.split("?", 1)[0]
