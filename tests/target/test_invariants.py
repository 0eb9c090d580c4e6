"""Invariants of the count, as hypothesis properties on SQLite and PostgreSQL.

- the total equals (so never exceeds) the sum of the distinct counted opportunities' values, computed
  here by a model that only knows what the test fed in;
- an opportunity matched to many parties, clusters and runs counts once;
- running the night again (the same runs, digests and reconciliation) changes nothing;
- an adjustment never edits an earlier entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from broker.store.models import Opportunity, TargetEntry
from broker.target import (
    TargetConfig,
    compute_progress,
    progress_json,
    reconcile_values,
    record_introduced_many,
    record_matches,
    record_outcome,
)

START = date(2025, 4, 1)
VCSES = {"v0": "Ward End", "v1": "Ward End", "v2": "Sandwell", "v3": None}
AMOUNTS = st.sampled_from([None, 0, 1, 250_000, 1_000_000, 12_345_678])
OPPS = [f"o{i}" for i in range(4)]
PAIRS = st.tuples(st.sampled_from(OPPS), st.sampled_from(sorted(VCSES)))

notice = st.fixed_dictionaries({"lo": AMOUNTS, "hi": AMOUNTS, "framework": st.booleans()})
# Outcomes fall on two opportunities and are often wins with a value, so that several parties' awards on
# one opportunity (a consortium and its member, say) are common.
outcome = st.tuples(st.just("outcome"), st.tuples(st.sampled_from(OPPS[:2]), st.sampled_from(sorted(VCSES))),
                    st.sampled_from(["won", "won", "interested", "bid", "lost", "withdrawn"]),
                    st.sampled_from([None, 100_000, 2_500_000, 4_000_000]))
event = st.one_of(
    st.tuples(st.just("run"), st.integers(0, 2), st.lists(PAIRS, max_size=6)),
    st.tuples(st.just("digest"), st.integers(0, 2), st.lists(PAIRS, max_size=4)),
    outcome, outcome,
    st.tuples(st.just("amend"), st.sampled_from(OPPS), notice, st.booleans()),
)

# The model counts an opportunity once it is introduced: the counting stage these invariants are about
# (the headline default is interested; the ladder makes every rung behave alike).
AT_INTRODUCED = TargetConfig(counting_stage="introduced")


@dataclass
class Model:
    """What the count should be, from the inputs alone (BRIEF, Policies)."""

    facts: dict[str, dict] = field(default_factory=dict)
    introduced: set[str] = field(default_factory=set)
    outcome: dict[tuple[str, str], str] = field(default_factory=dict)
    award: dict[tuple[str, str], int] = field(default_factory=dict)

    def value(self, oid: str) -> int:
        f = self.facts[oid]
        if f["cancelled"]:
            return 0
        awards = [self.award[p] for p, s in self.outcome.items() if p[0] == oid and s == "won" and p in self.award]
        if awards:
            return max(awards)
        known = [v for v in (f["lo"], f["hi"]) if v is not None and v > 1]
        return 0 if f["framework"] or not known else min(known)

    def total(self) -> int:
        return sum(self.value(oid) for oid in sorted(self.introduced))


def _apply(session, rows, model: Model, ev, day: date, night: list) -> None:
    kind = ev[0]
    if kind == "run":
        run = f"run-{ev[1]}"
        for oid, party in ev[2]:
            rows.match(oid, party, run)
        record_matches(session, run, day)
        night.append(("run", run, day))
    elif kind == "digest":
        record_introduced_many(session, ev[2], cause=f"digest:{ev[1]}", as_of=day)
        model.introduced |= {oid for oid, _ in ev[2]}
        night.append(("digest", ev[2], f"digest:{ev[1]}", day))
    elif kind == "outcome":
        (oid, party), stage, value = ev[1], ev[2], ev[3]
        value = value if stage == "won" else None
        record_outcome(session, oid, party, stage, value_pence=value, as_of=day)
        model.introduced.add(oid)
        if stage in ("won", "lost", "withdrawn"):  # a rung of the ladder never undoes an outcome
            model.outcome[(oid, party)] = stage
        if value is not None:
            model.award[(oid, party)] = value
    else:
        oid, facts, cancel = ev[1], ev[2], ev[3]
        rows.amend(oid, value_min_pence=facts["lo"], value_max_pence=facts["hi"], is_framework=facts["framework"],
                   status="cancelled" if cancel else "open")
        model.facts[oid] = {**facts, "cancelled": cancel}
        reconcile_values(session, day)
        night.append(("reconcile", day))


def _snapshot(session) -> list[tuple]:
    cols = [c.key for c in TargetEntry.__table__.columns]
    return [tuple(getattr(e, c) for c in cols) for e in
            session.scalars(select(TargetEntry).order_by(TargetEntry.id)).all()]


def _replay_night(session, night: list) -> None:
    for step in night:
        if step[0] == "run":
            record_matches(session, step[1], step[2])
        elif step[0] == "digest":
            record_introduced_many(session, step[1], cause=step[2], as_of=step[3])
        else:
            reconcile_values(session, step[1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(notices=st.lists(notice, min_size=len(OPPS), max_size=len(OPPS)), events=st.lists(event, min_size=3, max_size=16))
def test_counting_invariants(fresh_sessions, rows_for, notices, events):
    with fresh_sessions() as session:
        rows = rows_for(session)
        model = Model()
        for vid, cluster in VCSES.items():
            rows.vcse(vid, cluster)
        for oid, facts in zip(OPPS, notices, strict=True):
            rows.opportunity(oid, lo=facts["lo"], hi=facts["hi"], framework=facts["framework"])
            model.facts[oid] = {**facts, "cancelled": False}
        night: list = []
        for i, ev in enumerate(events):
            _apply(session, rows, model, ev, START + timedelta(days=i), night)
        end = START + timedelta(days=len(events))
        before = _snapshot(session)
        reconcile_values(session, end)
        session.commit()
        after = _snapshot(session)

        # An adjustment never edits an earlier entry: the old rows are a prefix, unchanged.
        assert after[:len(before)] == before
        progress = compute_progress(session, end, AT_INTRODUCED)
        ids = [c.id for c in progress.counted]
        # Counted once, however many parties, clusters and runs; the total is the model's.
        assert len(ids) == len(set(ids)) == len(model.introduced)
        assert sorted(ids) == sorted(model.introduced)
        assert progress.counted_pence == sum(c.value.amount_pence for c in progress.counted) == model.total()
        assert progress.counted_pence <= sum(model.value(oid) for oid in set(ids))
        assert (progress.series[-1][1] if progress.series else 0) == progress.counted_pence
        # The series is the total as the ledger stood on each day, under either kind of counting stage.
        for config in (AT_INTRODUCED, TargetConfig(counting_stage="won")):
            series = compute_progress(session, end, config).series
            for i in range(len(events) + 1):
                day = START + timedelta(days=i)
                expected = ([v for d, v in series if d <= day] or [0])[-1]
                assert compute_progress(session, day, config).counted_pence == expected
        for row in progress.by_cluster:
            assert row.value_pence <= progress.counted_pence
        assert set(ids) <= set(session.scalars(select(Opportunity.id)))

        # Running the night again changes nothing.
        doc = progress_json(progress)
        _replay_night(session, night)
        reconcile_values(session, end)
        session.commit()
        assert _snapshot(session) == after
        assert progress_json(compute_progress(session, end, AT_INTRODUCED)) == doc
