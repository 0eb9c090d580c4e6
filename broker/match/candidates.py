"""Candidate generation (blocking): which (opportunity, party) pairs are worth scoring at all.

Cheap and high-recall, never every pair (BRIEF, Scale). A pair is *proposed* when

1. the opportunity is live (not closed, cancelled or awarded; deadline not passed on ``as_of``);
2. the party's service areas can cover the opportunity's place (``fit.location_fit`` is not ``outside``);
3. the relevance model (``broker.match.relevance``: BM25F of the party's capability text and keywords over
   the notice's fields, with related terms and inferred CPV groups) gives the pair a probability of
   relevance of at least ``min_probability`` thousandths;
4. the pair ranks in the opportunity's top ``top_k`` parties by that probability.

Blocking computes exactly the score the pair features compute (the same document and query vectors, as
one sparse product per chunk of opportunities), so a notice is never dropped here by a cruder measure
than the one it would be scored by. Scores are kept in thousandths (integers) and ties go to the smaller
party id, so the output never depends on input order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np

from broker.errors import ConfigError, InputError, NotFound
from broker.match import fit
from broker.match.model import OpportunityView, PartyView
from broker.match.relevance import RelevanceModel
from broker.match.textindex import InvertedIndex, Vocabulary, is_generic

INACTIVE_STATUSES = ("closed", "cancelled", "awarded")


@dataclass(frozen=True)
class CandidateParams:
    """Blocking parameters; record ``to_json()`` in the run manifest."""

    top_k: int = 200
    min_probability: int = 20  # thousandths: pairs less likely to be relevant than this are not scored
    skip_inactive: bool = True
    chunk_rows: int = 256
    chunk_postings: int = 4_000_000  # posting hits per chunk (memory bound; scores do not depend on it)

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.chunk_rows < 1 or self.chunk_postings < 1:
            raise ConfigError("top_k, chunk_rows and chunk_postings must be at least 1")
        if not 1 <= self.min_probability <= 1000:
            raise ConfigError(f"min_probability must be 1-1000 thousandths, got {self.min_probability}")

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
    """The relevance model's vectors and a location index over a set of opportunities and parties,
    answering candidate queries.

    Args:
        opportunities: all opportunities to consider (e.g. every open one); inactive ones are skipped.
        parties: all parties.
        as_of: the run's business date (deadlines before it are past).
        params: blocking parameters.
        model: the relevance model (the pair features must use the same one).

    Raises:
        InputError: two opportunities or two parties share an id.
    """

    def __init__(self, opportunities: Iterable[OpportunityView], parties: Iterable[PartyView], *,
                 as_of: date, params: CandidateParams = DEFAULT_PARAMS, model: RelevanceModel | None = None) -> None:
        self.params = params
        self.as_of = as_of
        self.model = model or RelevanceModel()
        self.opps = _sorted_unique(opportunities, "opportunity")
        self.parties = _sorted_unique(parties, "party")
        self.opp_pos = {o.id: i for i, o in enumerate(self.opps)}
        self.party_pos = {p.id: i for i, p in enumerate(self.parties)}
        self.inactive = {o.id: r for o in self.opps if (r := self._inactive_reason(o))}
        self.active = np.array([i for i, o in enumerate(self.opps) if o.id not in self.inactive], dtype=np.int64)
        self._build_text()
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

    def _build_text(self) -> None:
        """Query vectors of every party and document vectors (restricted to query terms) of live notices."""
        queries = [self.model.query(p) for p in self.parties]
        self.vocab = Vocabulary(t for q in queries for t in q.terms)
        ids = self.vocab.ids
        self.party_vectors = [{ids[t]: qt.weight for t, qt in q.terms.items()} for q in queries]
        self.best = np.array([q.best for q in queries], dtype=np.float64)
        self.opp_vectors = []
        for o in self.opps:
            # uncached: only the query vocabulary's terms are kept of each notice here
            doc = self.model.compute_document(o) if o.id not in self.inactive else {}
            self.opp_vectors.append({ids[t]: w for t, w in doc.items() if t in ids})
        self.party_index = InvertedIndex(self.party_vectors, len(self.vocab))
        self.opp_index = InvertedIndex(self.opp_vectors, len(self.vocab))
        self.opp_rows = _RowMatrix(self.opp_vectors)
        self.party_rows = _RowMatrix(self.party_vectors)
        # posting hits of each notice row: the sum over its terms of the parties whose query has the term
        per_entry = self.party_index.df[self.opp_rows.cols]
        owner = np.repeat(np.arange(len(self.opps), dtype=np.int64), np.diff(self.opp_rows.indptr))
        self._row_postings = np.bincount(owner, weights=per_entry, minlength=len(self.opps)).astype(np.int64)

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
        """(opportunity row, probability of relevance in thousandths for every party), chunk by chunk."""
        n_p = len(self.parties)
        rp = self.model.params
        best = np.where(self.best > 0, self.best, 1.0)
        for chunk in self._chunks(rows):
            size = len(chunk) * n_p
            q, docs, contrib = self.party_index.gather(*self.opp_rows.triples(chunk))
            # (bincount of nothing is an int array: make it float either way)
            raw = np.bincount(q * n_p + docs, weights=contrib, minlength=size).astype(np.float64, copy=False)
            raw = raw.reshape(len(chunk), n_p)
            # (raw is negative only when a party's feedback pushes a notice away: no relevance then)
            pos = np.maximum(raw, 0.0)
            z = rp.intercept + rp.score_slope * np.log1p(pos) + rp.norm_slope * (pos / best)
            prob = np.where(raw > 0, 1000.0 / (1.0 + np.exp(-z)), 0.0)
            total = np.rint(prob).astype(np.int64)
            for i, row in enumerate(chunk):
                yield int(row), total[i]

    def _chunks(self, rows: np.ndarray) -> Iterator[np.ndarray]:
        """Consecutive runs of ``rows``: at most ``chunk_rows`` notices and about ``chunk_postings``
        posting hits each. A common word is in most parties' queries, so one notice can touch millions of
        postings; the budget bounds memory. Chunking never changes a score (each notice's sums are
        formed in the same order whatever its chunk)."""
        if len(rows) == 0:
            return
        cost = self._row_postings[rows]
        start, total = 0, 0
        for i in range(len(rows)):
            if i > start and (i - start >= self.params.chunk_rows or total + cost[i] > self.params.chunk_postings):
                yield rows[start:i]
                start, total = i, 0
            total += int(cost[i])
        yield rows[start:]

    def _ranked(self, row: int, scores: np.ndarray) -> np.ndarray:
        """Proposable party indices of one opportunity, best first (score desc, then party id)."""
        nz = np.flatnonzero((scores >= self.params.min_probability) & self._location_mask(row))
        return nz[np.lexsort((nz, -scores[nz]))]

    def _touched_rows(self, party_rows: np.ndarray) -> np.ndarray:
        """Active opportunity rows sharing any query term with the given parties."""
        _, docs, _ = self.opp_index.gather(*self.party_rows.triples(party_rows))
        return np.unique(docs).astype(np.int64)

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
        """The query terms that contribute most to the pair's score, as the party wrote them."""
        ov, pv = self.opp_vectors[row], self.party_vectors[j]
        shared = sorted((-ov[t] * pv[t], t) for t in ov.keys() & pv.keys())[:limit]
        q = self.model.query(self.parties[j])
        return tuple(self.model.display(self.vocab.terms[t], q) for _, t in shared)

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
        if scores[j] < self.params.min_probability:
            return self._no_evidence(row, j, int(scores[j]))
        ranked = self._ranked(row, scores)
        rank = int(np.flatnonzero(ranked == j)[0]) + 1
        if rank <= self.params.top_k:
            return None
        cutoff = int(scores[ranked[self.params.top_k - 1]])
        return (f"ranked {rank} of {len(ranked)} parties for this opportunity; only the top "
                f"{self.params.top_k} are scored (relevance {scores[j]} < cut-off {cutoff} thousandths)")

    def _place_words(self, row: int, j: int) -> str:
        o, p = self.opps[row], self.parties[j]
        where = o.local_authority or o.cluster or o.region or ("the West Midlands" if o.in_west_midlands else "")
        serves = ", ".join(p.service_areas) if p.service_areas else (p.local_authority or "its own area")
        return f"the work is in {where}; {p.name or p.id} serves {serves}"

    def _no_evidence(self, row: int, j: int, score: int) -> str:
        ov, pv = self.opp_vectors[row], self.party_vectors[j]
        specific = [t for t in ov.keys() & pv.keys() if not is_generic(self.vocab.terms[t])]
        shared = self.shared_terms(row, j, limit=4)
        floor = self.params.min_probability
        if specific:
            return (f"too little relevance ({score} < {floor} thousandths): only "
                    + ", ".join(f"'{t}'" for t in shared) + " shared")
        if shared:
            return f"only common words shared ({', '.join(shared)}): no shared capability terms or CPV codes"
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


def build_index(opportunities: Iterable[OpportunityView], parties: Iterable[PartyView], *, as_of: date,
                params: CandidateParams = DEFAULT_PARAMS, model: RelevanceModel | None = None) -> BlockingIndex:
    """Index every opportunity and party once; ask it for candidates and explanations."""
    return BlockingIndex(opportunities, parties, as_of=as_of, params=params, model=model)


def generate_candidates(opportunities: Iterable[OpportunityView], parties: Iterable[PartyView], *,
                        as_of: date, params: CandidateParams = DEFAULT_PARAMS,
                        opportunity_ids: Iterable[str] | None = None,
                        party_ids: Iterable[str] | None = None,
                        model: RelevanceModel | None = None) -> list[Candidate]:
    """Candidate pairs sorted by opportunity id then party id; see ``BlockingIndex.candidates``."""
    index = BlockingIndex(opportunities, parties, as_of=as_of, params=params, model=model)
    return index.candidates(opportunity_ids, party_ids)


def why_not_proposed(opportunity: OpportunityView, party: PartyView, *, index: BlockingIndex) -> str | None:
    """Why a pair was not proposed in the run ``index`` describes (``None``: it was proposed)."""
    return index.why_not_proposed(opportunity.id, party.id)
