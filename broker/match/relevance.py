"""The relevance model: how likely a VCSE is to call a notice relevant, from what it says it does.

A BM25F ranking (docs/relevance.md): the notice is a document of four fields (title, description, the
labels of its CPV codes, buyer name), the VCSE's capability text and keywords are the query.

* Terms are stems and two-stem phrases (``broker.match.textindex``), so "domestic abuse" as a phrase
  counts on top of its two words; procurement boilerplate ("services", "provision", "tender", ...) weighs
  ``generic_weight`` in the query, place names nothing (they are location, not capability).
* Per field, a term's frequency is length-normalised (``b``) and weighted (title 3, CPV labels 1.5,
  description 1, buyer 0.5); the sum saturates with ``k1`` and is multiplied by the term's idf, taken from
  the reference statistics (``broker.match.termstats``).
* Query understanding: each specific word of the query brings the terms the corpus relates to it
  (co-occurrence lift), at ``expansion_weight``; the CPV groups the query's words predict become query
  terms that match notices coded in those groups. Every expansion keeps its origin, for the reasons.
* Feedback: a party's own term weights learned from its "interested" / "not relevant" feedback
  (``PartyView.feedback_terms``) are added to its query (Rocchio).

The raw score is calibrated into a probability of being judged relevant by a logistic function of
``log(1 + raw)`` and ``raw / best possible`` (the share of the query's own weight the notice covers),
fitted on held-out folds of the labelled tune split (bench/relevance_tune.py). ``capability_score`` is
that probability in percent. A pair's score depends only on the pair, the reference statistics and these
parameters: candidates (blocking) and pair features compute it the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from broker.errors import ConfigError
from broker.match import fit
from broker.match.model import OpportunityView, PartyView
from broker.match.termstats import TermStats, cpv_groups, load_term_stats
from broker.match.textindex import (
    count_terms,
    is_generic,
    phrase_stems,
    phrase_terms,
    place_terms,
    surface_words,
)
from broker.normalise.cpv import catalogue

CPV_PREFIX = "cpv:"
DOC_CACHE = 2048


@dataclass(frozen=True)
class RelevanceParams:
    """Every constant of the relevance model; recorded with each run (``to_json``)."""

    k1: float = 1.2
    title_weight: float = 5.0
    description_weight: float = 1.0
    cpv_weight: float = 1.5
    buyer_weight: float = 0.5
    title_b: float = 0.5
    description_b: float = 0.75
    cpv_b: float = 0.5
    buyer_b: float = 0.5
    capability_weight: float = 0.6
    keyword_weight: float = 3.0
    phrase_weight: float = 1.0
    generic_weight: float = 0.3
    expansion_weight: float = 0.3
    max_expansions: int = 12
    cpv_inference_weight: float = 0.6
    cpv_match_value: float = 2.0  # a notice coded in an inferred group: worth an idf of this
    max_inferred_groups: int = 3
    min_group_evidence: float = 0.5
    own_cpv_weight: float = 1.0  # the party's own CPV codes, as query terms matching notices in their groups
    # calibration: P(relevant) = 1 / (1 + exp(-(intercept + score_slope * log1p(raw) + norm_slope * norm)))
    intercept: float = -9.649
    score_slope: float = 2.066
    norm_slope: float = 0.464

    def __post_init__(self) -> None:
        if self.k1 <= 0 or min(self.title_b, self.description_b, self.cpv_b, self.buyer_b) < 0 \
                or max(self.title_b, self.description_b, self.cpv_b, self.buyer_b) > 1:
            raise ConfigError("relevance k1 must be positive and each b within 0-1")
        weights = (self.title_weight, self.description_weight, self.cpv_weight, self.buyer_weight,
                   self.capability_weight, self.keyword_weight, self.phrase_weight, self.generic_weight,
                   self.expansion_weight, self.cpv_inference_weight, self.cpv_match_value)
        if min(weights) < 0 or self.max_expansions < 0 or self.max_inferred_groups < 0:
            raise ConfigError("relevance weights and limits must not be negative")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RelevanceParams:
        try:
            return cls(**dict(data or {}))
        except TypeError as exc:
            raise ConfigError(f"bad relevance parameters: {exc}") from None


DEFAULT_RELEVANCE = RelevanceParams()


@dataclass(frozen=True, slots=True)
class QueryTerm:
    """A weighted query term and where it came from (``capability``, ``keyword``, ``related``, ``cpv``,
    ``feedback``); ``origin`` is the party's own word an expansion came from."""

    weight: float
    kind: str
    origin: str = ""


@dataclass(frozen=True)
class Query:
    terms: Mapping[str, QueryTerm]  # sorted by term
    best: float  # the score of a notice that matched every term as strongly as possible
    surface: Mapping[str, str]  # stem -> the party's own word


@dataclass(frozen=True, slots=True)
class Relevance:
    """A pair's relevance: raw BM25F score, its share of the best possible, probability and evidence."""

    raw: float
    norm: float
    probability: float
    evidence: tuple[tuple[str, float], ...]  # (term, contribution), heaviest first
    against: tuple[tuple[str, float], ...] = ()  # negative contributions (feedback), most negative first

    @property
    def percent(self) -> int:
        return min(100, int(100.0 * self.probability + 0.5))


class RelevanceModel:
    """Scores (party, notice) pairs; documents and queries are cached by their view (immutable)."""

    def __init__(self, params: RelevanceParams = DEFAULT_RELEVANCE, stats: TermStats | None = None) -> None:
        self.params = params
        self.stats = stats or load_term_stats()
        p = params
        self._fields = (("title", p.title_weight, p.title_b), ("description", p.description_weight, p.description_b),
                        ("cpv", p.cpv_weight, p.cpv_b), ("buyer", p.buyer_weight, p.buyer_b))
        self._docs: dict[OpportunityView, dict[str, float]] = {}
        self._queries: dict[PartyView, Query] = {}
        self._surfaces: dict[OpportunityView, dict[str, str]] = {}
        self._idf: dict[str, float] = {}

    def idf(self, term: str) -> float:
        value = self._idf.get(term)
        if value is None:
            value = self._idf[term] = self.stats.idf(term)
        return value

    # --- documents ---------------------------------------------------------------------------------

    def document(self, opp: OpportunityView) -> dict[str, float]:
        """Term -> BM25F weight of the term in this notice (idf included), sorted by term.

        The most recent ``DOC_CACHE`` notices are kept: pairs come notice by notice, and a national
        night's 10,000 full documents would cost far more memory than they save time.
        """
        doc = self._docs.get(opp)
        if doc is None:
            doc = self._docs[opp] = self.compute_document(opp)
            if len(self._docs) > DOC_CACHE:
                del self._docs[next(iter(self._docs))]  # the oldest (dicts keep insertion order)
        return doc

    def compute_document(self, opp: OpportunityView) -> dict[str, float]:
        """``document`` without the cache."""
        labels = "\n".join(filter(None, (catalogue().label(c) for c in opp.cpv_codes)))
        texts = {"title": opp.title, "description": opp.description, "cpv": labels, "buyer": opp.buyer_name}
        tf: dict[str, float] = {}
        for name, weight, b in self._fields:
            counts, length = count_terms(texts[name])
            if not counts:
                continue
            norm = weight / (1.0 - b + b * length / max(self.stats.avg_length[name], 1.0))
            for t, n in counts.items():
                tf[t] = tf.get(t, 0.0) + n * norm
        k1 = self.params.k1
        # The notice's own place names are location evidence (fit.location_fit), never capability.
        places = place_terms(fit.opportunity_place_names(opp))
        out = {t: self.idf(t) * v * (k1 + 1.0) / (v + k1) for t, v in sorted(tf.items()) if t not in places}
        for g in cpv_groups(opp.cpv_codes):
            out[CPV_PREFIX + g] = self.params.cpv_match_value
        return out

    # --- queries -----------------------------------------------------------------------------------

    def query(self, party: PartyView) -> Query:
        q = self._queries.get(party)
        if q is None:
            q = self._queries[party] = self._query(party)
        return q

    def _query(self, party: PartyView) -> Query:
        p = self.params
        places = place_terms(fit.party_place_names(party))
        terms: dict[str, QueryTerm] = {}

        def add(term: str, weight: float, kind: str, origin: str = "") -> None:
            if term in places or weight <= 0:
                return
            if is_generic(term):
                weight *= p.generic_weight
            elif " " in term:
                weight *= p.phrase_weight
            old = terms.get(term)
            if old is None or old.weight < weight:
                terms[term] = QueryTerm(weight, kind, origin)

        counts, _ = count_terms(party.capabilities)
        for t in sorted(counts):
            add(t, p.capability_weight, "capability")
        for kw in party.keywords:
            stems = phrase_stems(kw)
            for t in (*stems, *phrase_terms(stems)):
                add(t, p.keyword_weight, "keyword")
        for g in cpv_groups(party.cpv_codes):
            terms[CPV_PREFIX + g] = QueryTerm(p.own_cpv_weight, "cpv-own")
        own = dict(terms)
        self._expand(own, terms)
        self._infer_cpv(own, terms)
        for t, milli in party.feedback_terms:
            old = terms.get(t)
            weight = (old.weight if old else 0.0) + milli / 1000.0
            terms[t] = QueryTerm(weight, "feedback" if old is None else old.kind, old.origin if old else "")
        # A negative weight (feedback pushing away from a word) stays: notices with that word score less.
        kept = {t: terms[t] for t in sorted(terms) if terms[t].weight != 0}
        best = math.fsum(q.weight * self._best(t) for t, q in kept.items() if q.weight > 0)
        return Query(kept, best, _surface(party))

    def _best(self, term: str) -> float:
        return self.params.cpv_match_value if term.startswith(CPV_PREFIX) else self.idf(term) * (self.params.k1 + 1)

    def _expand(self, own: Mapping[str, QueryTerm], terms: dict[str, QueryTerm]) -> None:
        """Related terms of the query's specific words (never of generic ones), strongest first."""
        p = self.params
        found: dict[str, tuple[float, str]] = {}
        for t, q in own.items():
            if " " in t or is_generic(t):
                continue
            for u, share in self.stats.related.get(t, ()):
                if u in own or is_generic(u):
                    continue
                w = p.expansion_weight * share * q.weight
                if u not in found or found[u][0] < w:
                    found[u] = (w, t)
        best = sorted(found.items(), key=lambda kv: (-kv[1][0], kv[0]))[: p.max_expansions]
        for u, (w, origin) in best:
            terms[u] = QueryTerm(w, "related", origin)

    def _infer_cpv(self, own: Mapping[str, QueryTerm], terms: dict[str, QueryTerm]) -> None:
        """CPV groups the query's words predict in the corpus, each kept with the word that says most."""
        p = self.params
        evidence: dict[str, float] = {}
        origin: dict[str, tuple[float, str]] = {}
        for t, q in own.items():
            for g, share in self.stats.cpv.get(t, ()):
                w = share * min(q.weight, 1.0)
                evidence[g] = evidence.get(g, 0.0) + w
                if g not in origin or origin[g][0] < w:
                    origin[g] = (w, t)
        ranked = sorted(((-e, g) for g, e in evidence.items() if e >= p.min_group_evidence))
        for neg, g in ranked[: p.max_inferred_groups]:
            terms[CPV_PREFIX + g] = QueryTerm(p.cpv_inference_weight * min(1.0, -neg), "cpv", origin[g][1])

    # --- scoring -----------------------------------------------------------------------------------

    def score(self, party: PartyView, opp: OpportunityView) -> Relevance:
        q, doc = self.query(party), self.document(opp)
        return self.score_vectors(q, doc)

    def score_vectors(self, q: Query, doc: Mapping[str, float]) -> Relevance:
        small, large = (q.terms, doc) if len(q.terms) <= len(doc) else (doc, q.terms)
        shared = sorted(t for t in small if t in large)
        contrib = [(t, q.terms[t].weight * doc[t]) for t in shared]
        raw = math.fsum(c for _, c in contrib)
        norm = raw / q.best if q.best > 0 else 0.0
        evidence = tuple(sorted(((t, c) for t, c in contrib if c > 0), key=lambda tc: (-tc[1], tc[0])))
        against = tuple(sorted(((t, c) for t, c in contrib if c < 0), key=lambda tc: (tc[1], tc[0])))
        return Relevance(raw, norm, self.calibrate(raw, norm), evidence, against)

    def calibrate(self, raw: float, norm: float) -> float:
        """P(judged relevant) for a raw score and its share of the best possible."""
        if raw <= 0:
            return 0.0
        p = self.params
        z = p.intercept + p.score_slope * math.log1p(raw) + p.norm_slope * norm
        return 1.0 / (1.0 + math.exp(-z))

    # --- explanations ------------------------------------------------------------------------------

    def explain(self, party: PartyView, rel: Relevance, opp: OpportunityView | None = None,
                limit: int = 4) -> tuple[str, str]:
        """(the terms that carried the match, the expansions among them), in words, for the reasons.

        Words are shown as the party wrote them; a stem the party never wrote (an expansion, a learned
        term) as the notice ``opp`` writes it, when given.
        """
        q = self.query(party)
        if opp is not None and any(s not in q.surface for t, _ in rel.evidence[:2 * limit] for s in t.split(" ")):
            q = Query(q.terms, q.best, {**self._notice_surface(opp), **q.surface})
        words, through = [], []
        for t in _without_parts([t for t, _ in rel.evidence[:2 * limit]])[:limit]:
            qt = q.terms[t]
            shown = self.display(t, q)
            if qt.kind == "related":
                through.append(f"'{shown}' (related to your '{self.display(qt.origin, q)}')")
            elif qt.kind == "cpv":
                through.append(f"CPV {t[len(CPV_PREFIX):]} '{_group_label(t)}' (inferred from your "
                               f"'{self.display(qt.origin, q)}')")
            elif qt.kind == "cpv-own":
                through.append(f"CPV {t[len(CPV_PREFIX):]} '{_group_label(t)}' (one of your codes)")
            elif qt.kind == "feedback":
                through.append(f"'{shown}' (learned from your feedback)")
            else:
                words.append(f"'{shown}'")
        if rel.against:
            held = ", ".join(f"'{self.display(t, q)}'" for t, _ in rel.against[:2])
            through.append(f"held back by your feedback on {held}")
        return ", ".join(words), "; ".join(through)

    def _notice_surface(self, opp: OpportunityView) -> dict[str, str]:
        found = self._surfaces.get(opp)
        if found is None:
            found = self._surfaces[opp] = surface_words(f"{opp.title}\n{opp.description}")
            if len(self._surfaces) > DOC_CACHE:
                del self._surfaces[next(iter(self._surfaces))]
        return found

    def display(self, term: str, q: Query) -> str:
        return " ".join(q.surface.get(s, s) for s in term.split(" "))


def _without_parts(terms: list[str]) -> list[str]:
    """Terms in order, leaving out a word already shown inside a heavier or lighter phrase of the list
    ("domestic abuse" makes "domestic" and "abuse" redundant)."""
    inside = {w for t in terms if " " in t for w in t.split(" ")}
    return [t for t in terms if " " in t or t not in inside]


@lru_cache(maxsize=1)
def default_model() -> RelevanceModel:
    """The model with the default parameters and the shipped statistics (one per process)."""
    return RelevanceModel()


def _surface(party: PartyView) -> dict[str, str]:
    return surface_words("\n".join((party.capabilities, *party.keywords)))


def _group_label(term: str) -> str:
    code = term[len(CPV_PREFIX):].ljust(8, "0")
    return (catalogue().label(code) or "").split(",")[0][:60]
