"""The four counting cases of BRIEF (Policies: value basis, counting, ledger), each by name."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from broker.store.models import TargetEntry
from broker.target import (
    TargetConfig,
    compute_progress,
    reconcile_values,
    record_introduced,
    record_matches,
    record_outcome,
)
from broker.target.progress import progress_json

D = date.fromisoformat
# These cases are about the counting mechanics, shown at the introduced stage (the headline default is
# interested, with introduced as its pipeline: see test_the_headline_counts_interested_beside_the_pipeline).
AT_INTRODUCED = TargetConfig(counting_stage="introduced")


def _entries(session, oid: str) -> list[TargetEntry]:
    return list(session.scalars(select(TargetEntry).where(TargetEntry.opportunity_id == oid)
                                .order_by(TargetEntry.id)))


def _cluster_rows(progress) -> dict:
    return {r.key: (r.opportunities, r.value_pence) for r in progress.by_cluster}


def test_framework_agreement_counts_zero_until_a_call_off_value(session, rows):
    # A £3.6bn framework ceiling is not brokerage (BRIEF): it counts £0 and is listed as excluded.
    rows.vcse("v1", "Ward End")
    rows.opportunity("fw", lo=None, hi=360_000_000_000, framework=True)
    rows.opportunity("plain", lo=2_000_000, hi=3_000_000)
    for oid in ("fw", "plain"):
        rows.match(oid, "v1", "run-1")
    record_matches(session, "run-1", D("2025-05-01"))
    record_introduced(session, "fw", "v1", cause="digest:d1", as_of=D("2025-05-02"))
    record_introduced(session, "plain", "v1", cause="digest:d1", as_of=D("2025-05-02"))

    before = compute_progress(session, D("2025-05-03"), AT_INTRODUCED)
    assert before.counted_pence == 2_000_000
    doc = progress_json(before)
    assert doc["frameworks_excluded"] == {"count": 1, "opportunity_ids": ["fw"], "published_pence": 360_000_000_000}
    assert {c.id: c.value.basis for c in before.counted} == {"fw": "framework", "plain": "lower_bound"}

    # The call-off value arrives with a won outcome: from that day it counts, at the awarded value.
    record_outcome(session, "fw", "v1", "won", value_pence=4_500_000, as_of=D("2025-09-01"))
    after = compute_progress(session, D("2025-09-01"), AT_INTRODUCED)
    assert after.counted_pence == 2_000_000 + 4_500_000
    assert progress_json(after)["frameworks_excluded"]["count"] == 0
    # As of the day before, the figure is unchanged: history folds by date.
    assert compute_progress(session, D("2025-08-31"), AT_INTRODUCED).counted_pence == 2_000_000
    won = _entries(session, "fw")[-1]
    assert (won.stage, won.basis, won.amount_pence) == ("won", "award", 4_500_000)
    assert "awarded value £45,000" in won.reason


def test_cancelled_notice_appends_an_adjusting_entry(session, rows):
    rows.vcse("v1", "Sandwell")
    rows.opportunity("c1", lo=1_000_000, hi=1_500_000)
    rows.match("c1", "v1", "run-1")
    record_matches(session, "run-1", D("2025-05-01"))
    record_introduced(session, "c1", "v1", cause="digest:d1", as_of=D("2025-05-01"))
    assert compute_progress(session, D("2025-05-01"), AT_INTRODUCED).counted_pence == 1_000_000
    original = [(e.id, e.reason, e.amount_pence) for e in _entries(session, "c1")]

    rows.amend("c1", status="cancelled")
    assert reconcile_values(session, D("2025-06-10")) == 1
    assert reconcile_values(session, D("2025-06-11")) == 0  # nothing new the second time

    entries = _entries(session, "c1")
    assert [(e.id, e.reason, e.amount_pence) for e in entries[:len(original)]] == original  # history intact
    adjust = entries[-1]
    assert (adjust.kind, adjust.basis, adjust.amount_pence, adjust.as_of) == ("value", "cancelled", 0, "2025-06-10")
    assert adjust.reason == "notice cancelled: counts £0 (was £10,000)"
    assert compute_progress(session, D("2025-06-09"), AT_INTRODUCED).counted_pence == 1_000_000
    now = compute_progress(session, D("2025-06-10"), AT_INTRODUCED)
    assert now.counted_pence == 0
    assert progress_json(now)["cancelled"] == {"count": 1, "opportunity_ids": ["c1"]}
    assert [v for _, v in now.series] == [1_000_000, 0]


def test_amended_value_appends_an_adjusting_entry(session, rows):
    rows.vcse("v1", "Wolverhampton")
    rows.opportunity("a1", lo=5_000_000, hi=8_000_000)
    rows.match("a1", "v1", "run-1")
    record_matches(session, "run-1", D("2025-05-01"))
    record_introduced(session, "a1", "v1", cause="digest:d1", as_of=D("2025-05-01"))

    rows.amend("a1", value_min_pence=4_000_000, value_max_pence=6_000_000)
    assert reconcile_values(session, D("2025-05-20")) == 1
    adjust = _entries(session, "a1")[-1]
    assert adjust.reason == ("value amended from £50,000-£80,000 to £40,000-£60,000: "
                             "range £40,000-£60,000 counts at lower bound £40,000")
    assert (adjust.amount_pence, adjust.value_min_pence, adjust.value_max_pence) == (4_000_000, 4_000_000, 6_000_000)
    assert compute_progress(session, D("2025-05-19"), AT_INTRODUCED).counted_pence == 5_000_000
    assert compute_progress(session, D("2025-05-20"), AT_INTRODUCED).counted_pence == 4_000_000
    # A stage entry written after the amendment reports the amended value, with no second adjustment.
    record_outcome(session, "a1", "v1", "bid", as_of=D("2025-05-25"))
    entries = _entries(session, "a1")
    assert [e.kind for e in entries].count("value") == 2
    assert entries[-1].amount_pence == 4_000_000


def test_opportunity_sent_to_two_clusters_shows_in_both_rows_and_counts_once(session, rows):
    rows.vcse("ward", "Ward End")
    rows.vcse("walsall", "St Matthews Quarter")
    rows.vcse("member", "Ward End")
    rows.consortium("cons", lead="walsall", members=["walsall", "member"])
    rows.opportunity("two", lo=7_500_000, hi=9_000_000)
    rows.match("two", "ward", "run-1")
    rows.match("two", "cons", "run-1", party_type="consortium", lead="walsall", members=["walsall", "member"])
    rows.match("two", "ward", "run-2", first_run="run-1")  # matched again the next night
    record_matches(session, "run-1", D("2025-05-01"))
    record_matches(session, "run-2", D("2025-05-02"))
    record_introduced(session, "two", "ward", cause="digest:d1", as_of=D("2025-05-02"))
    record_introduced(session, "two", "cons", cause="digest:d1", as_of=D("2025-05-02"))

    progress = compute_progress(session, D("2025-05-03"), AT_INTRODUCED)
    # The consortium belongs to its lead's cluster; each cluster row shows the opportunity ...
    assert _cluster_rows(progress) == {"St Matthews Quarter": (1, 7_500_000), "Ward End": (1, 7_500_000)}
    # ... and the total counts it once.
    assert progress.counted_pence == 7_500_000
    assert len(progress.counted) == 1
    assert progress.counted[0].clusters == ("St Matthews Quarter", "Ward End")
    stage_rows = {r.key: (r.opportunities, r.value_pence) for r in progress.by_stage}
    assert stage_rows["matched"] == stage_rows["introduced"] == (1, 7_500_000)
    stages = [(e.party_id, e.stage, e.cluster) for e in _entries(session, "two") if e.kind == "stage"]
    assert stages == [("cons", "matched", "St Matthews Quarter"), ("ward", "matched", "Ward End"),
                      ("ward", "introduced", "Ward End"), ("cons", "introduced", "St Matthews Quarter")]
