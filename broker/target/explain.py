"""Every counted pound with its evidence: ``broker target --explain`` and ``--csv``.

For each opportunity counted toward the headline on a business date, one row per ledger entry that put it
there (a party reaching the counting stage or beyond), with what shows it happened: the digest delivery
the server accepted or the officer who marked it sent, the officer's own entry, the VCSE's feedback, the
outcomes file. The opportunity's counted value is on its first row only, so the value column sums to
the headline total.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.audit.export import neutralise
from broker.store.models import DigestDelivery, DigestFeedback, Opportunity, TargetEntry
from broker.target.ledger import business_day
from broker.target.parties import chunks
from broker.target.progress import Progress
from broker.target.stages import OUTCOMES, rung

DELIVERED = ("sent", "marked-sent")


@dataclass(frozen=True)
class EvidenceRow:
    """One counted opportunity's party at the counting stage (or beyond), and what shows it."""

    opportunity_id: str
    title: str
    counted_pence: int | None  # the opportunity's counted value, on its first row only
    value_basis: str
    value_reason: str
    party_id: str
    party_type: str
    cluster: str
    stage: str
    stage_date: str
    ledger_entry: int
    evidence: str


def _counts_at(stage: str, counting_stage: str) -> bool:
    """Whether an entry at ``stage`` shows the pair reached ``counting_stage``."""
    if counting_stage in OUTCOMES:
        return stage == counting_stage
    return rung(stage) >= rung(counting_stage)


def explain_progress(session: Session, progress: Progress) -> list[EvidenceRow]:
    """The evidence rows for every counted opportunity of ``progress``, largest first."""
    day = business_day(progress.as_of)
    ids = [c.id for c in progress.counted]
    entries = _stage_entries(session, ids, day)
    values = _value_reasons(session, ids, day)
    titles = _titles(session, ids)
    evidence = _Evidence(session)
    rows: list[EvidenceRow] = []
    for counted in progress.counted:
        first = True
        for e in entries.get(counted.id, []):
            if not _counts_at(e.stage or "", progress.config.counting_stage):
                continue
            rows.append(EvidenceRow(
                counted.id, titles.get(counted.id, ""), counted.value.amount_pence if first else None,
                counted.value.basis, _basis_reason(counted.value.basis, e, values.get(counted.id, "")),
                e.party_id or "", e.party_type or "", e.cluster or "", e.stage or "", e.as_of, e.id,
                evidence.of(e)))
            first = False
    return rows


def _basis_reason(basis: str, entry: TargetEntry, value_reason: str) -> str:
    if basis == "award":
        return "awarded value recorded with a won outcome"
    return value_reason


def _stage_entries(session: Session, ids: list[str], day: str) -> dict[str, list[TargetEntry]]:
    out: dict[str, list[TargetEntry]] = {}
    for part in chunks(ids):
        for e in session.scalars(select(TargetEntry).where(
                TargetEntry.kind == "stage", TargetEntry.opportunity_id.in_(part), TargetEntry.as_of <= day)
                .order_by(TargetEntry.opportunity_id, TargetEntry.as_of, TargetEntry.id)):
            out.setdefault(e.opportunity_id, []).append(e)
    return out


def _value_reasons(session: Session, ids: list[str], day: str) -> dict[str, str]:
    """The reason of each opportunity's latest value entry on ``day`` (what its value was read from)."""
    out: dict[str, str] = {}
    for part in chunks(ids):
        for oid, reason in session.execute(select(TargetEntry.opportunity_id, TargetEntry.reason).where(
                TargetEntry.kind == "value", TargetEntry.opportunity_id.in_(part), TargetEntry.as_of <= day)
                .order_by(TargetEntry.as_of, TargetEntry.id)):
            out[oid] = reason
    return out


def _titles(session: Session, ids: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in chunks(ids):
        out.update(session.execute(select(Opportunity.id, Opportunity.title).where(Opportunity.id.in_(part))).all())
    return out


class _Evidence:
    """What shows a ledger entry happened, from its cause, in words."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def of(self, entry: TargetEntry) -> str:
        kind, _, ref = entry.cause.partition(":")
        if kind == "digest":
            return self._delivery(ref)
        if kind == "feedback":
            return self._feedback(entry, ref)
        if kind == "import":
            return f"outcomes import {ref[:12]} (ledger entry #{entry.id})" + _note(entry)
        if kind == "run":
            return f"matched by {ref}"
        return f"{entry.cause} entry #{entry.id} on {entry.as_of}" + _note(entry)

    def _delivery(self, digest_id: str) -> str:
        d = self.session.scalars(select(DigestDelivery).where(
            DigestDelivery.digest_id == digest_id, DigestDelivery.status.in_(DELIVERED))
            .order_by(DigestDelivery.id).limit(1)).first()
        if d is None:
            return f"digest {digest_id} (no delivery in the log)"
        how = "accepted by the SMTP server" if d.status == "sent" else "marked sent by an officer"
        note = f" ({d.error})" if d.status == "marked-sent" and d.error else ""
        return f"digest {digest_id}: delivery #{d.id}, {how} on {d.as_of}{note}"

    def _feedback(self, entry: TargetEntry, ref: str) -> str:
        stmt = select(DigestFeedback).where(DigestFeedback.party_id == entry.party_id,
                                            DigestFeedback.opportunity_id == entry.opportunity_id,
                                            DigestFeedback.kind == "interested")
        if ref.isdigit():
            stmt = select(DigestFeedback).where(DigestFeedback.id == int(ref))
        f = self.session.scalars(stmt.limit(1)).first()
        if f is None:
            return f"feedback (ledger entry #{entry.id})"
        code = f", reference {f.reference}" if f.reference else ""
        return f"feedback #{f.id} from {f.party_id}: interested on {f.as_of}{code}"


def _note(entry: TargetEntry) -> str:
    return f": {entry.note}" if entry.note else ""


CSV_COLUMNS = tuple(EvidenceRow.__dataclass_fields__)


def evidence_csv(rows: Iterable[EvidenceRow]) -> str:
    """The rows as CSV (UTF-8 text, a header row); cells a spreadsheet would run as formulas are quoted."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([neutralise("" if v is None else str(v)) for v in asdict(row).values()])
    return out.getvalue()


def evidence_json(rows: Iterable[EvidenceRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]

