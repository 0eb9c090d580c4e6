"""Feedback on digest items: "not relevant" (never send it to that party again) or "interested".

Feedback is kept (with its reason and business date) for tuning the rules. "Not relevant" from a party
suppresses the opportunity for that party's matches and, when the party is a VCSE, for every match
delivered to it (as itself or as a consortium's lead): see ``broker.digest.selection``. "Interested"
also records the interested stage in the target ledger through ``outcome_callback``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.digest.formatting import body_text
from broker.digest.safe_names import normalise_reference
from broker.errors import InputError, NotFound
from broker.store.models import Consortium, DigestFeedback, DigestItem, Match, Opportunity, Vcse

KINDS = ("not_relevant", "interested")
REASON_MAX = 2000


class OutcomeCallback(Protocol):
    """The target ledger's hook (``broker.target``'s ``record_outcome``): must not commit."""

    def __call__(self, session: Session, opportunity_id: str, party_id: str, *, stage: str, cause: str,
                 as_of: date) -> Any: ...


@dataclass(frozen=True)
class FeedbackResult:
    """The feedback as stored; ``new`` is False when the same feedback was already recorded."""

    party_id: str
    opportunity_id: str
    kind: str
    reason: str | None
    as_of: str
    reference: str | None
    new: bool


def resolve_reference(session: Session, code: str) -> DigestItem:
    """The digest item a VCSE's quoted reference (``ABCD-EFGH-JKLM``, any case or spacing) stands for."""
    ref = normalise_reference(code)
    item = session.scalars(select(DigestItem).where(DigestItem.reference == ref)).first()
    if item is None:
        raise NotFound(f"no digest item has the reference {code!r}. References look like ABCD-EFGH-JKLM.")
    return item


def _party_exists(session: Session, party_id: str) -> bool:
    if session.get(Vcse, party_id) is not None or session.get(Consortium, party_id) is not None:
        return True
    # Suggested consortia exist only as matches.
    return session.scalars(select(Match.id).where(Match.party_id == party_id).limit(1)).first() is not None


def record_feedback(session: Session, party_id: str, opportunity_id: str, kind: str, *, as_of: date,
                    reason: str | None = None, reference: str | None = None,
                    outcome_callback: OutcomeCallback | None = None,
                    cause: str | None = None) -> FeedbackResult:
    """Record one party's feedback on one opportunity. Idempotent: the same feedback twice is one row.

    Does not commit (the caller's transaction). For new ``interested`` feedback calls
    ``outcome_callback(session, opportunity_id, party_id, stage="interested", cause=...,
    as_of=as_of)``. The ledger entry's cause is ``cause`` when given (``feedback:web``: a signed link in a
    digest, also stored on the row), else ``feedback:<id>``, the feedback row that is its evidence.

    Raises:
        InputError: an unknown kind.
        NotFound: no such party or opportunity.
    """
    if kind not in KINDS:
        raise InputError(f"feedback kind must be one of {', '.join(KINDS)}, got {kind!r}", field="kind")
    if not _party_exists(session, party_id):
        raise NotFound(f"no VCSE, consortium or matched party {party_id!r}.")
    if session.get(Opportunity, opportunity_id) is None:
        raise NotFound(f"no opportunity {opportunity_id!r}. Try `broker opportunities list`.")
    row = session.scalars(select(DigestFeedback).where(
        DigestFeedback.party_id == party_id, DigestFeedback.opportunity_id == opportunity_id,
        DigestFeedback.kind == kind)).first()
    new = row is None
    if row is None:
        clean = body_text(reason).strip()[:REASON_MAX] if reason else None
        row = DigestFeedback(party_id=party_id, opportunity_id=opportunity_id, kind=kind, reason=clean or None,
                             reference=normalise_reference(reference) if reference else None,
                             as_of=as_of.isoformat(), cause=cause)
        session.add(row)
        session.flush()
        if kind == "interested" and outcome_callback is not None:
            outcome_callback(session, opportunity_id, party_id, stage="interested", cause=cause or f"feedback:{row.id}",
                             as_of=as_of)
    return FeedbackResult(row.party_id, row.opportunity_id, row.kind, row.reason, row.as_of, row.reference, new)


def list_feedback(session: Session, *, kind: str | None = None) -> list[dict[str, Any]]:
    """All feedback (for tuning the rules), oldest business date first."""
    stmt = select(DigestFeedback).order_by(DigestFeedback.as_of, DigestFeedback.party_id,
                                           DigestFeedback.opportunity_id, DigestFeedback.kind)
    if kind is not None:
        stmt = stmt.where(DigestFeedback.kind == kind)
    return [{"party_id": f.party_id, "opportunity_id": f.opportunity_id, "kind": f.kind, "reason": f.reason,
             "reference": f.reference, "as_of": f.as_of} for f in session.scalars(stmt)]
