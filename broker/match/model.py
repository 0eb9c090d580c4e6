"""Plain, immutable views of an opportunity and a party: what the matcher works on.

The lead builds them from store rows (``broker.store.models.Opportunity``, ``Vcse``, ``Consortium``); the
matcher never touches the database. Text is expected to be clean already (``broker.normalise.text``), money
is integer pence (``None`` when unknown), dates are aware UTC datetimes, and every sequence is a tuple so
views can be hashed and compared. Place names (local authority, cluster, region, service areas) are
compared case- and punctuation-insensitively (``broker.normalise.text.match_key``), so the builder should
give canonical names (``broker.normalise.geography.canonical_local_authority``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from broker.normalise.record import STATUSES

PARTY_TYPES = ("vcse", "consortium", "suggested_consortium")


@dataclass(frozen=True)
class OpportunityView:
    """One opportunity (or lot) as the matcher sees it.

    ``nationwide`` follows the vocabulary: delivery anywhere in the UK. An opportunity that names no place
    at all (no local authority, cluster, region and not in the West Midlands) is treated as nationwide too.
    ``vcse_suitable`` / ``sme_suitable`` are the buyer's own declarations (``None`` when not said): a signal
    for the rules, never a gate here.
    """

    id: str
    title: str
    description: str = ""
    buyer_name: str = ""
    cpv_codes: tuple[str, ...] = ()
    value_min_pence: int | None = None
    value_max_pence: int | None = None
    deadline_at: datetime | None = None
    status: str = "open"
    local_authority: str | None = None
    cluster: str | None = None
    region: str | None = None
    nationwide: bool = False
    in_west_midlands: bool = False
    vcse_suitable: bool | None = None
    sme_suitable: bool | None = None
    reserved_for_vcse: bool = False
    is_framework: bool = False
    is_dps: bool = False
    notice_type: str | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")

    @property
    def has_place(self) -> bool:
        """The notice names some delivery place."""
        return bool(self.local_authority or self.cluster or self.region or self.in_west_midlands)

    @property
    def effectively_nationwide(self) -> bool:
        """Nationwide, or no place given (the vocabulary's definition of ``nationwide``)."""
        return self.nationwide or not self.has_place


@dataclass(frozen=True)
class PartyView:
    """A VCSE, a standing consortium or a suggested grouping, as the matcher sees it.

    ``service_areas`` holds local authority names, ``West Midlands`` (or another region name) or
    ``National``; empty means the party's own local authority (BRIEF, vcses.csv). ``region`` is the region
    of the party's own local authority (``"West Midlands"`` for the WMCA authorities), ``None`` when unknown.
    ``member_ids`` is empty for a single VCSE.
    """

    id: str
    party_type: str = "vcse"
    name: str = ""
    capabilities: str = ""
    keywords: tuple[str, ...] = ()
    exclude_keywords: tuple[str, ...] = ()
    cpv_codes: tuple[str, ...] = ()
    service_areas: tuple[str, ...] = ()
    local_authority: str | None = None
    cluster: str | None = None
    region: str | None = None
    min_contract_value_pence: int | None = None
    max_contract_value_pence: int | None = None
    annual_turnover_pence: int | None = None
    employees: int | None = None
    member_ids: tuple[str, ...] = ()
    digest_opt_in: bool = False
    # Query terms learned from the party's own feedback (term, weight in thousandths; negative pushes away),
    # sorted by term: broker.match.feedback. Part of the view, so new feedback makes the party "changed".
    feedback_terms: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if self.party_type not in PARTY_TYPES:
            raise ValueError(f"party_type {self.party_type!r} is not one of {PARTY_TYPES}")
