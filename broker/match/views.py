"""Store rows → the matcher's views, and views ↔ JSON (the audit snapshot of what a run read)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from broker.match.model import OpportunityView, PartyView
from broker.normalise import geography
from broker.normalise.dates import iso_utc
from broker.normalise.record import canonical_hash
from broker.store.models import Consortium, Opportunity, Vcse

# reservedParticipation codes that reserve a contract for organisations like VCSEs (OCDS
# otherRequirements extension; smeVcse from the UK extension; mutuals are public service mission orgs).
VCSE_RESERVATIONS = ("smeVcse", "publicServiceMissionOrganization")
WEST_MIDLANDS = "West Midlands"


def opportunity_view(row: Opportunity) -> OpportunityView:
    regions = tuple(row.regions or ())
    return OpportunityView(
        id=row.id, title=row.title, description=row.description, buyer_name=row.buyer_name,
        cpv_codes=tuple(row.cpv_codes), value_min_pence=row.value_min_pence,
        value_max_pence=row.value_max_pence, deadline_at=row.deadline_at, status=row.status,
        local_authority=row.local_authority, cluster=row.cluster, region=row.region,
        nationwide=row.nationwide, in_west_midlands=row.region == WEST_MIDLANDS or WEST_MIDLANDS in regions,
        vcse_suitable=row.vcse_suitable, sme_suitable=row.sme_suitable,
        reserved_for_vcse=any(code in VCSE_RESERVATIONS for code in row.reserved_participation),
        is_framework=row.is_framework, is_dps=row.is_dps, notice_type=row.notice_type, source=row.source)


def vcse_view(row: Vcse) -> PartyView:
    return PartyView(
        id=row.id, party_type="vcse", name=row.name, capabilities=row.capabilities,
        keywords=tuple(row.keywords), exclude_keywords=tuple(row.exclude_keywords),
        cpv_codes=tuple(row.cpv_codes), service_areas=tuple(row.service_areas),
        local_authority=row.local_authority, cluster=row.cluster, region=_region_of(row.local_authority),
        min_contract_value_pence=row.min_contract_value_pence,
        max_contract_value_pence=row.max_contract_value_pence, annual_turnover_pence=row.annual_turnover_pence,
        employees=row.employees, digest_opt_in=row.digest_opt_in)


def consortium_view(row: Consortium, members: Sequence[PartyView]) -> PartyView:
    """A standing consortium: its own capabilities and capacity, the members' reach and vocabulary."""
    lead = next((m for m in members if m.id == row.lead_id), members[0] if members else None)
    return group_view(row.id, "consortium", row.name, members, lead,
                      capabilities=row.capabilities, max_value_pence=row.max_contract_value_pence)


def group_view(party_id: str, party_type: str, name: str, members: Sequence[PartyView],
               lead: PartyView | None, *, capabilities: str | None = None,
               max_value_pence: int | None = None) -> PartyView:
    """A party made of members (a consortium or a suggested grouping)."""
    caps = capabilities if capabilities is not None else "\n".join(m.capabilities for m in members)
    if max_value_pence is None and members and all(m.max_contract_value_pence for m in members):
        max_value_pence = sum(m.max_contract_value_pence or 0 for m in members)
    excludes = [k for k in (lead.exclude_keywords if lead else ())
                if all(k in m.exclude_keywords for m in members)]  # only what every member excludes
    mins = [m.min_contract_value_pence for m in members if m.min_contract_value_pence]
    return PartyView(
        id=party_id, party_type=party_type, name=name, capabilities=caps,
        keywords=_union(m.keywords for m in members), exclude_keywords=tuple(excludes),
        cpv_codes=_union(m.cpv_codes for m in members), service_areas=_union(m.service_areas for m in members),
        local_authority=lead.local_authority if lead else None, cluster=lead.cluster if lead else None,
        region=lead.region if lead else None, min_contract_value_pence=min(mins) if mins else None,
        max_contract_value_pence=max_value_pence,
        annual_turnover_pence=sum(m.annual_turnover_pence or 0 for m in members) or None,
        employees=sum(m.employees or 0 for m in members) or None,
        member_ids=tuple(m.id for m in members), digest_opt_in=bool(lead and lead.digest_opt_in))


def _union(groups: Any) -> tuple[str, ...]:
    out: list[str] = []
    for group in groups:
        for item in group:
            if item not in out:
                out.append(item)
    return tuple(out)


def _region_of(local_authority: str | None) -> str | None:
    found = geography.authority(local_authority) if local_authority else None
    return found.region if found else None


# --- JSON (snapshots) ----------------------------------------------------------------------------

def view_json(view: OpportunityView | PartyView) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(view):
        value = getattr(view, f.name)
        if isinstance(value, datetime):
            value = iso_utc(value)
        elif isinstance(value, tuple):
            if f.name == "feedback_terms":
                if not value:
                    continue  # no feedback: the view (and its hash) as before feedback existed
                value = [list(pair) for pair in value]
            else:
                value = list(value)
        out[f.name] = value
    return out


def view_hash(view: OpportunityView | PartyView) -> str:
    return canonical_hash(view_json(view))


def opportunity_from_json(data: dict[str, Any]) -> OpportunityView:
    kw = dict(data)
    if kw.get("deadline_at"):
        kw["deadline_at"] = datetime.fromisoformat(kw["deadline_at"].replace("Z", "+00:00"))
    kw["cpv_codes"] = tuple(kw.get("cpv_codes") or ())
    return OpportunityView(**kw)


def party_from_json(data: dict[str, Any]) -> PartyView:
    kw = dict(data)
    for name in ("keywords", "exclude_keywords", "cpv_codes", "service_areas", "member_ids"):
        kw[name] = tuple(kw.get(name) or ())
    kw["feedback_terms"] = tuple((str(t), int(w)) for t, w in kw.get("feedback_terms") or ())
    return PartyView(**kw)
