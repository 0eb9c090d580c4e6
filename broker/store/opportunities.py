"""Opportunity storage: source records, de-duplication keys, the combined canonical row and its versions.

Each source's normalised record is stored on its own (``source_records``); the canonical opportunity
combines the records of all sources that describe the same notice, highest priority first, filling gaps
from the others. An opportunity keeps the id under which it was first seen, so ids stay stable whatever
order the sources arrive in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from broker.errors import NotFound
from broker.normalise.keys import REFERENCE_PREFIX
from broker.normalise.record import OpportunityRecord, canonical_hash
from broker.store.models import Opportunity, OpportunityKey, OpportunityVersion, SourceRecord

Outcome = Literal["new", "updated", "unchanged"]

# Lower wins when sources disagree: OCDS is the richest and most current, then the CSV export, then
# private opportunities (which never collide with public ones in practice).
SOURCE_PRIORITY = {
    "find_a_tender": 10,
    "contracts_finder": 20,
    "public_contracts_scotland": 30,
    "sell2wales": 30,
    "ocds": 40,
    "contracts_finder_csv": 50,
    "private": 60,
}
_UNION_FIELDS = ("source_ids", "match_keys")
_OPPORTUNITY_COLUMNS = tuple(c.key for c in Opportunity.__table__.columns
                             if c.key not in ("content_hash", "version", "raw_hash"))


def priority_of(source: str) -> int:
    return SOURCE_PRIORITY.get(source, 100)


def upsert_record(session: Session, record: OpportunityRecord) -> Outcome:
    """Store one source's record and refresh the canonical opportunity it belongs to."""
    existing = session.scalars(select(SourceRecord).where(
        SourceRecord.source == record.source, SourceRecord.source_key == record.id)).one_or_none()
    content_hash = record.content_hash
    if existing is not None and existing.content_hash == content_hash:
        return "unchanged"
    if existing is not None:
        opportunity_id = existing.opportunity_id
        existing.record = record.to_json()
        existing.content_hash = content_hash
    else:
        opportunity_id = _find_duplicate(session, record) or record.id
        session.add(SourceRecord(source=record.source, source_key=record.id, opportunity_id=opportunity_id,
                                 priority=priority_of(record.source), record=record.to_json(),
                                 content_hash=content_hash))
    _register_keys(session, record.match_keys, opportunity_id)
    session.flush()
    return refresh_opportunity(session, opportunity_id)


def _find_duplicate(session: Session, record: OpportunityRecord) -> str | None:
    """The opportunity another source already filed under one of this record's keys, if any.

    A key only joins records from *different* sources: one publisher's two records are two notices,
    even when they share buyer, title and deadline (real Contracts Finder data has such award notices).
    Nor does a title key join two records whose buyer references disagree.
    """
    if not record.match_keys:
        return None
    found = dict(session.execute(select(OpportunityKey.key, OpportunityKey.opportunity_id)
                                 .where(OpportunityKey.key.in_(record.match_keys))).all())
    own_refs = {k for k in record.match_keys if k.startswith(REFERENCE_PREFIX)}
    for key in record.match_keys:  # the record's own key order: reference keys before title keys
        candidate = found.get(key)
        if candidate is None or _same_source(session, candidate, record.source):
            continue
        if key.startswith(REFERENCE_PREFIX) or not _references_conflict(session, candidate, own_refs):
            return candidate
    return None


def _same_source(session: Session, opportunity_id: str, source: str) -> bool:
    return session.scalars(select(SourceRecord.id).where(
        SourceRecord.opportunity_id == opportunity_id, SourceRecord.source == source).limit(1)).first() is not None


def _references_conflict(session: Session, opportunity_id: str, own_refs: set[str]) -> bool:
    if not own_refs:
        return False
    theirs = set(session.scalars(select(OpportunityKey.key).where(
        OpportunityKey.opportunity_id == opportunity_id, OpportunityKey.key.startswith(REFERENCE_PREFIX))))
    return bool(theirs) and not (theirs & own_refs)


def _register_keys(session: Session, keys: Sequence[str], opportunity_id: str) -> None:
    if not keys:
        return
    taken = set(session.scalars(select(OpportunityKey.key).where(OpportunityKey.key.in_(keys))))
    for key in keys:
        if key not in taken:
            session.add(OpportunityKey(key=key, opportunity_id=opportunity_id))
            taken.add(key)


def combine(records: Sequence[dict[str, Any]], opportunity_id: str) -> OpportunityRecord:
    """The canonical record: the highest-priority record, gaps filled from the others in order."""
    merged = dict(records[0])
    for other in records[1:]:
        for key, value in other.items():
            if key in _UNION_FIELDS:
                continue
            if merged.get(key) in (None, "", []) and value not in (None, "", []):
                merged[key] = value
    for key in _UNION_FIELDS:
        merged[key] = sorted({v for r in records for v in r.get(key) or ()})
    if len(records) > 1:
        merged["raw_hash"] = canonical_hash(sorted(r["raw_hash"] for r in records))
    merged["id"] = opportunity_id
    return OpportunityRecord.from_json(merged)


def refresh_opportunity(session: Session, opportunity_id: str) -> Outcome:
    """Recombine an opportunity from its source records; write a new version only if it changed."""
    rows = session.scalars(select(SourceRecord).where(SourceRecord.opportunity_id == opportunity_id)
                           .order_by(SourceRecord.priority, SourceRecord.source, SourceRecord.source_key)).all()
    canonical = combine([r.record for r in rows], opportunity_id)
    data = canonical.to_json()
    content_hash = canonical_hash(data)
    row = session.get(Opportunity, opportunity_id)
    if row is not None and row.content_hash == content_hash:
        return "unchanged"
    outcome: Outcome = "new" if row is None else "updated"
    if row is None:
        row = Opportunity(id=opportunity_id, version=0)
        session.add(row)
    for column in _OPPORTUNITY_COLUMNS:
        setattr(row, column, getattr(canonical, column))
    row.raw_hash = canonical.raw_hash
    row.content_hash = content_hash
    row.version += 1
    session.add(OpportunityVersion(opportunity_id=opportunity_id, version=row.version,
                                   content_hash=content_hash, record=data))
    return outcome


def to_record(row: Opportunity) -> OpportunityRecord:
    """The canonical record of a stored row."""
    data: dict[str, Any] = {c: getattr(row, c) for c in _OPPORTUNITY_COLUMNS}
    data["raw_hash"] = row.raw_hash
    for key in ("source_ids", "cpv_codes", "cpv_unknown", "reserved_participation", "match_keys", "regions"):
        data[key] = tuple(data.get(key) or ())
    return OpportunityRecord(**data)


def source_ids(session: Session, opportunity_id: str) -> list[str]:
    row = session.get(Opportunity, opportunity_id)
    return list(row.source_ids) if row else []


def list_opportunities(session: Session, *, open_on: tuple[datetime, datetime] | None = None,
                       status: str | None = None, cluster: str | None = None,
                       limit: int | None = None) -> list[Opportunity]:
    """Opportunities in a stable order (deadline, then id). ``open_on`` is (day start, day end) in UTC."""
    q = select(Opportunity)
    if open_on is not None:
        start, end = open_on
        q = q.where(Opportunity.status == "open",
                    (Opportunity.deadline_at.is_(None)) | (Opportunity.deadline_at >= start),
                    (Opportunity.published_at.is_(None)) | (Opportunity.published_at <= end))
    if status:
        q = q.where(Opportunity.status == status)
    if cluster:
        q = q.where(Opportunity.cluster == cluster)
    q = q.order_by(Opportunity.deadline_at.is_(None), Opportunity.deadline_at, Opportunity.id)
    if limit:
        q = q.limit(limit)
    return list(session.scalars(q))


def find_opportunity(session: Session, ident: str) -> Opportunity | None:
    """By opportunity id, by any publisher identifier (an ocid, ``cf-notice:...``, or the notice
    identifier alone, ``tender_237003/846062``) or source key, or by a unique start of an id.

    Raises:
        NotFound: when ``ident`` starts more than one opportunity id (naming a few of them).
    """
    ident = ident.strip()
    if not ident:
        return None
    row = session.get(Opportunity, ident)
    if row is not None:
        return row
    hit = session.scalars(select(SourceRecord.opportunity_id).where(SourceRecord.source_key == ident)
                          .order_by(SourceRecord.id).limit(1)).first()
    if hit is not None:
        return session.get(Opportunity, hit)
    for row in session.scalars(select(Opportunity).where(Opportunity.ocid == ident).order_by(Opportunity.id)):
        return row
    return _by_publisher_id(session, ident) or _by_unique_prefix(session, ident)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _by_publisher_id(session: Session, ident: str) -> Opportunity | None:
    """A publisher's identifier as it appears in ``source_ids``, with or without its scheme prefix."""
    # source_ids is a JSON list; its text holds each id as a quoted string on both databases.
    pattern = f'%"{_like(json_string(ident))}"%' if ":" in ident else f'%:{_like(json_string(ident))}"%'
    return session.scalars(select(Opportunity).where(cast(Opportunity.source_ids, String).like(pattern, escape="\\"))
                           .order_by(Opportunity.id).limit(1)).first()


def _by_unique_prefix(session: Session, ident: str) -> Opportunity | None:
    found = list(session.scalars(select(Opportunity).where(Opportunity.id.like(_like(ident) + "%", escape="\\"))
                                 .order_by(Opportunity.id).limit(4)))
    if len(found) > 1:
        shown = ", ".join(o.id for o in found[:3])
        raise NotFound(f"{ident!r} starts more than one opportunity id ({shown}{', ...' if len(found) > 3 else ''}): "
                       "give more of it")
    return found[0] if found else None


def json_string(text: str) -> str:
    """``text`` as it appears inside a JSON string (quotes and backslashes escaped)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def as_json(row: Opportunity, *, full: bool = True) -> dict[str, Any]:
    """The public JSON shape of an opportunity: money in pence (``*_pence``), dates ISO 8601 UTC."""
    from broker.normalise.cpv import catalogue
    from broker.normalise.dates import iso_utc

    cpv = catalogue()
    out: dict[str, Any] = {
        "id": row.id, "title": row.title, "buyer": row.buyer_name, "status": row.status,
        "deadline": iso_utc(row.deadline_at), "published": iso_utc(row.published_at),
        "value_min_pence": row.value_min_pence, "value_max_pence": row.value_max_pence,
        "cpv": list(row.cpv_codes), "local_authority": row.local_authority, "cluster": row.cluster,
        "vcse_suitable": row.vcse_suitable, "source_ids": list(row.source_ids), "source": row.source,
    }
    if full:
        out.update({
            "description": row.description, "buyer_id": row.buyer_id, "buyer_type": row.buyer_type,
            "notice_type": row.notice_type, "ocid": row.ocid, "lot_id": row.lot_id,
            "value_currency": row.value_currency, "value_original": row.value_original,
            "value_unknown": row.value_min_pence is None and row.value_max_pence is None,
            "cpv_labels": {c: cpv.label(c) for c in row.cpv_codes}, "cpv_unknown": list(row.cpv_unknown),
            "contract_start": iso_utc(row.contract_start), "contract_end": iso_utc(row.contract_end),
            "postcode": row.postcode, "lad_code": row.lad_code, "itl_code": row.itl_code, "region": row.region,
            "regions": list(row.regions),
            "nationwide": row.nationwide, "sme_suitable": row.sme_suitable,
            "reserved_participation": list(row.reserved_participation), "is_framework": row.is_framework,
            "is_dps": row.is_dps, "url": row.url, "version": row.version,
        })
    return out
