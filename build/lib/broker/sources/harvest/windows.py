"""Time windows to walk, and the resume state that says which are done.

The period ``[since, until)`` is cut into fixed windows (15 days for Contracts Finder, 6 hours for Find a
Tender). A window never ends in the future: the last one stops at the moment the harvest started, so
the state's frontier is always a time whose notices had been published when it was fetched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from broker.errors import InputError
from broker.normalise.dates import LONDON, iso_utc, parse_datetime

_DATE_ONLY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")
_DURATION = re.compile(r"^\s*(\d+)\s*([dh])\s*$")
STATE_VERSION = 1


@dataclass(frozen=True)
class Window:
    """``[start, end)`` in UTC; ``retry`` marks a window that failed on an earlier run."""

    start: datetime
    end: datetime
    retry: bool = False

    @property
    def label(self) -> str:
        """The window's start as it appears in file names: ``20250101T000000``."""
        return self.start.astimezone(UTC).strftime("%Y%m%dT%H%M%S")

    def describe(self) -> str:
        return f"{iso_utc(self.start)} to {iso_utc(self.end)}"


@dataclass(frozen=True)
class FailedWindow:
    start: datetime
    end: datetime
    error: str


@dataclass(frozen=True)
class FetchState:
    """What earlier runs covered: every window in ``[covered_from, done_until)`` was fetched in full,
    except those listed in ``failed`` (fetched again first on the next run)."""

    source: str
    covered_from: datetime
    done_until: datetime
    failed: tuple[FailedWindow, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "source": self.source,
            "covered_from": iso_utc(self.covered_from),
            "done_until": iso_utc(self.done_until),
            "failed_windows": [{"start": iso_utc(f.start), "end": iso_utc(f.end), "error": f.error}
                               for f in self.failed],
        }

    @classmethod
    def from_json(cls, data: Any, *, file: str) -> FetchState:
        """Read a state document; raises :class:`InputError` naming the file if it is damaged."""
        try:
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"unknown state version {data.get('version')!r}")
            failed = tuple(FailedWindow(_utc(f["start"]), _utc(f["end"]), str(f["error"]))
                           for f in data.get("failed_windows", []))
            return cls(source=str(data["source"]), covered_from=_utc(data["covered_from"]),
                       done_until=_utc(data["done_until"]), failed=failed)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"damaged fetch state ({exc}); delete it or run with --restart",
                             file=file) from None

    def window_done(self, window: Window) -> FetchState:
        """The state after ``window`` was fetched in full."""
        failed = tuple(f for f in self.failed if (f.start, f.end) != (window.start, window.end))
        done = self.done_until if window.retry else max(self.done_until, window.end)
        return replace(self, failed=failed, done_until=done)

    def window_failed(self, window: Window, error: str) -> FetchState:
        """The state after ``window`` failed part-way: move on, but fetch it again next time."""
        state = self.window_done(window)
        return replace(state, failed=(*state.failed, FailedWindow(window.start, window.end, error)))


def _utc(text: Any) -> datetime:
    parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"zone-less time {text!r}")
    return parsed.astimezone(UTC)


def parse_since(text: str) -> datetime:
    """``--since``: a date (midnight UK time) or an ISO datetime (zone-less is UK time), in UTC."""
    return _parse_when(text, "--since")


def parse_until(text: str) -> datetime:
    """``--until``: a date means the *end* of that UK day (the next midnight); a datetime is exact."""
    if _DATE_ONLY.match(text):
        try:
            day = date.fromisoformat(text.strip())
        except ValueError:
            raise InputError(f"--until: not a date: {text!r}") from None
        return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=LONDON).astimezone(UTC)
    return _parse_when(text, "--until")


def _parse_when(text: str, option: str) -> datetime:
    try:
        parsed = parse_datetime(text)
    except ValueError as exc:
        raise InputError(f"{option}: {exc}") from None
    if parsed is None:  # blank, or a publisher "no date" sentinel such as 2001-01-01
        raise InputError(f"{option}: not a usable date: {text!r}")
    return parsed


def parse_duration(text: str, *, allow_zero: bool = False) -> timedelta:
    """A duration such as ``15d`` or ``6h`` (``0h`` only when ``allow_zero``)."""
    m = _DURATION.match(text)
    if not m or (int(m[1]) == 0 and not allow_zero):
        raise InputError(f"not a window size like 15d or 6h: {text!r}")
    return timedelta(days=int(m[1])) if m[2] == "d" else timedelta(hours=int(m[1]))


@dataclass(frozen=True)
class Plan:
    """The windows to fetch, in order (earlier failures first), and the state to start from."""

    windows: tuple[Window, ...]
    state: FetchState
    resumed: bool


def plan_windows(source: str, since: datetime, until: datetime, size: timedelta,
                 state: FetchState | None, overlap: timedelta = timedelta(0)) -> Plan:
    """Cut ``[since, until)`` into windows of ``size``, skipping what ``state`` says is done.

    A state is used only when ``since`` falls inside its covered span (``covered_from`` to
    ``done_until``): the run then fetches the failed windows that overlap the period again, and
    resumes at ``done_until`` less ``overlap`` (a notice stamped just before the last run but indexed
    just after it is then still caught; its releases arrive twice, which ingest ignores). Otherwise
    the period is fetched from ``since`` (pages already in the inbox are still not written twice).
    """
    if until <= since:
        raise InputError(f"nothing to fetch: the period ends ({iso_utc(until)}) "
                         f"before it starts ({iso_utc(since)})")
    resumed = state is not None and state.source == source and state.covered_from <= since <= state.done_until
    if resumed and state is not None:
        start = max(since, state.done_until - overlap) if state.done_until < until else state.done_until
        retries = tuple(Window(f.start, f.end, retry=True) for f in state.failed
                        if f.end > since and f.start < until)
        base = state
    else:
        # A fresh span: earlier failures inside it are fetched again by its own windows; those outside
        # it stay listed so that a later run over their time still knows about them.
        start, retries = since, ()
        kept = tuple(f for f in (state.failed if state is not None and state.source == source else ())
                     if f.end <= since or f.start >= until)
        base = FetchState(source=source, covered_from=since, done_until=since, failed=kept)
    return Plan(windows=retries + _cut(start, until, size), state=base, resumed=resumed)


def _cut(start: datetime, until: datetime, size: timedelta) -> tuple[Window, ...]:
    windows: list[Window] = []
    while start < until:
        end = min(start + size, until)
        windows.append(Window(start, end))
        start = end
    return tuple(windows)
