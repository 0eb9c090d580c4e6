"""Pair features: the flat facts the rules read (``broker.match.vocabulary``), built in bulk.

The only module that imports rapidfuzz. rapidfuzz is used where it is strongest: typo tolerance between
single words (optimal string alignment distance over every long party word against every opportunity word
in one ``process.cdist`` call per batch), for keywords and exclude keywords. String similarity of whole
texts is not relevance (it ranks near random on the labelled sets), so ``capability_score`` comes from the
relevance model (``broker.match.relevance``): the calibrated probability, in percent, that the VCSE would
call the notice relevant, with ``relevance_terms`` naming the terms, phrases, CPV groups and expansions
that carried it. Every feature of a pair depends only on that pair, the ``Levels`` and the relevance
model: explaining or replaying one pair gives the same facts as the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from broker.match import fit
from broker.match.levels import DEFAULT_LEVELS, Levels
from broker.match.model import OpportunityView, PartyView
from broker.match.relevance import RelevanceModel, default_model
from broker.match.textindex import (
    EMPTY_TERMS,
    analyse,
    phrase_stems,
    phrase_terms,
    place_terms,
    stem,
)
from broker.normalise.cpv import catalogue


class HasIds(Protocol):
    opportunity_id: str
    party_id: str


# --- prepared texts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Keyword:
    """A party keyword ready to match: its terms, or an acronym matched as written (``IT``, ``SEND``)."""

    text: str
    stems: tuple[str, ...]
    terms: tuple[str, ...]
    acronym: str = ""
    words: frozenset[str] = frozenset()


@lru_cache(maxsize=1 << 14)
def prepare_keyword(text: str) -> Keyword:
    """An ALL-CAPS word of 2-6 letters matches only that acronym, as written (Stotles' convention)."""
    raw = text.strip()
    if 2 <= len(raw) <= 6 and raw.isalnum() and raw.isupper():
        return Keyword(raw, (), (), raw)
    stems = phrase_stems(raw)
    return Keyword(raw, stems, phrase_terms(stems), "", analyse(raw).words)


@dataclass(frozen=True, slots=True)
class OppText:
    """An opportunity's terms by field, ready for scoring many parties against it."""

    text: frozenset[str]  # title, description and CPV label terms (keywords look here)
    buyer: frozenset[str]  # buyer name terms (exclude keywords also look here)
    acronyms: frozenset[str]
    buyer_acronyms: frozenset[str]
    words: frozenset[str]  # surface words of every field, for typo matching


def prepare_opportunity(opp: OpportunityView) -> OppText:
    title = analyse(opp.title)
    description = analyse(opp.description)
    labels = analyse("\n".join(_cpv_labels(opp.cpv_codes)))
    buyer = analyse(opp.buyer_name) if opp.buyer_name else EMPTY_TERMS
    return OppText(
        text=title.all | description.all | labels.all,
        buyer=buyer.all,
        acronyms=title.acronyms | description.acronyms,
        buyer_acronyms=buyer.acronyms,
        words=title.words | description.words | labels.words | buyer.words,
    )


def _cpv_labels(codes: Iterable[str]) -> list[str]:
    cat = catalogue()
    return [label for label in (cat.label(c) for c in codes) if label]


@dataclass(frozen=True, slots=True)
class PartyText:
    """A party's terms and keywords, ready for matching keywords against many opportunities."""

    terms: frozenset[str]  # capability and keyword terms (what a grouping's members cover together)
    keywords: tuple[Keyword, ...]
    excludes: tuple[Keyword, ...]
    words: frozenset[str]  # surface words of keywords and exclude keywords, for typo matching


def prepare_party(party: PartyView) -> PartyText:
    capability = analyse(party.capabilities)
    keywords = tuple(prepare_keyword(k) for k in party.keywords if k.strip())
    excludes = tuple(prepare_keyword(k) for k in party.exclude_keywords if k.strip())
    terms = capability.all.union(*((*kw.stems, *kw.terms) for kw in keywords))
    words = frozenset().union(*(kw.words for kw in (*keywords, *excludes)))
    return PartyText(terms, keywords, excludes, words)


# --- typo tolerance --------------------------------------------------------------------------------


class TypoMap:
    """Stem -> stems of the opportunity words within ``max_edits`` of one of its surface words.

    Built once for a batch with ``rapidfuzz.process.cdist`` (optimal string alignment distance), per first
    letter; looking a stem up then costs a dict access. Only words of ``min_length`` letters or more are
    tolerated, and the first letter must agree.
    """

    def __init__(self, party_words: Iterable[str], opp_words: Iterable[str], levels: Levels) -> None:
        self.neighbours: dict[str, frozenset[str]] = {}
        if levels.typo_max_edits <= 0:
            return
        shortest = max(1, levels.typo_min_length - levels.typo_max_edits)
        ours = _by_initial(w for w in party_words if len(w) >= levels.typo_min_length)
        theirs = _by_initial(w for w in opp_words if len(w) >= shortest)
        found: dict[str, set[str]] = {}
        for initial in sorted(ours.keys() & theirs.keys()):
            queries, choices = ours[initial], theirs[initial]
            dist = process.cdist(queries, choices, scorer=OSA.distance, score_cutoff=levels.typo_max_edits,
                                 dtype=np.int32, workers=1)
            for qi, ci in zip(*np.nonzero(dist <= levels.typo_max_edits), strict=True):
                a, b = stem(queries[qi]), stem(choices[ci])
                if a != b:
                    found.setdefault(a, set()).add(b)
        self.neighbours = {k: frozenset(v) for k, v in found.items()}

    def get(self, term: str) -> frozenset[str]:
        return self.neighbours.get(term, frozenset())


def _by_initial(words: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for w in sorted(set(words)):
        out.setdefault(w[0], []).append(w)
    return out


# --- pair features ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledKeyword:
    """A keyword with its typo-tolerant variants resolved for one batch."""

    acronym: str
    terms: tuple[str, ...]
    variants: tuple[tuple[str, ...], ...]  # term tuples of the typo variants

    def found_in(self, terms: frozenset[str], acronyms: frozenset[str]) -> bool:
        """Whole word or phrase (consecutive content words), plurals and small typos tolerated."""
        if self.acronym:
            return self.acronym in acronyms
        if self.terms and all(t in terms for t in self.terms):
            return True
        return any(all(t in terms for t in variant) for variant in self.variants)


def compile_keyword(kw: Keyword, typos: TypoMap) -> CompiledKeyword:
    """Resolve a keyword's typo variants (each word, or its typo neighbours) against a batch's words."""
    options = [(s, *sorted(typos.get(s))) for s in kw.stems]
    variants: list[tuple[str, ...]] = []
    if any(len(o) > 1 for o in options):
        variants = [phrase_terms(stems) for stems in _product(options, limit=64) if stems != kw.stems]
    return CompiledKeyword(kw.acronym, kw.terms, tuple(variants))


def _product(options: Sequence[tuple[str, ...]], limit: int) -> list[tuple[str, ...]]:
    combos: list[tuple[str, ...]] = [()]
    for choice in options:
        combos = [(*c, s) for c in combos for s in choice][:limit]
    return combos


@dataclass(frozen=True, slots=True)
class _PartyBatch:
    """A party prepared for one batch: its texts with typo neighbours and keywords resolved."""

    view: PartyView
    text: PartyText
    keywords: tuple[CompiledKeyword, ...]
    excludes: tuple[CompiledKeyword, ...]
    place: fit.PartyPlace
    place_terms: frozenset[str]
    fact: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _OppBatch:
    view: OpportunityView
    text: OppText
    place: fit.OpportunityPlace
    place_terms: frozenset[str]
    fact: dict[str, Any]
    everything: frozenset[str]  # text and buyer terms (exclude keywords look everywhere)
    all_acronyms: frozenset[str]


def _pair_only(o: _OppBatch, p: _PartyBatch, levels: Levels, model: RelevanceModel) -> dict[str, Any]:
    ot = o.text
    hits = sum(k.found_in(ot.text, ot.acronyms) for k in p.keywords) if p.keywords else 0
    excluded = sum(k.found_in(o.everything, o.all_acronyms) for k in p.excludes) if p.excludes else 0
    relevance = model.score(p.view, o.view)
    score = relevance.percent
    words, through = model.explain(p.view, relevance, o.view)
    pct = fit.value_to_capacity_pct(o.view, p.view)
    return {
        "capability_score": score,
        "capability_level": levels.capability_level(score),
        "relevance_terms": _carried_by(words, through),
        "keyword_hits": hits,
        "exclude_hits": excluded,
        "cpv_overlap": fit.cpv_relation(tuple(o.view.cpv_codes), tuple(p.view.cpv_codes)),
        "value_to_capacity_pct": pct,
        "value_fit": fit.value_fit(o.view, p.view, levels.value_stretch_pct, pct),
        "location_fit": fit.location_fit_keys(o.place, p.place),
        **fit.eligibility_pair_facts(o.view, p.view),
    }


def _carried_by(words: str, through: str) -> str:
    """The reason's account of what carried a match: the party's own words, then any expansions."""
    if words and through:
        return f"{words}; and through {through}"
    return words or (f"through {through}" if through else "no shared terms")


# --- opportunity and party facts -------------------------------------------------------------------


def _gbp(pence: int | None) -> int:
    return 0 if pence is None or pence <= 0 else pence // 100


def _tri(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def opportunity_fact(opp: OpportunityView, as_of: date) -> dict[str, Any]:
    """The ``opportunity`` facts of the vocabulary (money in whole pounds, unknowns spelled out)."""
    known = fit.opportunity_value_pence(opp) is not None
    return {
        "status": opp.status,
        "deadline_known": opp.deadline_at is not None,
        "days_to_deadline": fit.days_to_deadline(opp.deadline_at, as_of),
        "value_known": known,
        "value_min_gbp": _gbp(opp.value_min_pence or opp.value_max_pence) if known else 0,
        "value_max_gbp": _gbp(opp.value_max_pence or opp.value_min_pence) if known else 0,
        "is_framework": opp.is_framework,
        "is_dps": opp.is_dps,
        "nationwide": opp.effectively_nationwide,
        "in_west_midlands": opp.in_west_midlands,
        "opportunity_cluster": opp.cluster or "",
        "opportunity_local_authority": opp.local_authority or "",
        "vcse_suitable": _tri(opp.vcse_suitable),
        "sme_suitable": _tri(opp.sme_suitable),
        "reserved_for_vcse": opp.reserved_for_vcse,
        "notice_type": opp.notice_type or "",
        "source": opp.source,
        "remote_delivery": fit.remote_delivery(opp),
    }


def party_fact(party: PartyView) -> dict[str, Any]:
    """The ``party`` facts of the vocabulary."""
    return {
        "party_type": party.party_type,
        "digest_opt_in": party.digest_opt_in,
        "has_capabilities": bool(party.capabilities.strip()),
        "capacity_known": bool(party.max_contract_value_pence and party.max_contract_value_pence > 0),
        "max_contract_value_gbp": _gbp(party.max_contract_value_pence),
        "min_contract_value_gbp": _gbp(party.min_contract_value_pence),
        "annual_turnover_gbp": _gbp(party.annual_turnover_pence),
        "employees": max(0, party.employees or 0),
        "member_count": len(party.member_ids) if party.member_ids else 1,
        "party_cluster": party.cluster or "",
        "serves_national": fit.serves_national(party),
    }


# --- bulk ------------------------------------------------------------------------------------------


def build_pair_facts(candidates: Sequence[HasIds], opps_by_id: Mapping[str, OpportunityView],
                     parties_by_id: Mapping[str, PartyView], *, as_of: date,
                     levels: Levels = DEFAULT_LEVELS, model: RelevanceModel | None = None) -> list[dict[str, Any]]:
    """The ``pair`` facts of every candidate, in the candidates' order (see ``iter_pair_facts``).

    Raises:
        KeyError: a candidate names an opportunity or party missing from the mappings.
    """
    return [facts for _, facts in iter_pair_facts(candidates, opps_by_id, parties_by_id, as_of=as_of,
                                                  levels=levels, model=model)]


def iter_pair_facts(candidates: Iterable[HasIds], opps_by_id: Mapping[str, OpportunityView],
                    parties_by_id: Mapping[str, PartyView], *, as_of: date, levels: Levels = DEFAULT_LEVELS,
                    batch_pairs: int = 50_000, model: RelevanceModel | None = None) -> Iterator[tuple[HasIds, dict[str, Any]]]:
    """``(candidate, pair facts)`` for every candidate, in order, in bounded memory.

    Candidates are taken ``batch_pairs`` at a time: each batch prepares its opportunities once, finds typo
    neighbours for the whole batch in one rapidfuzz call per initial letter, and then costs a few set
    operations a pair. Prepared parties are kept across batches. Every pair's facts depend only on that
    pair and ``levels``, so they equal ``pair_features`` for the pair alone whatever the batching.

    Raises:
        KeyError: a candidate names an opportunity or party missing from the mappings.
    """
    parties: dict[str, tuple[PartyText, fit.PartyPlace, frozenset[str], dict[str, Any]]] = {}
    model = model or default_model()
    batch: list[HasIds] = []
    for c in candidates:
        batch.append(c)
        if len(batch) >= batch_pairs:
            yield from _facts_batch(batch, opps_by_id, parties_by_id, parties, as_of, levels, model)
            batch = []
    if batch:
        yield from _facts_batch(batch, opps_by_id, parties_by_id, parties, as_of, levels, model)


def _facts_batch(batch: list[HasIds], opps_by_id: Mapping[str, OpportunityView],
                 parties_by_id: Mapping[str, PartyView],
                 prepared: dict[str, tuple[PartyText, fit.PartyPlace, frozenset[str], dict[str, Any]]],
                 as_of: date, levels: Levels, model: RelevanceModel) -> Iterator[tuple[HasIds, dict[str, Any]]]:
    opp_ids = sorted({c.opportunity_id for c in batch})
    party_ids = sorted({c.party_id for c in batch})
    otexts = {i: prepare_opportunity(opps_by_id[i]) for i in opp_ids}
    for i in party_ids:
        if i not in prepared:
            view = parties_by_id[i]
            prepared[i] = (prepare_party(view), fit.party_place(view), place_terms(fit.party_place_names(view)),
                           party_fact(view))
    typos = TypoMap((w for i in party_ids for w in prepared[i][0].words),
                    (w for o in otexts.values() for w in o.words), levels)
    opps = {i: _opp_batch(opps_by_id[i], otexts[i], as_of) for i in opp_ids}
    compiled: dict[Keyword, CompiledKeyword] = {}
    parties = {i: _party_batch(parties_by_id[i], *prepared[i], typos, compiled) for i in party_ids}
    for c in batch:
        o, p = opps[c.opportunity_id], parties[c.party_id]
        yield c, {**_pair_only(o, p, levels, model), **o.fact, **p.fact}


def _opp_batch(view: OpportunityView, text: OppText, as_of: date) -> _OppBatch:
    return _OppBatch(view, text, fit.opportunity_place(view), place_terms(fit.opportunity_place_names(view)),
                     opportunity_fact(view, as_of),
                     text.text | text.buyer, text.acronyms | text.buyer_acronyms)


def _party_batch(view: PartyView, text: PartyText, place: fit.PartyPlace, places: frozenset[str],
                 fact: dict[str, Any], typos: TypoMap, compiled: dict[Keyword, CompiledKeyword]) -> _PartyBatch:
    def comp(kw: Keyword) -> CompiledKeyword:
        if kw not in compiled:
            compiled[kw] = compile_keyword(kw, typos)
        return compiled[kw]

    return _PartyBatch(view, text, tuple(comp(k) for k in text.keywords),
                       tuple(comp(k) for k in text.excludes), place, places, fact)


@dataclass(frozen=True, slots=True)
class _Pair:
    opportunity_id: str
    party_id: str


def pair_features(opportunity: OpportunityView, party: PartyView, *, as_of: date,
                  levels: Levels = DEFAULT_LEVELS, model: RelevanceModel | None = None) -> dict[str, Any]:
    """The ``pair`` facts of one opportunity and one party (the same as the bulk path gives)."""
    return build_pair_facts([_Pair(opportunity.id, party.id)], {opportunity.id: opportunity},
                            {party.id: party}, as_of=as_of, levels=levels, model=model)[0]
