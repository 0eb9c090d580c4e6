"""Upserting source records: idempotence, versions, cross-source de-duplication, combination."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from broker.normalise.record import OpportunityRecord
from broker.store.models import Opportunity, OpportunityVersion, SourceRecord
from broker.store.opportunities import as_json, find_opportunity, upsert_record


def _record(**kw) -> OpportunityRecord:
    base = dict(id="ocds-b5fd17-1", source="contracts_finder", title="Domestic abuse support",
                buyer_name="Dudley MBC", status="open", raw_hash="r1", ocid="ocds-b5fd17-1",
                value_min_pence=4_800_000, value_max_pence=6_000_000,
                deadline_at=datetime(2025, 2, 14, 14, tzinfo=UTC), cpv_codes=("85000000",),
                source_ids=("ocds-b5fd17-1",), match_keys=("cfref:dudley mbc|dn123",))
    base.update(kw)
    return OpportunityRecord(**base)


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_upsert_is_idempotent_and_versions_changes(session):
    rec = _record()
    assert upsert_record(session, rec) == "new"
    assert upsert_record(session, rec) == "unchanged"
    changed = replace(rec, value_max_pence=7_000_000, raw_hash="r2")
    assert upsert_record(session, changed) == "updated"
    session.commit()
    row = session.get(Opportunity, rec.id)
    assert row.value_max_pence == 7_000_000
    assert row.version == 2
    versions = session.scalars(select(OpportunityVersion.version).where(
        OpportunityVersion.opportunity_id == rec.id).order_by(OpportunityVersion.version)).all()
    assert versions == [1, 2]


def test_same_notice_from_two_sources_is_one_opportunity(session):
    ocds = _record()
    csv = _record(id="cf-csv:abc", source="contracts_finder_csv", ocid=None, raw_hash="c1",
                  description="From the CSV export", value_min_pence=None,
                  source_ids=("cf-notice:DN123",), match_keys=("cfref:dudley mbc|dn123",))
    assert upsert_record(session, ocds) == "new"
    # The CSV adds a description the OCDS record lacks, so the combined opportunity changes.
    assert upsert_record(session, csv) == "updated"
    session.commit()
    assert _count(session, Opportunity) == 1
    assert _count(session, SourceRecord) == 2
    row = session.get(Opportunity, ocds.id)
    assert set(row.source_ids) == {"ocds-b5fd17-1", "cf-notice:DN123"}
    assert row.source == "contracts_finder"  # OCDS outranks the CSV
    assert row.value_min_pence == 4_800_000
    assert row.description == "From the CSV export"  # gap filled from the lower-priority source
    assert find_opportunity(session, "cf-csv:abc").id == ocds.id


def test_dedupe_does_not_depend_on_the_order_sources_arrive(session):
    csv = _record(id="cf-csv:abc", source="contracts_finder_csv", ocid=None, raw_hash="c1",
                  title="Domestic abuse support (CSV)")
    ocds = _record()
    upsert_record(session, csv)
    upsert_record(session, ocds)
    session.commit()
    assert _count(session, Opportunity) == 1
    row = session.scalars(select(Opportunity)).one()
    assert row.id == "cf-csv:abc"  # first-seen id is kept stable
    assert row.title == "Domestic abuse support"  # but OCDS content wins


def test_unrelated_notices_stay_apart(session):
    upsert_record(session, _record())
    upsert_record(session, _record(id="ocds-b5fd17-2", ocid="ocds-b5fd17-2", match_keys=("cfref:x|y",)))
    session.commit()
    assert _count(session, Opportunity) == 2


def test_json_shape_uses_pence_and_iso_dates(session):
    upsert_record(session, _record())
    session.commit()
    data = as_json(session.get(Opportunity, "ocds-b5fd17-1"))
    for key in ("id", "title", "buyer", "status", "deadline", "cpv", "local_authority", "cluster",
                "vcse_suitable", "source_ids", "value_min_pence", "value_max_pence"):
        assert key in data
    assert data["deadline"] == "2025-02-14T14:00:00Z"
    assert data["value_min_pence"] == 4_800_000
    assert data["cpv_labels"]["85000000"].startswith("Health and social work")


def test_record_refuses_nul_characters():
    import pytest

    with pytest.raises(ValueError, match="NUL"):
        _record(title="bad\x00title")
    with pytest.raises(ValueError, match="surrogate"):
        _record(description="bad\ud800")


records = st.builds(
    _record,
    id=st.sampled_from(["a", "b", "c"]),
    title=st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=20),
    value_min_pence=st.none() | st.integers(min_value=0, max_value=10**12),
    match_keys=st.lists(st.sampled_from(["k1", "k2", "k3"]), max_size=2, unique=True).map(tuple),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(records, max_size=6))
def test_ingesting_a_file_twice_equals_ingesting_it_once(engine, batch):
    from broker.ingest import ingest_items
    from broker.sources.base import SourceItem
    from broker.store.engine import session_factory
    from broker.store.models import Base, QuarantineItem

    sessions = session_factory(engine)
    with sessions.begin() as s:
        for table in reversed(Base.metadata.sorted_tables):
            s.execute(table.delete())
    items = [SourceItem(kind="record", locator=f"row {i + 2}", record=r) for i, r in enumerate(batch)]

    def state():
        with sessions() as s:
            return ([(o.id, o.content_hash, o.version) for o in s.scalars(select(Opportunity).order_by(Opportunity.id))],
                    _count(s, QuarantineItem), _count(s, OpportunityVersion))

    ingest_items(sessions, items, path="f.csv", file_sha="x")
    once = state()
    second = ingest_items(sessions, items, path="f.csv", file_sha="x")
    assert state() == once
    assert second.new == second.updated == 0


def test_one_publishers_notices_sharing_a_title_stay_apart(session):
    """Real CF data has award notices with the same buyer, title and deadline: distinct notices."""
    first = _record(id="ocds-b5fd17-a", ocid="ocds-b5fd17-a", match_keys=("title:nyc|srma|none",))
    second = _record(id="ocds-b5fd17-b", ocid="ocds-b5fd17-b", match_keys=("title:nyc|srma|none",))
    upsert_record(session, first)
    assert upsert_record(session, second) == "new"
    session.commit()
    assert _count(session, Opportunity) == 2


def test_title_key_does_not_join_conflicting_references(session):
    ocds = _record(match_keys=("cfref:dudley mbc|dn1", "title:dudley mbc|support|2025-02-14"))
    csv = _record(id="cf-csv:x", source="contracts_finder_csv", ocid=None, raw_hash="c",
                  match_keys=("cfref:dudley mbc|dn2", "title:dudley mbc|support|2025-02-14"))
    upsert_record(session, ocds)
    assert upsert_record(session, csv) == "new"
    session.commit()
    assert _count(session, Opportunity) == 2


mixed_records = st.builds(
    _record,
    id=st.sampled_from(["a", "b", "c", "d"]),
    source=st.sampled_from(["contracts_finder", "contracts_finder_csv", "find_a_tender"]),
    title=st.sampled_from(["Support", "Advice", "Meals"]),
    description=st.sampled_from(["", "From one source", "From another"]),
    raw_hash=st.sampled_from(["r1", "r2"]),
    match_keys=st.lists(st.sampled_from(["cfref:b|1", "cfref:b|2", "title:b|support|none", "title:b|advice|none"]),
                        max_size=3, unique=True).map(tuple),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(mixed_records, max_size=8), split=st.integers(min_value=0, max_value=8))
# A title key shared, references that disagree, both in the chunk: kept apart by keys the chunk itself files.
@example(records=[_record(id="a", match_keys=("cfref:b|1", "title:b|support|none")),
                  _record(id="b", source="contracts_finder_csv", match_keys=("cfref:b|2", "title:b|support|none")),
                  _record(id="c", source="find_a_tender", match_keys=("title:b|support|none",))], split=0)
def test_a_batch_stores_what_one_record_at_a_time_stores(engine, records, split):
    """Upserts batched in one chunk (decided in memory, written at the end) leave exactly the store, and
    give exactly the outcomes, of upserting the same records one at a time, each written before the next:
    cross-source joins, same-source separation, conflicting references, updates and versions alike."""
    from broker.store.engine import session_factory
    from broker.store.models import Base, OpportunityKey
    from broker.store.opportunities import RecordBatch

    sessions = session_factory(engine)

    def reset():
        with sessions.begin() as s:
            for table in reversed(Base.metadata.sorted_tables):
                s.execute(table.delete())

    def state():
        with sessions() as s:
            return ([(o.id, o.content_hash, o.version, o.title, o.description, list(o.source_ids))
                     for o in s.scalars(select(Opportunity).order_by(Opportunity.id))],
                    [(v.opportunity_id, v.version, v.content_hash) for v in s.scalars(
                        select(OpportunityVersion).order_by(OpportunityVersion.opportunity_id,
                                                            OpportunityVersion.version))],
                    [(r.source, r.source_key, r.opportunity_id, r.content_hash) for r in s.scalars(
                        select(SourceRecord).order_by(SourceRecord.source, SourceRecord.source_key))],
                    [(k.key, k.opportunity_id) for k in s.scalars(select(OpportunityKey).order_by(OpportunityKey.key))])

    # Some records are stored before the chunk, so the batch also starts from a store that is not empty.
    before, chunk = records[:split], records[split:]
    reset()
    with sessions.begin() as s:
        one_at_a_time = [upsert_record(s, r) for r in before + chunk]
    expected = state()
    reset()
    with sessions.begin() as s:
        first = [upsert_record(s, r) for r in before]
    with sessions.begin() as s:
        batch = RecordBatch(s, chunk)
        batched = first + [batch.upsert(r) for r in chunk]
        batch.write()
    assert batched == one_at_a_time
    assert state() == expected
