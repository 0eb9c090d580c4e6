"""Map one Contracts Finder CSV export row to an :class:`OpportunityRecord`.

The export ("Download CSV" on the Contracts Finder search page) is described in
``research/ocds-sources.md`` §2.2 and the CF CSV column of the mapping table in §5. The reader
(:mod:`broker.sources.cf_csv`) hands over a dict keyed by the canonical column names; this module knows
what the columns mean. A field that cannot be read raises :class:`InputError` naming the column, so the
reader can quarantine the row and go on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TypeVar
from urllib.parse import urlsplit

from broker.errors import InputError
from broker.normalise import cpv, dates, geography, money
from broker.normalise.keys import reference_key, title_key
from broker.normalise.record import OpportunityRecord, build_record, canonical_hash, canonical_json
from broker.normalise.text import clean_text, match_key, one_line, split_list

SOURCE = "contracts_finder_csv"

# Notice types that announce a future procurement rather than an open competition (§2.2 observed values).
_PLANNED_NOTICE_TYPES = frozenset({"pipeline", "preprocurement"})
_CANCELLED_STATUSES = frozenset({"cancelled", "withdrawn"})
_ANY_REGION = "any region"
_CF_NOTICE_URL = re.compile(r"^https?://(www\.)?contractsfinder\.service\.gov\.uk/Notice/", re.IGNORECASE)
_HTTP_URL = re.compile(r"https?://[^\s<>\"'()\[\]{}]+", re.IGNORECASE)
_FRAMEWORK_AGREEMENT = re.compile(r"\bframework\s+agreements?\b", re.IGNORECASE)
_FRAMEWORK_WORD = re.compile(r"\bframework\b", re.IGNORECASE)
# A call-off or mini-competition under a framework is a real contract whose value is brokerage
# (BRIEF, Value basis): it must not be mistaken for the framework itself.
_CALL_OFF = re.compile(r"call[\s-]*off|mini[\s-]*competition|further\s+competition", re.IGNORECASE)
_DPS = re.compile(r"\bdynamic\s+purchasing\s+system\b", re.IGNORECASE)
_DPS_ACRONYM = re.compile(r"\bDPS\b")
_CPV_SEPARATORS = re.compile(r"\s+")  # "79600000 85000000 98513100 " (§2.2)

# Contracts Finder makes buyers enter a value; £1 is what they type when they have none (22 of the 1,000
# real 2020 rows have Value Low "1", e.g. beside a Value High of 875,000). money.SENTINEL_AMOUNTS covers
# 0 and 0.01 only, so the CF-specific placeholder is handled here.
_CF_PLACEHOLDER_AMOUNTS = frozenset({Decimal("1")})

_MAX_NOTICE_TYPE = 40  # the store's column width
_MAX_POSTCODE = 16  # the store's column width; a UK postcode has at most 8 characters

T = TypeVar("T")


def record_from_row(row: Mapping[str, str]) -> OpportunityRecord:
    """Build the canonical record for one export row.

    Args:
        row: column name → raw cell text, keyed by the canonical column names of the export (columns the
            file lacks may be absent).

    Returns:
        The normalised opportunity.

    Raises:
        InputError: a required cell is blank or a cell cannot be read; ``field`` names the column.
    """
    org = one_line(row.get("Organisation Name"))
    title = one_line(row.get("Title"))
    ref = one_line(row.get("Notice Identifier"))
    for column, value in (("Organisation Name", org), ("Title", title), ("Notice Identifier", ref)):
        if not value:
            raise InputError(f"{column} is blank", field=column)
        if not match_key(value):
            # The id and the de-duplication keys are built from match_key: "***" would collide.
            raise InputError(f"{column} has no letters or digits: {value[:40]!r}", field=column)
    notice_type = one_line(row.get("Notice Type")) or None
    if notice_type is not None and len(notice_type) > _MAX_NOTICE_TYPE:
        # Real values are one word (Contract, Pipeline, PreProcurement): a long one means shifted columns.
        raise InputError(f"Notice Type is not a notice type: {notice_type[:40]!r}…", field="Notice Type")
    description = _description(row)
    deadline = _field("Closing Date", lambda: dates.parse_uk_date(
        row.get("Closing Date", ""), clock=row.get("Closing Time"), end_of_day=True))
    value_min, value_max = _values(row)
    cpv_known, cpv_unknown = cpv.catalogue().split(split_list(row.get("Cpv Codes") or "", _CPV_SEPARATORS))
    location = _location(row)
    cluster = location.cluster or geography.cluster_for(location.local_authority, location.postcode)
    return build_record(
        id=cf_record_id(org, ref),
        source=SOURCE,
        title=title,
        buyer_name=org,
        status=_status(row, notice_type),
        raw_hash=canonical_hash(dict(row)),
        description=description,
        source_ids=(f"cf-notice:{ref}",),
        notice_type=notice_type,
        published_at=_field("Published Date", lambda: dates.parse_datetime(row.get("Published Date"))),
        deadline_at=deadline,
        contract_start=_field("Start Date", lambda: dates.parse_uk_date(row.get("Start Date", ""))),
        contract_end=_field("End Date", lambda: dates.parse_uk_date(row.get("End Date", ""))),
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
        cluster=cluster,
        nationwide=location.nationwide,
        sme_suitable=_yes_no(row, "Suitable for SME"),
        vcse_suitable=_yes_no(row, "Suitable for VCO"),
        is_framework=_is_framework(row, title, description, notice_type),
        is_dps=_is_dps(row, title, description),
        url=_url(row.get("Links")),
        match_keys=tuple(k for k in (reference_key(org, ref), title_key(org, title, deadline)) if k),
    )


def cf_record_id(org: str, ref: str) -> str:
    """``cf-csv:`` + a short stable hash of the buyer and its reference.

    The Notice Identifier is the buyer's own reference (§2.2), not an ocid, and two buyers may use the
    same one, so the buyer is part of the key. Both go through ``match_key`` so that case, spacing and
    punctuation changes between exports do not make a new opportunity.
    """
    digest = hashlib.sha256(canonical_json([match_key(org), match_key(ref)]).encode("utf-8")).hexdigest()
    return f"cf-csv:{digest[:16]}"


def _field(column: str, parse: Callable[[], T]) -> T:
    """Run one cell's parser, turning its ``ValueError`` into an error that names the column."""
    try:
        return parse()
    except ValueError as exc:
        raise InputError(str(exc), field=column) from None


def _description(row: Mapping[str, str]) -> str:
    description = clean_text(row.get("Description"))
    extra = clean_text(row.get("Additional Text"))
    if extra and extra != description:
        return f"{description}\n\n{extra}" if description else extra
    return description


def _status(row: Mapping[str, str], notice_type: str | None) -> str:
    """Status from the row only (never the clock): cancellation, then award, then the Status column."""
    given = one_line(row.get("Status"))
    status = given.lower()
    if status in _CANCELLED_STATUSES:
        return "cancelled"
    awarded_value = _field("Awarded Value", lambda: money.to_money(row.get("Awarded Value")))
    if status == "awarded" or one_line(row.get("Awarded Date")) or awarded_value.pence is not None:
        return "awarded"
    if status == "closed":
        return "closed"
    if status == "open":
        planned = (notice_type or "").replace("-", "").replace(" ", "").lower() in _PLANNED_NOTICE_TYPES
        return "planned" if planned else "open"
    raise InputError(f"unknown Status {given[:30] or '(blank)'!r}: expected Open, Closed, Awarded, "
                     "Cancelled or Withdrawn", field="Status")


def _values(row: Mapping[str, str]) -> tuple[int | None, int | None]:
    low = _field("Value Low", lambda: _cf_money(row.get("Value Low")))
    high = _field("Value High", lambda: _cf_money(row.get("Value High")))
    return money.value_range(low, high)


def _cf_money(text: str | None) -> money.Money:
    amount = money.to_decimal(text)
    if amount is not None and amount in _CF_PLACEHOLDER_AMOUNTS:
        return money.UNKNOWN
    return money.to_money(amount)


def _location(row: Mapping[str, str]) -> geography.Location:
    regions = [one_line(r) for r in (row.get("Region") or "").split(",")]
    any_region = any(r.lower() == _ANY_REGION for r in regions)
    named = [r for r in regions if r and r.lower() != _ANY_REGION]
    nationwide = _yes_no(row, "Nationwide") is True or any_region
    postcode = one_line(row.get("Postcode"))
    location = _field("Postcode", lambda: geography.resolve_location(
        postcodes=[postcode] if postcode else [], region_names=named, nationwide=nationwide))
    if location.postcode is not None and len(location.postcode) > _MAX_POSTCODE:
        location = dataclasses.replace(location, postcode=None)  # free text, not a postcode
    return location


def _yes_no(row: Mapping[str, str], column: str) -> bool | None:
    text = one_line(row.get(column)).lower()
    if not text:
        return None
    if text in ("yes", "y", "true"):
        return True
    if text in ("no", "n", "false"):
        return False
    raise InputError(f"expected Yes or No, got {text[:20]!r}", field=column)


def _is_framework(row: Mapping[str, str], title: str, description: str, notice_type: str | None) -> bool:
    """Framework agreements count £0 toward the target until a call-off (BRIEF, Value basis).

    Evidence, strongest first: CF's own OJEU procedure/contract type or notice type naming a framework
    (``CallOffFromFrameworkAgreement`` is a call-off, so not a framework); "framework agreement" in the
    text; "framework" as a word in the title. A title or procedure that says call-off wins.
    """
    coded = f"{_procedure(row)} {notice_type or ''}"
    if _CALL_OFF.search(coded) or _CALL_OFF.search(title):
        return False
    if "framework" in coded.lower():
        return True
    return bool(_FRAMEWORK_AGREEMENT.search(f"{title}\n{description}") or _FRAMEWORK_WORD.search(title))


def _is_dps(row: Mapping[str, str], title: str, description: str) -> bool:
    """A dynamic purchasing system (counted like a framework), unless CF codes the notice as a call-off
    from one (``CallOffFromDynamicPurchasingSystem``, a real contract with its own value)."""
    if _CALL_OFF.search(_procedure(row)):
        return False
    return bool(_DPS.search(f"{title}\n{description}") or _DPS_ACRONYM.search(title))


def _procedure(row: Mapping[str, str]) -> str:
    return " ".join(one_line(row.get(c)) for c in ("OJEU Procedure Type", "OJEU Contract Type"))


def _url(links: str | None) -> str | None:
    """A Contracts Finder notice link when one is given, else the first http(s) link.

    ``Links`` is free text: usually space-separated URLs with a trailing space, sometimes a bare host
    (``www.example.org``, skipped: we only hand on absolute http(s) links) or a sentence.
    """
    found = (u.rstrip(".,;:") for u in _HTTP_URL.findall(links or ""))
    urls = [u for u in found if urlsplit(u).hostname]
    for url in urls:
        if _CF_NOTICE_URL.match(url):
            return url
    return urls[0] if urls else None
