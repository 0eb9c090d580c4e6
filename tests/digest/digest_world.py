"""Helpers for the digest tests: VCSEs, consortia, opportunities and matches written straight to the store."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from broker.store.models import Consortium, ConsortiumMember, Match, Opportunity, Vcse

AS_OF = date(2025, 1, 16)  # a Thursday; digests are dated 06:00 UK time that day


def deadline(day: int, month: int = 1, hour: int = 12) -> datetime:
    """A deadline in January 2025 (UK winter time is UTC)."""
    return datetime(2025, month, day, hour, 0, tzinfo=UTC)


DEFAULT_DEADLINE = deadline(31)  # 15 days after AS_OF


class World:
    """Writes directory, opportunity and match rows for one test."""

    def __init__(self, session: Session, outbox: Path) -> None:
        self.session = session
        self.outbox = outbox

    def vcse(self, vid: str, *, name: str | None = None, email: str | None = "default",
             opt_in: bool = True, **extra: Any) -> Vcse:
        row = Vcse(id=vid, name=name or f"VCSE {vid}", cluster_derived=False, local_authority="Birmingham",
                   service_areas=[], capabilities="community support", keywords=[], exclude_keywords=[],
                   cpv_codes=[], certifications=[], digest_opt_in=opt_in, content_hash="0" * 64,
                   contact_email=f"{vid.lower()}@example.net" if email == "default" else email, **extra)
        self.session.add(row)
        self.session.flush()
        return row

    def consortium(self, cid: str, lead: str, members: list[str], *, name: str | None = None) -> Consortium:
        row = Consortium(id=cid, name=name or f"Consortium {cid}", lead_id=lead, capabilities="",
                         capabilities_derived=True, max_value_derived=True, content_hash="0" * 64)
        self.session.add(row)
        self.session.flush()
        for pos, m in enumerate(members):
            self.session.add(ConsortiumMember(consortium_id=cid, vcse_id=m, position=pos))
        self.session.flush()
        return row

    def opportunity(self, oid: str, *, title: str | None = None, status: str = "open",
                    deadline_at: datetime | None = DEFAULT_DEADLINE, **extra: Any) -> Opportunity:
        fields: dict[str, Any] = dict(
            id=oid, source="test", title=title or f"Opportunity {oid}", description="Support services.",
            buyer_name="Birmingham City Council", status=status, deadline_at=deadline_at,
            value_min_pence=4_800_000, value_max_pence=6_000_000, cpv_codes=[], cpv_unknown=[],
            local_authority="Birmingham", postcode="B8 1AA", nationwide=False, reserved_participation=[],
            is_framework=False, is_dps=False, source_ids=[], match_keys=[], raw_hash="0" * 64,
            content_hash="0" * 64, version=1, url=f"https://www.contractsfinder.service.gov.uk/Notice/{oid}")
        fields.update(extra)
        row = Opportunity(**fields)
        self.session.add(row)
        self.session.flush()
        return row

    def match(self, opp: str, party: str, score: int, *, party_type: str = "vcse", lead: str | None = None,
              members: list[Any] | None = None, reasons: list[str] | None = None,
              status: str = "active") -> Match:
        row = Match(opportunity_id=opp, party_id=party, party_type=party_type, lead_id=lead,
                    members=members or [], score=score, levels={"capability": "strong"},
                    reasons=reasons if reasons is not None else [f"reason one for {opp}", "reason two",
                                                                 "reason three", "reason four"],
                    flags=[], status=status, first_run_id="run-1", last_run_id="run-1")
        self.session.add(row)
        self.session.flush()
        return row

    def commit(self) -> None:
        self.session.commit()
