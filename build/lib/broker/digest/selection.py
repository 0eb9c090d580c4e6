"""Which matches go into tonight's digests: a function of the database and ``as_of`` only.

Policies (BRIEF, Policies / Digests and Deadlines; issue 6):

* only active matches whose opportunity is still open, with a deadline at least ``min_days`` UK days
  after ``as_of`` (or no deadline given); past deadlines never;
* only recipients who opted in (a preference overrides the directory);
* only opportunities never included in an earlier digest to the same recipient (the unique
  ``digest_items(recipient_id, opportunity_id)`` makes this structural);
* never an opportunity the party (or the recipient) marked not relevant;
* one item per opportunity per recipient (a lead may match as itself and as a consortium's lead: the
  better-scoring match wins);
* the recipient's minimum score, then best first (score desc, deadline asc, opportunity id), capped.

A consortium's match (standing or suggested) goes to its ``lead_id``, the lead VCSE.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, case, exists, func, or_, select, true
from sqlalchemy.orm import Session

from broker.digest.formatting import deadline_cutoff
from broker.match.queries import rank_key
from broker.store.models import Digest, DigestFeedback, DigestItem, DigestPreference, Match, Opportunity, Vcse

SENDABLE_STATUSES = ("open",)
PARTY_TYPES = ("vcse", "consortium", "suggested_consortium")
_TYPE_ORDER = {t: i for i, t in enumerate(PARTY_TYPES)}


@dataclass(frozen=True)
class Candidate:
    """A match that may go into a recipient's digest, with its opportunity."""

    recipient_id: str
    match: Match
    opportunity: Opportunity

    def rank_key(self) -> tuple[int, datetime, str]:
        """Best first, as the party's matches are ranked (``broker.match.queries.rank_key``)."""
        return rank_key(self.match.score, self.opportunity.deadline_at, self.opportunity.id)


def _recipient_expr():  # type: ignore[no-untyped-def]
    return case((Match.party_type == "vcse", Match.party_id), else_=Match.lead_id)


def candidates(session: Session, *, as_of: date, min_days: int) -> dict[str, list[Candidate]]:
    """Every sendable match, grouped by recipient, for recipients without a digest for ``as_of`` yet.

    Recipients who opted out (directory or preference) are left out. Returns recipients in id order;
    their candidates are de-duplicated per opportunity but not yet filtered by the recipient's minimum
    score or capped (see :func:`choose`).
    """
    recipient = _recipient_expr()
    stmt = (
        select(Match, Opportunity, recipient.label("recipient_id"))
        .join(Opportunity, Opportunity.id == Match.opportunity_id)
        .outerjoin(Vcse, Vcse.id == recipient)
        .outerjoin(DigestPreference, DigestPreference.party_id == recipient)
        .where(
            Match.status == "active",
            Match.party_type.in_(PARTY_TYPES),
            recipient.is_not(None),
            # Opted-out recipients' matches are not even read (they wait, unused, for an opt-in);
            # a lead missing from the directory is kept so that it is reported.
            or_(Vcse.id.is_(None), func.coalesce(DigestPreference.opt_in, Vcse.digest_opt_in) == true()),
            Opportunity.status.in_(SENDABLE_STATUSES),
            or_(Opportunity.deadline_at.is_(None), Opportunity.deadline_at >= deadline_cutoff(as_of, min_days)),
            ~exists().where(and_(DigestItem.recipient_id == recipient,
                                 DigestItem.opportunity_id == Match.opportunity_id)),
            ~exists().where(and_(DigestFeedback.kind == "not_relevant",
                                 DigestFeedback.opportunity_id == Match.opportunity_id,
                                 or_(DigestFeedback.party_id == Match.party_id,
                                     DigestFeedback.party_id == recipient))),
            ~exists().where(and_(Digest.recipient_id == recipient, Digest.as_of == as_of.isoformat())),
        )
        .order_by(recipient, Match.opportunity_id, Match.party_id)
    )
    best: dict[tuple[str, str], Candidate] = {}
    for match, opp, rid in session.execute(stmt):
        cand = Candidate(rid, match, opp)
        key = (rid, opp.id)
        if key not in best or _better(cand, best[key]):
            best[key] = cand
    grouped: dict[str, list[Candidate]] = defaultdict(list)
    for (rid, _), cand in sorted(best.items()):
        grouped[rid].append(cand)
    return dict(sorted(grouped.items()))


def _better(a: Candidate, b: Candidate) -> bool:
    """Of two matches of one opportunity for one recipient, the higher score; then own over consortium."""
    ka = (-a.match.score, _TYPE_ORDER[a.match.party_type], a.match.party_id)
    kb = (-b.match.score, _TYPE_ORDER[b.match.party_type], b.match.party_id)
    return ka < kb


def choose(cands: list[Candidate], *, cap: int, min_score: int) -> list[Candidate]:
    """The recipient's digest items: at or above its minimum score, best first, at most ``cap``."""
    kept = [c for c in cands if c.match.score >= min_score]
    return sorted(kept, key=Candidate.rank_key)[:cap]
