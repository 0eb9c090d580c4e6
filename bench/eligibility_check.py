"""Check a brokerage database against the eligibility and counting policies, independently of the matcher.

Usage: python bench/eligibility_check.py --db URL --as-of DATE [--max-pct 200] [--turnover-pct 50]

Recomputes, from the directory rows alone (not from the match decisions), the capacity of every party
an opportunity counted toward the target through, and reports:

* counted opportunities whose counted value is more than ``max-pct`` % of a party's maximum contract
  value (or, with no maximum, more than ``turnover-pct`` % of its annual turnover), and those whose
  party gives neither (capacity unknown: the rule cannot judge them);
* counted framework/DPS ceilings (counted above £0 without an award value);
* digest items whose notice was published after the digest's business date.

Prints one JSON document; exits 1 when any violation is found. Nothing is asserted about timing.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broker.normalise.dates import LONDON  # noqa: E402
from broker.store.engine import make_engine, session_factory  # noqa: E402
from broker.store.models import (  # noqa: E402
    Consortium,
    ConsortiumMember,
    Digest,
    DigestItem,
    Match,
    Opportunity,
    TargetEntry,
    Vcse,
)
from broker.target.progress import compute_progress  # noqa: E402


@dataclass(frozen=True)
class Capacity:
    max_pence: int | None
    turnover_pence: int | None


def _vcse_capacity(v: Vcse | None) -> Capacity:
    return Capacity(None, None) if v is None else Capacity(v.max_contract_value_pence, v.annual_turnover_pence)


def _group_capacity(members: list[Capacity], own_max: int | None = None) -> Capacity:
    maxes = [m.max_pence for m in members]
    total_max = own_max if own_max else (sum(maxes) if members and all(maxes) else None)  # type: ignore[arg-type]
    turnover = sum(m.turnover_pence or 0 for m in members) or None
    return Capacity(total_max, turnover)


def party_capacity(session: Session, party_id: str, party_type: str, opportunity_id: str) -> Capacity:
    """A party's capacity from the directory: its own figures, or its members' summed."""
    if party_type == "vcse":
        return _vcse_capacity(session.get(Vcse, party_id))
    if party_type == "consortium":
        row = session.get(Consortium, party_id)
        ids = list(session.scalars(select(ConsortiumMember.vcse_id).where(
            ConsortiumMember.consortium_id == party_id)))
        members = [_vcse_capacity(session.get(Vcse, i)) for i in ids]
        return _group_capacity(members, row.max_contract_value_pence if row else None)
    match = session.scalars(select(Match).where(Match.opportunity_id == opportunity_id,
                                                Match.party_id == party_id)).first()
    ids = list(match.members) if match else []
    return _group_capacity([_vcse_capacity(session.get(Vcse, i)) for i in ids])


def check(session: Session, as_of: date, *, max_pct: int = 200, turnover_pct: int = 50) -> dict[str, Any]:
    """The policy checks for the ledger and digests as of ``as_of`` (see the module docstring)."""
    progress = compute_progress(session, as_of)
    day = as_of.isoformat()
    beyond, unknown, ceilings, checked_pairs = [], [], [], 0
    for c in progress.counted:
        value = c.value.amount_pence
        if value <= 0 or c.value.basis == "award":
            continue
        opp = session.get(Opportunity, c.id)
        if opp is not None and (opp.is_framework or opp.is_dps):
            ceilings.append(c.id)
        pairs = sorted(set(session.execute(select(TargetEntry.party_id, TargetEntry.party_type).where(
            TargetEntry.kind == "stage", TargetEntry.opportunity_id == c.id, TargetEntry.as_of <= day,
            TargetEntry.basis != "subcontracting"))))
        for party_id, party_type in pairs:
            checked_pairs += 1
            cap = party_capacity(session, party_id or "", party_type or "", c.id)
            if cap.max_pence:
                ok = value * 100 <= cap.max_pence * max_pct
            elif cap.turnover_pence:
                ok = value * 100 <= cap.turnover_pence * turnover_pct
            else:
                unknown.append({"opportunity_id": c.id, "party_id": party_id, "value_pence": value})
                continue
            if not ok:
                beyond.append({"opportunity_id": c.id, "party_id": party_id, "party_type": party_type,
                               "value_pence": value, "max_pence": cap.max_pence,
                               "turnover_pence": cap.turnover_pence})
    late = _late_digest_items(session)
    return {"as_of": day, "counted_pence": progress.counted_pence,
            "counted_opportunities": len(progress.counted), "pairs_checked": checked_pairs,
            "beyond_capacity": beyond, "capacity_unknown": unknown, "framework_ceilings_counted": ceilings,
            "subcontracting_prospects": len(progress.prospects),
            "digest_items": session.query(DigestItem).count(), "digest_items_published_after": late,
            "ok": not (beyond or ceilings or late)}


def _late_digest_items(session: Session) -> list[dict[str, str]]:
    out = []
    rows = session.execute(select(Digest.id, Digest.as_of, Opportunity.id, Opportunity.published_at)
                           .join(DigestItem, DigestItem.digest_id == Digest.id)
                           .join(Opportunity, Opportunity.id == DigestItem.opportunity_id)
                           .order_by(Digest.id, Opportunity.id))
    for digest_id, as_of, opp_id, published in rows:
        if published is None:
            continue
        end = datetime.combine(date.fromisoformat(as_of) + timedelta(days=1), time(0), tzinfo=LONDON)
        when = published if published.tzinfo else published.replace(tzinfo=UTC)
        if when >= end:
            out.append({"digest_id": digest_id, "as_of": as_of, "opportunity_id": opp_id,
                        "published_at": when.isoformat()})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--as-of", required=True, type=date.fromisoformat)
    parser.add_argument("--max-pct", type=int, default=200)
    parser.add_argument("--turnover-pct", type=int, default=50)
    args = parser.parse_args()
    sessions = session_factory(make_engine(args.db))
    with sessions() as session:
        report = check(session, args.as_of, max_pct=args.max_pct, turnover_pct=args.turnover_pct)
    print(json.dumps(report, indent=1))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
