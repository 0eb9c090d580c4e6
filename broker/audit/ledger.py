"""The target ledger inside the tamper-evident chain: every ledger batch is sealed into a ``ledger`` link.

Database triggers refuse UPDATE and DELETE on the ledger, but anyone who can drop a trigger can rewrite
history behind it. So each ledger write (one batch: a run's matches, a delivered digest, an officer's
command, an outcomes import) ends by sealing its batch into the chain, as a run is sealed when it completes:

- every entry carries ``entry_hash``, the hash of its content (everything but its storage id);
- the batch's link payload records the batch header's hash, how many entries it holds, their ids (as
  ranges) and a digest over ``(id, entry_hash)`` in id order; the link's digest is the payload's hash.

``verify`` then names an entry whose content no longer matches its hash (edited), an id the link lists
that is gone (deleted), an entry in a sealed batch that the link does not list, or in a batch no link seals
(inserted), and a rewrite that recomputed an entry's hash too (the batch digest no longer matches).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.audit.chain import append_link
from broker.normalise.record import canonical_hash
from broker.store.models import AuditLink, TargetBatch, TargetEntry

LINK_KIND = "ledger"
# The columns an entry's hash covers: all but its storage id and the hash itself (the link binds the ids).
ENTRY_FIELDS = tuple(c.key for c in TargetEntry.__table__.columns if c.key not in ("id", "entry_hash"))
BATCH_FIELDS = ("id", "cause", "as_of", "config", "config_sha256", "software")


def entry_hash(entry: dict[str, Any]) -> str:
    """Hash of one ledger entry's content (sha256 over canonical JSON; entries hold no floats).

    orjson writes the same bytes as ``canonical_json`` for float-free values, and is much faster (a
    national night appends several hundred thousand entries); what it refuses goes the canonical way.
    """
    content = {k: entry.get(k) for k in ENTRY_FIELDS}
    try:
        return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
    except TypeError:
        return canonical_hash(content)


def batch_hash(batch: TargetBatch) -> str:
    return canonical_hash({k: getattr(batch, k) for k in BATCH_FIELDS})


def id_ranges(ids: Iterable[int]) -> list[list[int]]:
    """Sorted ids as ``[[first, last], ...]`` runs of consecutive ids (a batch's ids are nearly always one run)."""
    out: list[list[int]] = []
    for i in sorted(ids):
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def ids_of(ranges: Sequence[Sequence[int]]) -> Iterator[int]:
    for first, last in ranges:
        yield from range(int(first), int(last) + 1)


def pairs_digest(pairs: Iterable[tuple[int, str]]) -> str:
    """sha256 over ``id:hash`` lines in id order: binds each entry's hash to its id."""
    digest = hashlib.sha256()
    for i, h in sorted(pairs):
        digest.update(f"{i}:{h}\n".encode())
    return digest.hexdigest()


def _stored_pairs(session: Session, batch_id: int) -> list[tuple[int, str]]:
    return [(i, h or "") for i, h in session.execute(
        select(TargetEntry.id, TargetEntry.entry_hash).where(TargetEntry.batch_id == batch_id)
        .order_by(TargetEntry.id))]


def seal_batch(session: Session, batch: TargetBatch, *, note: str | None = None) -> AuditLink:
    """Append the ``ledger`` link that seals ``batch`` (its entries must be flushed). Call once per batch."""
    pairs = _stored_pairs(session, batch.id)
    payload: dict[str, Any] = {"batch_id": batch.id, "cause": batch.cause, "as_of": batch.as_of,
                               "batch_hash": batch_hash(batch), "entries": len(pairs),
                               "ids": id_ranges(i for i, _ in pairs), "entry_digest": pairs_digest(pairs)}
    if note:
        payload["note"] = note
    return append_link(session, LINK_KIND, f"batch-{batch.id}", canonical_hash(payload), payload)


# --- verification ------------------------------------------------------------------------------------

@dataclass
class LedgerCheck:
    """What the ledger part of ``verify`` found: problems per link, and those no link owns."""

    batches: int = 0
    entries: int = 0


_ENTRY_COLUMNS = (TargetEntry.id, TargetEntry.entry_hash, *(getattr(TargetEntry, k) for k in ENTRY_FIELDS))


def _describe(row: dict[str, Any]) -> str:
    if row["kind"] == "stage":
        return f"stage {row['stage']} {row['opportunity_id']} {row['party_id']}"
    return f"value {row['opportunity_id']} {row['amount_pence']}p"


def ledger_link_messages(session: Session, link: AuditLink, quick: bool, check: LedgerCheck) -> list[str]:
    """Everything wrong with one ``ledger`` link's batch and entries, in words."""
    payload = link.payload or {}
    if canonical_hash(payload) != link.digest:
        return ["the ledger link's record no longer matches its digest (the link was edited)"]
    batch_id = payload.get("batch_id")
    batch = session.get(TargetBatch, batch_id) if isinstance(batch_id, int) else None
    if batch is None:
        return [f"ledger batch {batch_id} is missing ({payload.get('entries')} entries were sealed in it)"]
    check.batches += 1
    out = []
    if batch_hash(batch) != payload.get("batch_hash"):
        out.append(f"ledger batch {batch.id}: its cause, date or configuration was edited")
    if quick:
        return out
    sealed = set(ids_of(payload.get("ids", [])))
    pairs = []
    stmt = select(*_ENTRY_COLUMNS).where(TargetEntry.batch_id == batch.id).order_by(TargetEntry.id)
    for values in session.execute(stmt):
        row = dict(zip(("id", "entry_hash", *ENTRY_FIELDS), values, strict=True))
        check.entries += 1
        pairs.append((row["id"], row["entry_hash"] or ""))
        if row["id"] not in sealed:
            out.append(f"ledger entry #{row['id']} ({_describe(row)}) was inserted into batch {batch.id} "
                       "after it was sealed")
        elif entry_hash(row) != row["entry_hash"]:
            out.append(f"ledger entry #{row['id']} ({_describe(row)}) was edited: its content no longer "
                       "matches its hash")
        sealed.discard(row["id"])
    out += [f"ledger entry #{i} of batch {batch.id} was deleted" for i in sorted(sealed)]
    if not out and pairs_digest(pairs) != payload.get("entry_digest"):
        out.append(f"ledger batch {batch.id}: its entries hash to another digest than the one sealed "
                   "(an entry was rewritten together with its hash)")
    return out


def unsealed_messages(session: Session, sealed_batches: set[int]) -> list[tuple[str, str]]:
    """``(ref, message)`` for ledger batches and entries that no ``ledger`` link seals."""
    out = []
    known = set(session.scalars(select(TargetBatch.id)))
    for batch in session.scalars(select(TargetBatch).where(TargetBatch.id.not_in(sealed_batches) if sealed_batches
                                                           else TargetBatch.id.is_not(None)).order_by(TargetBatch.id)):
        out.append((f"batch-{batch.id}", f"ledger batch {batch.id} ({batch.cause}, {batch.as_of}) is in no chain "
                                         "link (written outside the broker?)"))
    cited = set(session.scalars(select(TargetEntry.batch_id).distinct()))
    for batch_id in sorted(cited - sealed_batches):
        stmt = select(*_ENTRY_COLUMNS).where(TargetEntry.batch_id == batch_id).order_by(TargetEntry.id)
        for values in session.execute(stmt):
            row = dict(zip(("id", "entry_hash", *ENTRY_FIELDS), values, strict=True))
            where = "an unsealed batch" if batch_id in known else "a batch that does not exist"
            out.append((f"batch-{batch_id}", f"ledger entry #{row['id']} ({_describe(row)}) is in {where} "
                                              f"({batch_id}): inserted outside the broker"))
    return out
