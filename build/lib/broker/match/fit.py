"""Structured pair features: CPV relation, value against capacity, location, days to deadline.

Pure functions of one opportunity and one party (no collection statistics, no rapidfuzz), so a decision can
be explained and replayed pair by pair. ``candidates`` uses ``location_fit`` for its service-area gate so
that blocking and the ``location_fit`` fact can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from broker.match.model import OpportunityView, PartyView
from broker.normalise.cpv import canonical_code, catalogue, significant_digits
from broker.normalise.dates import LONDON
from broker.normalise.text import match_key as _match_key

# Place names repeat endlessly across a directory: key each distinct name once.
match_key = lru_cache(maxsize=1 << 14)(_match_key)

# Closest first: the order the vocabulary lists them in.
CPV_RELATIONS = ("exact", "category", "class", "group", "division", "none")
_LEVEL_BY_DIGITS = {2: "division", 3: "group", 4: "class"}
WEST_MIDLANDS = "west midlands"
NATIONAL = "national"
DEADLINE_UNKNOWN = 9999


# --- CPV -------------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 14)
def _lineage(code: str) -> tuple[str, ...]:
    """The code and its existing ancestors, nearest first (CPV 2008 has 35 codes with no immediate parent:
    their nearest existing ancestor stands in). Unknown codes fall back to their own digit prefixes."""
    cat = catalogue()
    if cat.known(code):
        return (code, *cat.ancestors(code))
    digits = significant_digits(code)
    return tuple(code[:d].ljust(8, "0") for d in range(digits, 1, -1))


@lru_cache(maxsize=1 << 16)
def _relation(a: str, b: str) -> str:
    if a == b:
        return "exact"
    common = set(_lineage(b))
    for ancestor in _lineage(a):
        if ancestor in common:
            # Anything more specific than a class is a "category" in the vocabulary's terms.
            return _LEVEL_BY_DIGITS.get(significant_digits(ancestor), "category")
    return "none"


def cpv_relation(opportunity_codes: tuple[str, ...], party_codes: tuple[str, ...]) -> str:
    """The closest relation between any opportunity code and any party code.

    ``exact`` (same code), then the level of their deepest common existing ancestor: ``category``,
    ``class``, ``group``, ``division``; ``none`` when they share no division; ``no_codes`` when either side
    has no valid code. One code being an ancestor of the other counts at the ancestor's level.
    """
    if not opportunity_codes or not party_codes:
        return "no_codes"
    return _cpv_relation(tuple(opportunity_codes), tuple(party_codes))


@lru_cache(maxsize=1 << 16)
def _cpv_relation(opportunity_codes: tuple[str, ...], party_codes: tuple[str, ...]) -> str:
    ours = _canonical(opportunity_codes)
    theirs = _canonical(party_codes)
    if not ours or not theirs:
        return "no_codes"
    best = len(CPV_RELATIONS) - 1
    for a in ours:
        for b in theirs:
            best = min(best, CPV_RELATIONS.index(_relation(a, b)))
            if best == 0:
                return "exact"
    return CPV_RELATIONS[best]


def _canonical(codes: tuple[str, ...]) -> tuple[str, ...]:
    out = (canonical_code(c) for c in codes)
    return tuple(sorted({c for c in out if c is not None and c != "00000000"}))


# --- value -----------------------------------------------------------------------------------------


def opportunity_value_pence(opp: OpportunityView) -> int | None:
    """The value a party is measured against: the lower bound (BRIEF, Value basis), else the upper."""
    for v in (opp.value_min_pence, opp.value_max_pence):
        if v is not None and v > 0:
            return v
    return None


def value_to_capacity_pct(opp: OpportunityView, party: PartyView) -> int:
    """The opportunity's minimum as a whole percentage of the party's maximum; -1 when either is unknown."""
    value = opportunity_value_pence(opp)
    capacity = party.max_contract_value_pence
    if value is None or not capacity or capacity <= 0:
        return -1
    return (value * 100 + capacity // 2) // capacity


def value_fit(opp: OpportunityView, party: PartyView, stretch_pct: int, pct: int | None = None) -> str:
    """``within`` (<= 100 %), ``stretch`` (<= stretch_pct), ``beyond``, ``below_minimum`` or ``unknown``.

    ``below_minimum``: the opportunity's upper value is under the smallest contract the party wants; this
    is known even when the party gives no maximum. ``pct`` saves recomputing ``value_to_capacity_pct``.
    """
    value = opportunity_value_pence(opp)
    if value is None:
        return "unknown"
    upper = opp.value_max_pence if opp.value_max_pence else value
    if party.min_contract_value_pence and upper < party.min_contract_value_pence:
        return "below_minimum"
    if pct is None:
        pct = value_to_capacity_pct(opp, party)
    if pct < 0:
        return "unknown"
    if pct <= 100:
        return "within"
    return "stretch" if pct <= stretch_pct else "beyond"


def opportunity_place_names(opp: OpportunityView) -> tuple[str, ...]:
    """The place names in an opportunity's place fields, sorted (see textindex.place_terms)."""
    names = {opp.local_authority, opp.cluster, opp.region, "West Midlands" if opp.in_west_midlands else None}
    return tuple(sorted(n for n in names if n))


def party_place_names(party: PartyView) -> tuple[str, ...]:
    """The place names in a party's place fields and service areas, sorted."""
    names = {party.local_authority, party.cluster, party.region, *party.service_areas}
    return tuple(sorted(n for n in names if n))


# --- location --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpportunityPlace:
    """An opportunity's place as comparison keys ("" when not given)."""

    local_authority: str
    cluster: str
    region: str
    nationwide: bool


@dataclass(frozen=True, slots=True)
class PartyPlace:
    """A party's place and service areas as comparison keys."""

    local_authority: str
    cluster: str
    region: str
    areas: frozenset[str]
    national: bool


def opportunity_place(opp: OpportunityView) -> OpportunityPlace:
    region = WEST_MIDLANDS if opp.in_west_midlands else match_key(opp.region or "")
    return OpportunityPlace(match_key(opp.local_authority or ""), match_key(opp.cluster or ""), region,
                            opp.effectively_nationwide)


def party_place(party: PartyView) -> PartyPlace:
    own = match_key(party.local_authority or "")
    areas = {match_key(a) for a in party.service_areas} - {""}
    if not areas and own:
        areas = {own}  # blank service areas mean the party's own authority (BRIEF, vcses.csv)
    return PartyPlace(own, match_key(party.cluster or ""), match_key(party.region or ""),
                      frozenset(areas), NATIONAL in areas)


def location_fit_keys(o: OpportunityPlace, p: PartyPlace) -> str:
    """``location_fit`` from precomputed keys (the bulk path); see ``location_fit``."""
    if o.local_authority and (o.local_authority == p.local_authority or o.local_authority in p.areas):
        return "local"
    if o.cluster and o.cluster == p.cluster:
        return "cluster"
    if o.region and (o.region == p.region or o.region in p.areas):
        return "region"
    if o.nationwide or p.national:
        return "national"
    return "outside"


def location_fit(opp: OpportunityView, party: PartyView) -> str:
    """Where the work is relative to the party, most specific first.

    ``local``: the party's own authority, or one its service areas name; ``cluster``: the party's cluster;
    ``region``: same region (both in the West Midlands) or the party serves that region by name;
    ``national``: the opportunity is nationwide (or names no place) or the party serves ``National``;
    otherwise ``outside``.
    """
    return location_fit_keys(opportunity_place(opp), party_place(party))


# --- deadline --------------------------------------------------------------------------------------


def days_to_deadline(deadline_at: datetime | None, as_of: date) -> int:
    """Calendar days from ``as_of`` to the deadline's date in UK local time; 9999 when unknown.

    A deadline of 23:30 UTC on 31 March in summer time is 00:30 on 1 April in the UK: the bidder reads
    1 April, so that is the day counted.
    """
    if deadline_at is None:
        return DEADLINE_UNKNOWN
    return (deadline_at.astimezone(LONDON).date() - as_of).days
