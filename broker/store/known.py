"""Is an id one the database knows? For commands that would otherwise answer a typo with "no decision"."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from broker.errors import NotFound
from broker.store.models import Consortium, Decision, Match, Opportunity, Vcse


def require_known_pair(session: Session, opportunity_id: str, party_id: str) -> None:
    """Raise NotFound naming each id that no opportunity, party, match or decision has.

    A suggested grouping exists only in matches and decisions, and an opportunity a run saw is in its
    decisions even if it has since changed, so those count as known too.
    """
    def known(value: str, *columns: Any) -> bool:
        return any(session.scalar(select(exists().where(column == value))) for column in columns)

    unknown = []
    if not known(opportunity_id, Opportunity.id, Decision.opportunity_id):
        unknown.append(f"no opportunity {opportunity_id!r} (see `broker opportunities list`)")
    if not known(party_id, Vcse.id, Consortium.id, Match.party_id, Decision.party_id):
        unknown.append(f"no VCSE or consortium {party_id!r} (see `broker directory list`)")
    if unknown:
        raise NotFound("; ".join(unknown))
