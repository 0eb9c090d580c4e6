"""Who a ledger entry is about: the party's type, display name and cluster.

A VCSE's cluster is its own. A consortium, standing or suggested, belongs to its lead member's cluster
(the lead receives the digest and speaks for it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.store.models import Consortium, Match, Vcse

CHUNK = 2000  # ids per IN (...) list: far inside SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True)
class Party:
    """A party as the ledger records it."""

    id: str
    type: str  # vcse | consortium | suggested_consortium
    cluster: str | None
    name: str


def chunks(ids: Sequence[str], size: int = CHUNK) -> Iterable[Sequence[str]]:
    """Successive slices of ``ids`` small enough for one ``IN (...)``."""
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


class PartyResolver:
    """Looks parties up once per write; remembers VCSE clusters and consortium leads it has read."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._vcses: dict[str, tuple[str, str | None]] = {}
        self._consortia: dict[str, tuple[str, str]] = {}

    def preload(self, vcse_ids: Iterable[str], consortium_ids: Iterable[str]) -> None:
        """Read many VCSEs and consortia in a few queries (a match run's worth of parties)."""
        self._load_consortia(sorted(set(consortium_ids) - set(self._consortia)))
        leads = [lead for lead, _ in self._consortia.values()]
        self._load_vcses(sorted((set(vcse_ids) | set(leads)) - set(self._vcses)))

    def _load_vcses(self, ids: Sequence[str]) -> None:
        for part in chunks(ids):
            for vid, name, cluster in self.session.execute(
                    select(Vcse.id, Vcse.name, Vcse.cluster).where(Vcse.id.in_(part))):
                self._vcses[vid] = (name, cluster)

    def _load_consortia(self, ids: Sequence[str]) -> None:
        for part in chunks(ids):
            for cid, name, lead in self.session.execute(
                    select(Consortium.id, Consortium.name, Consortium.lead_id).where(Consortium.id.in_(part))):
                self._consortia[cid] = (name, lead)

    def _vcse(self, vcse_id: str | None) -> tuple[str, str | None] | None:
        if vcse_id is None:
            return None
        if vcse_id not in self._vcses:
            self._load_vcses([vcse_id])
        return self._vcses.get(vcse_id)

    def _consortium(self, consortium_id: str) -> tuple[str, str] | None:
        if consortium_id not in self._consortia:
            self._load_consortia([consortium_id])
        return self._consortia.get(consortium_id)

    def from_match(self, match: Match) -> Party:
        """The party of a current match (its type and lead are on the match row)."""
        if match.party_type == "vcse":
            found = self._vcse(match.party_id)
            return Party(match.party_id, "vcse", found[1] if found else None,
                         found[0] if found else match.party_id)
        consortium = self._consortium(match.party_id) if match.party_type == "consortium" else None
        lead_id = match.lead_id or (consortium[1] if consortium else None)
        lead = self._vcse(lead_id)
        name = consortium[0] if consortium else f"suggested consortium led by {lead[0] if lead else lead_id}"
        return Party(match.party_id, match.party_type, lead[1] if lead else None, name)

    def find(self, opportunity_id: str, party_id: str) -> Party | None:
        """A party named by an officer: a VCSE, a standing consortium, or a party matched to this opportunity."""
        vcse = self._vcse(party_id)
        if vcse is not None:
            return Party(party_id, "vcse", vcse[1], vcse[0])
        consortium = self._consortium(party_id)
        if consortium is not None:
            lead = self._vcse(consortium[1])
            return Party(party_id, "consortium", lead[1] if lead else None, consortium[0])
        match = self.session.scalars(select(Match).where(
            Match.opportunity_id == opportunity_id, Match.party_id == party_id)).first()
        return self.from_match(match) if match is not None else None

    def name(self, party_id: str, party_type: str | None) -> str:
        """A display name for a party already in the ledger (its id when it has left the directory)."""
        if party_type == "vcse":
            found = self._vcse(party_id)
            return found[0] if found else party_id
        consortium = self._consortium(party_id)
        return consortium[0] if consortium else party_id
