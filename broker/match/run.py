"""One match run as a pure function of its inputs, its rules, its parameters and its business date.

``evaluate_run`` never touches the database or the clock: the service layer (``broker.match.service``)
loads the views and stores what it returns, and the audit replays a stored run by calling it again on the
run's snapshot. Stages, each through the rules engine:

1. every opportunity (opportunity rules: deadline, status ...), every party (party rules);
2. candidate pairs from cheap blocking, only for opportunities and parties that passed stage 1;
3. pair facts (rapidfuzz features) and pair rules, in batches, streamed to a sink;
4. for opportunities no single VCSE can take on, suggested groupings, scored by the same pair rules.

A pair's score is the sum of the points of every rule that fired for it, its opportunity and its party,
clipped to 0-100; any reject rule rejects it; otherwise it matches at ``min_score`` or above.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from broker.audit.digests import decision_hash
from broker.match import consortia
from broker.match.candidates import BlockingIndex, Candidate, build_index
from broker.match.features import iter_pair_facts, opportunity_fact, party_fact
from broker.match.model import OpportunityView, PartyView
from broker.match.params import MatchParams
from broker.match.relevance import RelevanceModel
from broker.match.rulefiles import RuleSet
from broker.match.rules import FactResult, RuleEngine
from broker.match.vocabulary import field_map

PAIR_ONLY_FIELDS = ("capability_score", "capability_level", "relevance_terms", "keyword_hits", "exclude_hits",
                    "cpv_overlap", "value_to_capacity_pct", "value_fit", "location_fit", "value_over_max_pct",
                    "value_over_turnover_pct")
Sink = Callable[[list[dict[str, Any]]], None]


@dataclass(frozen=True)
class RunScope:
    """What a run re-matches: everything, or new/changed opportunities and parties (incremental)."""

    full: bool
    opportunity_ids: tuple[str, ...] = ()
    party_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"full": self.full, "opportunity_ids": list(self.opportunity_ids),
                "party_ids": list(self.party_ids)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunScope:
        return cls(bool(data["full"]), tuple(data.get("opportunity_ids") or ()), tuple(data.get("party_ids") or ()))


@dataclass
class RunOutcome:
    counts: dict[str, int] = field(default_factory=lambda: {
        "opportunities": 0, "parties": 0, "opportunities_rejected": 0, "parties_rejected": 0,
        "pairs_considered": 0, "pairs_through_rules": 0, "matched": 0, "rejected": 0, "below_threshold": 0,
        "suggested_consortia": 0})
    hashes: list[bytes] = field(default_factory=list)
    sequence_digest: str = ""
    rejected_opportunities: list[str] = field(default_factory=list)


def fact_id(kind: str, *parts: str) -> str:
    """A short, unique, ASCII engine id for a fact (our ids may hold any character)."""
    return kind[0] + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]


def evaluate_run(opportunities: Sequence[OpportunityView], parties: Sequence[PartyView], ruleset: RuleSet,
                 params: MatchParams, as_of: date, scope: RunScope, sink: Sink | None = None,
                 progress: Callable[[int], None] | None = None) -> RunOutcome:
    """Match ``scope`` of the inputs; every decision goes to ``sink`` in a deterministic order."""
    opportunities = sorted(opportunities, key=lambda o: o.id)
    parties = sorted(parties, key=lambda p: p.id)
    out = RunOutcome()
    emit = _Emitter(sink, out)
    with RuleEngine(ruleset, keep_sequence=False) as engine:
        opp_results = _stage(engine, "opportunity", opportunities, lambda o: opportunity_fact(o, as_of), emit)
        party_results = _stage(engine, "party", parties, party_fact, emit)
        out.counts["opportunities"], out.counts["parties"] = len(opportunities), len(parties)
        bad_opps = {i for i, r in opp_results.items() if r.rejected}
        bad_parties = {i for i, r in party_results.items() if r.rejected}
        out.counts["opportunities_rejected"], out.counts["parties_rejected"] = len(bad_opps), len(bad_parties)
        out.rejected_opportunities = sorted(bad_opps)
        model = RelevanceModel(params.relevance)
        index = build_index([o for o in opportunities if o.id not in bad_opps],
                            [p for p in parties if p.id not in bad_parties], as_of=as_of, params=params.candidates,
                            model=model)
        run = _PairRun(engine, index, {o.id: o for o in opportunities}, {p.id: p for p in parties},
                       opp_results, party_results, params, as_of, scope, emit, progress)
        run.execute()
        out.sequence_digest = engine.sequence_sha256()
    return out


class _Emitter:
    """Hashes decisions, counts them, and hands them to the sink in batches (the sink keeps what it needs)."""

    def __init__(self, sink: Sink | None, out: RunOutcome) -> None:
        self.sink, self.out, self.buffer = sink, out, []  # type: ignore[var-annotated]

    def __call__(self, decision: dict[str, Any]) -> None:
        digest = decision_hash(decision)
        decision["decision_hash"] = digest
        self.out.hashes.append(bytes.fromhex(digest))
        if decision["stage"] == "pair":
            self.out.counts[decision["outcome"]] += 1
        self.buffer.append(decision)
        if len(self.buffer) >= 5000:
            self.flush()

    def flush(self) -> None:
        if self.sink is not None and self.buffer:
            self.sink(self.buffer)
        self.buffer = []


def _stage(engine: RuleEngine, kind: str, items: Sequence[Any], make_fact: Callable[[Any], dict[str, Any]],
           emit: _Emitter) -> dict[str, FactResult]:
    facts = [{**make_fact(item), "id": fact_id(kind, item.id)} for item in items]
    results = engine.evaluate(kind, facts) if facts else []
    by_id = {}
    for item, fact, result in zip(items, facts, results, strict=True):
        by_id[item.id] = result
        fact.pop("id")
        emit(_decision(kind, item.id if kind == "opportunity" else "", item.id if kind == "party" else "",
                       getattr(item, "party_type", ""), fact, [result], None, {}))
    emit.flush()
    return by_id


def _decision(stage: str, opportunity_id: str, party_id: str, party_type: str, features: dict[str, Any],
              results: Sequence[FactResult], min_score: int | None, detail: dict[str, Any]) -> dict[str, Any]:
    firings = [f for r in results for f in r.firing_dicts]
    rejected = any(r.rejected for r in results)
    score = max(0, min(100, sum(r.score for r in results)))
    if rejected:
        outcome = "rejected"
    elif min_score is None:
        outcome = "eligible"
    else:
        outcome = "matched" if score >= min_score else "below_threshold"
    return {"stage": stage, "opportunity_id": opportunity_id, "party_id": party_id, "party_type": party_type,
            "outcome": outcome, "score": score, "features": features, "firings": firings, "detail": detail}


class _PairRun:
    def __init__(self, engine: RuleEngine, index: BlockingIndex, opps: dict[str, OpportunityView],
                 parties: dict[str, PartyView], opp_results: dict[str, FactResult],
                 party_results: dict[str, FactResult], params: MatchParams, as_of: date, scope: RunScope,
                 emit: _Emitter, progress: Callable[[int], None] | None) -> None:
        self.engine, self.index, self.opps, self.parties = engine, index, opps, parties
        self.opp_results, self.party_results = opp_results, party_results
        self.params, self.as_of, self.scope, self.emit, self.progress = params, as_of, scope, emit, progress
        self.suggest_for = None if scope.full else set(scope.opportunity_ids)
        self.pending: dict[str, dict[str, tuple[PartyView, int, str]]] = {}

    def candidates(self) -> Iterator[Candidate]:
        if self.scope.full:
            return self.index.iter_candidates()
        return self.index.iter_candidates(self.scope.opportunity_ids, self.scope.party_ids)

    def execute(self) -> None:
        done = 0
        batch: list[tuple[Candidate, dict[str, Any]]] = []
        for item in iter_pair_facts(self.candidates(), self.opps, self.parties, as_of=self.as_of,
                                    levels=self.params.levels, batch_pairs=self.params.pair_batch,
                                    model=self.index.model):
            batch.append(item)
            if len(batch) >= self.params.pair_batch:
                done += self._evaluate(batch)
                batch = []
                if self.progress:
                    self.progress(done)
        done += self._evaluate(batch)
        self._suggest_all(final=True)
        self.emit.flush()
        if self.progress:
            self.progress(done)

    def _evaluate(self, batch: list[tuple[Candidate, dict[str, Any]]]) -> int:
        if not batch:
            return 0
        facts = [{**facts, "id": fact_id("pair", c.opportunity_id, c.party_id)} for c, facts in batch]
        results = self.engine.evaluate("pair", facts)
        self.emit.out.counts["pairs_considered"] += len(batch)
        self.emit.out.counts["pairs_through_rules"] += len(batch)
        for (cand, fact), result in zip(batch, results, strict=True):
            self._record(cand.opportunity_id, cand.party_id, fact, result,
                         {"proposed": list(cand.reasons()), "blocking_score": cand.score})
        # Candidates come opportunity by opportunity: all but the last one in this batch are complete.
        self._suggest_all(final=False, keep=batch[-1][0].opportunity_id)
        return len(batch)

    def _record(self, opp_id: str, party_id: str, fact: dict[str, Any], result: FactResult,
                detail: dict[str, Any]) -> dict[str, Any]:
        party = self.parties[party_id]
        features = {k: fact[k] for k in PAIR_ONLY_FIELDS}
        detail = {**detail, "levels": self._levels(fact)}
        decision = _decision("pair", opp_id, party_id, party.party_type, features,
                             [self.opp_results[opp_id], self.party_results.get(party_id, _EMPTY), result],
                             self.params.min_score, detail)
        self.emit(decision)
        if party.party_type == "vcse" and (self.suggest_for is None or opp_id in self.suggest_for) \
                and decision["outcome"] != "rejected":
            self.pending.setdefault(opp_id, {})[party_id] = (party, fact["capability_score"], fact["value_fit"])
        return decision

    def _levels(self, fact: dict[str, Any]) -> dict[str, str]:
        return {"capability": self.params.levels.capability_label(fact["capability_level"]),
                "cpv": f"CPV overlap: {fact['cpv_overlap'].replace('_', ' ')}",
                "value": f"value fit: {fact['value_fit'].replace('_', ' ')}",
                "location": f"location: {fact['location_fit']}"}

    def _suggest_all(self, *, final: bool, keep: str | None = None) -> None:
        for opp_id in sorted(self.pending):
            if not final and opp_id == keep:
                continue
            members = consortia.members_from(self.pending.pop(opp_id))
            self._suggest(self.opps[opp_id], members)

    def _suggest(self, opp: OpportunityView, members: list[consortia.Member]) -> None:
        suggestions = consortia.suggest(opp, members, self.params.consortium)
        if not suggestions:
            return
        groups = {s.party.id: s for s in suggestions}
        views = {**self.parties, **{s.party.id: s.party for s in suggestions}}
        pairs = [_Pair(opp.id, pid) for pid in sorted(groups)]
        facts = [(c, f) for c, f in iter_pair_facts(pairs, self.opps, views, as_of=self.as_of,
                                                      levels=self.params.levels, model=self.index.model)]
        engine_facts = [{**f, "id": fact_id("pair", c.opportunity_id, c.party_id)} for c, f in facts]
        pair_fields = field_map("pair")
        assert all(set(f) - {"id"} <= set(pair_fields) for f in engine_facts)
        results = self.engine.evaluate("pair", engine_facts)
        self.emit.out.counts["pairs_through_rules"] += len(results)
        for (cand, fact), result in zip(facts, results, strict=True):
            s = groups[cand.party_id]
            self.parties.setdefault(s.party.id, s.party)
            self._record(opp.id, s.party.id, fact, result, {
                "members": list(s.party.member_ids), "lead": s.lead_id, "covers": list(s.covered),
                "missing": list(s.missing), "capacity_pence": s.capacity_pence, "suggestion": list(s.reasons)})
            self.emit.out.counts["suggested_consortia"] += 1


@dataclass(frozen=True, slots=True)
class _Pair:
    opportunity_id: str
    party_id: str


_EMPTY = FactResult("", "party", ())

