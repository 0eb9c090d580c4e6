"""Opportunity storage: source records, de-duplication keys, the combined canonical row and its versions.

Each source's normalised record is stored on its own (``source_records``); the canonical opportunity
combines the records of all sources that describe the same notice, highest priority first, filling gaps
from the others. An opportunity keeps the id under which it was first seen, so ids stay stable whatever
order the sources arrive in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import String, bindparam, cast, insert, select, update
from sqlalchemy.orm import Session

from broker.errors import NotFound
from broker.normalise.keys import REFERENCE_PREFIX
from broker.normalise.record import OpportunityRecord, canonical_hash
from broker.store import jsoncodec
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
    """Store one source's record and refresh the canonical opportunity it belongs to (written at once)."""
    batch = RecordBatch(session, [record])
    outcome = batch.upsert(record)
    batch.write()
    return outcome


class RecordBatch:
    """The upserts of one chunk: the store read in a few bulk queries, decisions taken in order in memory,
    the changes written at the end with one ``executemany`` per table.

    Decisions are exactly those of upserting the records one at a time: every read goes through the
    state held here, which starts as the store's (bulk-read up front, or read on a miss) and takes each
    upsert's changes as it is made, so a record sees the records before it in the same chunk. Nothing is
    written until :meth:`write`, so the store stays as it was before the chunk until then.
    """

    def __init__(self, session: Session, records: Sequence[OpportunityRecord] = ()) -> None:
        self.session = session
        self._records: dict[tuple[str, str], _SourceRow | None] = {}
        self._owners: dict[str, str | None] = {}
        self._members: dict[str, list[_SourceRow]] = {}
        self._opp_keys: dict[str, set[str]] = {}
        self._opportunities: dict[str, _OpportunityState | None] = {}
        self._new_records: list[_SourceRow] = []
        self._new_keys: list[dict[str, str]] = []
        self._versions: list[dict[str, Any]] = []
        self._changed: dict[str, _OpportunityState] = {}
        self.prefetch(records)

    # Reads: bulk up front, then one query per miss (rare: what a record's keys lead to).
    def prefetch(self, records: Sequence[OpportunityRecord]) -> None:
        """Read in bulk what upserting ``records`` will look at; what this batch holds already stays."""
        wanted = {(r.source, r.id) for r in records} - self._records.keys()
        if not records:
            return
        for row in _in_chunks(self.session, _SOURCE_ROWS, SourceRecord.source_key, sorted({k for _, k in wanted})):
            if (row.source, row.source_key) in wanted:
                self._records[(row.source, row.source_key)] = _SourceRow.of(row)
        for key in wanted:
            self._records.setdefault(key, None)
        keys = sorted({k for r in records for k in r.match_keys} - self._owners.keys())
        for key, owner in _in_chunks(self.session, select(OpportunityKey.key, OpportunityKey.opportunity_id),
                                     OpportunityKey.key, keys):
            self._owners[key] = owner
        for key in keys:
            self._owners.setdefault(key, None)
        ids = {o for o in self._owners.values() if o} | {r.id for r in records} | {
            row.opportunity_id for row in self._records.values() if row is not None}
        self._load_opportunities(sorted(ids))

    def _load_opportunities(self, ids: list[str]) -> None:
        ids = [i for i in ids if i not in self._members]
        if not ids:
            return
        for i in ids:
            self._members[i], self._opp_keys[i], self._opportunities[i] = [], set(), None
        for row in _in_chunks(self.session, _SOURCE_ROWS, SourceRecord.opportunity_id, ids):
            member = self._records.get((row.source, row.source_key)) or _SourceRow.of(row)
            self._records[(row.source, row.source_key)] = member
            self._members[row.opportunity_id].append(member)
        for key, owner in _in_chunks(self.session, select(OpportunityKey.key, OpportunityKey.opportunity_id),
                                     OpportunityKey.opportunity_id, ids):
            self._opp_keys[owner].add(key)
            self._owners[key] = owner
        for oid, content_hash, version in _in_chunks(
                self.session, select(Opportunity.id, Opportunity.content_hash, Opportunity.version),
                Opportunity.id, ids):
            self._opportunities[oid] = _OpportunityState(oid, content_hash, version, new=False)

    def _record(self, source: str, key: str) -> _SourceRow | None:
        if (source, key) not in self._records:
            row = self.session.execute(_SOURCE_ROWS.where(
                SourceRecord.source == source, SourceRecord.source_key == key)).one_or_none()
            self._records[(source, key)] = _SourceRow.of(row) if row is not None else None
        return self._records[(source, key)]

    def owner(self, key: str) -> str | None:
        """The opportunity a de-duplication key is filed under, counting this batch's keys."""
        if key not in self._owners:
            self._owners[key] = self.session.scalars(
                select(OpportunityKey.opportunity_id).where(OpportunityKey.key == key)).first()
        return self._owners[key]

    def add_key(self, key: str, opportunity_id: str) -> None:
        self._load_opportunities([opportunity_id])
        self._owners[key] = opportunity_id
        self._opp_keys[opportunity_id].add(key)
        self._new_keys.append({"key": key, "opportunity_id": opportunity_id})

    def stored_record(self, source: str, key: str) -> dict[str, Any] | None:
        """A source record's JSON as stored (or as this batch will store it)."""
        row = self._record(source, key)
        return row.record if row is not None else None

    def members(self, opportunity_id: str) -> list[_SourceRow]:
        self._load_opportunities([opportunity_id])
        return self._members[opportunity_id]

    # Decisions: the same steps, in the same order, as storing the records one at a time.
    def upsert(self, record: OpportunityRecord) -> Outcome:
        """Store one source's record and refresh the canonical opportunity it belongs to."""
        existing = self._record(record.source, record.id)
        content_hash = record.content_hash
        if existing is not None and existing.content_hash == content_hash:
            return "unchanged"
        data = _as_stored(record.to_json())
        if existing is not None:
            opportunity_id = existing.opportunity_id
            existing.record, existing.content_hash, existing.dirty = data, content_hash, True
        else:
            opportunity_id = self._find_duplicate(record) or record.id
            row = _SourceRow(record.source, record.id, opportunity_id, priority_of(record.source), data,
                             content_hash, new=True)
            self._records[(record.source, record.id)] = row
            self.members(opportunity_id).append(row)
            self._new_records.append(row)
        for key in record.match_keys:
            if self.owner(key) is None:
                self.add_key(key, opportunity_id)
        return self._refresh(opportunity_id)

    def _find_duplicate(self, record: OpportunityRecord) -> str | None:
        """The opportunity another source already filed under one of this record's keys, if any.

        A key only joins records from *different* sources: one publisher's two records are two notices,
        even when they share buyer, title and deadline (real Contracts Finder data has such award notices).
        Nor does a title key join two records whose buyer references disagree.
        """
        own_refs = {k for k in record.match_keys if k.startswith(REFERENCE_PREFIX)}
        for key in record.match_keys:  # the record's own key order: reference keys before title keys
            candidate = self.owner(key)
            if candidate is None or any(m.source == record.source for m in self.members(candidate)):
                continue
            if key.startswith(REFERENCE_PREFIX) or not self._references_conflict(candidate, own_refs):
                return candidate
        return None

    def _references_conflict(self, opportunity_id: str, own_refs: set[str]) -> bool:
        if not own_refs:
            return False
        self._load_opportunities([opportunity_id])
        theirs = {k for k in self._opp_keys[opportunity_id] if k.startswith(REFERENCE_PREFIX)}
        return bool(theirs) and not (theirs & own_refs)

    def _refresh(self, opportunity_id: str) -> Outcome:
        rows = sorted(self.members(opportunity_id), key=lambda r: (r.priority, r.source, r.source_key))
        canonical = combine([r.record for r in rows], opportunity_id)
        data = canonical.to_json()
        content_hash = canonical_hash(data)
        state = self._opportunities.get(opportunity_id)
        if state is not None and state.content_hash == content_hash:
            return "unchanged"
        outcome: Outcome = "new" if state is None else "updated"
        if state is None:
            state = self._opportunities[opportunity_id] = _OpportunityState(opportunity_id, "", 0, new=True)
        state.values = {column: getattr(canonical, column) for column in _OPPORTUNITY_COLUMNS}
        state.values["raw_hash"] = canonical.raw_hash
        state.content_hash = content_hash
        state.version += 1
        self._changed[opportunity_id] = state
        self._versions.append({"opportunity_id": opportunity_id, "version": state.version,
                               "content_hash": content_hash, "record": data})
        return outcome

    # Writes: one executemany per table and kind, in the order the upserts were made.
    def write(self) -> None:
        """Write the batch's changes (inside the caller's transaction)."""
        session = self.session
        session.flush()  # anything the caller added through the ORM goes first, as it would have
        if self._new_records:
            session.execute(insert(SourceRecord), [r.columns() for r in self._new_records])
        dirty = [r for r in self._records.values() if r is not None and r.dirty and not r.new]
        if dirty:
            session.execute(update(SourceRecord.__table__).where(
                SourceRecord.source == bindparam("b_source"), SourceRecord.source_key == bindparam("b_key"))
                .values(record=bindparam("record"), content_hash=bindparam("content_hash")),
                [{"b_source": r.source, "b_key": r.source_key, "record": r.record,
                  "content_hash": r.content_hash} for r in dirty])
        if self._new_keys:
            session.execute(insert(OpportunityKey), self._new_keys)
        created = [s.row() for s in self._changed.values() if s.new]
        if created:
            session.execute(insert(Opportunity), created)
        changed = [s for s in self._changed.values() if not s.new]
        if changed:
            session.execute(update(Opportunity.__table__).where(Opportunity.id == bindparam("b_id"))
                            .values({c: bindparam(c) for c in (*_OPPORTUNITY_COLUMNS, "raw_hash",
                                                                "content_hash", "version") if c != "id"}),
                            [{**{k: v for k, v in s.row().items() if k != "id"}, "b_id": s.id} for s in changed])
        if self._versions:
            session.execute(insert(OpportunityVersion), self._versions)
        # ORM objects the caller holds may describe rows just rewritten: read them again when next used.
        session.expire_all()
        for row in self._records.values():
            if row is not None:
                row.new = row.dirty = False
        for state in self._changed.values():
            state.new = False
        self._new_records, self._new_keys, self._versions, self._changed = [], [], [], {}


@dataclass
class _SourceRow:
    source: str
    source_key: str
    opportunity_id: str
    priority: int
    record: dict[str, Any]
    content_hash: str
    new: bool = False
    dirty: bool = False

    @classmethod
    def of(cls, row: Any) -> _SourceRow:
        return cls(row.source, row.source_key, row.opportunity_id, row.priority, row.record, row.content_hash)

    def columns(self) -> dict[str, Any]:
        return {"source": self.source, "source_key": self.source_key, "opportunity_id": self.opportunity_id,
                "priority": self.priority, "record": self.record, "content_hash": self.content_hash}


@dataclass
class _OpportunityState:
    id: str
    content_hash: str
    version: int
    new: bool
    values: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {**self.values, "id": self.id, "content_hash": self.content_hash, "version": self.version}


def _as_stored(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON as the column gives it back (the same codec), so a record combined from this batch's
    state and one read from the store are the same value."""
    value: dict[str, Any] = jsoncodec.loads(jsoncodec.dumps(data))
    return value


_SOURCE_ROWS = select(SourceRecord.source, SourceRecord.source_key, SourceRecord.opportunity_id,
                      SourceRecord.priority, SourceRecord.record, SourceRecord.content_hash)
# Bound parameters per IN list: well under SQLite's limit on variables in one statement.
_IN_CHUNK = 500


def _in_chunks(session: Session, query: Any, column: Any, values: Sequence[Any]) -> Iterator[Any]:
    """The rows of ``query`` where ``column`` is one of ``values``, a bounded IN list at a time."""
    for start in range(0, len(values), _IN_CHUNK):
        yield from session.execute(query.where(column.in_(values[start:start + _IN_CHUNK])))


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
