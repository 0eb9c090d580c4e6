"""Compose a digest: the rendering context (payload) from matches, then the email message from it.

The payload is plain JSON data and is stored with the digest, so the exact message can be rendered
again byte for byte (same templates, same payload): nothing in it comes from the wall clock. Every
text in it is untrusted publisher or directory text; the HTML template autoescapes it and the plain
text part is ``text/plain``, so a ``<script>`` in a notice arrives as the characters ``<script>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from broker.digest import mime
from broker.digest.formatting import (
    body_text,
    excerpt,
    feedback_command,
    format_deadline,
    format_location,
    format_value,
    header_text,
    long_date,
    plural,
    safe_link,
    send_time,
    shell_word,
    valid_email,
)
from broker.digest.safe_names import reference_code
from broker.digest.selection import Candidate
from broker.errors import ConfigError
from broker.store.models import Vcse

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
PAYLOAD_VERSION = 1


@dataclass(frozen=True)
class DigestSettings:
    """How digests are built and addressed (BRIEF defaults: cap 10, at least 5 days to the deadline)."""

    sender_address: str = "brokerage@example.org"
    sender_name: str = "Procurement brokerage"
    cap: int = 10
    min_days: int = 5
    min_score: int = 0
    top_reasons: int = 3
    summary_chars: int = 300

    def validate(self) -> None:
        """Raise ``ConfigError`` for a sender that is not a plain address or out-of-range numbers."""
        if valid_email(self.sender_address) != self.sender_address:
            raise ConfigError(f"the digest sender {self.sender_address!r} is not a plain email address")
        if not 1 <= self.cap <= 100 or self.min_days < 0 or not 0 <= self.min_score <= 100:
            raise ConfigError("digest settings out of range: cap 1..100, min_days >= 0, min_score 0..100")

    @property
    def domain(self) -> str:
        return self.sender_address.rsplit("@", 1)[1].lower()


@dataclass(frozen=True)
class Via:
    """How a consortium item reached its lead: the consortium (or suggested grouping) and members."""

    kind: str  # consortium | suggested_consortium
    name: str
    members: tuple[str, ...]


def item_payload(cand: Candidate, position: int, as_of: date, via: Via | None,
                 settings: DigestSettings) -> dict[str, Any]:
    """One item of the payload: everything the templates show about one opportunity."""
    opp, match = cand.opportunity, cand.match
    deadline, left = format_deadline(opp.deadline_at, as_of)
    return {
        "position": position,
        "reference": reference_code(cand.recipient_id, opp.id),
        "opportunity_id": opp.id,
        "party_id": match.party_id,
        "party_type": match.party_type,
        "score": match.score,
        "title": header_text(opp.title, 300) or "(untitled notice)",
        "buyer": header_text(opp.buyer_name, 200) or "buyer not named",
        "value": format_value(opp.value_min_pence, opp.value_max_pence, opp.value_currency,
                              opp.value_original),
        "deadline": deadline,
        "days_left": left,
        "location": format_location(opp.local_authority, opp.region, opp.postcode, opp.nationwide),
        "reasons": [header_text(r, 300) for r in list(match.reasons or [])[: settings.top_reasons]],
        "summary": excerpt(opp.description, settings.summary_chars),
        "link": safe_link(opp.url),
        "via": None if via is None else
        {"kind": via.kind, "name": header_text(via.name, 200), "members": [header_text(m, 200) for m in via.members]},
        "feedback_command": feedback_command(match.party_id, opp.id),
    }


def digest_payload(digest_id: str, as_of: date, recipient: Vcse, address: str,
                   items: Sequence[Mapping[str, Any]], settings: DigestSettings) -> dict[str, Any]:
    """The whole rendering context for one digest (JSON data, stored with the digest)."""
    name = header_text(recipient.name, 120) or recipient.id
    return {
        "version": PAYLOAD_VERSION,
        "digest_id": digest_id,
        "as_of": as_of.isoformat(),
        "as_of_long": long_date(as_of),
        "sender": {"name": header_text(settings.sender_name, 120), "address": settings.sender_address},
        "recipient": {"id": recipient.id, "name": name, "address": address},
        "subject": f"{plural(len(items), 'new opportunity', 'new opportunities')} for {header_text(name, 80)}",
        "count": len(items),
        "items": [dict(i) for i in items],
        "unsubscribe": f"mailto:{settings.sender_address}?subject={quote('unsubscribe ' + digest_id)}",
        "opt_out_command": f"broker preferences set {shell_word(recipient.id)} --opt-out",
    }


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # HTML templates autoescape everything; the text template is plain text and is never interpreted.
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_parts(payload: Mapping[str, Any]) -> tuple[str, str]:
    """The plain-text and HTML bodies for a payload."""
    env = _environment()
    text = env.get_template("digest.txt.j2").render(d=payload)
    html = env.get_template("digest.html.j2").render(d=payload)
    return body_text(text), body_text(html)


def render_message(payload: Mapping[str, Any]) -> bytes:
    """The digest as RFC 5322 bytes (CRLF line ends), byte-identical for the same payload.

    Headers are built from cleaned values only (no CR/LF or control characters can reach one), the
    Date is 06:00 UK time on the business date and the Message-ID and MIME boundary derive from the
    digest id and the content, so re-rendering never depends on the clock or on randomness.
    """
    text, html = render_parts(payload)
    sender, recipient = payload["sender"], payload["recipient"]
    headers = [
        ("From", mime.address(header_text(sender["name"], 120), sender["address"])),
        ("To", mime.address(header_text(recipient["name"], 120), recipient["address"])),
        ("Subject", mime.unstructured("Subject", header_text(payload["subject"], 200))),
        ("Date", format_datetime(send_time(date.fromisoformat(payload["as_of"])))),
        ("Message-ID", message_id(payload["digest_id"], sender["address"])),
        # Never folded or encoded: a client must read it as a URL (ASCII we built, well under 998 octets).
        ("List-Unsubscribe", f"<{payload['unsubscribe']}>"),
        ("Auto-Submitted", "auto-generated"),  # RFC 3834: auto-responders must not reply
        ("X-Broker-Digest", payload["digest_id"]),
    ]
    return mime.message(headers, text, html)


def message_id(digest_id: str, sender_address: str) -> str:
    return f"<{digest_id}@{sender_address.rsplit('@', 1)[1].lower()}>"
