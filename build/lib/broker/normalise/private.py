"""Map one private (anchor-institution) opportunity to an :class:`OpportunityRecord`.

The format is the officers' contract in ``BRIEF.md`` (Input formats): the same keys in CSV, JSON and
JSONL. Values may arrive as CSV text or JSON scalars (numbers, booleans, a list of CPV codes); both are
first reduced to the same text form, so one opportunity gives the same record whatever file it came in.

Decisions (documented here because the brief leaves them open):

* Required: ``id``, ``buyer``, ``title`` and ``deadline``. A deadline is what lets the matcher apply the
  deadline policy and stop offering the opportunity; an officer with a rolling opportunity should set the
  date it will next be reviewed. ``published`` is optional.
* Status is always ``open``: the format has no status column and status never comes from the clock.
  A deadline before the published date is an error (a typing slip), not a "closed" opportunity.
* ``value_min_gbp``/``value_max_gbp`` of zero mean "not given", as the value policy treats zero; one
  figure given is both bounds, as :func:`broker.normalise.money.value_range` does for every source.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

from broker.errors import InputError
from broker.normalise import cpv, dates, geography, money
from broker.normalise.keys import title_key
from broker.normalise.record import OpportunityRecord, build_record, canonical_hash
from broker.normalise.text import clean_text, match_key, one_line, split_list

SOURCE = "private"
COLUMNS = (
    "id", "buyer", "buyer_type", "title", "description", "value_min_gbp", "value_max_gbp", "published",
    "deadline", "cpv_codes", "postcode", "local_authority", "suitable_for_vcse", "url", "contact_email",
)
REQUIRED = ("id", "buyer", "title", "deadline")
# Widths of the store's columns: an id is a short stable key, buyer_type a category such as nhs_trust.
MAX_ID = 200
MAX_BUYER_TYPE = 80
_MAX_POSTCODE = 16

_CPV_SEPARATORS = re.compile(r"[;,\s]+")
_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_YES = frozenset({"yes", "y", "true", "1"})
_NO = frozenset({"no", "n", "false", "0"})

T = TypeVar("T")


def canonical_fields(data: Mapping[str, Any]) -> dict[str, str]:
    """The known keys as text, whatever the file format: numbers exact, booleans yes/no, lists joined.

    Raises:
        InputError: a value is an object or another type no column accepts.
    """
    out: dict[str, str] = {}
    for key in COLUMNS:
        out[key] = _as_text(key, data.get(key))
    return out


def record_from_private(fields: Mapping[str, str]) -> OpportunityRecord:
    """Build the canonical record from :func:`canonical_fields` output.

    Raises:
        InputError: a required value is blank or a value cannot be read; ``field`` names the key.
    """
    for key in REQUIRED:
        if not one_line(fields.get(key)):
            raise InputError(f"{key} is required", field=key)
    officer_id = one_line(fields["id"])
    safe_id = "-".join(match_key(officer_id).split())
    if not safe_id:
        raise InputError(f"id {officer_id[:40]!r} has no letters or digits", field="id")
    if len(officer_id) > MAX_ID:
        raise InputError(f"id is longer than {MAX_ID} characters", field="id")
    buyer_type = one_line(fields.get("buyer_type")) or None
    if buyer_type is not None and len(buyer_type) > MAX_BUYER_TYPE:
        raise InputError(f"buyer_type is longer than {MAX_BUYER_TYPE} characters", field="buyer_type")
    buyer, title = one_line(fields["buyer"]), one_line(fields["title"])
    published = _field("published", lambda: dates.parse_datetime(fields.get("published")))
    deadline = _field("deadline", lambda: dates.parse_datetime(fields.get("deadline"), end_of_day=True))
    if deadline is None:
        raise InputError("deadline is a 'no date' placeholder; give the real closing date", field="deadline")
    if published is not None and deadline < published:
        raise InputError("deadline is before the published date", field="deadline")
    value_min, value_max = _values(fields)
    cpv_known, cpv_unknown = cpv.catalogue().split(split_list(fields.get("cpv_codes") or "", _CPV_SEPARATORS))
    location = _location(fields)
    _check_email(fields.get("contact_email") or "")
    return build_record(
        id=f"private:{safe_id}",
        source=SOURCE,
        title=title,
        buyer_name=buyer,
        status="open",
        raw_hash=canonical_hash(dict(fields)),
        description=clean_text(fields.get("description")),
        source_ids=(f"private:{officer_id}",),
        buyer_type=buyer_type,
        published_at=published,
        deadline_at=deadline,
        value_min_pence=value_min,
        value_max_pence=value_max,
        value_currency="GBP" if value_min is not None else None,
        cpv_codes=cpv_known,
        cpv_unknown=cpv_unknown,
        postcode=location.postcode,
        local_authority=location.local_authority,
        lad_code=location.lad_code,
        itl_code=location.itl_code,
        region=location.region,
        cluster=location.cluster or geography.cluster_for(location.local_authority, location.postcode),
        nationwide=location.nationwide,
        vcse_suitable=_yes_no(fields.get("suitable_for_vcse") or ""),
        url=_url(fields.get("url") or ""),
        match_keys=tuple(k for k in (title_key(buyer, title, deadline),) if k),
    )


def _as_text(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal):
        return format(value, "f") if isinstance(value, Decimal) else str(value)
    if isinstance(value, float):
        return repr(value)
    if key == "cpv_codes" and isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return ";".join(str(v) for v in value)
    raise InputError(f"expected text or a number, got {json_type(value)}", field=key)


def json_type(value: Any) -> str:
    """How a parsed JSON value is called in messages (officers know JSON, not Python)."""
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str):
        return "a string"
    if value is None or isinstance(value, bool):
        return "null" if value is None else "true/false"
    return "a number"


def _field(key: str, parse: Callable[[], T]) -> T:
    try:
        return parse()
    except ValueError as exc:
        raise InputError(str(exc), field=key) from None


def _values(fields: Mapping[str, str]) -> tuple[int | None, int | None]:
    low = _field("value_min_gbp", lambda: money.gbp_to_pence(fields.get("value_min_gbp")))
    high = _field("value_max_gbp", lambda: money.gbp_to_pence(fields.get("value_max_gbp")))
    low, high = low or None, high or None  # 0 is "not given" (BRIEF, Value basis)
    if low is not None and high is not None and low > high:
        raise InputError("value_min_gbp is greater than value_max_gbp", field="value_min_gbp")
    return money.value_range(money.Money(low), money.Money(high))


def _location(fields: Mapping[str, str]) -> geography.Location:
    postcode = one_line(fields.get("postcode"))
    authority_text = one_line(fields.get("local_authority"))
    authority = geography.canonical_local_authority(authority_text) if authority_text else None
    places = [authority or authority_text] if authority_text else []
    location = _field("postcode", lambda: geography.resolve_location(
        postcodes=[postcode] if postcode else [], place_names=places))
    if location.local_authority is None and authority is not None:
        # The officer named an authority that the postcode did not settle (or there is no postcode).
        location = dataclasses.replace(location, local_authority=authority)
    if location.postcode is not None and len(location.postcode) > _MAX_POSTCODE:
        location = dataclasses.replace(location, postcode=None)  # free text, not a postcode
    return location


def _yes_no(text: str) -> bool | None:
    value = text.strip().lower()
    if not value:
        return None
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise InputError(f"expected yes or no, got {value[:20]!r}", field="suitable_for_vcse")


def _url(text: str) -> str | None:
    """An absolute http(s) link or nothing: other schemes (``javascript:``, ``data:``) are refused."""
    url = text.strip()
    if not url:
        return None
    if _is_http_url(url):
        return url
    raise InputError(f"url must be an http(s) link, got {url[:60]!r}", field="url")


def _is_http_url(url: str) -> bool:
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return False
    try:
        parts = urlsplit(url)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return False


def _check_email(text: str) -> None:
    """The contact address ends up in email headers: one plain address, no line breaks or lists."""
    value = text.strip()
    if value and not _EMAIL.match(value):
        raise InputError(f"contact_email is not a single email address: {value[:60]!r}", field="contact_email")
