"""A polite HTTP getter: one request at a time, a minimum interval, and back-off on rate limits and errors.

All waiting goes through an injected :class:`Clock`, so tests run instantly and can assert every wait
that was asked for. The harvester never follows redirects: a moved API should be configured, not chased.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from broker import __version__
from broker.errors import BrokerError
from broker.sources.harvest.services import Politeness

USER_AGENT = f"broker/{__version__} (procurement brokerage matcher; one request at a time)"
_SNIPPET = 200


class FetchError(BrokerError):
    """A request failed for good: names the URL and the HTTP status (or the connection failure)."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        self.url = url
        self.status = status
        self.reason = reason
        where = f"HTTP {status} from {url}" if status is not None else url
        super().__init__(f"{where}: {reason}")


class Clock(Protocol):
    """Time as the harvester sees it; tests pass a fake one."""

    def now(self) -> datetime:
        """Aware UTC wall-clock time (for ``Retry-After`` dates and the default end of a harvest)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for the interval between requests)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait this many seconds."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class Response:
    """An answer, read in full."""

    url: str
    status: int
    content_type: str
    body: bytes
    retry_after: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class Wait:
    """One wait the client asked the clock for, and why."""

    seconds: float
    reason: str


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    waits: list[Wait] = field(default_factory=list)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).

    Returns ``None`` when the header is missing or unreadable; a date in the past gives 0.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 850/asctime forms carry no zone; HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def same_origin(a: str, b: str) -> bool:
    """True when two absolute URLs share scheme, host and port (a ``links.next`` must stay on the API)."""
    sa, sb = urlsplit(a), urlsplit(b)
    try:
        return (sa.scheme.lower(), sa.hostname, sa.port or _default_port(sa.scheme)) == (
            sb.scheme.lower(), sb.hostname, sb.port or _default_port(sb.scheme))
    except ValueError:  # a port that is not a number
        return False


def _default_port(scheme: str) -> int | None:
    return {"http": 80, "https": 443}.get(scheme.lower())


class PoliteClient:
    """GETs one URL at a time, at least ``min_interval`` apart, retrying what is worth retrying.

    * 429, and 503 with ``Retry-After``: wait ``Retry-After`` (seconds or HTTP-date, capped at
      ``max_wait``), else ``rate_limit_wait``; give up after ``rate_limit_retries`` such answers in a row.
    * 403 when ``forbidden_is_rate_limit`` (Contracts Finder): wait ``rate_limit_wait``, same limit.
    * other 5xx (503 without ``Retry-After`` too) and connection failures: exponential back-off from ``backoff_base``, at most
      ``server_error_retries`` retries.
    * anything else that is not 200: :class:`FetchError` at once.
    """

    def __init__(self, politeness: Politeness, clock: Clock, *, forbidden_is_rate_limit: bool,
                 on_wait: Callable[[Wait], None] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.politeness = politeness
        self.clock = clock
        self.forbidden_is_rate_limit = forbidden_is_rate_limit
        self.stats = ClientStats()
        self._on_wait = on_wait
        self._last_start: float | None = None
        self._client = httpx.Client(
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=politeness.timeout, follow_redirects=False, transport=transport)

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(self, url: str, params: Mapping[str, str] | None = None) -> Response:
        """GET ``url`` (with ``params``) and return the 200 answer, retrying as the class describes.

        Raises:
            FetchError: the service refused, kept failing, or answered too much.
        """
        rate_limited = failures = 0
        full_url = str(httpx.URL(url, params=params)) if params else url  # for messages
        while True:
            self._pace()
            self.stats.requests += 1
            try:
                response = self._send(url, params)
            except httpx.TransportError as exc:
                failures += 1
                self._retry_or_fail(failures, full_url, None, f"connection failed ({type(exc).__name__}: {exc})")
                continue
            if response.status == 200:
                return response
            if self._is_rate_limit(response):
                rate_limited += 1
                self._rate_limit_wait(rate_limited, response)
            elif response.status >= 500:
                failures += 1
                self._retry_or_fail(failures, response.url, response.status, _snippet(response.body))
            else:
                raise FetchError(response.url, _refusal(response), response.status)

    def _is_rate_limit(self, response: Response) -> bool:
        """429, 503 that says when to come back, and Contracts Finder's 403; a bare 503 is a 5xx."""
        status = response.status
        if status == 503:
            return parse_retry_after(response.retry_after, self.clock.now()) is not None
        return status == 429 or (status == 403 and self.forbidden_is_rate_limit)

    def _send(self, url: str, params: Mapping[str, str] | None) -> Response:
        limit = self.politeness.max_body_bytes
        with self._client.stream("GET", url, params=params) as stream:
            chunks: list[bytes] = []
            size = 0
            for chunk in stream.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise FetchError(str(stream.url), f"answer larger than {limit} bytes; refused",
                                     stream.status_code)
                chunks.append(chunk)
            headers = stream.headers
            return Response(url=str(stream.url), status=stream.status_code,
                            content_type=headers.get("content-type", ""), body=b"".join(chunks),
                            retry_after=headers.get("retry-after"), location=headers.get("location"))

    def _rate_limit_wait(self, count: int, response: Response) -> None:
        p = self.politeness
        if count > p.rate_limit_retries:
            raise FetchError(response.url, f"still rate limited after {p.rate_limit_retries} waits; "
                             "try again later", response.status)
        seconds = parse_retry_after(response.retry_after, self.clock.now())
        source = "Retry-After"
        if seconds is None:
            seconds, source = p.rate_limit_wait, "rate limited"
        self._wait(min(seconds, p.max_wait), f"HTTP {response.status} ({source}) from {response.url}")

    def _retry_or_fail(self, failures: int, url: str, status: int | None, detail: str) -> None:
        p = self.politeness
        if failures > p.server_error_retries:
            raise FetchError(url, f"gave up after {p.server_error_retries} retries: {detail}", status)
        seconds = min(p.backoff_base * 2 ** (failures - 1), p.max_wait)
        what = f"HTTP {status}" if status is not None else "connection failure"
        self._wait(seconds, f"{what} from {url}, retry {failures} of {p.server_error_retries}")

    def _wait(self, seconds: float, reason: str) -> None:
        self.stats.retries += 1
        wait = Wait(seconds=seconds, reason=reason)
        self.stats.waits.append(wait)
        if self._on_wait is not None:
            self._on_wait(wait)
        if seconds > 0:
            self.clock.sleep(seconds)

    def _pace(self) -> None:
        """Sleep until ``min_interval`` has passed since the previous request started."""
        now = self.clock.monotonic()
        if self._last_start is not None:
            due = self._last_start + self.politeness.min_interval - now
            if due > 0:
                self.clock.sleep(due)
                now = self.clock.monotonic()
        self._last_start = now


def _snippet(body: bytes) -> str:
    """The start of an error body, as inert text (it is untrusted and goes into a message)."""
    text = body[:_SNIPPET].decode("utf-8", errors="replace")
    return repr(text) if text else "(empty body)"


def _refusal(response: Response) -> str:
    if 300 <= response.status < 400:
        where = repr(response.location[:_SNIPPET]) if response.location else "elsewhere"
        return f"the API redirected to {where}; point --base-url at the new address if it has moved"
    return f"refused: {_snippet(response.body)}"
