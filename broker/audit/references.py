"""Records outside the chain that cite a run: the current matches and the ledger's run batches.

Deleting the last run entirely (its row, its decisions and its chain link) leaves a shorter chain that
is consistent in itself. The matches the run made and the ledger entries it caused still name it, so
each run they cite must be one the chain records (or recorded, before a prune).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broker.store.models import Match, TargetBatch, TargetEntry

RUN_CAUSE = "run:"


def reference_problems(session: Session, linked: Mapping[str, int], pruned: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(run id, message)`` for every run cited by matches or ledger batches that no chain link records."""
    cited: dict[str, list[str]] = {}
    for column, what in ((Match.first_run_id, "first matched"), (Match.last_run_id, "last decided")):
        for run_id, n in session.execute(select(column, func.count()).group_by(column).order_by(column)):
            if run_id not in linked:
                cited.setdefault(run_id, []).append(f"{n} matches were {what} by it")
    stmt = (select(TargetBatch.cause, func.count(TargetEntry.id)).join(TargetEntry, TargetEntry.batch_id == TargetBatch.id)
            .where(TargetBatch.cause.like(f"{RUN_CAUSE}%")).group_by(TargetBatch.cause).order_by(TargetBatch.cause))
    for cause, n in session.execute(stmt):
        run_id = cause[len(RUN_CAUSE):]
        if run_id not in linked:
            cited.setdefault(run_id, []).append(f"{n} ledger entries credit it")
    return [(run_id, f"{'; '.join(found)}, but no chain link records run {run_id} (was the run, and the end of "
                     "the chain, deleted? Check against a published head with `broker audit verify --head`)")
            for run_id, found in sorted(cited.items()) if run_id not in pruned]
