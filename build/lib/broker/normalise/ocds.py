"""OCDS compiled releases become canonical :class:`OpportunityRecord`\\ s: one per lot, or one per ocid.

Input is the output of :func:`broker.normalise.compile.compile_releases` (or any compiled release, e.g.
a record's ``compiledRelease``). The field mapping is the table in research/ocds-sources.md §5; the
per-field rules live in :mod:`broker.normalise.ocds_fields`. A tender split into more than one lot
gives one record per lot (``<ocid>/lot/<lot id>``), because each lot is bid for, won and counted toward
the target on its own (BRIEF, "Counting"); lot title, description, value, status, suitability, dates
and items override the tender's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from broker.errors import InputError
from broker.normalise import ocds_fields as f
from broker.normalise.compile import COMPILED_FROM, notice_types
from broker.normalise.dates import parse_datetime
from broker.normalise.keys import reference_key, title_key
from broker.normalise.record import OpportunityRecord, canonical_hash
from broker.normalise.text import clean_text, one_line

SOURCE_BY_OCID_PREFIX = {
    "ocds-b5fd17": "contracts_finder",
    "ocds-h6vhtk": "find_a_tender",
    "ocds-r6ebe6": "public_contracts_scotland",
    "ocds-kuma6s": "sell2wales",
}
_SOURCE_BY_HOST = {"contractsfinder.service.gov.uk": "contracts_finder",
                   "find-tender.service.gov.uk": "find_a_tender",
                   "publiccontractsscotland.gov.uk": "public_contracts_scotland",
                   "sell2wales.gov.wales": "sell2wales"}
# "Lot 3", "LOT 3:", "3": a lot title that says nothing without the tender's title.
_GENERIC_LOT = re.compile(r"^\s*(?:lot\s*)?[0-9a-z]{1,3}\s*[:.\-–]?\s*$", re.IGNORECASE)


@dataclass
class _Process:
    """What every record of one compiled release shares."""

    ocid: str
    source: str
    compiled: dict[str, Any]
    tender: dict[str, Any]
    title: str
    description: str
    buyer_name: str
    buyer_id: str | None
    buyer_type: str | None
    buyer_address: dict[str, Any]
    release_ids: list[str]
    tender_release_id: str | None
    notices: list[str]
    latest_notice: str | None
    latest_tags: list[str]
    published_at: datetime | None
    raw_hash: str
    awards: list[dict[str, Any]] = field(default_factory=list)


def normalise_compiled(compiled: dict[str, Any], *, package_meta: dict[str, Any] | None = None
                       ) -> list[OpportunityRecord]:
    """Map one compiled release to its opportunity records.

    Args:
        compiled: a compiled release (``ocid`` required; numbers may be ``Decimal``).
        package_meta: the package's ``publisher``/``uri``/…, used to name the source when the ocid
            prefix is not one we know.

    Returns:
        One record per lot when ``tender.lots`` has more than one lot, else one record with id = ocid.

    Raises:
        InputError: no ocid, no usable title anywhere (field ``tender.title``), or an unreadable
            deadline or publication date (the field is named).
    """
    if not isinstance(compiled, dict):
        raise InputError("a compiled release is not a JSON object")
    ocid = f.text(compiled.get("ocid"))
    if not ocid:
        raise InputError("the compiled release has no ocid", field="ocid")
    process = _process(ocid, compiled, package_meta)
    lots = _unique_lots(f.objs(process.tender.get("lots")))
    try:
        if len(lots) > 1:
            return [_record(process, lot_id, lot) for lot_id, lot in lots]
        only = lots[0][1] if lots else None
        return [_record(process, None, only)]
    except ValueError as exc:  # the record refused a value (e.g. text no database can store)
        raise InputError(str(exc), locator=f"ocid {ocid}") from None


def _process(ocid: str, compiled: dict[str, Any], package_meta: dict[str, Any] | None) -> _Process:
    tender = f.obj(compiled.get("tender"))
    history = [f.obj(r) for r in compiled.get(COMPILED_FROM) or [] if isinstance(r, dict)]
    notices = _all_notices(compiled, history)
    buyer, party = _buyer(compiled)
    title = one_line(tender.get("title")) or one_line(compiled.get("title"))
    return _Process(
        ocid=ocid,
        source=_source(ocid, package_meta),
        compiled=compiled,
        tender=tender,
        title=title,
        description=clean_text(tender.get("description")) or clean_text(compiled.get("description")),
        buyer_name=one_line(buyer.get("name")) or one_line(party.get("name"))
        or one_line(f.obj(party.get("identifier")).get("legalName")),
        buyer_id=_buyer_id(buyer, party),
        buyer_type=_buyer_type(party),
        buyer_address=f.obj(party.get("address")) or f.obj(buyer.get("address")),
        release_ids=_release_ids(compiled, history),
        tender_release_id=_tender_release_id(history),
        notices=notices,
        latest_notice=_latest_notice(compiled, history),
        latest_tags=_latest_tags(compiled, history),
        published_at=_published(ocid, tender, compiled, history),
        raw_hash=canonical_hash(compiled),
        awards=f.objs(compiled.get("awards")),
    )


def _record(p: _Process, lot_id: str | None, lot: dict[str, Any] | None) -> OpportunityRecord:
    """One record: the whole tender (``lot_id`` None; ``lot`` is its single lot, if any) or one lot."""
    split = lot_id is not None
    lot = lot or {}
    # A lot of its own overrides; the single lot of an undivided tender only fills gaps.
    first, second = (lot, p.tender) if split else (p.tender, lot)
    title = _lot_title(p, lot_id, lot) if lot_id is not None else (p.title or one_line(lot.get("title")))
    if not title:
        raise InputError("no title in tender.title, the release title or the lot titles",
                         locator=f"ocid {p.ocid}", field="tender.title")
    deadline = _deadline(p.ocid, first, second)
    lo, hi, currency, original = f.value(lot) if split else _tender_value(p.tender, lot)
    if lo is None and hi is None and currency is None:
        lo, hi = f.award_value(p.awards, lot_id)  # an award notice may state only the awarded value
        currency = "GBP" if hi is not None else None
    sme, vcse = f.suitability(p.tender, lot, lot_first=split)
    reserved = f.reserved_participation(p.tender, lot)
    if vcse is None and "smeVcse" in reserved:
        vcse = True  # UK extension: participation reserved to SMEs and VCSEs
    is_framework, is_dps = f.framework_flags(p.tender, lot, p.notices)
    known, unknown = f.cpv_codes(p.tender, lot_id)
    start, end = _contract_period(first, second)
    loc = f.location(p.tender, lot if split else None, lot_id, p.buyer_address)
    documents = _documents(p.compiled, lot)
    return OpportunityRecord(
        id=f"{p.ocid}/lot/{lot_id}" if split else p.ocid,
        source=p.source,
        title=title,
        buyer_name=p.buyer_name,
        status=f.status(p.tender, lot if split else None, lot_id, p.awards, p.notices, p.latest_notice,
                        p.latest_tags),
        raw_hash=p.raw_hash,
        description=(clean_text(lot.get("description")) if split else "") or p.description,
        source_ids=_source_ids(p),
        ocid=p.ocid,
        lot_id=lot_id,
        buyer_id=p.buyer_id,
        buyer_type=p.buyer_type,
        notice_type=p.latest_notice or (p.latest_tags[-1] if p.latest_tags else None),
        published_at=p.published_at,
        deadline_at=deadline,
        contract_start=start,
        contract_end=end,
        value_min_pence=lo,
        value_max_pence=hi,
        value_currency=currency,
        value_original=original,
        cpv_codes=known,
        cpv_unknown=unknown,
        postcode=loc.postcode,
        local_authority=loc.local_authority,
        lad_code=loc.lad_code,
        itl_code=loc.itl_code,
        region=loc.region,
        cluster=loc.cluster,
        nationwide=loc.nationwide,
        sme_suitable=sme,
        vcse_suitable=vcse,
        reserved_participation=reserved,
        is_framework=is_framework,
        is_dps=is_dps,
        url=f.notice_url(documents, p.source, p.release_ids, p.tender_release_id),
        match_keys=_match_keys(p, title, deadline, split),
    )


def _unique_lots(lots: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(lot id, lot) without repeats; a lot without an id is named by its position."""
    out: dict[str, dict[str, Any]] = {}
    for position, lot in enumerate(lots, start=1):
        lot_id = f.text(lot.get("id")) or f"position-{position}"
        out.setdefault(lot_id, lot)
    return list(out.items())


def _lot_title(p: _Process, lot_id: str, lot: dict[str, Any]) -> str:
    own = one_line(lot.get("title"))
    if own and not _GENERIC_LOT.match(own):
        return own
    if not p.title:
        return own
    return f"{p.title} – {own}" if own else f"{p.title} (lot {lot_id})"


def _tender_value(tender: dict[str, Any], lot: dict[str, Any]) -> tuple[int | None, int | None, str | None, str | None]:
    figures = f.value(tender)
    if figures == (None, None, None, None) and lot:
        return f.value(lot)  # an undivided tender that states its value only on its one lot
    return figures


def _deadline(ocid: str, first: dict[str, Any], second: dict[str, Any]) -> datetime | None:
    """The earliest of the submission deadline and the UK expression-of-interest deadline.

    A VCSE that misses the expression of interest (request to participate) cannot bid at all.
    """
    found: list[datetime] = []
    for name, raw in (("tenderPeriod.endDate", _period(first, second, "tenderPeriod", "endDate")),
                      ("expressionOfInterestDeadline", first.get("expressionOfInterestDeadline")
                       or second.get("expressionOfInterestDeadline"))):
        if f.text(raw):
            try:
                parsed = parse_datetime(f.text(raw), end_of_day=True)
            except ValueError as exc:
                raise InputError(str(exc), locator=f"ocid {ocid}", field=f"tender.{name}") from None
            if parsed is not None:
                found.append(parsed)
    return min(found) if found else None


def _period(first: dict[str, Any], second: dict[str, Any], period: str, key: str) -> Any:
    return f.obj(first.get(period)).get(key) or f.obj(second.get(period)).get(key)


def _contract_period(first: dict[str, Any], second: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """Contract start/end; informational, so an unreadable date is left out rather than fatal."""
    out: list[datetime | None] = []
    for key, end_of_day in (("startDate", False), ("endDate", True)):
        try:
            out.append(parse_datetime(f.text(_period(first, second, "contractPeriod", key)), end_of_day=end_of_day))
        except ValueError:
            out.append(None)
    return out[0], out[1]


def _published(ocid: str, tender: dict[str, Any], compiled: dict[str, Any],
               history: list[dict[str, Any]]) -> datetime | None:
    """``tender.datePublished``, else the first release's date (the process's first publication)."""
    dates = [r.get("date") for r in history if f.text(r.get("date"))] or [compiled.get("date")]
    raw = f.text(tender.get("datePublished")) or f.text(dates[0])
    try:
        return parse_datetime(raw)
    except ValueError as exc:
        raise InputError(str(exc), locator=f"ocid {ocid}", field="tender.datePublished") from None


def _buyer(compiled: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(buyer reference, buyer party). Old Contracts Finder data has the whole buyer inline."""
    buyer = f.obj(compiled.get("buyer"))
    parties = f.objs(compiled.get("parties"))
    buyer_ref = f.text(buyer.get("id"))
    party = next((p for p in parties if buyer_ref and f.text(p.get("id")) == buyer_ref), None)
    if party is None:
        party = next((p for p in parties if "buyer" in (p.get("roles") or [])), None)
    if party is None:
        procuring = f.obj(f.obj(compiled.get("tender")).get("procuringEntity"))
        party = buyer if buyer.get("name") else procuring
    return buyer, party


def _buyer_id(buyer: dict[str, Any], party: dict[str, Any]) -> str | None:
    """An org-id (``GB-PPON-…``, ``GB-COH-…``) when the identifier gives one, else the party id."""
    ident = f.obj(party.get("identifier")) or f.obj(buyer.get("identifier"))
    scheme, number = f.text(ident.get("scheme")), f.text(ident.get("id"))
    if scheme and number:
        return number if number.startswith(f"{scheme}-") else f"{scheme}-{number}"
    return f.text(party.get("id")) or f.text(buyer.get("id")) or None


def _buyer_type(party: dict[str, Any]) -> str | None:
    """UK_CA_TYPE (Find a Tender), else TED_CA_TYPE (older EU forms, PCS, Sell2Wales)."""
    classes = f.objs(f.obj(party.get("details")).get("classifications"))
    for scheme in ("UK_CA_TYPE", "TED_CA_TYPE"):
        for c in classes:
            if f.text(c.get("scheme")).upper() == scheme and f.text(c.get("id")):
                return f.text(c.get("id"))
    return None


def _source(ocid: str, package_meta: dict[str, Any] | None) -> str:
    for prefix, source in SOURCE_BY_OCID_PREFIX.items():
        if ocid.lower().startswith(prefix + "-"):
            return source
    uri = f.text(f.obj(package_meta).get("uri")).lower()
    return next((s for host, s in _SOURCE_BY_HOST.items() if host in uri), "ocds")


def _release_ids(compiled: dict[str, Any], history: list[dict[str, Any]]) -> list[str]:
    ids = [f.text(r.get("id")) for r in history if f.text(r.get("id"))]
    if not ids and "compiled" not in (compiled.get("tag") or []) and f.text(compiled.get("id")):
        ids = [f.text(compiled.get("id"))]  # a single release passed in as it is
    return list(dict.fromkeys(ids))


def _tender_release_id(history: list[dict[str, Any]]) -> str | None:
    """The latest release that is a tender notice (UK4, or tagged tender): its id names the notice page."""
    for r in reversed(history):
        if "UK4" in (r.get("noticeTypes") or []) or "tender" in (r.get("tag") or []):
            return f.text(r.get("id")) or None
    return None


def _all_notices(compiled: dict[str, Any], history: list[dict[str, Any]]) -> list[str]:
    seen = [n for r in history for n in (r.get("noticeTypes") or []) if isinstance(n, str)]
    return list(dict.fromkeys(seen + notice_types(compiled)))


def _latest_notice(compiled: dict[str, Any], history: list[dict[str, Any]]) -> str | None:
    """The UK notice type of the latest release that has one; else the last in the documents."""
    for r in reversed(history):
        types = [t for t in r.get("noticeTypes") or [] if isinstance(t, str)]
        if types:
            return types[-1]
    found = notice_types(compiled)
    return found[-1] if found else None


def _latest_tags(compiled: dict[str, Any], history: list[dict[str, Any]]) -> list[str]:
    """The latest release's tags; a publisher's compiled release (tag ``compiled``) has none to give."""
    raw = history[-1].get("tag") if history else compiled.get("tag")
    tags = raw if isinstance(raw, list) else [raw]
    return [f.text(t) for t in tags if f.text(t) and f.text(t) != "compiled"]


def _documents(compiled: dict[str, Any], lot: dict[str, Any]) -> list[dict[str, Any]]:
    tender = f.obj(compiled.get("tender"))
    docs = f.objs(tender.get("documents")) + f.objs(lot.get("documents"))
    docs += f.objs(f.obj(compiled.get("planning")).get("documents"))
    for award in f.objs(compiled.get("awards")):
        docs += f.objs(award.get("documents"))
    return docs


def _source_ids(p: _Process) -> tuple[str, ...]:
    ids = [p.ocid, *p.release_ids]
    reference = f.text(p.tender.get("id"))
    if p.source == "contracts_finder" and reference:
        ids.append(f"cf-ref:{reference}")
    return tuple(dict.fromkeys(ids))


def _match_keys(p: _Process, title: str, deadline: datetime | None, split: bool) -> tuple[str, ...]:
    keys: list[str | None] = []
    if p.source == "contracts_finder" and not split:
        # CF tender.id is the buyer's reference, the CSV export's "Notice Identifier" (research §2.2).
        keys.append(reference_key(p.buyer_name, p.tender.get("id")))
    keys.append(title_key(p.buyer_name, title, deadline))
    return tuple(k for k in keys if k)
