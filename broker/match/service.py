"""A match run against the store: load, snapshot, evaluate, store decisions and matches, chain the audit.

The run row is written first (status ``running``) with its manifest inputs: rule file texts, parameters,
scope and a content-addressed snapshot of every input record. Decisions are then streamed into the store;
the current ``matches`` are updated and the run is completed and linked into the audit chain in one last
transaction. A run killed part-way stays ``running`` and is marked ``abandoned`` by the next run, which
(because scope is computed against the last *complete* run) does the same work again.
"""

from __future__ import annotations

import functools
import hashlib
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from broker import __version__
from broker.audit.chain import append_link
from broker.audit.digests import decision_digest, input_digest
from broker.match.model import OpportunityView, PartyView
from broker.match.params import MatchParams
from broker.match.rulefiles import RuleSet, load_rules
from broker.match.run import RunOutcome, RunScope, evaluate_run
from broker.match.views import consortium_view, opportunity_view, vcse_view, view_hash, view_json
from broker.normalise.dates import LONDON
from broker.normalise.record import canonical_hash
from broker.paths import DATA_DIR
from broker.store.models import (
    AuditLink,
    Consortium,
    ConsortiumMember,
    Decision,
    Match,
    MatchRun,
    Opportunity,
    RunInput,
    RunRuleFile,
    Snapshot,
    Vcse,
)

LIVE_STATUSES = ("open", "planned")


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    as_of: str
    mode: str
    counts: dict[str, int]
    decision_digest: str


@dataclass
class Inputs:
    opportunities: list[OpportunityView]
    parties: list[PartyView]
    hashes: dict[tuple[str, str], str]


def software_versions() -> dict[str, str]:
    """Versions of everything a run's decisions depend on besides its inputs, rules and parameters.

    numpy ranks blocking candidates and PyYAML reads the rules; the reference data (clusters, local
    authorities, CPV labels) is officer-editable data that the features read, so its digest is recorded
    too (a replay warns when any of these differ).
    """
    from importlib.metadata import version

    return {"broker": __version__, "durable-rules": version("durable-rules"), "rapidfuzz": version("rapidfuzz"),
            "numpy": version("numpy"), "pyyaml": version("PyYAML"), "python": platform.python_version(),
            "reference-data": reference_data_digest()}


@functools.cache
def reference_data_digest() -> str:
    """sha256 over the name and bytes of each reference data file the matcher reads (broker/data)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in DATA_DIR.iterdir() if p.suffix in (".csv", ".json") and p.is_file()):
        digest.update(f"{path.name}\n{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def run_match(sessions: sessionmaker[Session], *, as_of: date, rules_dir: Path | str, full: bool = False,
              params: MatchParams | None = None, progress: Callable[[int], None] | None = None) -> RunSummary:
    """Run the matcher for business date ``as_of``; incremental unless ``full`` (or no run before)."""
    params = params or MatchParams()
    ruleset = load_rules(rules_dir)
    with sessions.begin() as session:
        _abandon_unfinished(session)
        inputs = load_inputs(session, as_of)
        scope = _scope(session, inputs, as_of, params, full)
        run = _start_run(session, as_of, scope, params, ruleset, inputs)
        run_id = run.id
    outcome = evaluate_run(inputs.opportunities, inputs.parties, ruleset, params, as_of, scope,
                           sink=_decision_sink(sessions, run_id), progress=progress)
    with sessions.begin() as session:
        _update_matches(session, run_id, outcome, inputs)
        run = _finish_run(session, run_id, outcome)
        return RunSummary(run.id, run.as_of, run.mode, dict(run.counts), run.decision_digest or "")


# --- inputs and scope -------------------------------------------------------------------------------

def load_inputs(session: Session, as_of: date) -> Inputs:
    """Live opportunities (open or planned, deadline not before ``as_of``) and every party."""
    day_start = datetime.combine(as_of, time(0), tzinfo=LONDON).astimezone(UTC)
    rows = session.scalars(select(Opportunity).where(
        Opportunity.status.in_(LIVE_STATUSES),
        (Opportunity.deadline_at.is_(None)) | (Opportunity.deadline_at >= day_start)).order_by(Opportunity.id))
    opportunities = [opportunity_view(r) for r in rows]
    vcses = {v.id: vcse_view(v) for v in session.scalars(select(Vcse).order_by(Vcse.id))}
    members: dict[str, list[str]] = {}
    for m in session.scalars(select(ConsortiumMember).order_by(ConsortiumMember.consortium_id,
                                                                ConsortiumMember.position)):
        members.setdefault(m.consortium_id, []).append(m.vcse_id)
    consortia = [consortium_view(c, [vcses[i] for i in members.get(c.id, []) if i in vcses])
                 for c in session.scalars(select(Consortium).order_by(Consortium.id))]
    parties = sorted([*vcses.values(), *consortia], key=lambda p: p.id)
    hashes = {("opportunity", o.id): view_hash(o) for o in opportunities}
    hashes.update({("party", p.id): view_hash(p) for p in parties})
    return Inputs(opportunities, parties, hashes)


def _scope(session: Session, inputs: Inputs, as_of: date, params: MatchParams, full: bool) -> RunScope:
    # A run imported from another database (`broker audit import`) read that database's inputs: never
    # the base of an incremental run here.
    imported = select(AuditLink.ref).where(AuditLink.kind == "import")
    last = session.scalars(select(MatchRun).where(MatchRun.status == "complete", MatchRun.id.not_in(imported))
                           .order_by(MatchRun.seq.desc()).limit(1)).first()
    if full or last is None:
        return RunScope(full=True)
    before = {(r.kind, r.entity_id): r.content_hash for r in
              session.scalars(select(RunInput).where(RunInput.run_id == last.id))}
    changed = sorted(k for k, h in inputs.hashes.items() if before.get(k) != h)
    opp_ids = {i for kind, i in changed if kind == "opportunity"}
    if last.as_of != as_of.isoformat():
        # A new business day: live matches whose deadline is getting close are re-checked against the
        # deadline rules (the same day twice re-checks nothing, so a re-run changes nothing).
        soon = datetime.combine(as_of + timedelta(days=params.recheck_days), time(23, 59), tzinfo=LONDON)
        live = {o.id for o in inputs.opportunities}
        recheck = session.scalars(select(Match.opportunity_id)
                                  .join(Opportunity, Opportunity.id == Match.opportunity_id)
                                  .where(Match.status == "active", Opportunity.deadline_at <= soon.astimezone(UTC)))
        opp_ids.update(i for i in recheck if i in live)
    return RunScope(False, tuple(sorted(opp_ids)), tuple(sorted(i for kind, i in changed if kind == "party")))


def _abandon_unfinished(session: Session) -> None:
    session.execute(update(MatchRun).where(MatchRun.status == "running").values(status="abandoned"))


# --- the run row and its manifest inputs -------------------------------------------------------------

def _start_run(session: Session, as_of: date, scope: RunScope, params: MatchParams, ruleset: RuleSet,
               inputs: Inputs) -> MatchRun:
    seq = (session.scalar(select(func.max(MatchRun.seq))) or 0) + 1
    run = MatchRun(id=f"run-{seq:06d}", seq=seq, as_of=as_of.isoformat(), mode="full" if scope.full else "incremental",
                   status="running", started_at=datetime.now(UTC),  # metadata only
                   finished_at=None, params=params.to_json(), software=software_versions(), scope=scope.to_json(),
                   rules_sha256=ruleset.sha256, counts={})
    session.add(run)
    session.flush()
    for f in ruleset.files:
        session.add(RunRuleFile(run_id=run.id, name=f.name, sha256=f.sha256, text=f.data.decode("utf-8")))
    store_snapshot(session, run.id, inputs)
    return run


def store_snapshot(session: Session, run_id: str, inputs: Inputs) -> None:
    """Content-addressed copies of every input the run reads (shared across runs)."""
    views: dict[str, tuple[str, dict[str, Any]]] = {}
    for o in inputs.opportunities:
        views[inputs.hashes[("opportunity", o.id)]] = ("opportunity", view_json(o))
    for p in inputs.parties:
        views[inputs.hashes[("party", p.id)]] = ("party", view_json(p))
    have: set[str] = set()
    keys = sorted(views)
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        have.update(session.scalars(select(Snapshot.content_hash).where(Snapshot.content_hash.in_(chunk))))
    new = [{"content_hash": h, "kind": views[h][0], "record": views[h][1]} for h in keys if h not in have]
    if new:
        session.execute(insert(Snapshot), new)
    rows = [{"run_id": run_id, "kind": k, "entity_id": i, "content_hash": h}
            for (k, i), h in sorted(inputs.hashes.items())]
    if rows:
        session.execute(insert(RunInput), rows)


def _decision_sink(sessions: sessionmaker[Session], run_id: str) -> Callable[[list[dict[str, Any]]], None]:
    counter = [0]

    def sink(batch: list[dict[str, Any]]) -> None:
        rows = []
        for d in batch:
            counter[0] += 1
            rows.append({"run_id": run_id, "seq": counter[0], **d})
        with sessions.begin() as session:
            session.execute(insert(Decision), rows)

    return sink


# --- results -----------------------------------------------------------------------------------------

def _update_matches(session: Session, run_id: str, outcome: RunOutcome, inputs: Inputs) -> None:
    live = {o.id for o in inputs.opportunities}
    matched = {(d["opportunity_id"], d["party_id"]): d for d in outcome.matched}
    existing = {(m.opportunity_id, m.party_id): m for m in session.scalars(select(Match))}
    evaluated = {(r[0], r[1]) for r in session.execute(select(Decision.opportunity_id, Decision.party_id).where(
        Decision.run_id == run_id, Decision.stage == "pair"))}
    rejected_opps = set(outcome.rejected_opportunities)
    for key, match in sorted(existing.items()):
        gone = key[0] not in live or key[0] in rejected_opps or (key in evaluated and key not in matched)
        if match.status == "active" and gone:
            match.status = "withdrawn"
            match.last_run_id = run_id
    for key in sorted(matched):
        d = matched[key]
        values = _match_values(d)
        match = existing.get(key)
        if match is None:
            session.add(Match(opportunity_id=key[0], party_id=key[1], first_run_id=run_id, last_run_id=run_id,
                              status="active", rank=0, **values))
        else:
            for name, value in values.items():
                setattr(match, name, value)
            match.status, match.last_run_id = "active", run_id
    session.flush()
    _rerank(session, inputs)


def _match_values(d: dict[str, Any]) -> dict[str, Any]:
    detail = d["detail"]
    members = detail.get("members", [])
    return {"party_type": d["party_type"], "score": d["score"], "levels": detail.get("levels", {}),
            "reasons": top_reasons(d), "flags": sorted({f["flag"] for f in d["firings"] if f["flag"]}),
            "members": members, "lead_id": detail.get("lead") if members else None}


def top_reasons(decision: dict[str, Any], limit: int = 5) -> list[str]:
    """The reasons a match is shown with: its highest-scoring rules first, then suggestions and flags."""
    scored = sorted((f for f in decision["firings"] if f["effect"] == "score" and f["points"] > 0),
                    key=lambda f: -f["points"])
    reasons = [f["reason"] for f in scored]
    reasons += list(decision["detail"].get("suggestion", []))
    reasons += [f["reason"] for f in decision["firings"] if f["effect"] in ("flag", "needs_consortium")]
    out: list[str] = []
    for r in reasons:
        if r and r not in out:
            out.append(r)
    return out[:limit]


def _rerank(session: Session, inputs: Inputs) -> None:
    deadlines = {o.id: o.deadline_at for o in inputs.opportunities}
    far = datetime.max.replace(tzinfo=UTC)
    by_party: dict[str, list[Match]] = {}
    for m in session.scalars(select(Match).where(Match.status == "active")):
        by_party.setdefault(m.party_id, []).append(m)
    for matches in by_party.values():
        matches.sort(key=lambda m: (-m.score, deadlines.get(m.opportunity_id) or far, m.opportunity_id))
        for rank, m in enumerate(matches, 1):
            m.rank = rank


def _finish_run(session: Session, run_id: str, outcome: RunOutcome) -> MatchRun:
    run = session.get(MatchRun, run_id)
    assert run is not None
    inputs = [(r.kind, r.entity_id, r.content_hash) for r in
              session.scalars(select(RunInput).where(RunInput.run_id == run_id))]
    run.counts = dict(outcome.counts)
    run.input_digest = input_digest(inputs)
    run.decision_digest = decision_digest(outcome.hashes)
    run.sequence_digest = outcome.sequence_digest
    run.status = "complete"
    run.finished_at = datetime.now(UTC)  # metadata only
    session.flush()
    run.manifest_digest = canonical_hash(manifest_of(session, run))
    append_link(session, "run", run.id, run.manifest_digest, {})
    return run


def manifest_of(session: Session, run: MatchRun) -> dict[str, Any]:
    """Every manifest field of a run, as digested into the audit chain."""
    # Sorted here, not by the database: PostgreSQL's collation may order names differently from SQLite.
    rules = [{"name": f.name, "sha256": f.sha256} for f in
             sorted(session.scalars(select(RunRuleFile).where(RunRuleFile.run_id == run.id)), key=lambda f: f.name)]
    return {"run_id": run.id, "seq": run.seq, "as_of": run.as_of, "mode": run.mode, "status": run.status,
            "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at), "params": run.params,
            "software": run.software, "scope": run.scope, "rules": rules, "rules_sha256": run.rules_sha256,
            "counts": run.counts, "input_digest": run.input_digest, "decision_digest": run.decision_digest,
            "sequence_digest": run.sequence_digest}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decisions_of(session: Session, run_id: str) -> Sequence[Decision]:
    return session.scalars(select(Decision).where(Decision.run_id == run_id).order_by(Decision.seq)).all()
