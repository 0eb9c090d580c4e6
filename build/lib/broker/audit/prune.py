"""Retention: the only way audit records are deleted, and itself recorded in the chain.

Audit records (runs, their rule files, inputs, snapshots and decisions) are never updated in place; the
Procurement Act 2023 s.98 asks for records of material decisions for three years from contract entry
(research/durable-rules.md §4.2), so how long to keep them is the operator's call. ``prune_before``
deletes every run whose business date is before a cut-off, with its records and any snapshot no
remaining run reads, then appends a ``prune`` link listing each removed run and the hash of the link
that recorded it. The removed runs' links stay in the chain (it is append-only); ``verify`` accepts a
link whose run is gone only when a later prune lists it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from broker.audit.chain import append_link
from broker.audit.stored import chain_link_of
from broker.normalise.record import canonical_hash
from broker.store.models import Decision, MatchRun, RunInput, RunRuleFile, Snapshot

CHUNK = 500


@dataclass(frozen=True)
class PruneReport:
    before: str
    runs: list[dict[str, Any]]
    decisions: int
    snapshots: int
    link_seq: int | None  # the prune's chain link (None when nothing was old enough to prune)

    def to_json(self) -> dict[str, Any]:
        return {"before": self.before, "runs": self.runs, "decisions": self.decisions,
                "snapshots": self.snapshots, "link_seq": self.link_seq}


def prune_before(session: Session, before: date) -> PruneReport:
    """Delete every run with business date before ``before`` (any status) and record it in the chain.

    The caller owns the transaction: the deletions and the prune link commit together or not at all.
    """
    cutoff = before.isoformat()
    runs = list(session.scalars(select(MatchRun).where(MatchRun.as_of < cutoff).order_by(MatchRun.seq)))
    if not runs:
        return PruneReport(cutoff, [], 0, 0, None)
    listed = []
    for run in runs:
        link = chain_link_of(session, run.id)
        listed.append({"run_id": run.id, "as_of": run.as_of, "status": run.status,
                       "manifest_digest": run.manifest_digest, "link_seq": link.seq if link else None,
                       "link_hash": link.hash if link else None})
    ids = [r.id for r in runs]
    decisions = _delete_runs(session, ids)
    snapshots = _delete_orphan_snapshots(session)
    payload = {"before": cutoff, "runs": listed, "decisions": decisions, "snapshots": snapshots}
    link = append_link(session, "prune", cutoff, canonical_hash(payload), payload)
    return PruneReport(cutoff, listed, decisions, snapshots, link.seq)


def _delete_runs(session: Session, ids: list[str]) -> int:
    decisions = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        decisions += session.scalar(select(func.count()).select_from(Decision).where(Decision.run_id.in_(chunk))) or 0
        for model in (Decision, RunInput, RunRuleFile):
            session.execute(delete(model).where(model.run_id.in_(chunk)))
        session.execute(delete(MatchRun).where(MatchRun.id.in_(chunk)))
    return decisions


def _delete_orphan_snapshots(session: Session) -> int:
    """Snapshots are shared by content across runs: delete only those no remaining run reads."""
    used = select(RunInput.content_hash)
    orphans = list(session.scalars(select(Snapshot.content_hash).where(Snapshot.content_hash.not_in(used))))
    for start in range(0, len(orphans), CHUNK):
        session.execute(delete(Snapshot).where(Snapshot.content_hash.in_(orphans[start:start + CHUNK])))
    return len(orphans)
