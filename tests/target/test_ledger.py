"""Ledger writers: what each appends, idempotence, parties and clusters, validation, append-only storage."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from broker.errors import InputError, NotFound
from broker.store.models import TargetBatch, TargetEntry
from broker.target import (
    TargetConfig,
    compute_progress,
    reconcile_values,
    record_introduced,
    record_introduced_many,
    record_matches,
    record_outcome,
)

D = date.fromisoformat
# These cases are about the counting mechanics, shown at the introduced stage (the headline default is
# interested, with introduced as its pipeline: see test_the_headline_counts_interested_beside_the_pipeline).
AT_INTRODUCED = TargetConfig(counting_stage="introduced")


def _entries(session, **where) -> list[TargetEntry]:
    q = select(TargetEntry).order_by(TargetEntry.id)
    for key, value in where.items():
        q = q.where(getattr(TargetEntry, key) == value)
    return list(session.scalars(q))


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_record_matches_reads_the_runs_active_matches_once(session, rows):
    rows.vcse("v1", "Ward End")
    rows.vcse("v2", "Sandwell")
    rows.opportunity("o1")
    rows.opportunity("o2")
    rows.match("o1", "v1", "run-1")
    rows.match("o2", "v1", "run-0", first_run="run-0")  # an earlier run's match, never counted (killed run)
    rows.match("o2", "v2", "run-1", status="withdrawn")  # no longer matched
    assert record_matches(session, "run-1", D("2025-05-01")) == 4  # opening values + matched, both pairs
    # The killed run's match is credited to the run that matched it, not to the run that counted it.
    assert [(e.kind, e.opportunity_id, e.party_id, e.cause) for e in _entries(session)] == [
        ("value", "o2", None, "run:run-0"), ("stage", "o2", "v1", "run:run-0"),
        ("value", "o1", None, "run:run-1"), ("stage", "o1", "v1", "run:run-1")]
    assert "matched by run run-0" in _entries(session, party_id="v1", opportunity_id="o2")[0].reason
    batches = _count(session, TargetBatch)
    assert record_matches(session, "run-1", D("2025-05-02")) == 0
    assert _count(session, TargetBatch) == batches  # an idempotent call opens no empty batch
    # The same pair matched again by a later run is not a new matched entry.
    rows.match("o1", "v1", "run-2", first_run="run-1")
    assert record_matches(session, "run-2", D("2025-05-03")) == 0


def test_a_batch_records_cause_date_and_configuration(session, rows):
    rows.vcse("v1", "Ward End")
    rows.opportunity("o1")
    rows.match("o1", "v1", "run-7")
    config = TargetConfig(counting_stage="bid", window_start=D("2024-01-01"))
    record_matches(session, "run-7", D("2025-05-01"), config=config)
    batch = session.scalars(select(TargetBatch)).one()
    assert (batch.cause, batch.as_of, batch.config_sha256) == ("run:run-7", "2025-05-01", config.sha256())
    assert batch.config["counting_stage"] == "bid" and batch.config["window_start"] == "2024-01-01"
    assert {e.batch_id for e in _entries(session)} == {batch.id}
    assert {e.cause for e in _entries(session)} == {"run:run-7"}


def test_consortium_and_suggested_consortium_belong_to_the_leads_cluster(session, rows):
    rows.vcse("lead", "Perry Barr")
    rows.vcse("other", "Ward End")
    rows.consortium("c1", lead="lead", members=["lead", "other"])
    rows.opportunity("o1")
    rows.match("o1", "c1", "run-1", party_type="consortium", members=["lead", "other"])  # lead from the directory
    rows.match("o1", "sugg:o1:1", "run-1", party_type="suggested_consortium", lead="other",
               members=["other", "lead"])
    record_matches(session, "run-1", D("2025-05-01"))
    got = {(e.party_id, e.party_type, e.cluster) for e in _entries(session, kind="stage")}
    assert got == {("c1", "consortium", "Perry Barr"), ("sugg:o1:1", "suggested_consortium", "Ward End")}
    # An officer can record an outcome for the suggested consortium by its match id.
    record_outcome(session, "o1", "sugg:o1:1", "interested", as_of=D("2025-05-02"))
    assert _entries(session, stage="interested")[0].cluster == "Ward End"


def test_record_introduced_is_once_per_pair_whatever_the_digest(session, rows):
    rows.vcse("v1", "Ward End")
    rows.opportunity("o1")
    rows.match("o1", "v1", "run-1")
    assert record_introduced(session, "o1", "v1", cause="digest:a", as_of=D("2025-05-01")) == 2
    assert record_introduced(session, "o1", "v1", cause="digest:a", as_of=D("2025-05-01")) == 0
    assert record_introduced(session, "o1", "v1", cause="digest:b", as_of=D("2025-05-08")) == 0
    assert record_introduced_many(session, [("o1", "v1"), ("o1", "v1")], cause="digest:c",
                                  as_of=D("2025-05-09")) == 0
    (entry,) = _entries(session, stage="introduced")
    assert (entry.cause, entry.as_of, entry.reason) == ("digest:a", "2025-05-01", "introduced (digest:a)")


def test_each_write_is_one_batch_sealed_into_the_audit_chain(session, rows):
    from broker.audit.verify import verify_chain
    from broker.store.models import AuditLink

    rows.vcse("v1", "Ward End")
    for oid in ("o1", "o2", "o3"):
        rows.opportunity(oid)
    record_introduced_many(session, [("o1", "v1"), ("o2", "v1"), ("o3", "v1")], cause="digest:d7",
                           as_of=D("2025-05-01"))
    record_introduced(session, "o1", "v1", cause="digest:d8", as_of=D("2025-05-01"))
    batches = {b.cause: b.id for b in session.scalars(select(TargetBatch))}
    assert sorted(batches) == ["digest:d7"]  # d8 added nothing, so opened no batch
    assert {e.batch_id for e in _entries(session)} == {batches["digest:d7"]}
    (link,) = session.scalars(select(AuditLink)).all()
    assert (link.kind, link.ref, link.payload["entries"]) == ("ledger", f"batch-{batches['digest:d7']}", 6)
    assert all(e.entry_hash for e in _entries(session))
    report = verify_chain(session, cross_references=False)
    assert report.ok and (report.ledger_batches, report.ledger_entries) == (1, 6)


def test_unknown_opportunity_or_party_is_not_found(session, rows):
    rows.vcse("v1", "Ward End")
    rows.opportunity("o1")
    with pytest.raises(NotFound, match="no opportunity 'nope'"):
        record_introduced(session, "nope", "v1", cause="digest:a", as_of=D("2025-05-01"))
    with pytest.raises(NotFound, match="'ghost'"):
        record_outcome(session, "o1", "ghost", "bid", as_of=D("2025-05-01"))
    assert _count(session, TargetEntry) == 0


@pytest.mark.parametrize(("stage", "value", "message"), [
    ("shortlisted", None, "unknown stage"),
    ("bid", 100_00, "only with a won outcome"),
    ("won", 0, "more than £0"),
    ("won", -5, "more than £0"),
])
def test_record_outcome_validates(session, rows, stage, value, message):
    rows.vcse("v1", "Ward End")
    rows.opportunity("o1")
    with pytest.raises(InputError, match=message):
        record_outcome(session, "o1", "v1", stage, value_pence=value, as_of=D("2025-05-01"))


def test_outcome_repeats_add_nothing_and_corrections_say_why(session, rows):
    rows.vcse("v1", "Ward End")
    rows.opportunity("o1", lo=1_000_000, hi=3_000_000)
    assert record_outcome(session, "o1", "v1", "won", value_pence=2_000_000, as_of=D("2025-06-01")) == 2
    assert record_outcome(session, "o1", "v1", "won", value_pence=2_000_000, as_of=D("2025-06-02")) == 0
    assert record_outcome(session, "o1", "v1", "won", value_pence=2_500_000, as_of=D("2025-06-03")) == 1
    assert _entries(session)[-1].reason == "won recorded: award value corrected from £20,000 to £25,000"
    assert compute_progress(session, D("2025-06-03"), AT_INTRODUCED).counted_pence == 2_500_000
    assert compute_progress(session, D("2025-06-02"), AT_INTRODUCED).counted_pence == 2_000_000
    # Corrected to lost: the award no longer counts; the opportunity still counts at its notice value.
    assert record_outcome(session, "o1", "v1", "lost", as_of=D("2025-06-04"), note="buyer's error") == 1
    assert _entries(session)[-1].reason == "outcome changed from won to lost"
    assert compute_progress(session, D("2025-06-04"), AT_INTRODUCED).counted_pence == 1_000_000
    won_only = TargetConfig(counting_stage="won")
    assert compute_progress(session, D("2025-06-04"), won_only).counted_pence == 0
    assert compute_progress(session, D("2025-06-03"), won_only).counted_pence == 2_500_000


def test_a_back_dated_outcome_opens_the_opportunity_on_its_own_date(session, rows):
    rows.vcse("v1", "Ward End")
    rows.opportunity("o1", lo=3_000_000)
    record_outcome(session, "o1", "v1", "introduced", as_of=D("2025-04-15"), cause="officer")
    value, stage = _entries(session)
    assert (value.kind, value.as_of, stage.as_of, stage.cause) == ("value", "2025-04-15", "2025-04-15", "officer")
    assert compute_progress(session, D("2025-04-14"), AT_INTRODUCED).counted_pence == 0
    assert compute_progress(session, D("2025-04-15"), AT_INTRODUCED).counted_pence == 3_000_000


def test_a_datetime_is_not_a_business_date(session, rows):
    with pytest.raises(TypeError, match="must be a date"):
        record_matches(session, "run-1", datetime(2025, 5, 1, tzinfo=UTC))


def test_reconcile_notices_framework_flags_and_reinstatement(session, rows):
    rows.vcse("v1", "Ward End")
    rows.opportunity("o1", lo=6_000_000)
    record_introduced(session, "o1", "v1", cause="officer", as_of=D("2025-05-01"))
    rows.amend("o1", is_dps=True)
    rows.amend("o1", status="closed")  # not a value change: no entry of its own
    assert reconcile_values(session, D("2025-05-02")) == 1
    assert _entries(session)[-1].reason.startswith("now a framework agreement or DPS")
    rows.amend("o1", is_dps=False, status="cancelled")
    rows.amend("o1", status="open")
    assert reconcile_values(session, D("2025-05-03")) == 1
    assert _entries(session)[-1].reason.startswith("no longer a framework agreement or DPS")
    assert [p.counted_pence for p in (compute_progress(session, D(d), AT_INTRODUCED) for d in
                                      ("2025-05-01", "2025-05-02", "2025-05-03"))] == [6_000_000, 0, 6_000_000]


def _refuses(session, statement: str) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        with session.begin_nested():
            session.execute(text(statement))


def test_the_database_refuses_to_edit_or_delete_ledger_history(session, rows):
    rows.vcse("v1", "Ward End")
    rows.opportunity("o1")
    record_introduced(session, "o1", "v1", cause="digest:a", as_of=D("2025-05-01"))
    session.commit()
    _refuses(session, "UPDATE target_entries SET amount_pence = 1")
    _refuses(session, "DELETE FROM target_entries")
    _refuses(session, "UPDATE target_batches SET cause = 'x'")
    _refuses(session, "DELETE FROM target_batches")
    session.rollback()
    assert [e.amount_pence for e in _entries(session)] == [5_000_000, 5_000_000]


def test_awards_to_a_consortium_and_its_member_count_the_largest_not_the_sum(session, rows):
    # One contract won by a consortium and recorded for its member too is one award, not two.
    rows.vcse("lead", "Ward End")
    rows.vcse("member", "Sandwell")
    rows.consortium("c1", lead="lead", members=["lead", "member"])
    rows.opportunity("o1", lo=1_000_000, hi=9_000_000)
    record_outcome(session, "o1", "c1", "won", value_pence=6_000_000, as_of=D("2025-06-01"))
    record_outcome(session, "o1", "member", "won", value_pence=2_000_000, as_of=D("2025-06-02"))
    progress = compute_progress(session, D("2025-06-02"), AT_INTRODUCED)
    assert progress.counted_pence == 6_000_000
    assert {r.key: r.value_pence for r in progress.by_cluster} == {"Sandwell": 6_000_000, "Ward End": 6_000_000}
