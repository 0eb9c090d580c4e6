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
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from broker import __version__
from broker.audit.chain import append_link
from broker.audit.digests import decision_digest, input_digest
from broker.match.feedback import party_feedback_terms
from broker.match.model import OpportunityView, PartyView
from broker.match.params import MatchParams
from broker.match.relevance import DEFAULT_RELEVANCE, RelevanceModel, RelevanceParams
from broker.match.rulefiles import RuleSet, load_rules
from broker.match.rulesdir import RulesLocation, rules_location
from broker.match.run import RunOutcome, RunScope, evaluate_run
from broker.match.views import consortium_view, opportunity_view, vcse_view, view_hash, view_json
from broker.match.vocabulary import DATED_FIELDS, SUBCONTRACTING_FLAG
from broker.normalise.dates import LONDON
from broker.normalise.record import canonical_hash
from broker.paths import DATA_DIR
from broker.store import jsoncodec
from broker.store.models import (
    AuditLink,
    Consortium,
    ConsortiumMember,
    Decision,
    DigestFeedback,
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
    """What a run did. ``noop``: nothing had changed since the run named, so no run was recorded."""

    run_id: str
    as_of: str
    mode: str
    counts: dict[str, int]
    decision_digest: str
    noop: bool = False


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


def run_match(sessions: sessionmaker[Session], *, as_of: date, rules_dir: RulesLocation | Path | str | None = None,
              full: bool = False, params: MatchParams | None = None,
              progress: Callable[[int], None] | None = None) -> RunSummary:
    """Run the matcher for business date ``as_of``; incremental unless ``full`` (or no run before).

    ``rules_dir`` is a folder of rule files (or a :class:`RulesLocation` saying who named it); None reads the
    rules shipped with broker. The run records which.
    """
    params = params or MatchParams()
    location = rules_dir if isinstance(rules_dir, RulesLocation) else rules_location(rules_dir)
    ruleset = load_rules(location.path)
    with sessions.begin() as session:
        _abandon_unfinished(session)
        inputs = load_inputs(session, as_of, params.relevance)
        same = None if full else _same_as_last(session, inputs, as_of, params, ruleset)
        if same is not None:
            return RunSummary(same.id, same.as_of, "no-op", dict(same.counts), same.decision_digest or "", True)
        scope = _scope(session, inputs, as_of, params, ruleset, full)
        run = _start_run(session, as_of, scope, params, ruleset, inputs, location)
        run_id = run.id
    writer = DecisionWriter(sessions, run_id)
    try:
        outcome = evaluate_run(inputs.opportunities, inputs.parties, ruleset, params, as_of, scope,
                               sink=writer.put, progress=progress)
    finally:
        writer.close()
    with sessions.begin() as session:
        _update_matches(session, run_id, writer.matched, outcome, inputs, scope)
        run = _finish_run(session, run_id, outcome)
        return RunSummary(run.id, run.as_of, run.mode, dict(run.counts), run.decision_digest or "")


# --- inputs and scope -------------------------------------------------------------------------------

def business_day_bounds(as_of: date) -> tuple[datetime, datetime]:
    """The UK business day ``as_of`` as [start, next day's start) in UTC."""
    start = datetime.combine(as_of, time(0), tzinfo=LONDON)
    end = datetime.combine(as_of + timedelta(days=1), time(0), tzinfo=LONDON)
    return start.astimezone(UTC), end.astimezone(UTC)


def published_by(as_of: date) -> Any:
    """SQL condition: the notice was published on or before the UK day ``as_of`` (or gives no date).

    A run, a digest or a report as of D sees only what was public on D: a notice published later does
    not exist yet for that business date, however long its deadline.
    """
    _, next_day = business_day_bounds(as_of)
    return Opportunity.published_at.is_(None) | (Opportunity.published_at < next_day)


def load_inputs(session: Session, as_of: date, relevance: RelevanceParams = DEFAULT_RELEVANCE) -> Inputs:
    """Live opportunities on ``as_of`` (open or planned, published by then, deadline not before it) and
    every party, each party with the query terms learned from its own feedback up to ``as_of``
    (``broker.match.feedback``)."""
    day_start, _ = business_day_bounds(as_of)
    # Plain rows, not ORM objects (the views read their columns by name): a national directory is 20,000
    # VCSEs and 10,000 live notices, read every night.
    rows = session.execute(select(Opportunity.__table__).where(
        Opportunity.status.in_(LIVE_STATUSES), published_by(as_of),
        (Opportunity.deadline_at.is_(None)) | (Opportunity.deadline_at >= day_start)).order_by(Opportunity.id))
    opportunities = [opportunity_view(r) for r in rows]  # type: ignore[arg-type]
    vcses = {v.id: vcse_view(v) for v in session.execute(select(Vcse.__table__).order_by(Vcse.id))}  # type: ignore[arg-type]
    members: dict[str, list[str]] = {}
    for m in session.scalars(select(ConsortiumMember).order_by(ConsortiumMember.consortium_id,
                                                                ConsortiumMember.position)):
        members.setdefault(m.consortium_id, []).append(m.vcse_id)
    consortia = [consortium_view(c, [vcses[i] for i in members.get(c.id, []) if i in vcses])
                 for c in session.scalars(select(Consortium).order_by(Consortium.id))]
    parties = _with_feedback(session, sorted([*vcses.values(), *consortia], key=lambda p: p.id), as_of, relevance)
    hashes = {("opportunity", o.id): view_hash(o) for o in opportunities}
    hashes.update({("party", p.id): view_hash(p) for p in parties})
    return Inputs(opportunities, parties, hashes)


def _last_run(session: Session) -> MatchRun | None:
    """The last complete run made here. A run imported from another database (`broker audit import`)
    read that database's inputs: never the base of an incremental run here."""
    imported = select(AuditLink.ref).where(AuditLink.kind == "import")
    return session.scalars(select(MatchRun).where(MatchRun.status == "complete", MatchRun.id.not_in(imported))
                           .order_by(MatchRun.seq.desc()).limit(1)).first()


def _same_as_last(session: Session, inputs: Inputs, as_of: date, params: MatchParams,
                  ruleset: RuleSet) -> MatchRun | None:
    """The last run, when this run would repeat it exactly; else None.

    A run is a function of its inputs, rules, parameters, software and business date: when all of them
    equal the last run's, every decision would be the same again, so nothing is recorded (re-running a
    night with nothing new must not add a run of identical decisions each time).
    """
    last = _last_run(session)
    if (last is None or last.as_of != as_of.isoformat() or last.rules_sha256 != ruleset.sha256
            or last.params != params.to_json() or last.software != software_versions()):
        return None
    before = {(kind, entity_id): content_hash for kind, entity_id, content_hash in session.execute(
        select(RunInput.kind, RunInput.entity_id, RunInput.content_hash).where(RunInput.run_id == last.id))}
    return last if before == inputs.hashes else None


def _with_feedback(session: Session, parties: list[PartyView], as_of: date,
                   relevance: RelevanceParams) -> list[PartyView]:
    """Parties with their learned feedback terms (the feedback's notices may be closed by now)."""
    rows = [tuple(r) for r in session.execute(
        select(DigestFeedback.party_id, DigestFeedback.opportunity_id, DigestFeedback.kind)
        .where(DigestFeedback.as_of <= as_of.isoformat())
        .order_by(DigestFeedback.party_id, DigestFeedback.opportunity_id, DigestFeedback.kind))]
    if not rows:
        return parties
    ids = sorted({r[1] for r in rows})
    notices: dict[str, OpportunityView] = {}
    for start in range(0, len(ids), 500):
        for r in session.execute(select(Opportunity.__table__).where(Opportunity.id.in_(ids[start:start + 500]))):
            notices[r.id] = opportunity_view(r)  # type: ignore[arg-type]
    learned = party_feedback_terms(RelevanceModel(relevance), rows, notices)
    return [replace(p, feedback_terms=learned[p.id]) if p.id in learned else p for p in parties]


def _scope(session: Session, inputs: Inputs, as_of: date, params: MatchParams, ruleset: RuleSet,
           full: bool) -> RunScope:
    last = _last_run(session)
    if full or last is None or last.rules_sha256 != ruleset.sha256 or last.params != params.to_json():
        return RunScope(full=True)  # first run, or other rules or parameters: every decision may differ
    before = {(kind, entity_id): content_hash for kind, entity_id, content_hash in session.execute(
        select(RunInput.kind, RunInput.entity_id, RunInput.content_hash).where(RunInput.run_id == last.id))}
    changed = sorted(k for k, h in inputs.hashes.items() if before.get(k) != h)
    opp_ids = {i for kind, i in changed if kind == "opportunity"}
    if last.as_of != as_of.isoformat() and pairs_change_with_the_date(ruleset):
        # A new business day, and rules that make a pair's decision depend on the date: live matches whose
        # deadline is getting close are re-checked (the same day twice re-checks nothing).
        soon = datetime.combine(as_of + timedelta(days=params.recheck_days), time(23, 59), tzinfo=LONDON)
        live = {o.id for o in inputs.opportunities}
        recheck = session.scalars(select(Match.opportunity_id)
                                  .join(Opportunity, Opportunity.id == Match.opportunity_id)
                                  .where(Match.status == "active", Opportunity.deadline_at <= soon.astimezone(UTC)))
        opp_ids.update(i for i in recheck if i in live)
    return RunScope(False, tuple(sorted(opp_ids)), tuple(sorted(i for kind, i in changed if kind == "party")))


def pairs_change_with_the_date(ruleset: RuleSet) -> bool:
    """Whether a pair's decision can change from one business day to the next when nothing else has.

    Only a rule reading a dated field (days to the deadline) makes it so, and not every such rule: the
    opportunity rules run for every live opportunity in every run, and an opportunity one of them rejects
    has its matches withdrawn, so a dated *reject* rule on opportunities needs no pair re-checked. A dated
    score or flag, or a dated pair rule, changes pair decisions: their near-deadline matches are re-checked.
    """
    return any(set(rule.inputs) & set(DATED_FIELDS)
               and not (rule.applies_to == "opportunity" and rule.effect.kind == "reject")
               for rule in ruleset.rules)


def _abandon_unfinished(session: Session) -> None:
    session.execute(update(MatchRun).where(MatchRun.status == "running").values(status="abandoned"))


# --- the run row and its manifest inputs -------------------------------------------------------------

def _start_run(session: Session, as_of: date, scope: RunScope, params: MatchParams, ruleset: RuleSet,
               inputs: Inputs, location: RulesLocation) -> MatchRun:
    seq = (session.scalar(select(func.max(MatchRun.seq))) or 0) + 1
    # Which rules folder was read, and who named it, goes in the manifest with the scope (metadata: the
    # decisions depend on the rule texts, stored below, not on where they were read from).
    run = MatchRun(id=f"run-{seq:06d}", seq=seq, as_of=as_of.isoformat(), mode="full" if scope.full else "incremental",
                   status="running", started_at=datetime.now(UTC),  # metadata only
                   finished_at=None, params=params.to_json(), software=software_versions(),
                   scope={**scope.to_json(), "rules_from": location.to_json()},
                   rules_sha256=ruleset.sha256, counts={})
    session.add(run)
    session.flush()
    for f in ruleset.files:
        session.add(RunRuleFile(run_id=run.id, name=f.name, sha256=f.sha256, text=f.data.decode("utf-8")))
    store_snapshot(session, run.id, inputs)
    return run


def store_snapshot(session: Session, run_id: str, inputs: Inputs) -> None:
    """Content-addressed copies of every input the run reads (shared across runs: only new ones are written)."""
    views: dict[str, tuple[str, OpportunityView | PartyView]] = {}
    for o in inputs.opportunities:
        views[inputs.hashes[("opportunity", o.id)]] = ("opportunity", o)
    for p in inputs.parties:
        views[inputs.hashes[("party", p.id)]] = ("party", p)
    have: set[str] = set()
    keys = sorted(views)
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        have.update(session.scalars(select(Snapshot.content_hash).where(Snapshot.content_hash.in_(chunk))))
    new = [{"content_hash": h, "kind": views[h][0], "record": view_json(views[h][1])} for h in keys if h not in have]
    if new:
        session.execute(insert(Snapshot), new)
    rows = [{"run_id": run_id, "kind": k, "entity_id": i, "content_hash": h}
            for (k, i), h in sorted(inputs.hashes.items())]
    if rows:
        session.execute(insert(RunInput), rows)


class DecisionWriter:
    """Stores a run's decisions on a thread of its own while the rules go on, batch by batch.

    The queue holds at most two batches, so a slow database slows the run down instead of filling memory.
    Sequence numbers follow the order in which the run emits decisions. The writer also keeps, for every
    matched pair, the values the ``matches`` table shows (``matched``), so nothing holds the decisions
    themselves. A failure to store stops the run at its next batch (or at ``close``) with that error.
    """

    def __init__(self, sessions: sessionmaker[Session], run_id: str) -> None:
        self.sessions, self.run_id = sessions, run_id
        self.matched: dict[tuple[str, str], dict[str, Any]] = {}
        self._error: BaseException | None = None
        self._raised = False
        self._seq = 0
        self._queue: queue.Queue[list[dict[str, Any]] | None] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._work, name=f"decisions-{run_id}", daemon=True)
        self._thread.start()

    def put(self, batch: list[dict[str, Any]]) -> None:
        self._raise_error()
        rows = []
        for d in batch:
            self._seq += 1
            rows.append({"run_id": self.run_id, "seq": self._seq, **d})
        self._queue.put(rows)

    def close(self) -> None:
        """Wait until every batch is stored; raise the error if one could not be."""
        self._queue.put(None)
        self._thread.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None and not self._raised:
            self._raised = True
            raise self._error

    def _work(self) -> None:
        done = False
        try:
            with self.sessions() as session:
                while not done:
                    rows = self._queue.get()
                    if rows is None:
                        done = True
                    elif self._error is None:  # after an error, keep draining: the run never blocks on put()
                        try:
                            _insert_decisions(session, rows)
                            session.commit()
                            for d in rows:
                                if d["stage"] == "pair" and d["outcome"] == "matched":
                                    self.matched[(d["opportunity_id"], d["party_id"])] = _match_values(d)
                        except BaseException as exc:  # handed to the run's thread by put() or close()
                            session.rollback()
                            self._error = exc
        except BaseException as exc:  # opening or closing the session itself
            self._error = self._error or exc
            while not done:
                done = self._queue.get() is None


_DECISION_COLUMNS = ("run_id", "seq", "stage", "opportunity_id", "party_id", "party_type", "outcome", "score",
                     "features", "firings", "detail", "decision_hash")
_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _insert_decisions(session: Session, rows: list[dict[str, Any]]) -> None:
    """One executemany straight to the driver, the JSON columns serialised here.

    A national run stores a million decisions; SQLAlchemy's per-row parameter processing cost more than
    the database's own work. The statement names its columns and takes plain values (text for JSON, which
    PostgreSQL casts on insert), so nothing in a decision is ever part of the SQL.
    """
    connection = session.connection()
    mark = _MARKS[connection.dialect.paramstyle]
    sql = (f"INSERT INTO {Decision.__tablename__} ({', '.join(_DECISION_COLUMNS)}) "
           f"VALUES ({', '.join([mark] * len(_DECISION_COLUMNS))})")
    dumps = jsoncodec.dumps
    connection.exec_driver_sql(sql, [
        (d["run_id"], d["seq"], d["stage"], d["opportunity_id"], d["party_id"], d["party_type"], d["outcome"],
         d["score"], dumps(d["features"]), dumps(d["firings"]), dumps(d["detail"]), d["decision_hash"])
        for d in rows])


# --- results -----------------------------------------------------------------------------------------

def _update_matches(session: Session, run_id: str, matched: dict[tuple[str, str], dict[str, Any]],
                    outcome: RunOutcome, inputs: Inputs, scope: RunScope) -> None:
    """Bring the current ``matches`` up to this run: one row per pair.

    A pair the run matched is inserted or refreshed. An active match is withdrawn when its opportunity is
    no longer live or was rejected, when its party has left the directory, or when the run reconsidered the
    pair (its opportunity or its party was in scope, so the pair went through blocking) and did not match
    it. Only the rows that can change are read (an incremental run reads the matches of its scope and of
    what has gone, not the whole table) and only rows that change are written, with executemany.
    """
    live = {o.id for o in inputs.opportunities}
    gone_opps = set(outcome.rejected_opportunities)
    parties = {p.id for p in inputs.parties}
    rows = _rows_that_may_change(session, scope, matched, live, gone_opps, parties)
    scope_opps, scope_parties = set(scope.opportunity_ids), set(scope.party_ids)
    withdraw = []
    for (opp_id, party_id), row in rows.items():
        if row.status != "active" or (opp_id, party_id) in matched:
            continue
        reconsidered = scope.full or opp_id in scope_opps or party_id in scope_parties
        left = row.party_type != "suggested_consortium" and party_id not in parties
        if opp_id not in live or opp_id in gone_opps or reconsidered or left:
            withdraw.append({"b_id": row.id, "status": "withdrawn", "last_run_id": run_id})
    inserts, refreshes = [], []
    # A standing consortium's match goes to its lead's digest: the decision names members and lead only
    # for suggested groupings, so the directory's lead and members are filled in here.
    consortia = _consortium_members(session) if any(v["party_type"] == "consortium" for v in matched.values()) \
        else {}
    for key in sorted(matched):
        values = {**matched[key], "status": "active", "last_run_id": run_id}
        if values["party_type"] == "consortium" and key[1] in consortia and not values.get("lead_id"):
            values["lead_id"], values["members"] = consortia[key[1]]
        row = rows.get(key)
        if row is None:
            inserts.append({"opportunity_id": key[0], "party_id": key[1], "first_run_id": run_id, **values})
        else:
            refreshes.append({"b_id": row.id, **values})
    table = Match.__table__
    for start in range(0, len(inserts), 5000):
        session.execute(insert(table), inserts[start:start + 5000])
    for changes in (refreshes, sorted(withdraw, key=lambda r: r["b_id"])):
        if changes:
            stmt = update(table).where(table.c.id == bindparam("b_id")).values(
                {k: bindparam(k) for k in changes[0] if k != "b_id"})
            for start in range(0, len(changes), 5000):
                session.execute(stmt, changes[start:start + 5000])


def _consortium_members(session: Session) -> dict[str, tuple[str, list[str]]]:
    """Standing consortium id -> (lead id, member ids in their order)."""
    members: dict[str, list[str]] = {}
    for m in session.scalars(select(ConsortiumMember).order_by(ConsortiumMember.consortium_id,
                                                                ConsortiumMember.position)):
        members.setdefault(m.consortium_id, []).append(m.vcse_id)
    return {c.id: (c.lead_id, members.get(c.id, [])) for c in session.scalars(select(Consortium))}


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    party_type: str
    status: str


def _rows_that_may_change(session: Session, scope: RunScope, matched: dict[tuple[str, str], Any],
                          live: set[str], gone_opps: set[str], parties: set[str]) -> dict[tuple[str, str], _Row]:
    c = Match.__table__.c
    columns = select(c.id, c.opportunity_id, c.party_id, c.party_type, c.status)
    if scope.full:
        return {(o, p): _Row(i, t, s) for i, o, p, t, s in session.execute(columns)}
    active = c.status == "active"
    opp_ids = set(scope.opportunity_ids)
    opp_ids.update(o for o in session.scalars(select(c.opportunity_id).where(active).distinct())
                   if o not in live or o in gone_opps)
    party_ids = set(scope.party_ids)
    party_ids.update(p for p in session.scalars(select(c.party_id).where(
        active, c.party_type != "suggested_consortium").distinct()) if p not in parties)
    # Every pair an incremental run matches has its opportunity or its party in scope; in case one ever
    # does not, its row is read too, so it is refreshed rather than inserted twice.
    opp_ids.update(o for o, p in matched if o not in opp_ids and p not in party_ids)
    out: dict[tuple[str, str], _Row] = {}
    for column, ids in ((c.opportunity_id, sorted(opp_ids)), (c.party_id, sorted(party_ids))):
        for start in range(0, len(ids), 500):
            for i, o, p, t, s in session.execute(columns.where(column.in_(ids[start:start + 500]))):
                out[(o, p)] = _Row(i, t, s)
    return out


def _match_values(d: dict[str, Any]) -> dict[str, Any]:
    detail = d["detail"]
    members = detail.get("members", [])
    flags = {f["flag"] for f in d["firings"] if f["flag"]}
    if any(f["effect"] == "needs_consortium" for f in d["firings"]):
        flags.add(SUBCONTRACTING_FLAG)
    return {"party_type": d["party_type"], "score": d["score"], "levels": detail.get("levels", {}),
            "reasons": top_reasons(d), "flags": sorted(flags),
            "members": members, "lead_id": detail.get("lead") if members else None}


def top_reasons(decision: dict[str, Any], limit: int = 5) -> list[str]:
    """The reasons a match is shown with: why it is only a subcontracting prospect first (a VCSE must
    read that before anything else), then its highest-scoring rules, then suggestions and flags."""
    scored = sorted((f for f in decision["firings"] if f["effect"] == "score" and f["points"] > 0),
                    key=lambda f: -f["points"])
    reasons = [f["reason"] for f in decision["firings"] if f["effect"] == "needs_consortium"]
    reasons += [f["reason"] for f in scored]
    reasons += list(decision["detail"].get("suggestion", []))
    reasons += [f["reason"] for f in decision["firings"] if f["effect"] == "flag"]
    out: list[str] = []
    for r in reasons:
        if r and r not in out:
            out.append(r)
    return out[:limit]


def _finish_run(session: Session, run_id: str, outcome: RunOutcome) -> MatchRun:
    run = session.get(MatchRun, run_id)
    assert run is not None
    inputs = [tuple(r) for r in session.execute(
        select(RunInput.kind, RunInput.entity_id, RunInput.content_hash).where(RunInput.run_id == run_id))]
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
