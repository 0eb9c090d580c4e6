"""Explain one pair in one run: every rule that fired, in words, with the values it saw; or why not.

For a pair that reached the rules, the pair decision holds every firing (opportunity, party and pair
rules alike) and the pair features; the opportunity and party facts come from the run's opportunity- and
party-stage decisions (for a suggested grouping, rebuilt from its members' snapshot records), and which
fields each rule looked at from the run's stored rules (research/durable-rules.md §4.3, "Explanations").

For a pair with no decision, the first of: the opportunity or party was not among the run's inputs; an
opportunity- or party-stage rule rejected it; an incremental run had neither in scope; or the blocking
index, rebuilt from the run's snapshot, says why it never proposed the pair.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.audit.stored import (
    get_run,
    iter_inputs,
    latest_complete_run,
    load_views,
    require_complete,
    rule_files,
    stored_ruleset,
)
from broker.match.candidates import build_index
from broker.match.features import party_fact
from broker.match.params import MatchParams
from broker.match.relevance import RelevanceModel
from broker.match.rulefiles import RuleSet
from broker.match.run import RunScope
from broker.match.views import group_view, party_from_json
from broker.store.models import Decision, MatchRun, RunInput

EFFECT_WORDS = {"reject": "rejects", "needs_consortium": "needs partners (a consortium)"}


def explain_pair(session: Session, run_id: str | None, opportunity_id: str, party_id: str) -> dict[str, Any]:
    """Everything behind the run's decision on (opportunity, party), or why it made none.

    Args:
        session: a session on the database (only read).
        run_id: the run; ``None`` for the latest complete run.
        opportunity_id: the opportunity (or lot) id.
        party_id: the VCSE, consortium or suggested grouping id.

    Raises:
        NotFound: no such run.
        AuditError: the run is not complete, or its stored rules cannot be read.
    """
    run = get_run(session, run_id) if run_id else latest_complete_run(session)
    require_complete(run)
    ruleset = stored_ruleset(rule_files(session, run.id))
    params = MatchParams.from_json(run.params)
    pair = _decision(session, run.id, "pair", opportunity_id, party_id)
    opp = _decision(session, run.id, "opportunity", opportunity_id, "")
    party = _decision(session, run.id, "party", "", party_id)
    out: dict[str, Any] = {"run_id": run.id, "as_of": run.as_of, "mode": run.mode,
                           "opportunity_id": opportunity_id, "party_id": party_id, "min_score": params.min_score}
    opp_facts = dict(opp.features) if opp else {}
    party_facts = dict(party.features) if party else _group_facts(session, run.id, pair)
    if pair is not None:
        facts = {**opp_facts, **party_facts, **pair.features}
        out.update(decided=True, outcome=pair.outcome, score=pair.score, party_type=pair.party_type,
                   verdict=_verdict(pair, params.min_score),
                   firings=[_firing(f, ruleset, facts) for f in pair.firings],
                   levels=pair.detail.get("levels", {}), proposed=pair.detail.get("proposed", []),
                   blocking_score=pair.detail.get("blocking_score"),
                   grouping={k: pair.detail[k] for k in ("members", "lead", "covers", "missing", "suggestion")
                             if k in pair.detail},
                   features=pair.features, opportunity_facts=opp_facts, party_facts=party_facts)
        return out
    why, firings = _why_not(session, run, params, ruleset, opp, party, opportunity_id, party_id)
    out.update(decided=False, why_not=why, firings=firings, opportunity_facts=opp_facts, party_facts=party_facts)
    return out


def _decision(session: Session, run_id: str, stage: str, opportunity_id: str, party_id: str) -> Decision | None:
    return session.scalars(select(Decision).where(
        Decision.run_id == run_id, Decision.stage == stage, Decision.opportunity_id == opportunity_id,
        Decision.party_id == party_id).order_by(Decision.seq).limit(1)).first()


def _verdict(d: Decision, min_score: int) -> str:
    if d.outcome == "rejected":
        rules = [f["rule_id"] for f in d.firings if f["effect"] == "reject"]
        return "rejected by " + ", ".join(rules)
    total = sum(f["points"] for f in d.firings)
    clipped = f" (points add up to {total}, kept within 0-100)" if total != d.score else ""
    if d.outcome == "matched":
        return f"matched: score {d.score}{clipped} reaches the minimum of {min_score}"
    if d.outcome == "below_threshold":
        return f"not matched: score {d.score}{clipped} is below the minimum of {min_score}"
    return f"{d.outcome}: score {d.score}"


def _firing(f: dict[str, Any], ruleset: RuleSet, facts: dict[str, Any]) -> dict[str, Any]:
    """One firing in words, with the value of every field its rule looked at."""
    try:
        rule = ruleset.get(f["rule_id"])
    except KeyError:
        rule = None
    if f["effect"] == "score":
        words = f"{f['points']:+d} points"
    elif f["effect"] == "flag":
        words = f"flags {f['flag']}"
    else:
        words = EFFECT_WORDS.get(f["effect"], f["effect"])
    return {"stage": f["stage"], "rule_id": f["rule_id"], "effect": f["effect"], "points": f["points"],
            "flag": f["flag"], "in_words": words, "reason": f["reason"],
            "description": rule.description if rule else "(not a rule of this run's rule files)",
            "saw": {name: facts.get(name, "(not recorded)") for name in (rule.inputs if rule else ())}}


def _group_facts(session: Session, run_id: str, pair: Decision | None) -> dict[str, Any]:
    """The party facts of a suggested grouping, rebuilt from its members as the run read them."""
    if pair is None or not pair.detail.get("members"):
        return {}
    members = list(pair.detail["members"])
    records = {i.entity_id: i.record for i in iter_inputs(session, run_id)
               if i.kind == "party" and i.entity_id in members and i.record is not None}
    if set(records) != set(members):
        return {}
    views = [party_from_json(records[m]) for m in members]
    lead = next((v for v in views if v.id == pair.detail.get("lead")), views[0])
    return party_fact(group_view(pair.party_id, pair.party_type, "", views, lead))


def _why_not(session: Session, run: MatchRun, params: MatchParams, ruleset: RuleSet, opp: Decision | None,
             party: Decision | None, opportunity_id: str, party_id: str) -> tuple[str, list[dict[str, Any]]]:
    """Why the run made no decision on the pair, and the rejecting firings when a rule is the reason."""
    read = _inputs_read(session, run.id, opportunity_id, party_id)
    if ("opportunity", opportunity_id) not in read:
        return (f"the opportunity was not among the run's inputs: when the run read the store it was not "
                f"live (open or planned, with no deadline before {run.as_of}) or not yet ingested", [])
    if ("party", party_id) not in read:
        return ("the party was not among the run's inputs (not in the directory when the run read it, or "
                "a suggested grouping this run did not make)", [])
    for d, what in ((opp, "opportunity"), (party, "party")):
        if d is not None and d.outcome == "rejected":
            facts = dict(d.features)
            rejecting = [_firing(f, ruleset, facts) for f in d.firings if f["effect"] == "reject"]
            reasons = "; ".join(f"{f['rule_id']} ({f['reason']})" for f in rejecting)
            return f"the {what} was rejected before any pairing by {reasons}", rejecting
    scope = RunScope.from_json(run.scope)
    if not scope.full and opportunity_id not in scope.opportunity_ids and party_id not in scope.party_ids:
        return (f"not in the run's scope: {run.id} was an incremental run and neither the opportunity nor "
                f"the party had changed since the run before it{_last_decided(session, run, opportunity_id, party_id)}",
                [])
    return _blocking(session, run, params, opportunity_id, party_id), []


def _inputs_read(session: Session, run_id: str, opportunity_id: str, party_id: str) -> set[tuple[str, str]]:
    rows = session.execute(select(RunInput.kind, RunInput.entity_id).where(
        RunInput.run_id == run_id, RunInput.entity_id.in_((opportunity_id, party_id))))
    return {(kind, entity) for kind, entity in rows}


def _last_decided(session: Session, run: MatchRun, opportunity_id: str, party_id: str) -> str:
    earlier = session.execute(
        select(Decision.run_id, Decision.outcome, Decision.score).join(MatchRun, MatchRun.id == Decision.run_id)
        .where(Decision.stage == "pair", Decision.opportunity_id == opportunity_id, Decision.party_id == party_id,
               MatchRun.seq < run.seq).order_by(MatchRun.seq.desc()).limit(1)).first()
    if earlier is None:
        return ""
    return f"; it was last decided in {earlier[0]}: {earlier[1]}, score {earlier[2]}"


def _blocking(session: Session, run: MatchRun, params: MatchParams, opportunity_id: str, party_id: str) -> str:
    """The blocking step's own reason, from its index rebuilt over the run's snapshot."""
    views = load_views(session, run.id)
    rejected = {(r.stage, r.opportunity_id or r.party_id) for r in session.execute(
        select(Decision.stage, Decision.opportunity_id, Decision.party_id).where(
            Decision.run_id == run.id, Decision.stage.in_(("opportunity", "party")),
            Decision.outcome == "rejected"))}
    index = build_index([o for o in views.opportunities if ("opportunity", o.id) not in rejected],
                        [p for p in views.parties if ("party", p.id) not in rejected],
                        as_of=date.fromisoformat(run.as_of), params=params.candidates,
                        model=RelevanceModel(params.relevance))
    why = index.why_not_proposed(opportunity_id, party_id)
    if why is None:
        return ("the blocking step proposes this pair, yet the run holds no decision for it: its stored "
                "decisions are incomplete. Run `broker audit verify`.")
    return f"the blocking step never proposed it: {why}"
