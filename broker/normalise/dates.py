"""Dates: every publisher format becomes an aware UTC datetime, or ``None``.

Find a Tender has shipped zone-less dates (``2025-07-07``): they are read as UK local time. Contracts
Finder's CSV uses ``dd/mm/yyyy`` with ``01/01/2001`` meaning "no date".
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
SENTINEL_DATES = frozenset({date(2001, 1, 1), date(1900, 1, 1), date(1, 1, 1)})
_UK_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$")
_ISO_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_datetime(value: object, *, end_of_day: bool = False) -> datetime | None:
    """Parse an ISO 8601 date or datetime; zone-less values are UK local time.

    A date with no time is midnight, or the last second of that day when ``end_of_day`` (deadlines).
    Raises ``ValueError`` on text that is not a date, or one that falls outside the years 1 to 9999
    once moved to UTC (``9999-12-31T23:00:00-05:00``).
    """
    try:
        return _parse_datetime(value, end_of_day=end_of_day)
    except OverflowError:
        raise ValueError(f"date out of range (years 1 to 9999 in UTC): {str(value).strip()[:40]!r}") from None


def _parse_datetime(value: object, *, end_of_day: bool) -> datetime | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if _UK_DATE.match(text):
        return parse_uk_date(text, end_of_day=end_of_day)
    if _ISO_DATE_ONLY.match(text):
        return _local_day(date.fromisoformat(text), end_of_day)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a date: {text[:40]!r}") from None
    if parsed.date() in SENTINEL_DATES:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LONDON)
    return parsed.astimezone(UTC)


def parse_uk_date(value: str, *, clock: str | None = None, end_of_day: bool = False) -> datetime | None:
    """Parse ``dd/mm/yyyy`` (optionally with ``HH:MM``), or a separate ``clock`` time, as UK local time.

    Raises ``ValueError`` on text that is not such a date, or one out of range (``31/12/9999`` as a
    deadline ends after the last representable second).
    """
    try:
        return _parse_uk_date(value, clock=clock, end_of_day=end_of_day)
    except OverflowError:
        raise ValueError(f"date out of range (years 1 to 9999 in UTC): {str(value).strip()[:40]!r}") from None


def _parse_uk_date(value: str, *, clock: str | None, end_of_day: bool) -> datetime | None:
    text = (value or "").strip()
    if not text:
        return None
    m = _UK_DATE.match(text)
    if not m:
        raise ValueError(f"not a dd/mm/yyyy date: {text[:40]!r}")
    day, month, year = int(m[1]), int(m[2]), int(m[3])
    try:
        d = date(year, month, day)
    except ValueError as exc:
        raise ValueError(f"not a calendar date: {text!r} ({exc})") from None
    if d in SENTINEL_DATES:
        return None
    hh, mm, ss = m[4], m[5], m[6]
    if hh is None and clock and clock.strip():
        cm = re.match(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$", clock)
        if not cm:
            raise ValueError(f"not a time: {clock[:20]!r}")
        hh, mm, ss = cm[1], cm[2], cm[3]
    if hh is None:
        return _local_day(d, end_of_day)
    t = time(int(hh), int(mm), int(ss or 0))
    return datetime.combine(d, t, tzinfo=LONDON).astimezone(UTC)


def _local_day(d: date, end_of_day: bool) -> datetime | None:
    if d in SENTINEL_DATES:
        return None
    start = datetime.combine(d, time(0, 0), tzinfo=LONDON)
    if end_of_day:
        start = datetime.combine(d + timedelta(days=1), time(0, 0), tzinfo=LONDON) - timedelta(seconds=1)
    return start.astimezone(UTC)


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 UTC with a ``Z``, the form every JSON output uses."""
    if value is None:
        return None
    # isoformat pads the year to four digits where strftime("%Y") would not (year 999 -> "0999").
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"


_DAY_MONTH_YEAR = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def parse_business_date(text: str) -> date:
    """A date given on the command line (``--as-of``, ``--date``...): ``YYYY-MM-DD`` or ``dd/mm/yyyy``.

    The one parser for every date option, so each takes a date the way UK officers write it too.
    """
    value = text.strip()
    m = _DAY_MONTH_YEAR.fullmatch(value)
    try:
        return date(int(m[3]), int(m[2]), int(m[1])) if m else date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a YYYY-MM-DD date (nor dd/mm/yyyy): {text[:40]!r}") from None
