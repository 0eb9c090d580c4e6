"""Reading matches and decisions for the ``matches`` commands and digests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.errors import NotFound
from broker.match.service import top_reasons
from broker.store.models import Decision, Match, MatchRun, Opportunity


def latest_run(session: Session) -> MatchRun | None:
    return session.scalars(select(MatchRun).where(MatchRun.status == "complete")
                           .order_by(MatchRun.seq.desc()).limit(1)).first()


def list_matches(session: Session, *, run_id: str | None = None, party_id: str | None = None,
                 opportunity_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Current active matches (or, with ``run_id``, the matches that run decided), ranked per party."""
    if run_id is not None:
        return _run_matches(session, run_id, party_id, opportunity_id, limit)
    q = select(Match).where(Match.status == "active")
    if party_id:
        q = q.where(Match.party_id == party_id)
    if opportunity_id:
        q = q.where(Match.opportunity_id == opportunity_id)
    matches = list(session.scalars(q))
    ranks = match_ranks(session, None if party_id is None and opportunity_id is None
                        else sorted({m.party_id for m in matches}))
    matches.sort(key=lambda m: (m.party_id, ranks[m.id]))
    titles = _titles(session)
    return [{"run_id": m.last_run_id, "opportunity_id": m.opportunity_id, "party_id": m.party_id,
             "party_type": m.party_type, "score": m.score, "rank": ranks[m.id], "levels": m.levels,
             "reasons": m.reasons[:3], "flags": m.flags, "members": m.members, "lead_id": m.lead_id,
             "title": titles.get(m.opportunity_id, "")} for m in (matches[:limit] if limit else matches)]


def match_ranks(session: Session, party_ids: Sequence[str] | None = None) -> dict[int, int]:
    """Rank of every active match within its party (all parties, or ``party_ids``), by match id.

    Ordered by ``rank_key``. Ranked here on read, in Python so that SQLite and PostgreSQL (whose
    collations differ) give the same order.
    """
    active = Match.status == "active"
    parts = [None] if party_ids is None else [party_ids[i:i + 500] for i in range(0, len(party_ids), 500)]
    rows, deadlines = [], {}
    for part in parts:
        where = active if part is None else active & Match.party_id.in_(part)
        rows += session.execute(select(Match.id, Match.party_id, Match.opportunity_id, Match.score).where(where))
        # each opportunity's deadline once, not once per match (half a million matches, 10,000 notices)
        deadlines.update(session.execute(select(Opportunity.id, Opportunity.deadline_at).where(
            Opportunity.id.in_(select(Match.opportunity_id).where(where)))).all())
    by_party: dict[str, list[tuple[tuple[int, datetime, str], int]]] = {}
    for match_id, party, opp, score in rows:
        by_party.setdefault(party, []).append((rank_key(score, deadlines.get(opp), opp), match_id))
    ranks = {}
    for items in by_party.values():
        items.sort()
        ranks.update((match_id, rank) for rank, (_, match_id) in enumerate(items, 1))
    return ranks


NO_DEADLINE = datetime.max.replace(tzinfo=UTC)


def rank_key(score: int, deadline: datetime | None, opportunity_id: str) -> tuple[int, datetime, str]:
    """How matches are ordered for a party (lists, digests): highest score, nearest deadline (none last), id."""
    return (-score, deadline or NO_DEADLINE, opportunity_id)


def _run_matches(session: Session, run_id: str, party_id: str | None, opportunity_id: str | None,
                 limit: int | None) -> list[dict[str, Any]]:
    if session.get(MatchRun, run_id) is None:
        raise NotFound(f"no run {run_id!r}. Try `broker matches list` without --run.")
    q = select(Decision).where(Decision.run_id == run_id, Decision.stage == "pair", Decision.outcome == "matched")
    if party_id:
        q = q.where(Decision.party_id == party_id)
    if opportunity_id:
        q = q.where(Decision.opportunity_id == opportunity_id)
    rows = list(session.scalars(q))
    rows.sort(key=lambda d: (d.party_id, -d.score, d.opportunity_id))
    titles = _titles(session)
    out, rank, last = [], 0, None
    for d in rows:
        rank = rank + 1 if d.party_id == last else 1
        last = d.party_id
        out.append({"run_id": run_id, "opportunity_id": d.opportunity_id, "party_id": d.party_id,
                    "party_type": d.party_type, "score": d.score, "rank": rank,
                    "levels": d.detail.get("levels", {}), "reasons": top_reasons(_as_dict(d))[:3],
                    "flags": sorted({f["flag"] for f in d.firings if f["flag"]}),
                    "members": d.detail.get("members", []), "lead_id": d.detail.get("lead"),
                    "title": titles.get(d.opportunity_id, "")})
    return out[:limit] if limit else out


def show_match(session: Session, opportunity_id: str, party_id: str, run_id: str | None = None) -> dict[str, Any]:
    """One match in full: the latest decision for the pair (in ``run_id`` if given)."""
    q = select(Decision).where(Decision.opportunity_id == opportunity_id, Decision.party_id == party_id,
                               Decision.stage == "pair")
    if run_id:
        q = q.where(Decision.run_id == run_id)
    decision = session.scalars(q.order_by(Decision.id.desc()).limit(1)).first()
    if decision is None:
        raise NotFound(f"no decision for opportunity {opportunity_id!r} and party {party_id!r}"
                       + (f" in {run_id}" if run_id else "") + ". Try `broker matches list`.")
    match = session.scalars(select(Match).where(Match.opportunity_id == opportunity_id,
                                                Match.party_id == party_id)).first()
    rank = match_ranks(session, [party_id]).get(match.id) if match else None
    opp = session.get(Opportunity, opportunity_id)
    data = _as_dict(decision)
    return {"run_id": decision.run_id, "opportunity_id": opportunity_id, "party_id": party_id,
            "party_type": decision.party_type, "title": opp.title if opp else "", "outcome": decision.outcome,
            "score": decision.score, "rank": rank,
            "status": match.status if match else None, "levels": decision.detail.get("levels", {}),
            "reasons": top_reasons(data), "features": decision.features, "firings": decision.firings,
            "detail": decision.detail}


def _as_dict(d: Decision) -> dict[str, Any]:
    return {"firings": d.firings, "detail": d.detail}


def _titles(session: Session) -> dict[str, str]:
    return {row[0]: row[1] for row in session.execute(select(Opportunity.id, Opportunity.title))}
