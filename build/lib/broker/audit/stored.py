"""A stored run read back: its row, rule files, input snapshot and decisions, each checked against the
hash recorded for it. Replay, verify, explain and export all read runs through here.

Every check returns problems in words (an empty list when all is well) rather than raising, so that a
report can name everything that no longer matches; only a missing run raises ``NotFound``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.audit.digests import DECISION_FIELDS, input_digest
from broker.errors import BrokerError, NotFound
from broker.match.model import OpportunityView, PartyView
from broker.match.rulefiles import RuleError, RuleSet, load_rules_from_texts
from broker.match.service import manifest_of
from broker.match.views import opportunity_from_json, party_from_json, view_hash
from broker.normalise.record import canonical_hash
from broker.store.models import AuditLink, Decision, MatchRun, RunInput, RunRuleFile, Snapshot

CHUNK = 1000
DECISION_COLUMNS = (Decision.seq, *(getattr(Decision, name) for name in DECISION_FIELDS), Decision.decision_hash)


class AuditError(BrokerError):
    """A run cannot be audited as asked (not complete, unreadable rules, a malformed export ...)."""


def get_run(session: Session, run_id: str) -> MatchRun:
    """The run row, or ``NotFound`` with the next command to try."""
    run = session.get(MatchRun, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r} in this database. Try `broker audit runs`.")
    return run


def latest_complete_run(session: Session) -> MatchRun:
    run = session.scalars(select(MatchRun).where(MatchRun.status == "complete")
                          .order_by(MatchRun.seq.desc()).limit(1)).first()
    if run is None:
        raise NotFound("no complete run in this database. Try `broker match`.")
    return run


def require_complete(run: MatchRun) -> None:
    if run.status != "complete":
        raise AuditError(f"run {run.id} is {run.status}, not complete: only complete runs have a manifest "
                         "and a full set of decisions. Try `broker audit runs`.")


def chain_link_of(session: Session, run_id: str) -> AuditLink | None:
    """The chain link that records the run (kind ``run``, or ``import`` in an importing database)."""
    return session.scalars(select(AuditLink).where(AuditLink.kind.in_(("run", "import")), AuditLink.ref == run_id)
                           .order_by(AuditLink.seq.desc()).limit(1)).first()


# --- manifest and rules -------------------------------------------------------------------------------

def manifest_digest_of(session: Session, run: MatchRun) -> str:
    """The manifest digest recomputed from the stored run row and rule files."""
    return canonical_hash(manifest_of(session, run))


def rule_files(session: Session, run_id: str) -> list[RunRuleFile]:
    return sorted(session.scalars(select(RunRuleFile).where(RunRuleFile.run_id == run_id)), key=lambda f: f.name)


def rules_sha256(files: Iterable[tuple[str, str]]) -> str:
    """The rule set's sha256 over (name, file sha256) in name order, as ``rulefiles`` computes it."""
    return hashlib.sha256("".join(f"{n}\n{s}\n" for n, s in sorted(files)).encode()).hexdigest()


def rule_problems(run: MatchRun, files: Sequence[RunRuleFile]) -> list[str]:
    """Rule texts that no longer match their sha256, and a rule set that no longer matches the run's."""
    problems = []
    for f in files:
        now = hashlib.sha256(f.text.encode("utf-8")).hexdigest()
        if now != f.sha256:
            problems.append(f"rule file {f.name}: its stored text no longer matches its sha256 "
                            f"(recorded {f.sha256[:12]}, text hashes to {now[:12]})")
    combined = rules_sha256((f.name, f.sha256) for f in files)
    if combined != run.rules_sha256:
        problems.append(f"rule files: the set of files no longer matches the run's rules sha256 "
                        f"(recorded {run.rules_sha256[:12]}, now {combined[:12]})")
    return problems


def stored_ruleset(files: Sequence[RunRuleFile]) -> RuleSet:
    """The run's rules, from the stored texts (never from ``rules/``, which may have changed since)."""
    try:
        return load_rules_from_texts((f.name, f.text) for f in files)
    except RuleError as exc:
        raise AuditError(f"the run's stored rules cannot be read: {exc}") from None


def manifest_problems(session: Session, run: MatchRun, link: AuditLink | None) -> list[str]:
    """The manifest digest recomputed from the stored row, against the row's own and the chain's."""
    now = manifest_digest_of(session, run)
    problems = []
    if now != run.manifest_digest:
        problems.append(f"manifest: the stored run row no longer matches its manifest digest "
                        f"(recorded {str(run.manifest_digest)[:12]}, row hashes to {now[:12]})")
    if link is None:
        problems.append(f"manifest: run {run.id} has no link in the audit chain")
    elif link.digest != now:
        problems.append(f"manifest: the audit chain (link #{link.seq}) recorded digest {link.digest[:12]}, "
                        f"the stored run hashes to {now[:12]}")
    return problems


# --- the input snapshot --------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredInput:
    kind: str  # opportunity | party
    entity_id: str
    content_hash: str
    record: dict[str, Any] | None  # None when the snapshot row is missing
    snapshot_kind: str | None


def iter_inputs(session: Session, run_id: str) -> Iterator[StoredInput]:
    """The run's inputs with their snapshot records, in (kind, entity id) order, a chunk at a time."""
    rows = [(r.kind, r.entity_id, r.content_hash) for r in
            session.execute(select(RunInput.kind, RunInput.entity_id, RunInput.content_hash)
                            .where(RunInput.run_id == run_id))]
    rows.sort()
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        wanted = sorted({h for _, _, h in chunk})
        found = {s.content_hash: (s.kind, s.record) for s in
                 session.execute(select(Snapshot.content_hash, Snapshot.kind, Snapshot.record)
                                 .where(Snapshot.content_hash.in_(wanted)))}
        for kind, entity_id, h in chunk:
            snap = found.get(h)
            yield StoredInput(kind, entity_id, h, snap[1] if snap else None, snap[0] if snap else None)


def snapshot_problem(item: StoredInput) -> str | None:
    """Why a snapshot record cannot be trusted as what the run read (None when it can)."""
    where = f"snapshot of {item.kind} {item.entity_id!r} ({item.content_hash[:12]})"
    if item.record is None:
        return f"{where}: the record is missing from the snapshot store"
    if item.snapshot_kind != item.kind:
        return f"{where}: stored as a {item.snapshot_kind} record"
    now = canonical_hash(item.record)
    if now != item.content_hash:
        return f"{where}: the stored record no longer matches its content hash (it hashes to {now[:12]})"
    return None


def input_problems(run: MatchRun, inputs: Sequence[tuple[str, str, str]]) -> list[str]:
    now = input_digest(inputs)
    if now != run.input_digest:
        return [f"inputs: the run's input list no longer matches its input digest "
                f"(recorded {str(run.input_digest)[:12]}, now {now[:12]})"]
    return []


def view_of(item: StoredInput) -> OpportunityView | PartyView:
    """The view a snapshot record describes, exactly: the view must turn back into the same record.

    A record edited since the run is still read (``snapshot_problem`` reports it), so that a replay shows
    the decisions the edited record leads to.
    """
    assert item.record is not None
    try:
        view = (opportunity_from_json if item.kind == "opportunity" else party_from_json)(item.record)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise AuditError(f"snapshot of {item.kind} {item.entity_id!r} cannot be read back: {exc}") from None
    if view.id != item.entity_id:
        raise AuditError(f"the snapshot record the run lists for {item.kind} {item.entity_id!r} is the record "
                         f"of {view.id!r}")
    if view_hash(view) != canonical_hash(item.record):
        raise AuditError(f"snapshot of {item.kind} {item.entity_id!r} does not read back exactly (the view "
                         "made from it hashes differently from the record)")
    return view


@dataclass
class LoadedInputs:
    opportunities: list[OpportunityView]
    parties: list[PartyView]
    listed: list[tuple[str, str, str]]  # (kind, entity id, content hash), for the input digest
    problems: list[str]


def load_views(session: Session, run_id: str) -> LoadedInputs:
    """Every input view of the run, read from the snapshot and checked (problems listed, not raised)."""
    out = LoadedInputs([], [], [], [])
    for item in iter_inputs(session, run_id):
        out.listed.append((item.kind, item.entity_id, item.content_hash))
        problem = snapshot_problem(item)
        if problem is not None:
            out.problems.append(problem)
            if item.record is None or item.snapshot_kind != item.kind:
                continue
        try:
            view = view_of(item)
        except AuditError as exc:
            out.problems.append(str(exc))
            continue
        if isinstance(view, OpportunityView):
            out.opportunities.append(view)
        else:
            out.parties.append(view)
    return out


# --- decisions ----------------------------------------------------------------------------------------

def decision_key(d: dict[str, Any]) -> tuple[str, str, str]:
    return d["stage"], d["opportunity_id"], d["party_id"]


def iter_stored_decisions(session: Session, run_id: str, batch: int = 2000) -> Iterator[dict[str, Any]]:
    """The run's decisions in the order they were made, streamed; each with ``seq`` and stored hash.

    Ordered by the row id: a run's rows are inserted in decision order, and the id order is what the
    ``run_id`` index yields without a sort (a national run has millions of rows).
    """
    stmt = select(*DECISION_COLUMNS).where(Decision.run_id == run_id).order_by(Decision.id)
    for row in session.execute(stmt, execution_options={"yield_per": batch}):
        yield dict(zip(("seq", *DECISION_FIELDS, "decision_hash"), row, strict=True))
