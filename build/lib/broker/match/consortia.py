"""Suggesting new groupings of VCSEs for an opportunity no single member can take on.

An opportunity is beyond every single member when its value is beyond each one's capacity, or when it asks
for several things no one member does. The suggester builds groupings of 2-4 members from the VCSEs the
blocking step already proposed for it (so every member has some relevant capability), drawn from the same
or neighbouring clusters, greedily adding the member that covers most of what is still missing (the
opportunity's distinctive title and CPV terms) and most of the capacity still short. Each grouping is
then scored by the same features and rules as any party, as a ``suggested_consortium``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from broker.match.features import prepare_party
from broker.match.fit import opportunity_value_pence
from broker.match.model import OpportunityView, PartyView
from broker.match.params import ConsortiumParams
from broker.match.textindex import analyse, is_generic
from broker.match.views import group_view
from broker.normalise.cpv import catalogue
from broker.normalise.geography import neighbouring_clusters


@dataclass(frozen=True)
class Suggestion:
    party: PartyView  # the grouping as a party (party_type suggested_consortium)
    lead_id: str
    covered: tuple[str, ...]  # aspects of the opportunity the members cover together
    missing: tuple[str, ...]
    capacity_pence: int | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Member:
    view: PartyView
    capability_score: int
    value_fit: str


def aspects(opp: OpportunityView) -> tuple[str, ...]:
    """What the opportunity asks for: distinctive title and CPV-label terms, sorted."""
    labels = [catalogue().label(c) or "" for c in opp.cpv_codes]
    terms = analyse(opp.title).unigrams | analyse("\n".join(labels)).unigrams
    return tuple(sorted(t for t in terms if not is_generic(t) and len(t) > 2))


def needs_grouping(opp: OpportunityView, members: Sequence[Member], params: ConsortiumParams) -> bool:
    """True when no single eligible member both covers the work and has the capacity for it."""
    eligible = [m for m in members if m.capability_score >= params.member_min_capability]
    if len(eligible) < params.min_members:
        return False
    wanted = set(aspects(opp))
    for m in eligible:
        fits_value = m.value_fit in ("within", "unknown")
        covers = not wanted or len(wanted & _terms(m.view)) >= max(1, len(wanted) * 2 // 3)
        if fits_value and covers:
            return False
    return True


def suggest(opp: OpportunityView, members: Sequence[Member], params: ConsortiumParams) -> list[Suggestion]:
    """Up to ``params.suggestions_per_opportunity`` distinct groupings, best lead first."""
    if not needs_grouping(opp, members, params):
        return []
    pool = sorted((m for m in members if m.capability_score >= params.member_min_capability),
                  key=lambda m: (-m.capability_score, m.view.id))
    wanted = aspects(opp)
    value = opportunity_value_pence(opp)
    out: list[Suggestion] = []
    seen: set[tuple[str, ...]] = set()
    for lead in pool:
        if len(out) >= params.suggestions_per_opportunity:
            break
        group = _grow(lead, pool, wanted, value, params)
        key = tuple(sorted(m.view.id for m in group))
        if len(group) < params.min_members or key in seen or not _can_carry(group, value, params):
            continue
        seen.add(key)
        out.append(_suggestion(opp, group, wanted, value))
    return out


def _grow(lead: Member, pool: Sequence[Member], wanted: Sequence[str], value: int | None,
          params: ConsortiumParams) -> list[Member]:
    group = [lead]
    allowed = _allowed_clusters(lead.view, params)
    while len(group) < params.max_members:
        covered = set().union(*(_terms(m.view) for m in group)) & set(wanted)
        capacity = _capacity(group)
        short = value is not None and capacity is not None and capacity < value
        if set(wanted) <= covered and not short:
            break
        best: tuple[float, str, Member] | None = None
        for m in pool:
            if m in group or (allowed is not None and (m.view.cluster or "") not in allowed):
                continue
            gain = len((_terms(m.view) & set(wanted)) - covered)
            if short and m.view.max_contract_value_pence:
                gain += min(1.0, m.view.max_contract_value_pence / max(1, value - capacity)) * 2  # type: ignore[operator]
            if gain <= 0:
                continue
            candidate = (-gain - m.capability_score / 1000, m.view.id, m)
            if best is None or candidate[:2] < best[:2]:
                best = candidate
        if best is None:
            break
        group.append(best[2])
    return group


def _can_carry(group: Sequence[Member], value: int | None, params: ConsortiumParams) -> bool:
    """Unknown value or capacity: let the rules judge. Known: the group must reach it within the stretch."""
    capacity = _capacity(group)
    if value is None or capacity is None:
        return True
    return capacity * params.max_value_to_capacity_pct >= value * 100


def _allowed_clusters(lead: PartyView, params: ConsortiumParams) -> set[str] | None:
    if not params.neighbouring_clusters_only or not lead.cluster:
        return None
    return {lead.cluster, *neighbouring_clusters(lead.cluster)}


def _capacity(group: Sequence[Member]) -> int | None:
    values = [m.view.max_contract_value_pence for m in group]
    return sum(v for v in values if v) if all(values) else None


def _suggestion(opp: OpportunityView, group: list[Member], wanted: Sequence[str],
                value: int | None) -> Suggestion:
    lead = group[0]
    views = [m.view for m in group]
    party_id = "suggested:" + "+".join(sorted(v.id for v in views))
    name = " + ".join(v.name or v.id for v in views)
    party = group_view(party_id, "suggested_consortium", name, views, lead.view)
    covered_terms = set().union(*(_terms(v) for v in views)) & set(wanted)
    covered = tuple(sorted(covered_terms))
    missing = tuple(t for t in wanted if t not in covered_terms)
    capacity = _capacity(group)
    reasons = [f"{len(group)} members from {', '.join(sorted({v.cluster or v.local_authority or '?' for v in views}))}"]
    if covered:
        reasons.append("together cover " + ", ".join(covered[:6]))
    if capacity is not None:
        reasons.append(f"combined capacity £{capacity / 100:,.0f}"
                       + (f" against a value of £{value / 100:,.0f}" if value else ""))
    return Suggestion(party, lead.view.id, covered, missing, capacity, tuple(reasons))


def _terms(view: PartyView) -> frozenset[str]:
    return _party_terms(view.capabilities, view.keywords)


_CACHE: dict[tuple[str, tuple[str, ...]], frozenset[str]] = {}


def _party_terms(capabilities: str, keywords: tuple[str, ...]) -> frozenset[str]:
    key = (capabilities, keywords)
    if key not in _CACHE:
        if len(_CACHE) > 50_000:
            _CACHE.clear()
        _CACHE[key] = prepare_party(PartyView(id="x", capabilities=capabilities, keywords=keywords)).terms
    return _CACHE[key]


def members_from(results: Mapping[str, tuple[PartyView, int, str]]) -> list[Member]:
    """Members from {party id: (view, capability_score, value_fit)} in party-id order."""
    return [Member(view, score, fit) for _, (view, score, fit) in sorted(results.items())]

