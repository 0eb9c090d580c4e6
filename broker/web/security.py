"""Security plumbing for the web front: response headers (CSP), a rate limiter, CSRF tokens.

* Every response gets a Content-Security-Policy that allows no script at all and styles only from our
  own stylesheet, plus headers that stop framing, MIME sniffing and Referer leaks (a token URL must never
  reach a publisher's site as a Referer when a VCSE follows a notice link).
* Token and login endpoints are rate limited per client address (a sliding window in memory: the server
  is one process; behind a proxy, uvicorn's ``--proxy-headers`` supplies the client address).
* Officer forms carry a per-session random CSRF token, compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
# The progress report is the same self-contained page `broker report` writes: its styles are inline, it
# has no script, and it loads nothing.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'"
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityHeaders:
    """ASGI middleware adding the security headers (a response may set its own, stricter or report CSP)."""

    def __init__(self, app: Any, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = list(HEADERS) + [(b"content-security-policy", CSP.encode())]
                extra.append((b"cache-control", b"no-store"))
                if self.hsts:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RateLimiter:
    """At most ``limit`` requests per ``window`` seconds per key (client address); thread-safe."""

    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count one request for ``key``; False when it is over the limit (nothing is counted then)."""
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            if len(self._hits) > 100_000:  # bound memory under a flood of addresses
                self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - self.window}
            return True


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: str | None, sent: object) -> bool:
    """Constant-time equality of a stored and a submitted token; False when either is missing."""
    if not expected or not isinstance(sent, str) or not sent:
        return False
    return hmac.compare_digest(expected.encode(), sent.encode())
