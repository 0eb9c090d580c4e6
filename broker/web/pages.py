"""The data behind the officer pages, read with one session and returned as plain values.

Texts are returned as stored (untrusted); the templates autoescape them. Lists are capped so a
national database still gives a page that loads; each page says how many rows there are in all.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broker.digest.formatting import excerpt, format_deadline, format_value, header_text, safe_link
from broker.digest.preferences import effective, load_preferences
from broker.directory.query import list_directory
from broker.match.queries import latest_run
from broker.store.models import (
    Digest,
    DigestFeedback,
    DigestItem,
    Match,
    Opportunity,
    QuarantineItem,
    TargetEntry,
    Vcse,
)
from broker.store.quarantine import list_quarantine
from broker.target.parties import PartyResolver
from broker.target.values import format_gbp

PAGE_ROWS = 500


def _match_row(m: Match, opp: Opportunity, party: Any) -> dict[str, Any]:
    return {"opportunity_id": opp.id, "title": header_text(opp.title, 200) or "(untitled notice)",
            "buyer": header_text(opp.buyer_name, 120), "party_id": m.party_id, "party_type": m.party_type,
            "party": party.name, "cluster": party.cluster or "(no cluster)", "score": m.score,
            "reasons": [header_text(r, 300) for r in list(m.reasons or [])[:3]], "status": m.status,
            "deadline": opp.deadline_at.date().isoformat() if opp.deadline_at else "not given"}


def tonight(session: Session, everything: bool) -> dict[str, Any]:
    """Matches made new by the latest complete run (or, with ``everything``, every active match)."""
    run = latest_run(session)
    q = select(Match, Opportunity).join(Opportunity, Opportunity.id == Match.opportunity_id).where(
        Match.status == "active")
    if not everything:
        q = q.where(Match.first_run_id == (run.id if run else ""))
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    resolver = PartyResolver(session)
    rows = [_match_row(m, o, resolver.from_match(m)) for m, o in session.execute(
        q.order_by(Match.score.desc(), Match.opportunity_id, Match.party_id).limit(PAGE_ROWS))]
    by_cluster: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_party: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_cluster[r["cluster"]].append(r)
        by_party[(r["party"], r["party_id"])].append(r)
    return {"run": None if run is None else {"id": run.id, "as_of": run.as_of}, "total": total,
            "shown": len(rows), "by_cluster": sorted(by_cluster.items()),
            "by_party": [(name, rs) for (name, _), rs in sorted(by_party.items())]}


def opportunity(session: Session, opportunity_id: str, today: date) -> dict[str, Any] | None:
    """One opportunity with its matches, everyone it went to, feedback and its ledger entries."""
    opp = session.get(Opportunity, opportunity_id) if opportunity_id else None
    if opp is None:
        return None
    resolver = PartyResolver(session)
    matches = list(session.scalars(select(Match).where(Match.opportunity_id == opp.id)
                                   .order_by(Match.score.desc(), Match.party_id)))
    sent = [{"recipient": (v.name if v else d.recipient_id), "email": d.to_address, "as_of": d.as_of,
             "status": d.status, "reference": i.reference, "party": resolver.name(i.party_id, i.party_type),
             "party_type": i.party_type}
            for i, d, v in session.execute(
                select(DigestItem, Digest, Vcse).join(Digest, Digest.id == DigestItem.digest_id)
                .outerjoin(Vcse, Vcse.id == DigestItem.recipient_id)
                .where(DigestItem.opportunity_id == opp.id).order_by(Digest.as_of, DigestItem.recipient_id))]
    feedback = [{"party": resolver.name(f.party_id, "vcse"), "kind": f.kind.replace("_", " "),
                 "reason": f.reason or "", "as_of": f.as_of, "cause": f.cause or "officer"}
                for f in session.scalars(select(DigestFeedback).where(DigestFeedback.opportunity_id == opp.id)
                                         .order_by(DigestFeedback.as_of, DigestFeedback.id))]
    ledger = [{"as_of": e.as_of, "party": resolver.name(e.party_id or "", e.party_type), "stage": e.stage or "",
               "amount": format_gbp(e.amount_pence), "basis": e.basis, "cause": e.cause, "note": e.note or ""}
              for e in session.scalars(select(TargetEntry).where(
                  TargetEntry.opportunity_id == opp.id, TargetEntry.kind == "stage")
                  .order_by(TargetEntry.as_of, TargetEntry.id))]
    parties = {m.party_id: resolver.from_match(m).name for m in matches}
    for i in session.scalars(select(DigestItem).where(DigestItem.opportunity_id == opp.id)):
        parties.setdefault(i.party_id, resolver.name(i.party_id, i.party_type))
    return {
        "opp": {"id": opp.id, "title": header_text(opp.title, 300) or "(untitled notice)",
                "buyer": header_text(opp.buyer_name, 200), "status": opp.status,
                "value": format_value(opp.value_min_pence, opp.value_max_pence, opp.value_currency,
                                      opp.value_original),
                "deadline": _deadline(opp, today),
                "link": safe_link(opp.url), "summary": excerpt(opp.description, 800)},
        "matches": [_match_row(m, opp, resolver.from_match(m)) for m in matches],
        "sent": sent, "feedback": feedback, "ledger": ledger,
        "parties": sorted(parties.items(), key=lambda kv: (kv[1], kv[0])),
    }


def _deadline(opp: Opportunity, today: date) -> str:
    when, left = format_deadline(opp.deadline_at, today)
    return f"{when} (passed)" if left.startswith("-") else f"{when} ({left})"


def directory(session: Session) -> dict[str, Any]:
    data = list_directory(session, limit=PAGE_ROWS)
    ids = [v["id"] for v in data["vcses"]]
    prefs = load_preferences(session, ids)
    rows = {v.id: v for v in session.scalars(select(Vcse).where(Vcse.id.in_(ids)))} if ids else {}
    for v in data["vcses"]:
        row = rows.get(v["id"])
        v["contact_email"] = row.contact_email if row else None
        v["digests"] = "on" if row is not None and effective(row, prefs.get(row.id)).opt_in else "off"
    return data


def quarantine(session: Session) -> dict[str, Any]:
    total = session.scalar(select(func.count()).select_from(QuarantineItem)) or 0
    rows = [{"file": q.file, "locator": q.locator or "", "field": q.field or "", "reason": q.reason,
             "raw": excerpt(q.raw, 400)} for q in list_quarantine(session, limit=PAGE_ROWS)]
    return {"total": total, "rows": rows}


def explain_lines(data: dict[str, Any]) -> str:
    """The explanation as indented JSON text (shown in a <pre>, escaped like every other text)."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)
