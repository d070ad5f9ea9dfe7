"""The review web app (FastAPI + uvicorn): blind pairwise preferences or 1–5 rubric ratings.

Security model: the server binds 127.0.0.1 by default. Opening the printed URL (which carries the
per-session token) sets an HttpOnly, SameSite=Strict cookie and drops the token from the address bar.
Every write also needs the CSRF token (an HMAC of the session token) in a header, and a JSON body, so a
cross-site form can neither send nor forge one. Requests must name the server by one of its own Host names
(127.0.0.1, localhost, --host, --allow-host), so a page on a DNS-rebound name cannot reach it. Model outputs
only ever reach the page through `textContent`, under a Content-Security-Policy that allows no inline script.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import random
import re
import secrets
import socket
import sys
import threading
import time
import traceback
import unicodedata
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, select_autoescape
from pydantic import Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from harness.core.api import UserError
from harness.core.config import Strict
from harness.core.untrusted import excerpt
from harness.data.chat import turns_text
from harness.review.queue import Mode, Queue, plan_queue, store_queue
from harness.storage.review import DuplicateJudgment, Item, NotAssigned, ReviewDB, UnknownItem

MAX_BODY = 16 * 1024  # bytes of one request body
MAX_COMMENT = 2000  # characters
MAX_NAME = 64
COOKIE = "tunegate_review"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_INT_DIGITS = 30  # longer JSON integers are not parsed (no 5,000-digit numbers)
# Unicode categories no reviewer name may hold: control, format (bidirectional overrides, zero-width
# characters), surrogates, private use and unassigned.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


class Reviewer(Strict):
    reviewer: str = Field(min_length=1, max_length=MAX_NAME * 4)

    @field_validator("reviewer")
    @classmethod
    def _name(cls, value: str) -> str:
        """The name in NFC with runs of white space as one space, so one person is one reviewer; names that
        could display as someone else's (bidirectional overrides, zero-width characters) are refused."""
        name = unicodedata.normalize("NFC", " ".join(value.split()))
        if not name or len(name) > MAX_NAME or any(unicodedata.category(ch) in _HIDDEN for ch in name):
            raise ValueError(f"a reviewer name is 1–{MAX_NAME} printable characters (no control, bidirectional "
                             "or zero-width characters)")
        return name


class JudgmentIn(Reviewer):
    item_id: str = Field(pattern=r"^[0-9a-f]{1,64}$")
    choice: Literal["A", "B", "tie", "both_bad"] | None = None
    ratings: dict[str, int] | None = Field(default=None, max_length=32)
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)


class Session:
    """The per-session secrets: the token in the printed URL and the CSRF token derived from it."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token or secrets.token_urlsafe(24)
        self.csrf = hmac.new(self.token.encode(), b"tunegate-review-csrf", hashlib.sha256).hexdigest()

    def token_ok(self, request: Request) -> bool:
        given = request.headers.get("x-review-token") or request.cookies.get(COOKIE) or ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    def csrf_ok(self, request: Request) -> bool:
        return hmac.compare_digest(request.headers.get("x-csrf-token", "").encode(), self.csrf.encode())


def _template(name: str) -> Any:
    """A template from `templates/`, autoescaped whatever its name."""
    text = (resources.files("harness.review") / "templates" / name).read_text(encoding="utf-8")
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(text)


def _static(name: str) -> tuple[bytes, str] | None:
    kinds = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    if not re.fullmatch(r"[a-z0-9_-]{1,64}\.[a-z]{1,8}", name) or Path(name).suffix not in kinds:
        return None
    path = resources.files("harness.review") / "static" / name
    try:
        return (path.read_bytes(), kinds[Path(name).suffix]) if path.is_file() else None
    except OSError:
        return None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _HugeInt:
    """Stands for a JSON integer of more than MAX_INT_DIGITS digits: no field accepts it (422)."""


def _parse_int(text: str) -> int | _HugeInt:
    return int(text) if len(text) <= MAX_INT_DIGITS else _HugeInt()


async def _read_json(request: Request) -> Any:
    """The JSON body, refusing more than MAX_BODY bytes before reading it all."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "expected Content-Type: application/json")
    declared = request.headers.get("content-length")
    if declared and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise HTTPException(413, f"request body over {MAX_BODY} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"request body over {MAX_BODY} bytes")
    try:
        return json.loads(bytes(body), parse_int=_parse_int)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested past the parser's depth
        raise HTTPException(400, "malformed JSON") from None


def _parse(model: type[Strict], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise HTTPException(422, f"{where}: {first.get('msg', 'invalid')}") from None


def _check_shape(item: Item, body: JudgmentIn) -> None:
    """A pairwise judgment carries a choice; a rating carries exactly the item's axes, each 1–5."""
    if item.mode == "pairwise":
        if body.choice is None or body.ratings:
            raise HTTPException(422, "a pairwise judgment needs choice A, B, tie or both_bad and no ratings")
        return
    if body.choice is not None or not body.ratings:
        raise HTTPException(422, "a rating needs ratings for every axis and no choice")
    if set(body.ratings) != set(item.axes):
        raise HTTPException(422, f"ratings must cover exactly the axes {', '.join(item.axes)}")
    if any(not 1 <= v <= 5 for v in body.ratings.values()):
        raise HTTPException(422, "every rating is an integer from 1 to 5")


def _item_view(item: Item, order: list[int]) -> dict[str, Any]:
    """What the reviewer sees: no model names, responses in the recorded random order."""
    return {"item_id": item.item_id, "mode": item.mode, "where": f"{item.suite} / {item.task}",
            "prompt": turns_text(item.prompt), "reference": item.reference, "axes": item.axes,
            "responses": [item.responses[i] for i in order]}


def host_name(header: str) -> str:
    """The host of a Host header, without port, brackets or a trailing dot, in lower case."""
    host = header.strip().lower()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def create_app(db: ReviewDB, queue: Queue, session: Session, *, seed: int | None = None,
               hosts: Iterable[str] = ()) -> FastAPI:
    """The app for one queue; `seed` fixes the left/right draws (tests), otherwise they are fresh. Requests
    are served only when their Host header names 127.0.0.1, localhost, ::1 or one of `hosts`."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    rng = random.Random(seed if seed is not None else secrets.randbits(64))
    rng_lock = threading.Lock()
    allowed_hosts = LOCAL_HOSTS | {host_name(h) for h in hosts}

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        try:
            if host_name(request.headers.get("host", "")) not in allowed_hosts:
                response = _error(400, "unexpected Host header: open the URL that tunegate review printed")
            else:
                response = await call_next(request)
        except Exception:  # never a traceback to the client; the server's stderr keeps it
            traceback.print_exc()
            response = _error(500, "internal error")
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid request")

    def require(request: Request, write: bool) -> None:
        if not session.token_ok(request):
            raise HTTPException(401, "missing or wrong session token: open the URL that tunegate review printed")
        if write and not session.csrf_ok(request):
            raise HTTPException(403, "missing or wrong CSRF token")
        origin = request.headers.get("origin")
        if write and origin and origin not in _own_origins(request):
            raise HTTPException(403, "cross-origin write refused")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request, token: str | None = None) -> Response:
        if token is not None:
            if not hmac.compare_digest(token.encode(), session.token.encode()):
                return HTMLResponse(_template("denied.html").render(), status_code=401)
            # Keep the token out of the address bar, history and Referer: the cookie carries it from here.
            redirect = RedirectResponse("/", status_code=303)
            redirect.set_cookie(COOKIE, session.token, httponly=True, samesite="strict", path="/")
            return redirect
        if not session.token_ok(request):
            return HTMLResponse(_template("denied.html").render(), status_code=401)
        html = _template("index.html").render(csrf=session.csrf, mode=queue.mode,
                                              reviewers_per_item=queue.reviewers_per_item)
        return HTMLResponse(html)

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        found = _static(name)
        if not found:
            raise HTTPException(404, "not found")
        return Response(found[0], media_type=found[1])

    @app.get("/api/session")
    async def session_info(request: Request) -> dict[str, Any]:
        require(request, write=False)
        return {"csrf": session.csrf, "mode": queue.mode, "reviewers_per_item": queue.reviewers_per_item,
                "items": len(queue.items)}

    @app.post("/api/next")
    async def next_item(request: Request) -> dict[str, Any]:
        require(request, write=True)
        who = _parse(Reviewer, await _read_json(request)).reviewer

        def work() -> dict[str, Any]:
            with rng_lock:
                draw = random.Random(rng.random())
            found = db.next_for(queue.queue_id, who, draw)
            progress = db.progress(queue.queue_id, who)
            if not found:
                return {"done": True, "progress": progress}
            return {"done": False, "item": _item_view(*found), "progress": progress}

        return await run_in_threadpool(work)

    @app.post("/api/judgments")
    async def judge(request: Request) -> JSONResponse:
        require(request, write=True)
        body: JudgmentIn = _parse(JudgmentIn, await _read_json(request))

        def work() -> JSONResponse:
            item = db.item(body.item_id)
            if item is None:
                raise HTTPException(404, "unknown item")
            _check_shape(item, body)
            comment = (body.comment or "").strip() or None
            try:
                jid = db.add_judgment(item.item_id, body.reviewer, choice=body.choice, ratings=body.ratings,
                                      comment=comment)
            except UnknownItem:
                raise HTTPException(404, "unknown item") from None
            except NotAssigned:
                raise HTTPException(409, "this item was not assigned to this reviewer") from None
            except DuplicateJudgment:
                raise HTTPException(409, "already judged: the first judgment is kept") from None
            # Answered only after the commit: an acknowledged judgment is on disk.
            return JSONResponse({"ok": True, "judgment_id": jid,
                                 "progress": db.progress(queue.queue_id, body.reviewer)}, status_code=201)

        return await run_in_threadpool(work)

    return app


def _own_origins(request: Request) -> set[str]:
    host = request.headers.get("host", "")
    return {f"http://{host}", f"https://{host}"}


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free on `host` (for tests and `--port 0`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# Idle sockets must not lock reviewers out: uvicorn answers 503 to every request once `limit_concurrency`
# connections are open, and it has no timeout for a connection that never finishes its request headers.
HEADER_TIMEOUT = 10.0  # seconds a connection may stay without a complete request (first, or next on keep-alive)
PER_CLIENT = 32  # open connections per client address; a new one closes that client's oldest idle one
KEEP_ALIVE = 5  # seconds an idle keep-alive connection is kept after a response


def _guarded_protocol() -> type:
    """uvicorn's h11 protocol with a header/idle timeout and a per-client connection limit."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11(H11Protocol):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.opened = time.monotonic()
            self.checked_cycle: Any = None
            address = self.client[0] if self.client else None
            peers = sorted((c for c in self.connections if c is not self and isinstance(c, GuardedH11)
                            and (c.client[0] if c.client else None) == address), key=lambda c: c.opened)
            for old in peers[:max(0, len(peers) + 1 - PER_CLIENT)]:
                if old.idle():
                    old.transport.close()
            if sum(1 for c in peers if not c.transport.is_closing()) + 1 > PER_CLIENT:
                transport.close()  # every other connection of this client is busy: this one waits its turn
                return
            self.timer = self.loop.call_later(HEADER_TIMEOUT, self.check_progress)

        def idle(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def check_progress(self) -> None:
            """Close a connection that began no new request since the last check and is not serving one."""
            if self.transport.is_closing():
                return
            if self.idle() and self.cycle is self.checked_cycle:
                self.transport.close()
                return
            self.checked_cycle = self.cycle
            self.timer = self.loop.call_later(HEADER_TIMEOUT, self.check_progress)

        def connection_lost(self, exc: Exception | None) -> None:
            timer = getattr(self, "timer", None)
            if timer is not None:
                timer.cancel()
            super().connection_lost(exc)

    return GuardedH11


def _server(app: FastAPI, host: str, port: int) -> Any:
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            server_header=False, limit_concurrency=256, timeout_graceful_shutdown=2,
                            http=_guarded_protocol(), timeout_keep_alive=KEEP_ALIVE)
    return uvicorn.Server(config)


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int | None = None,
                    startup_timeout: float = 20.0) -> Iterator[str]:
    """Run the app in a background thread; yields its base URL and always stops it."""
    port = port or free_port(host)
    server = _server(app, host, port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        if not server.started:
            raise RuntimeError("review server did not start")
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one); a UserError naming the option when it fails."""
    import errno

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise UserError(f"cannot listen on {excerpt(host)}: {getattr(exc, 'strerror', None) or exc}",
                        field="--host") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT port, not one in use
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"cannot listen on {host}:{port}: the port is in use (another review server?); "
                            "pick another --port, or --port 0 for any free port", field="--port") from None
        field = "--port" if exc.errno == errno.EACCES else "--host"
        raise UserError(f"cannot listen on {excerpt(host)}:{port}: {exc.strerror}", field=field) from None
    sock.set_inheritable(True)
    return sock


def serve(run_paths: list[Path], *, mode: Mode = "pairwise", reviewers_per_item: int | None = None,
          host: str = "127.0.0.1", port: int = 8765, store_path: Path | str | None = None, seed: int = 0,
          token: str | None = None, reset_queue: bool = False, allowed_hosts: Iterable[str] = (),
          only_judged: bool = False) -> int:
    """`tunegate review RUN...`: build the queue, print the URL with the session token, serve until Ctrl-C.

    Nothing is written before the port is bound, so a start that fails changes no live queue; a queue that
    already exists keeps its reviewers per item unless `reset_queue`."""
    if not 0 <= port <= 65535:
        raise UserError("must be between 0 and 65535", field="--port")
    planned = plan_queue(run_paths, mode=mode, reviewers_per_item=reviewers_per_item, seed=seed,
                         only_judged=only_judged)
    sock = listen(host, port)
    try:
        db = ReviewDB(store_path)
    except BaseException:
        sock.close()
        raise
    try:
        queue = store_queue(db, planned, reset=reset_queue)
        port = int(sock.getsockname()[1])
        session = Session(token)
        shown = f"[{host}]" if ":" in host else host
        if host not in LOCAL_HOSTS:
            print(f"warning: serving on {host}: anyone who can reach it and learns the URL can write judgments "
                  "(requests must name this host, localhost or an --allow-host name)", file=sys.stderr)
        models = ", ".join(m["label"] for m in queue.models)
        print(f"review queue {queue.queue_id}: {len(queue.items)} {mode} items from {models}, "
              f"{queue.reviewers_per_item} reviewer(s) each; store {db.path}")
        if queue.skipped_identical:
            print(f"left out {queue.skipped_identical} pairs whose responses are identical")
        print(f"open http://{shown}:{port}/?token={session.token}", flush=True)
        app = create_app(db, queue, session, hosts=[host, *allowed_hosts])
        try:
            _server(app, host, port).run(sockets=[sock])
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: uvicorn shut down cleanly, then passed the signal on
            print(f"tunegate: review server stopped; {db.count_judgments()} judgments are saved in {db.path}",
                  file=sys.stderr)
    finally:
        sock.close()
        db.close()
    return 0
