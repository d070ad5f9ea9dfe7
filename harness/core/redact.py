"""Secrets out of every message, log and file: API keys, Authorization values, URL and libpq credentials.

One function, `redact`, is applied wherever text leaves the process (error lines, errors.jsonl, sample
errors, crash logs). It removes the values registered with `add_secret` (the API key a backend read from
the environment: a server may echo it back, as OpenAI's 401 body does) and anything shaped like a
credential: `Bearer X`, `Authorization: X`, `api-key: X`, `user:password@` in a URL, `password=X` in a
query string or a libpq keyword string. This module imports nothing from harness, so any module may use it.
"""

from __future__ import annotations

import re
import threading

MASK = "***"
_MIN_SECRET = 4  # shorter values would mask ordinary words
_secrets: set[str] = set()
_lock = threading.Lock()

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # an Authorization value: `Bearer X`, `Basic X` (base64 only: "basic" is also a word)
    (re.compile(r"(?i)\b(bearer)(\s+)[^\s'\",;]+"), rf"\1\2{MASK}"),
    (re.compile(r"\b(Basic)(\s+)[A-Za-z0-9+/]{8,}={0,2}"), rf"\1\2{MASK}"),
    # a header or field that holds a key: `Authorization: X`, `api-key=X`, `"x-api-key": "X"`
    (re.compile(r"(?i)\b(authorization|proxy-authorization|x-api-key|api[-_]?key|access[-_]?token)"
                r"(['\"]?\s*[:=]\s*['\"]?)(?!(?:bearer|basic)\b)[^\s'\",;&]+"), rf"\1\2{MASK}"),
    # credentials in a URL: scheme://user:password@host (the whole user-info goes)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]*@"), rf"\1{MASK}@"),
    # password=X in a query string or a libpq keyword string (quoted values included)
    (re.compile(r"(?i)\b(password|passwd|pwd|sslpassword|passfile|sslkey)(\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&;'\"]+)"),
     rf"\1\2{MASK}"),
    # OpenAI-style keys anywhere
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), f"sk-{MASK}"),
)


def add_secret(value: str | None) -> None:
    """Mask `value` (and its stripped form) in everything `redact` sees from now on."""
    if not value:
        return
    with _lock:
        for form in {value, value.strip()}:
            if len(form) >= _MIN_SECRET:
                _secrets.add(form)


def redact_secrets(text: str) -> str:
    """`text` with only the registered secrets masked: for a model's own output, where a credential-shaped
    phrase (`password=...`) is content, but the key itself must never be kept even if a server echoes it."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact(text: str) -> str:
    """`text` with every registered secret and every credential-shaped value replaced by ***."""
    if not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)  # longest first: a key that contains another
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
        shown = repr(secret)[1:-1]  # a key with a newline shows as `\n` in a repr'd header value
        if shown != secret and shown in text:
            text = text.replace(shown, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
