"""Harvest one OCDS API into an inbox: window by window, page by page through ``links.next``.

Failure policy:

* A page that cannot be used (not JSON after the known repairs, not a release package, unreadable
  ``links.next``) is quarantined; its window stops there and is marked failed in the state, so the
  next run fetches it again. The harvest goes on with the next window.
* A request that fails for good (refused, or still failing after the retries) stops the whole harvest:
  the service is unwell, and hammering the remaining windows would not help. The state keeps the
  windows finished so far, so the next run resumes where this one stopped.

Either way the summary lists the errors and :attr:`FetchSummary.ok` is false (the CLI exits 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import httpx

from broker.errors import BrokerError, InputError
from broker.normalise.dates import iso_utc
from broker.sources.harvest.http import (
    Clock,
    FetchError,
    PoliteClient,
    Response,
    SystemClock,
    Wait,
    same_origin,
)
from broker.sources.harvest.inbox import Inbox
from broker.sources.harvest.pages import Page, PageError, parse_page
from broker.sources.harvest.services import Politeness, ServiceSpec
from broker.sources.harvest.windows import Plan, Window, plan_windows

# The query format both APIs document for their time filters; we always send UTC.
QUERY_TIME = "%Y-%m-%dT%H:%M:%S"


@dataclass(frozen=True)
class FetchOptions:
    """What to harvest and how. Only ``inbox`` and ``since`` are required.

    Attributes:
        inbox: Directory the pages go into (created if missing).
        since: Start of the period (aware datetime).
        until: End of the period (exclusive); ``None`` means now. Never later than now.
        base_url: The API's scheme and host, e.g. ``http://127.0.0.1:8080`` in tests.
        stages: The ``stages`` filter (e.g. ``("tender", "award")``); empty sends none (all stages).
        window: Window size; ``None`` uses the service's (15 days CF, 6 hours FTS).
        politeness: Intervals, waits and retries; ``None`` uses the service's.
        restart: Ignore the resume state and fetch the whole period.
        page_size: The ``limit`` parameter (1-100).
        max_pages_per_window: Stop a window that pages on longer than this (a cursor loop).
        overlap: On resume, start this much before where the last run stopped (late-indexed notices).
    """

    inbox: Path
    since: datetime
    until: datetime | None = None
    base_url: str | None = None
    stages: tuple[str, ...] = ()
    window: timedelta | None = None
    politeness: Politeness | None = None
    restart: bool = False
    page_size: int = 100
    max_pages_per_window: int = 2000
    overlap: timedelta = timedelta(0)


@dataclass(frozen=True)
class FetchEvent:
    """Something worth showing on a terminal while a harvest runs."""

    kind: Literal["plan", "window", "page", "wait", "error"]
    message: str


@dataclass
class FetchSummary:
    """What a harvest did. ``ok`` is false when any window failed or the harvest stopped early."""

    source: str
    title: str
    inbox: str
    since: datetime
    until: datetime
    resumed: bool = False
    windows: int = 0
    windows_done: int = 0
    windows_failed: int = 0
    pages_fetched: int = 0
    pages_written: int = 0
    pages_duplicate: int = 0
    pages_empty: int = 0
    pages_quarantined: int = 0
    releases: int = 0
    releases_written: int = 0
    requests: int = 0
    retries: int = 0
    waits: list[Wait] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    aborted: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def wait_seconds(self) -> float:
        return sum(w.seconds for w in self.waits)

    def to_json(self) -> dict[str, Any]:
        """The summary as one JSON-ready document (``broker fetch ... --json``)."""
        return {
            "source": self.source, "title": self.title, "inbox": self.inbox,
            "since": iso_utc(self.since), "until": iso_utc(self.until), "resumed": self.resumed,
            "ok": self.ok, "aborted": self.aborted,
            "windows": {"planned": self.windows, "done": self.windows_done, "failed": self.windows_failed},
            "pages": {"fetched": self.pages_fetched, "written": self.pages_written,
                      "duplicate": self.pages_duplicate, "empty": self.pages_empty,
                      "quarantined": self.pages_quarantined},
            "releases": {"fetched": self.releases, "written": self.releases_written},
            "requests": self.requests, "retries": self.retries,
            "waits": {"count": len(self.waits), "seconds": round(self.wait_seconds, 3),
                      "reasons": [w.reason for w in self.waits]},
            "files": list(self.files), "errors": list(self.errors),
        }


class _WindowFailed(BrokerError):
    """A window stopped part-way because of a page (not because the service failed)."""


EventSink = Callable[[FetchEvent], None]


def harvest(spec: ServiceSpec, options: FetchOptions, *, clock: Clock | None = None,
            on_event: EventSink | None = None, transport: httpx.BaseTransport | None = None) -> FetchSummary:
    """Fetch every page of ``spec``'s API for the period in ``options`` into the inbox.

    Args:
        spec: :data:`CONTRACTS_FINDER` or :data:`FIND_A_TENDER` (or another :class:`ServiceSpec`).
        options: Period, inbox and knobs.
        clock: Time and sleeping; tests pass a fake one. Defaults to the real clock.
        on_event: Called with progress events (the CLI prints them on a terminal).
        transport: An httpx transport (tests only); default is the network.

    Returns:
        The summary; check :attr:`FetchSummary.ok`.

    Raises:
        InputError: a bad period or base URL, or a damaged state file (nothing was fetched).
    """
    clock = clock or SystemClock()
    emit: EventSink = on_event or _ignore
    base = _base_url(options.base_url or spec.default_base_url)
    until = _until(options, clock.now())
    inbox = Inbox(options.inbox, spec.key)
    plan = plan_windows(spec.key, options.since, until, options.window or spec.window,
                        None if options.restart else inbox.load_state(), options.overlap)
    summary = FetchSummary(source=spec.key, title=spec.title, inbox=str(options.inbox), since=options.since,
                           until=until, resumed=plan.resumed, windows=len(plan.windows))
    emit(FetchEvent("plan", _plan_message(spec, plan.windows, plan.resumed, plan.state.done_until)))

    def on_wait(wait: Wait) -> None:
        emit(FetchEvent("wait", f"  waiting {wait.seconds:g} s: {wait.reason}"))

    with PoliteClient(options.politeness or spec.politeness, clock, on_wait=on_wait, transport=transport,
                      forbidden_is_rate_limit=spec.forbidden_is_rate_limit) as http:
        _run_windows(_Walker(spec, options, base, http, inbox, summary, emit), plan, summary)
        summary.requests, summary.retries = http.stats.requests, http.stats.retries
        summary.waits = list(http.stats.waits)
    return summary


def _run_windows(walker: _Walker, plan: Plan, summary: FetchSummary) -> None:
    """Fetch each planned window, saving the state after each one."""
    state, title = plan.state, walker.spec.title
    for number, window in enumerate(plan.windows, 1):
        retry = "retrying " if window.retry else ""
        walker.emit(FetchEvent("window", f"[{number}/{len(plan.windows)}] {title} {retry}{window.describe()}"))
        try:
            walker.window(window)
        except _WindowFailed as exc:
            state = state.window_failed(window, str(exc))
            summary.windows_failed += 1
            _error(summary, walker.emit, f"window {window.describe()}: {exc}")
        except FetchError as exc:
            summary.aborted = True
            _error(summary, walker.emit, f"window {window.describe()}: {exc}; stopped here, and the next "
                                         "run resumes from this window")
            return
        else:
            state = state.window_done(window)
            summary.windows_done += 1
        walker.inbox.save_state(state)


def _ignore(event: FetchEvent) -> None:
    """The default event sink: no progress display."""


def _until(options: FetchOptions, now: datetime) -> datetime:
    """The end of the period: ``options.until``, but never later than now (the state must not claim
    windows whose notices were not yet published)."""
    if options.since >= now:
        raise InputError(f"--since {iso_utc(options.since)} is in the future")
    return min(options.until, now) if options.until is not None else now


def _error(summary: FetchSummary, emit: EventSink, message: str) -> None:
    summary.errors.append(message)
    emit(FetchEvent("error", message))


def _base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"--base-url must be an http(s) URL such as https://host: {url!r}")
    return url.rstrip("/")


def _plan_message(spec: ServiceSpec, windows: tuple[Window, ...], resumed: bool, done_until: datetime) -> str:
    if not windows:
        return f"{spec.title}: up to date (fetched to {iso_utc(done_until)})"
    how = f", resuming after {iso_utc(done_until)}" if resumed else ""
    return (f"{spec.title}: {len(windows)} window(s) from {iso_utc(windows[0].start)} "
            f"to {iso_utc(windows[-1].end)}{how}")


class _Walker:
    """Walks the pages of one window at a time."""

    def __init__(self, spec: ServiceSpec, options: FetchOptions, base: str, http: PoliteClient,
                 inbox: Inbox, summary: FetchSummary, emit: EventSink) -> None:
        self.spec, self.options, self.base = spec, options, base
        self.http, self.inbox, self.summary, self.emit = http, inbox, summary, emit

    def params(self, window: Window) -> dict[str, str]:
        # Zone-less UTC, the form both APIs document (CF's own cursors echo publishedFrom=...T23:00:00).
        params = {self.spec.from_param: _query_time(window.start), self.spec.to_param: _query_time(window.end),
                  "limit": str(self.options.page_size)}
        if self.options.stages:
            params["stages"] = ",".join(self.options.stages)
        return params

    def window(self, window: Window) -> None:
        """Fetch every page of ``window``. Raises ``_WindowFailed`` or :class:`FetchError`."""
        url: str | None = self.base + self.spec.path
        params: dict[str, str] | None = self.params(window)
        visited: set[str] = set()
        page_no = 0
        while url is not None:
            page_no += 1
            if page_no > self.options.max_pages_per_window:
                raise _WindowFailed(f"more than {self.options.max_pages_per_window} pages; "
                                    "try a smaller --window")
            response = self.http.get(url, params)
            visited.add(response.url)
            page = self.read(window, page_no, response)
            self.keep(window, page_no, page)
            url, params = self.follow(page, response, visited), None

    def read(self, window: Window, page_no: int, response: Response) -> Page:
        self.summary.pages_fetched += 1
        try:
            return parse_page(response.body)
        except PageError as exc:
            reason = (f"source: {self.spec.title}\nwindow: {window.describe()}\npage: {page_no}\n"
                      f"url: {response.url}\ncontent-type: {response.content_type}\n"
                      f"bytes: {len(response.body)}\nerror: {exc}\n")
            path = self.inbox.quarantine(window.label, page_no, response.body, reason)
            self.summary.pages_quarantined += 1
            raise _WindowFailed(f"page {page_no} from {response.url} is unusable ({exc}); "
                                f"quarantined as {path}") from None

    def keep(self, window: Window, page_no: int, page: Page) -> None:
        s = self.summary
        s.releases += page.releases
        if page.releases == 0:
            s.pages_empty += 1
            self.emit(FetchEvent("page", f"  page {page_no}: no releases"))
            return
        existing = self.inbox.has(page.digest)
        if existing is not None:
            s.pages_duplicate += 1
            self.emit(FetchEvent("page", f"  page {page_no}: {page.releases} releases, already in {existing}"))
            return
        path = self.inbox.write_page(window.label, page_no, page)
        s.pages_written += 1
        s.releases_written += page.releases
        s.files.append(path.name)
        repaired = f" (repaired: {'; '.join(page.notes)})" if page.notes else ""
        self.emit(FetchEvent("page", f"  page {page_no}: {page.releases} releases -> {path.name}{repaired}"))

    def follow(self, page: Page, response: Response, visited: set[str]) -> str | None:
        """The next page's URL, checked: on the same API, and not one already fetched."""
        if page.next_url is None or page.releases == 0:  # a cursor past the end gives an empty page
            return None
        nxt = urljoin(response.url, page.next_url)
        if not same_origin(nxt, self.base):
            raise _WindowFailed(f"links.next leaves the API ({nxt[:200]!r} is not on {self.base})")
        if nxt in visited:
            raise _WindowFailed(f"links.next loops back to a page already fetched ({nxt[:200]!r})")
        return nxt


def _query_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime(QUERY_TIME)
