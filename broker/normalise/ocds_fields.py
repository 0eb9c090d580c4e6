"""Field extractors for OCDS compiled releases: one small function per canonical field.

Each takes the (possibly malformed) JSON objects of a compiled release and returns plain values; none
raises on odd shapes (a list where an object belongs, a number where text belongs): publisher data is
untrusted and a strange field must not cost the whole notice. Paths follow the mapping table in
research/ocds-sources.md §5 and the field notes in §1.2, §2.1, §2.4–2.6.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from broker.errors import InputError
from broker.normalise import money, procurement
from broker.normalise.cpv import catalogue
from broker.normalise.geography import Location, cluster_for, resolve_location
from broker.normalise.text import one_line

# UK notice types (Procurement Act 2023, research/ocds-sources.md §2.5).
PLANNING_NOTICES = frozenset({"UK1", "UK2", "UK3"})
TENDER_NOTICES = frozenset({"UK4"})
AWARD_NOTICES = frozenset({"UK6", "UK7", "UK8", "UK9", "UK10", "UK11"})
TERMINATION_NOTICES = frozenset({"UK12"})
DYNAMIC_MARKET_NOTICES = frozenset({"UK13", "UK14", "UK15", "UK16"})

_CANCELLED = frozenset({"cancelled", "withdrawn"})
_PLANNED = frozenset({"planning", "planned"})
_CLOSED = frozenset({"complete", "unsuccessful"})
_LIVE_AWARD = frozenset({"active", "pending"})
_DEAD_AWARD = frozenset({"cancelled", "unsuccessful"})

# Contracts Finder "anywhere" notices list these as a bare countryName (research §2.1).
PSEUDO_COUNTRIES = frozenset({"united kingdom", "uk", "great britain", "rest of the world", "europe",
                              "channel islands", "isle of man", "british oversea territories",
                              "british overseas territories", "anywhere", "any region", "nationwide"})
_NUTS = re.compile(r"^(?:UK|TL)[A-N0-9]{0,3}$|^UKZ{1,3}$", re.IGNORECASE)
# Which notice document gives the opportunity's URL, best first (OCDS documentType codelist + UK).
URL_DOCUMENT_TYPES = ("tenderNotice", "contractNotice", "plannedProcurementNotice", "marketEngagementNotice",
                      "awardNotice", "contractAwardNotice")
_CF_NOTICE = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-\d+$", re.IGNORECASE)
_FTS_NOTICE = re.compile(r"^\d{6}-\d{4}$")
_MAX_URL = 2000


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def objs(value: Any) -> list[dict[str, Any]]:
    """The JSON objects in ``value`` if it is an array, else none."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def text(value: Any) -> str:
    """A scalar as stripped text ('' for objects, arrays, null and booleans)."""
    if value is None or isinstance(value, (bool, dict, list)):
        return ""
    return str(value).strip()


def flag(value: Any) -> bool | None:
    """A publisher's yes/no: JSON booleans, or the strings true/false/yes/no; anything else unknown."""
    if isinstance(value, bool):
        return value
    word = text(value).lower()
    return True if word in ("true", "yes", "y", "1") else False if word in ("false", "no", "n", "0") else None


# --- status -------------------------------------------------------------------------------------------

def status(tender: dict[str, Any], lot: dict[str, Any] | None, lot_id: str | None, awards: list[dict[str, Any]],
           notices: list[str], latest_notice: str | None, latest_tags: list[str]) -> str:
    """Canonical status of a tender or one lot (see the rules in research/ocds-sources.md §1.2, §2.5).

    cancelled > awarded > planned/open/closed. A UK12 termination notice or a ``tenderCancellation``
    release cancels; a live award (or a complete tender with awards, or a UK6–UK11 notice) awards.
    """
    lot_status = text(obj(lot).get("status")).lower()
    tender_status = text(tender.get("status")).lower()
    current = lot_status or tender_status
    if lot_status in _CANCELLED or tender_status in _CANCELLED or TERMINATION_NOTICES & set(notices) \
            or "tenderCancellation" in latest_tags:
        return "cancelled"
    if _awarded(lot_id or "", current, awards, latest_notice):
        return "awarded"
    if latest_notice in PLANNING_NOTICES:
        return "planned"
    if latest_notice == "UK5":
        return "closed"  # a transparency notice announces a direct award: nothing is open to bid for
    if current in _PLANNED:
        return "planned"
    if current == "active":
        return "open"
    if current in _CLOSED:
        return "closed"
    if latest_notice in TENDER_NOTICES:
        return "open"
    return _status_from_tags(latest_tags)


def _awarded(lot_id: str, current: str, awards: list[dict[str, Any]], latest_notice: str | None) -> bool:
    relevant = [a for a in awards if _award_covers(a, lot_id)]
    if any(_award_live(a) for a in relevant):
        return True
    if current == "complete" and any(text(a.get("status")).lower() not in _DEAD_AWARD for a in relevant):
        return True
    # A UK6+ notice with awards that do not say which lot: it applies to the whole procurement.
    lots_named = any(a.get("relatedLots") for a in awards)
    return latest_notice in AWARD_NOTICES and not (lot_id and lots_named)


def _award_covers(award: dict[str, Any], lot_id: str) -> bool:
    related = [text(x) for x in award.get("relatedLots") or []] if isinstance(award.get("relatedLots"), list) else []
    return not lot_id or not related or lot_id in related


def _award_live(award: dict[str, Any]) -> bool:
    state = text(award.get("status")).lower()
    if state:
        return state in _LIVE_AWARD
    return bool(objs(award.get("suppliers")))  # no status: an award naming a supplier is an award


def _status_from_tags(tags: list[str]) -> str:
    """No tender status and no UK notice type: the latest release's stage decides."""
    last = tags[-1] if tags else ""
    if last.startswith("planning"):
        return "planned"
    if last.startswith(("award", "contract", "implementation")):
        return "awarded"
    return "open"


# --- money --------------------------------------------------------------------------------------------

def value(holder: dict[str, Any]) -> tuple[int | None, int | None, str | None, str | None]:
    """(min pence, max pence, currency, original) from ``minValue`` (low) and ``value`` (high).

    Zero, 0.01 and absurd figures (``1e9999``) are unknown; a non-GBP amount is kept as text with its
    currency and counts as unknown (broker.normalise.money; BRIEF, value basis).
    """
    low, high = _money(holder.get("minValue"), "minValue"), _money(holder.get("value"), "value")
    lo, hi = money.value_range(low, high)
    if lo is not None or hi is not None:
        return lo, hi, "GBP", None
    foreign = [m for m in (low, high) if m.currency and m.currency != "GBP" and m.original]
    if foreign:
        original = "–".join(dict.fromkeys(m.original or "" for m in foreign))
        return None, None, foreign[-1].currency, original
    return None, None, None, None


def award_value(awards: list[dict[str, Any]], lot_id: str | None) -> tuple[int | None, int | None]:
    """Total GBP value of the live awards covering a tender or lot (for notices with no tender value)."""
    figures = [_money(a.get("value"), "awards.value").pence for a in awards
               if _award_covers(a, lot_id or "") and _award_live(a)]
    known = [p for p in figures if p is not None]
    total = sum(known) if known else None
    return total, total


def _money(raw: Any, name: str) -> money.Money:
    amount = obj(raw)
    currency = text(amount.get("currency")) or None
    try:
        return money.to_money(amount.get("amount"), currency)
    except money.NegativeAmount as exc:  # refused as the CSV readers refuse it, naming the field
        raise InputError(f"{exc}: amounts cannot be below zero", field=f"{name}.amount") from None
    except ValueError:
        return money.UNKNOWN  # not a number: as good as not given


# --- classification -----------------------------------------------------------------------------------

def cpv_codes(tender: dict[str, Any], lot_id: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(known, unknown) CPV codes from the tender, its items and its lots' items (CPV or unnamed scheme).

    For a lot, items related to another lot are left out (Lots extension ``items[].relatedLot``).
    """
    found: list[Any] = []
    _add_classification(found, tender.get("classification"))
    for extra in objs(tender.get("additionalClassifications")):
        _add_classification(found, extra)
    for item in relevant_items(tender, lot_id):
        _add_classification(found, item.get("classification"))
        for extra in objs(item.get("additionalClassifications")):
            _add_classification(found, extra)
    return catalogue().split(found)


def _add_classification(found: list[Any], raw: Any) -> None:
    c = obj(raw)
    scheme = text(c.get("scheme")).upper().replace(" ", "")
    code = text(c.get("id"))
    if code and scheme in ("", "CPV"):
        found.append(code)


def _item_in_lot(item: dict[str, Any], lot_id: str | None) -> bool:
    related = text(item.get("relatedLot"))
    return lot_id is None or not related or related == lot_id


def relevant_items(tender: dict[str, Any], lot_id: str | None) -> list[dict[str, Any]]:
    """The tender's items that describe this lot (or all of them)."""
    items = [i for i in objs(tender.get("items")) if _item_in_lot(i, lot_id)]
    for lot in objs(tender.get("lots")):
        if lot_id is None or text(lot.get("id")) == lot_id:
            items.extend(objs(lot.get("items")))
    return items


# --- suitability and procedure ------------------------------------------------------------------------

def suitability(tender: dict[str, Any], lot: dict[str, Any] | None, *,
                lot_first: bool = True) -> tuple[bool | None, bool | None]:
    """(sme, vcse): lot suitability over tender suitability (or the reverse for the one lot of an
    undivided tender), then legacy ``xClassifications``."""
    sme, vcse = None, None
    pair = [obj(obj(lot).get("suitability")), obj(tender.get("suitability"))]
    for source in pair if lot_first else pair[::-1]:
        sme = sme if sme is not None else flag(source.get("sme"))
        vcse = vcse if vcse is not None else flag(source.get("vcse"))
    legacy = obj(tender.get("xClassifications"))  # pre-2018 Contracts Finder (research §2.1)
    sme = sme if sme is not None else flag(legacy.get("isSuitableForSme"))
    vcse = vcse if vcse is not None else flag(legacy.get("isSuitableForVco"))
    return sme, vcse


def reserved_participation(tender: dict[str, Any], lot: dict[str, Any] | None) -> tuple[str, ...]:
    """``otherRequirements.reservedParticipation`` codes of the lot and the tender (e.g. ``smeVcse``)."""
    codes: list[str] = []
    for holder in (obj(lot), tender):
        raw = obj(holder.get("otherRequirements")).get("reservedParticipation")
        for code in raw if isinstance(raw, list) else [raw]:
            word = text(code)
            if word and word not in codes:
                codes.append(word)
    return tuple(codes)


def framework_flags(tender: dict[str, Any], lot: dict[str, Any] | None, notices: list[str]) -> tuple[bool, bool]:
    """(is_framework, is_dps) from techniques, the title, procedure text and description, and UK13–UK16.

    Frameworks and DPSs count £0 toward the target until a call-off is recorded (BRIEF, value basis),
    so a call-off *from* one ("Call-off from a framework agreement") is neither.
    """
    description = "\n".join(one_line(h.get("description")) for h in (tender, obj(lot)) if h)
    kind = text_kind(one_line(tender.get("title")), text(tender.get("procurementMethodDetails")), description)
    is_framework, is_dps = kind.framework, kind.dps
    if kind.call_off:
        return False, False
    for holder in (tender, obj(lot)):
        techniques = obj(holder.get("techniques"))
        has_framework = flag(techniques.get("hasFrameworkAgreement"))
        if has_framework or (has_framework is None and obj(techniques.get("frameworkAgreement"))):
            is_framework = True
        if flag(techniques.get("hasDynamicPurchasingSystem")) or obj(techniques.get("dynamicPurchasingSystem")):
            is_dps = True
    if DYNAMIC_MARKET_NOTICES & set(notices):
        is_dps = True
    return is_framework, is_dps


def text_kind(title: str, procedure: str, description: str = "") -> procurement.Kind:
    """Framework, DPS or call-off from a notice's words (``broker.normalise.procurement``)."""
    return procurement.procurement_kind(title, procedure, description)


# --- location -----------------------------------------------------------------------------------------

def location(tender: dict[str, Any], lot: dict[str, Any] | None, lot_id: str | None,
             buyer_address: dict[str, Any]) -> Location:
    """Where the work is: delivery addresses and locations first, the buyer's address only when the
    notice names no place at all (a national buyer's office says nothing about where work happens)."""
    evidence = _Evidence()
    holders = [*relevant_items(tender, lot_id), tender, obj(lot)]
    for holder in holders:
        for address in _many(holder, "deliveryAddresses", "deliveryAddress"):
            evidence.address(address)
        for place in _many(holder, "deliveryLocations", "deliveryLocation"):
            evidence.place(place)
    if evidence.empty():
        evidence.address(buyer_address)
    loc = resolve_location(postcodes=evidence.postcodes, region_names=evidence.regions,
                           nuts_codes=evidence.nuts, place_names=evidence.places, nationwide=evidence.nationwide)
    if loc.cluster is None:
        cluster = cluster_for(loc.local_authority, loc.postcode)
        if cluster is not None:
            loc = dataclasses.replace(loc, cluster=cluster)
    return loc


def _many(holder: dict[str, Any], plural: str, singular: str) -> Iterator[dict[str, Any]]:
    yield from objs(holder.get(plural))
    if isinstance(holder.get(singular), dict):
        yield holder[singular]  # legacy OCDS 1.0 / Proactis singular form


class _Evidence:
    def __init__(self) -> None:
        self.postcodes: list[str] = []
        self.regions: list[str] = []
        self.nuts: list[str] = []
        self.places: list[str] = []
        self.nationwide = False

    def empty(self) -> bool:
        return not (self.postcodes or self.regions or self.nuts or self.places or self.nationwide)

    def address(self, address: dict[str, Any]) -> None:
        region, postcode = text(address.get("region")), text(address.get("postalCode"))
        country, locality = text(address.get("countryName")), text(address.get("locality"))
        if postcode:
            _append(self.postcodes, postcode.upper())
        if region:
            self._region(region)
        if locality:
            _append(self.places, locality)
        if country and not (region or postcode or locality) and country.lower() in PSEUDO_COUNTRIES:
            self.nationwide = True  # "anywhere": only a pseudo-country, no place in it

    def _region(self, region: str) -> None:
        if region.lower() in PSEUDO_COUNTRIES:
            self.nationwide = True
        elif _NUTS.match(region):
            _append(self.nuts, region.upper())
        else:
            _append(self.regions, region)

    def place(self, place: dict[str, Any]) -> None:
        description = text(place.get("description"))
        if description:
            _append(self.places, description)
        gazetteer = obj(place.get("gazetteer"))
        if text(gazetteer.get("scheme")).upper() in ("NUTS", "ITL"):
            for code in gazetteer.get("identifiers") or []:
                if text(code):
                    _append(self.nuts, text(code).upper())


def _append(values: list[str], value: str) -> None:
    if value not in values:
        values.append(value)


# --- links --------------------------------------------------------------------------------------------

def notice_url(documents: Iterable[dict[str, Any]], source: str, release_ids: list[str],
               tender_release_id: str | None) -> str | None:
    """The public notice page: a notice document's URL, else one built from the publisher's notice id."""
    docs = list(documents)
    for doc_type in URL_DOCUMENT_TYPES:
        for doc in docs:
            # The type first: checking a URL costs more, and only one of the right type is wanted.
            if text(doc.get("documentType")) == doc_type and (url := safe_url(doc.get("url"))):
                return url
    candidates = ([tender_release_id] if tender_release_id else []) + list(reversed(release_ids))
    for rid in candidates:
        if source == "contracts_finder" and (m := _CF_NOTICE.match(rid)):
            return f"https://www.contractsfinder.service.gov.uk/Notice/{m[1]}"
        if source == "find_a_tender" and _FTS_NOTICE.match(rid):
            return f"https://www.find-tender.service.gov.uk/Notice/{rid}"
    return None


# What str.isspace calls whitespace (the regular expression engine uses the same test) and control characters.
_UNSAFE_URL_CHAR = re.compile(r"[\s\x00-\x1f]")


def safe_url(value: Any) -> str | None:
    """An http(s) URL with a host and no spaces or control characters, else ``None`` (untrusted input)."""
    url = text(value)
    if not url or len(url) > _MAX_URL or _UNSAFE_URL_CHAR.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None
