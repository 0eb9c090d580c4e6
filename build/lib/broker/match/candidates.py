"""Candidate generation (blocking): which (opportunity, party) pairs are worth scoring at all.

Cheap and high-recall, never every pair (BRIEF, Scale). A pair is *proposed* when

1. the opportunity is live (not closed, cancelled or awarded; deadline not passed on ``as_of``);
2. the party's service areas can cover the opportunity's place (``fit.location_fit`` is not ``outside``);
3. they share a specific term (a stemmed word or two-word phrase of the party's capabilities or keywords
   found in the opportunity's title, description or CPV labels) or their CPV codes share a division;
4. the pair ranks in the opportunity's top ``top_k`` parties by blocking score.

The blocking score is the cosine of tf-idf style term vectors (title 3, CPV labels 2, description 1 on the
opportunity side; capabilities 1, keywords 2 on the party side), where the idf is the smaller of the two
sides' idfs, so a word common among notices ("services") or among VCSEs ("community") weighs little;
words on more than ``max_df_fraction`` of either side and generic words never propose on their own.
CPV adds ``cpv_weight`` x 0.2 per shared level (division, group, class, category, code). Scores are kept
in thousandths (integers) and ties go to the smaller party id, so the output never depends on input order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np

from broker.errors import ConfigError, InputError, NotFound
from broker.match import fit
from broker.match.model import OpportunityView, PartyView
from broker.match.textindex import (
    InvertedIndex,
    Terms,
    Vocabulary,
    analyse,
    is_generic,
    phrase_stems,
    phrase_terms,
    place_terms,
    stem,
)
from broker.normalise.cpv import canonical_code, catalogue, significant_digits

INACTIVE_STATUSES = ("closed", "cancelled", "awarded")


@dataclass(frozen=True)
class CandidateParams:
    """Blocking parameters; record ``to_json()`` in the run manifest."""

    top_k: int = 200
    max_df_fraction: float = 0.15
    df_min_collection: int = 20  # document frequencies only prune on collections at least this big
    title_weight: float = 3.0
    cpv_label_weight: float = 2.0
    description_weight: float = 1.0
    capability_weight: float = 1.0
    keyword_weight: float = 2.0
    cpv_weight: float = 0.15
    min_cpv_digits: int = 2  # 2 = same division proposes; 3 group, 4 class, 5 category
    skip_inactive: bool = True
    chunk_rows: int = 256

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.chunk_rows < 1:
            raise ConfigError("top_k and chunk_rows must be at least 1")
        if not 0.0 < self.max_df_fraction <= 1.0:
            raise ConfigError(f"max_df_fraction must be in (0, 1], got {self.max_df_fraction}")
        if not 2 <= self.min_cpv_digits <= 5:
            raise ConfigError(f"min_cpv_digits must be 2 (division) to 5 (category), got {self.min_cpv_digits}")
        weights = (self.title_weight, self.cpv_label_weight, self.description_weight, self.capability_weight,
                   self.keyword_weight, self.cpv_weight)
        if min(weights) < 0:
            raise ConfigError("blocking weights must not be negative")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_PARAMS = CandidateParams()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A proposed pair and why it was proposed."""

    opportunity_id: str
    party_id: str
    score: int  # blocking score in thousandths
    rank: int  # 1 = the opportunity's best-scoring party
    shared_terms: tuple[str, ...]  # the heaviest shared terms, as words ("domestic abuse")
    cpv_relation: str  # fit.cpv_relation of the two code lists
    location_fit: str

    def reasons(self) -> tuple[str, ...]:
        """Why the pair was proposed, in words."""
        out = []
        if self.shared_terms:
            out.append("shares " + ", ".join(f'"{t}"' for t in self.shared_terms))
        if self.cpv_relation not in ("none", "no_codes"):
            out.append(f"CPV codes related at {self.cpv_relation} level")
        out.append(f"location: {self.location_fit}")
        return tuple(out)


class BlockingIndex:
    """Term and CPV indexes over a set of opportunities and parties, answering candidate queries.

    Args:
        opportunities: all opportunities to consider (e.g. every open one); inactive ones are skipped.
        parties: all parties.
        as_of: the run's business date (deadlines before it are past).
        params: blocking parameters.

    Raises:
        InputError: two opportunities or two parties share an id.
    """

    def __init__(self, opportunities: Iterable[OpportunityView], parties: Iterable[PartyView], *,
                 as_of: date, params: CandidateParams = DEFAULT_PARAMS) -> None:
        self.params = params
        self.as_of = as_of
        self.opps = _sorted_unique(opportunities, "opportunity")
        self.parties = _sorted_unique(parties, "party")
        self.opp_pos = {o.id: i for i, o in enumerate(self.opps)}
        self.party_pos = {p.id: i for i, p in enumerate(self.parties)}
        self.inactive = {o.id: r for o in self.opps if (r := self._inactive_reason(o))}
        self.active = np.array([i for i, o in enumerate(self.opps) if o.id not in self.inactive], dtype=np.int64)
        self._surface: dict[str, str] = {}
        self._display_cache: dict[int, str] = {}
        opp_terms = [self._opp_terms(o) if o.id not in self.inactive else {} for o in self.opps]
        party_terms = [self._party_terms(p) for p in self.parties]
        self._build_text(opp_terms, party_terms)
        self._build_cpv()
        self._build_places()

    # --- construction ------------------------------------------------------------------------------

    def _inactive_reason(self, o: OpportunityView) -> str | None:
        if not self.params.skip_inactive:
            return None
        if o.status in INACTIVE_STATUSES:
            return f"the opportunity is {o.status}"
        if fit.days_to_deadline(o.deadline_at, self.as_of) < 0:
            day = o.deadline_at.astimezone(fit.LONDON).date() if o.deadline_at else None
            return f"its deadline ({day}) had passed on {self.as_of}"
        return None

    def _remember(self, terms: Terms) -> Terms:
        for w in terms.words:
            s = stem(w)
            if s not in self._surface or w < self._surface[s]:
                self._surface[s] = w
        return terms

    def _opp_terms(self, o: OpportunityView) -> dict[str, float]:
        p = self.params
        labels = "\n".join(filter(None, (catalogue().label(c) for c in o.cpv_codes)))
        out: dict[str, float] = {}
        for text, weight in ((o.description, p.description_weight), (labels, p.cpv_label_weight),
                             (o.title, p.title_weight)):
            for t in self._remember(analyse(text)).all:
                out[t] = max(out.get(t, 0.0), weight)
        return out

    def _party_terms(self, party: PartyView) -> dict[str, float]:
        p = self.params
        out = dict.fromkeys(self._remember(analyse(party.capabilities)).all, p.capability_weight)
        for kw in party.keywords:
            self._remember(analyse(kw))
            stems = phrase_stems(kw)
            for t in (*stems, *phrase_terms(stems)):
                out[t] = max(out.get(t, 0.0), p.keyword_weight)
        return out

    def _build_text(self, opp_terms: list[dict[str, float]], party_terms: list[dict[str, float]]) -> None:
        n_o, n_p = len(self.active), len(self.parties)
        df_o = Counter(t for d in opp_terms for t in d)
        df_p = Counter(t for d in party_terms for t in d)
        self.idf: dict[str, float] = {}
        self.common_terms: dict[str, str] = {}  # shared but not proposing: term -> why
        self.places = places = self._place_terms()
        for t in sorted(df_o.keys() & df_p.keys()):
            why = "a place name" if t in places else self._too_common(t, df_o[t], n_o, df_p[t], n_p)
            if why:
                self.common_terms[t] = why
            else:
                self.idf[t] = min(math.log((1 + n_o) / (1 + df_o[t])), math.log((1 + n_p) / (1 + df_p[t]))) + 1
        self.vocab = Vocabulary(self.idf)
        self.opp_vectors = [self._vector(d) for d in opp_terms]
        self.party_vectors = [self._vector(d) for d in party_terms]
        self.party_index = InvertedIndex(self.party_vectors, len(self.vocab))
        self.opp_index = InvertedIndex(self.opp_vectors, len(self.vocab))
        self.opp_rows = _RowMatrix(self.opp_vectors)
        self.party_rows = _RowMatrix(self.party_vectors)

    def _place_terms(self) -> frozenset[str]:
        """Place names are location evidence (fit.location_fit), never shared capability."""
        names: set[str] = {"West Midlands"}
        for o in self.opps:
            names.update(n for n in (o.local_authority, o.cluster, o.region) if n)
        for p in self.parties:
            names.update(n for n in (p.local_authority, p.cluster, p.region, *p.service_areas) if n)
        return place_terms(tuple(sorted(names)))

    def _too_common(self, term: str, df_o: int, n_o: int, df_p: int, n_p: int) -> str | None:
        if is_generic(term):
            return "a generic word"
        limit, floor = self.params.max_df_fraction, self.params.df_min_collection
        if n_o >= floor and df_o > limit * n_o:
            return f"in {df_o} of {n_o} opportunities"
        if n_p >= floor and df_p > limit * n_p:
            return f"in {df_p} of {n_p} parties"
        return None

    def _vector(self, terms: dict[str, float]) -> dict[int, float]:
        ids = self.vocab.ids
        raw = {ids[t]: w * self.idf[t] for t, w in terms.items() if t in ids}
        norm = math.sqrt(math.fsum(v * v for v in raw.values()))
        return {k: raw[k] / norm for k in sorted(raw)} if norm else {}

    def _build_cpv(self) -> None:
        """CPV code prefixes (from the division down) as terms; each shared prefix adds 0.2."""
        opp_keys = [_cpv_keys(o.cpv_codes, self.params.min_cpv_digits) if o.id not in self.inactive else ()
                    for o in self.opps]
        party_keys = [_cpv_keys(p.cpv_codes, self.params.min_cpv_digits) for p in self.parties]
        self.cpv_vocab = Vocabulary(k for keys in (*opp_keys, *party_keys) for k in keys)
        ids = self.cpv_vocab.ids
        opp_vecs = [{ids[k]: 1.0 for k in sorted(keys)} for keys in opp_keys]
        party_vecs = [{ids[k]: 0.2 for k in sorted(keys)} for keys in party_keys]
        self.cpv_party_index = InvertedIndex(party_vecs, len(self.cpv_vocab))
        self.cpv_opp_index = InvertedIndex(opp_vecs, len(self.cpv_vocab))
        self.cpv_opp_rows = _RowMatrix(opp_vecs)
        self.cpv_party_rows = _RowMatrix(party_vecs)

    def _build_places(self) -> None:
        self.opp_places = [fit.opportunity_place(o) for o in self.opps]
        self.party_places = [fit.party_place(p) for p in self.parties]
        self.national = np.array([pl.national for pl in self.party_places], dtype=bool)
        by_area: dict[str, list[int]] = {}
        by_cluster: dict[str, list[int]] = {}
        by_region: dict[str, list[int]] = {}
        for i, pl in enumerate(self.party_places):
            for key in sorted({pl.local_authority, *pl.areas} - {""}):
                by_area.setdefault(key, []).append(i)
            if pl.cluster:
                by_cluster.setdefault(pl.cluster, []).append(i)
            if pl.region:
                by_region.setdefault(pl.region, []).append(i)
        self.by_area = {k: np.array(v, dtype=np.int64) for k, v in by_area.items()}
        self.by_cluster = {k: np.array(v, dtype=np.int64) for k, v in by_cluster.items()}
        self.by_region = {k: np.array(v, dtype=np.int64) for k, v in by_region.items()}

    # --- queries -----------------------------------------------------------------------------------

    def _location_mask(self, row: int) -> np.ndarray:
        """Parties whose ``location_fit`` with this opportunity is not ``outside`` (see fit.location_fit)."""
        o = self.opp_places[row]
        if o.nationwide:
            return np.ones(len(self.parties), dtype=bool)
        mask = self.national.copy()
        for key, table in ((o.local_authority, self.by_area), (o.cluster, self.by_cluster),
                           (o.region, self.by_region), (o.region, self.by_area)):
            if key and key in table:
                mask[table[key]] = True
        return mask

    def _scores(self, rows: np.ndarray) -> Iterable[tuple[int, np.ndarray]]:
        """(opportunity row, integer blocking score of every party), chunk by chunk."""
        n_p = len(self.parties)
        for start in range(0, len(rows), self.params.chunk_rows):
            chunk = rows[start:start + self.params.chunk_rows]
            size = len(chunk) * n_p
            q, docs, contrib = self.party_index.gather(*self.opp_rows.triples(chunk))
            # (bincount of nothing is an int array: make it float either way)
            total = np.bincount(q * n_p + docs, weights=contrib, minlength=size).astype(np.float64, copy=False)
            q, docs, contrib = self.cpv_party_index.gather(*self.cpv_opp_rows.triples(chunk))
            if len(q):
                cpv = np.bincount(q * n_p + docs, weights=contrib, minlength=size)
                np.minimum(cpv, 1.0, out=cpv)
                cpv *= self.params.cpv_weight
                total += cpv
            total *= 1000.0
            np.rint(total, out=total)
            total = total.astype(np.int64)
            for i, row in enumerate(chunk):
                yield int(row), total[i * n_p:(i + 1) * n_p]

    def _ranked(self, row: int, scores: np.ndarray) -> np.ndarray:
        """Proposable party indices of one opportunity, best first (score desc, then party id)."""
        nz = np.flatnonzero((scores > 0) & self._location_mask(row))
        return nz[np.lexsort((nz, -scores[nz]))]

    def _touched_rows(self, party_rows: np.ndarray) -> np.ndarray:
        """Active opportunity rows sharing any proposing term or CPV prefix with the given parties."""
        _, docs, _ = self.opp_index.gather(*self.party_rows.triples(party_rows))
        _, cdocs, _ = self.cpv_opp_index.gather(*self.cpv_party_rows.triples(party_rows))
        return np.union1d(docs, cdocs).astype(np.int64)

    def candidates(self, opportunity_ids: Iterable[str] | None = None,
                   party_ids: Iterable[str] | None = None) -> list[Candidate]:
        """Proposed pairs as a list; see ``iter_candidates``."""
        return list(self.iter_candidates(opportunity_ids, party_ids))

    def iter_candidates(self, opportunity_ids: Iterable[str] | None = None,
                        party_ids: Iterable[str] | None = None) -> Iterator[Candidate]:
        """Proposed pairs, sorted by opportunity id then party id, produced opportunity by opportunity
        (a full re-match at national scale is over a million pairs: stream them).

        With neither argument: every live opportunity against every party (a full re-match). Otherwise
        only pairs whose opportunity is in ``opportunity_ids`` (new opportunities against all parties) or
        whose party is in ``party_ids`` (new or changed parties against all live opportunities). Each
        opportunity's top-k is always ranked among all parties, so an incremental run proposes exactly
        the pairs a full run would for those opportunities and parties.
        """
        if opportunity_ids is None and party_ids is None:
            return self._collect(self.active, None, None)
        new_opps = {i for i in (opportunity_ids or ()) if i in self.opp_pos and i not in self.inactive}
        new_parties = {i for i in (party_ids or ()) if i in self.party_pos}
        rows = np.array(sorted(self.opp_pos[i] for i in new_opps), dtype=np.int64)
        if new_parties:
            touched = self._touched_rows(np.array(sorted(self.party_pos[i] for i in new_parties)))
            rows = np.union1d(rows, np.intersect1d(touched, self.active))
        return self._collect(rows, new_opps, new_parties)

    def _collect(self, rows: np.ndarray, new_opps: set[str] | None,
                 new_parties: set[str] | None) -> Iterator[Candidate]:
        keep_parties = np.zeros(len(self.parties), dtype=bool)
        for pid in new_parties or ():
            keep_parties[self.party_pos[pid]] = True
        for row, scores in self._scores(rows):
            ranked = self._ranked(row, scores)[: self.params.top_k]
            everyone = new_opps is None or self.opps[row].id in new_opps
            # Party indices follow sorted party ids, so sorting by index sorts by id.
            picked = sorted((int(j), rank) for rank, j in enumerate(ranked, 1) if everyone or keep_parties[j])
            for j, rank in picked:
                yield self._candidate(row, j, int(scores[j]), rank)

    def _candidate(self, row: int, j: int, score: int, rank: int) -> Candidate:
        o, p = self.opps[row], self.parties[j]
        return Candidate(o.id, p.id, score, rank, self.shared_terms(row, j),
                         fit.cpv_relation(tuple(o.cpv_codes), tuple(p.cpv_codes)),
                         fit.location_fit_keys(self.opp_places[row], self.party_places[j]))

    def shared_terms(self, row: int, j: int, limit: int = 3) -> tuple[str, ...]:
        """The heaviest proposing terms the pair shares, as words."""
        ov, pv = self.opp_vectors[row], self.party_vectors[j]
        shared = sorted((-ov[t] * pv[t], t) for t in ov.keys() & pv.keys())[:limit]
        return tuple(self._display_id(t) for _, t in shared)

    def _display_id(self, term_id: int) -> str:
        if term_id not in self._display_cache:
            self._display_cache[term_id] = self.display(self.vocab.terms[term_id])
        return self._display_cache[term_id]

    def display(self, term: str) -> str:
        """A term as a reader would write it: each stem by the first word (in sort order) seen with it."""
        return " ".join(self._surface.get(s, s) for s in term.split(" "))

    # --- explanations ------------------------------------------------------------------------------

    def why_not_proposed(self, opportunity_id: str, party_id: str) -> str | None:
        """Why the pair is not a candidate, in words; ``None`` when it is one.

        Raises:
            NotFound: an id the index does not hold.
        """
        if opportunity_id not in self.opp_pos:
            raise NotFound(f"opportunity {opportunity_id!r} is not in this run")
        if party_id not in self.party_pos:
            raise NotFound(f"party {party_id!r} is not in this run")
        row, j = self.opp_pos[opportunity_id], self.party_pos[party_id]
        if opportunity_id in self.inactive:
            return f"not considered: {self.inactive[opportunity_id]}"
        if fit.location_fit_keys(self.opp_places[row], self.party_places[j]) == "outside":
            return "outside service area: " + self._place_words(row, j)
        _, scores = next(iter(self._scores(np.array([row], dtype=np.int64))))
        if scores[j] <= 0:
            return self._no_evidence(row, j)
        ranked = self._ranked(row, scores)
        rank = int(np.flatnonzero(ranked == j)[0]) + 1
        if rank <= self.params.top_k:
            return None
        cutoff = int(scores[ranked[self.params.top_k - 1]])
        return (f"ranked {rank} of {len(ranked)} parties for this opportunity; only the top "
                f"{self.params.top_k} are scored (blocking score {scores[j]} < cut-off {cutoff})")

    def _place_words(self, row: int, j: int) -> str:
        o, p = self.opps[row], self.parties[j]
        where = o.local_authority or o.cluster or o.region or ("the West Midlands" if o.in_west_midlands else "")
        serves = ", ".join(p.service_areas) if p.service_areas else (p.local_authority or "its own area")
        return f"the work is in {where}; {p.name or p.id} serves {serves}"

    def _no_evidence(self, row: int, j: int) -> str:
        o_terms = self._opp_terms(self.opps[row])
        p_terms = self._party_terms(self.parties[j])
        common = sorted(o_terms.keys() & p_terms.keys(), key=lambda t: (" " in t, t))
        words = [t for t in common if t not in self.places]
        if words:
            shown = ", ".join(self.display(t) for t in words[:4])
            return f"only common words shared ({shown}): no shared capability terms or CPV codes"
        if common:
            shown = ", ".join(self.display(t) for t in common[:4])
            return f"only place names shared ({shown}): no shared capability terms or CPV codes"
        return "no shared capability terms or CPV codes"


class _RowMatrix:
    """Rows of ``{column: weight}`` in compressed sparse rows, to pull many rows out as triples."""

    def __init__(self, rows: Sequence[dict[int, float]]) -> None:
        self.indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in rows], out=self.indptr[1:])
        self.cols = np.fromiter((c for r in rows for c in r), dtype=np.int64, count=int(self.indptr[-1]))
        self.vals = np.fromiter((v for r in rows for v in r.values()), dtype=np.float64,
                                count=int(self.indptr[-1]))

    def triples(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position of the row in ``rows``, column, weight) for every entry of the given rows."""
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lens = ends - starts
        total = int(lens.sum())
        offsets = np.cumsum(lens) - lens
        pos = np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, lens)
        return np.repeat(np.arange(len(rows), dtype=np.int64), lens), self.cols[pos], self.vals[pos]


def _sorted_unique(items: Iterable[Any], kind: str) -> list[Any]:
    out = sorted(items, key=lambda x: x.id)
    for a, b in zip(out, out[1:], strict=False):
        if a.id == b.id:
            raise InputError(f"two {kind} records share the id {a.id!r}", locator=a.id, field="id")
    return out


def _cpv_keys(codes: Sequence[str], min_digits: int) -> tuple[str, ...]:
    keys: set[str] = set()
    for raw in codes:
        code = canonical_code(raw)
        if code is None or code == "00000000":
            continue
        digits = significant_digits(code)
        keys.update(code[:d] for d in range(min_digits, min(digits, 5) + 1))
        keys.add("=" + code)
    return tuple(sorted(keys))


def build_index(opportunities: Iterable[OpportunityView], parties: Iterable[PartyView], *, as_of: date,
                params: CandidateParams = DEFAULT_PARAMS) -> BlockingIndex:
    """Index every opportunity and party once; ask it for candidates and explanations."""
    return BlockingIndex(opportunities, parties, as_of=as_of, params=params)


def generate_candidates(opportunities: Iterable[OpportunityView], parties: Iterable[PartyView], *,
                        as_of: date, params: CandidateParams = DEFAULT_PARAMS,
                        opportunity_ids: Iterable[str] | None = None,
                        party_ids: Iterable[str] | None = None) -> list[Candidate]:
    """Candidate pairs sorted by opportunity id then party id; see ``BlockingIndex.candidates``."""
    index = BlockingIndex(opportunities, parties, as_of=as_of, params=params)
    return index.candidates(opportunity_ids, party_ids)


def why_not_proposed(opportunity: OpportunityView, party: PartyView, *, index: BlockingIndex) -> str | None:
    """Why a pair was not proposed in the run ``index`` describes (``None``: it was proposed)."""
    return index.why_not_proposed(opportunity.id, party.id)
