"""Every shipped labelled set's business dates: each notice group's date is a day on which every graded
notice of the group that the group's files give as live (open or planned) was already published and still
open, so the matcher run as of that date can rank all of them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from testpaths import FIXTURES

from broker.evaluation.labelled import live_notices, scratch_store
from broker.evaluation.sets import load_set
from broker.ingest import ingest
from broker.match.service import LIVE_STATUSES
from broker.normalise.dates import LONDON
from broker.store.models import Opportunity

SETS = ("labelled", "labelled_2")
# Graded live notices known to be closed on their set's date, with why the date stays. The first set's export
# of 2020-04-16 still lists Connexus's "Warmer Homes ERDF Project - Retrofit Contractor(s)" (MT219151) as open,
# but its closing date is 2020-04-04; L29 x it is graded 1. No method can rank it on 2020-04-16, so it costs
# every method the same recall for L29. The set's date is kept so that its figures stay comparable.
KNOWN_CLOSED = {"labelled": {"cf-csv:568bb92f76e4bda0"}, "labelled_2": set()}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.mark.parametrize("folder", SETS)
def test_every_graded_live_notice_is_published_and_open_on_its_groups_date(folder: str, tmp_path) -> None:
    labelled = load_set(FIXTURES / folder)
    graded = {o for by_profile in labelled.grades.values() for o in by_profile}
    ranked_anywhere: set[str] = set()
    closed: set[str] = set()
    for group in labelled.notice_groups():
        with scratch_store(tmp_path) as sessions:
            ingest(sessions, [str(p) for p in group.files])
            with sessions() as session:
                rows = session.execute(select(Opportunity.id, Opportunity.published_at, Opportunity.deadline_at)
                                       .where(Opportunity.status.in_(LIVE_STATUSES))).all()
                live = {n.id for n in live_notices(session, group.as_of)}
        problems = []
        for oid, published, deadline in rows:
            if oid not in graded:
                continue
            day = _aware(published).astimezone(LONDON).date() if published else None
            # published <= D < deadline, on the UK calendar
            if day is not None and day > group.as_of:
                problems.append(f"{oid} published {day}, after {group.as_of}")
            if deadline is not None and _aware(deadline).astimezone(LONDON).date() <= group.as_of:
                closed.add(oid)
                if oid in KNOWN_CLOSED[folder]:
                    continue
                problems.append(f"{oid} closes {_aware(deadline).astimezone(LONDON).date()}, not after {group.as_of}")
        assert problems == [], f"{folder}, group as of {group.as_of}: {problems[:5]}"
        # and the evaluation's own view agrees: every graded live notice of the group is ranked on its date
        assert {oid for oid, _, _ in rows if oid in graded} - KNOWN_CLOSED[folder] <= live
        ranked_anywhere |= live
    # the known exceptions are still exceptions (drop them from the list when the data changes)
    assert closed == KNOWN_CLOSED[folder]
    if folder == "labelled_2":
        # every pair of this set is graded: no graded notice is outside every group's run
        assert graded <= ranked_anywhere
