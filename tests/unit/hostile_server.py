"""A real OpenAI-compatible HTTP server on 127.0.0.1 (a free port) whose answers a test scripts: honest
echo logprobs by default, or a hostile behaviour (a body echoing the key, bytes trickled one per second, a
huge body, short or NaN logprob lists)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (handler, path, parsed body) -> True when the behaviour answered the request itself
Behaviour = Callable[[BaseHTTPRequestHandler, str, dict[str, Any]], bool]


def honest_logprobs(prompt: str) -> dict[str, Any]:
    """Echoed prompt logprobs, one token per word (with its leading space), each -0.5; plus a generated token."""
    tokens, offsets, pos = [], [], 0
    for piece in prompt.split(" "):
        token = piece if pos == 0 else " " + piece
        tokens.append(token)
        offsets.append(pos)
        pos += len(token)
    tokens.append(" x")
    offsets.append(len(prompt))
    values: list[float | None] = [None] + [-0.5] * (len(tokens) - 1)
    tops: list[dict[str, float] | None] = [None] + [{t: -0.5} for t in tokens[1:]]
    return {"tokens": tokens, "token_logprobs": values, "text_offset": offsets, "top_logprobs": tops}


class HostileServer:
    """Serves /v1/models and /v1/completions, /v1/chat/completions; `behaviour` may take over any request."""

    def __init__(self, behaviour: Behaviour | None = None, model: str = "m") -> None:
        self.behaviour, self.model, self.requests = behaviour, model, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send_json(self, status: int, data: Any) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                if owner.behaviour and owner.behaviour(self, self.path, {}):
                    return
                self._send_json(200, {"data": [{"id": owner.model, "owned_by": "test"}]})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                owner.requests += 1
                if owner.behaviour and owner.behaviour(self, self.path, body):
                    return
                if self.path.endswith("/chat/completions"):
                    self._send_json(200, {"choices": [{"message": {"content": "2"}}], "usage": {}})
                    return
                prompt = body.get("prompt", "")
                choice: dict[str, Any] = {"text": prompt + " x" if body.get("echo") else "2"}
                if body.get("echo"):
                    choice["logprobs"] = honest_logprobs(prompt)
                self._send_json(200, {"choices": [choice], "usage": {"prompt_tokens": 3}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HostileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def send_json(handler: BaseHTTPRequestHandler, status: int, data: Any) -> bool:
    handler._send_json(status, data)  # type: ignore[attr-defined]
    return True


def trickle(handler: BaseHTTPRequestHandler, seconds: float = 60.0) -> bool:
    """Headers at once, then one byte per second of a body that never completes in time."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(10_000))
    handler.end_headers()
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(1.0)
    except OSError:
        pass
    return True
