"""How a digest shows values: money, deadlines, locations, links; and cleaning for email headers.

Everything here turns untrusted text into inert text. Escaping for HTML is the template's job
(autoescape); these functions make sure no header can be split, no link can run script and no
shell command an officer copies can do more than it says.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit

from broker.normalise.dates import LONDON

# Header values lose every control and format character and every line or paragraph separator:
# a CR or LF would start a new header (``Bcc: ...``); U+2028/U+0085 are line breaks to some clients.
_HEADER_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]")
# A conservative, ASCII-only address (RFC 5321 sizes). Anything odder is skipped and reported, not sent.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"^{_LOCAL}@{_LABEL}(?:\.{_LABEL})+$")
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})+$")


def header_text(value: object, max_len: int = 200) -> str:
    """One line of text safe for an email header: no control characters, single spaces, bounded."""
    text = "" if value is None else str(value)
    if not text.isprintable():  # the common case skips this: no control, format or separator character
        # Any kind of line break or space becomes a space; other controls and invisible formatting go.
        text = "".join(" " if ch.isspace() else ch for ch in text
                       if ch.isspace() or unicodedata.category(ch) not in _HEADER_DROP_CATEGORIES)
    line = " ".join(text.split())
    return line if len(line) <= max_len else line[: max_len - 1].rstrip() + "…"


def body_text(value: object) -> str:
    """Text for a message body: control characters removed, newlines kept."""
    text = "" if value is None else str(value).replace("\r\n", "\n").replace("\r", "\n")
    return _BODY_CONTROL.sub("", text)


def valid_email(value: object) -> str | None:
    """The address if it is a plain, deliverable-looking ``local@domain``; else ``None``."""
    if not isinstance(value, str):
        return None
    addr = value.strip()
    if len(addr) > 254 or not _EMAIL.match(addr) or len(addr.split("@", 1)[0]) > 64:
        return None
    return addr


def valid_domain(value: str) -> bool:
    return bool(_DOMAIN.match(value)) and len(value) <= 253


def format_pence(pence: int) -> str:
    """``£48,000`` for whole pounds, ``£1,234.50`` otherwise."""
    pounds, rem = divmod(pence, 100)
    return f"£{pounds:,}" if rem == 0 else f"£{pounds:,}.{rem:02d}"


def format_value(low: int | None, high: int | None, currency: str | None = None,
                 original: str | None = None) -> str:
    """An opportunity's value: one figure, a range ``£48,000–£60,000``, or ``value unknown``."""
    if low is None and high is None:
        if currency and currency != "GBP" and original:
            return f"{header_text(original, 40)} {header_text(currency, 3)} (not in pounds)"
        return "value unknown"
    lo, hi = (low if low is not None else high), (high if high is not None else low)
    assert lo is not None and hi is not None
    if lo > hi:
        lo, hi = hi, lo
    return format_pence(lo) if lo == hi else f"{format_pence(lo)}–{format_pence(hi)}"


def local_deadline(deadline: datetime) -> datetime:
    return deadline.astimezone(LONDON)


def days_left(deadline: datetime, as_of: date) -> int:
    """Whole days from the business date to the deadline's UK calendar day (0 = due on ``as_of``)."""
    return (local_deadline(deadline).date() - as_of).days


def deadline_cutoff(as_of: date, min_days: int) -> datetime:
    """The earliest deadline (UTC) that still leaves ``min_days`` (BRIEF: default 5) to bid.

    A deadline on the UK day ``as_of + min_days`` has exactly ``min_days`` left and is kept; never
    earlier than the digest's own send time, so a past deadline is never sent even with ``min_days=0``.
    """
    first_day = datetime.combine(as_of + timedelta(days=min_days), time(0), tzinfo=LONDON)
    return max(first_day, send_time(as_of)).astimezone(UTC)


def send_time(as_of: date) -> datetime:
    """The nominal time of a digest: 06:00 UK time on the business date (its Date header)."""
    return datetime.combine(as_of, time(6, 0), tzinfo=LONDON)


# English names whatever the process locale (strftime's %A/%B follow LC_TIME): re-rendering is byte-identical.
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def long_date(d: date) -> str:
    """``Thursday 16 January 2025``."""
    return f"{_DAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]} {d.year}"


def format_deadline(deadline: datetime | None, as_of: date) -> tuple[str, str]:
    """(``Friday 24 January 2025, 12:00``, ``8 days left``), or a note that no deadline was given."""
    if deadline is None:
        return "no deadline given", "check the notice"
    local = local_deadline(deadline)
    left = days_left(deadline, as_of)
    when = f"{long_date(local.date())}, {local:%H:%M}"
    return when, ("due today" if left == 0 else "1 day left" if left == 1 else f"{left} days left")


def format_location(local_authority: str | None, region: str | None, postcode: str | None,
                    nationwide: bool) -> str:
    """Where the work is, from the most specific field known."""
    parts = [p for p in (header_text(local_authority, 80), header_text(postcode, 10)) if p]
    if parts:
        text = ", ".join(parts)
    elif region:
        text = header_text(region, 80)
    else:
        text = "location not given"
    return f"{text} (nationwide)" if nationwide and parts else ("Nationwide" if nationwide else text)


def safe_link(url: str | None) -> str | None:
    """The notice link, only when it is a plain http(s) URL (never ``javascript:``, ``data:``, ...)."""
    if not url:
        return None
    url = url.strip()
    if len(url) > 2000 or not url.isprintable() or " " in url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def excerpt(text: str | None, limit: int = 300) -> str:
    """The start of a description on one paragraph, cut at a word with an ellipsis."""
    flat = " ".join(body_text(text).split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] or flat[:limit]
    return cut.rstrip(" ,.;:") + "…"


def shell_word(ident: str) -> str:
    """An id as one POSIX shell word, so a command an officer copies runs nothing else."""
    return shlex.quote(header_text(ident, 255))


def feedback_command(party_id: str, opportunity_id: str) -> str:
    """The officer's command to mark an item not relevant, with each id shell-quoted."""
    return f"broker feedback {shell_word(party_id)} {shell_word(opportunity_id)} --not-relevant"


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"
