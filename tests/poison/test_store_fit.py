"""PostgreSQL stores what SQLite stores: real publisher files, long ids and long text, on both databases."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgschema import fresh_schema
from sqlalchemy import select
from testpaths import FIXTURES

from broker.ingest import ingest
from broker.normalise.record import OpportunityRecord
from broker.store.engine import make_engine, session_factory
from broker.store.models import Opportunity, Release
from broker.store.opportunities import as_json, find_opportunity, to_record, upsert_record

PG_URL = os.environ.get("BROKER_TEST_POSTGRES_URL")
OPPORTUNITY_FIXTURES = FIXTURES / "opportunities"


def stored_digest(url: str) -> tuple[int, str]:
    """(count, sha256) over every stored opportunity's full public JSON, in id order."""
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            rows = [as_json(r) for r in session.scalars(select(Opportunity).order_by(Opportunity.id))]
    finally:
        engine.dispose()
    blob = json.dumps(rows, sort_keys=True, ensure_ascii=False)
    return len(rows), hashlib.sha256(blob.encode()).hexdigest()


def _ingest(url: str, paths: list[str]):
    engine = make_engine(url)
    try:
        return ingest(session_factory(engine), paths)
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "side.db"
    path.write_bytes(sqlite_template.read_bytes())
    return f"sqlite:///{path}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A schema of its own (the shared ``db_url`` schema may be in use by the same test)."""
    if not PG_URL:
        pytest.skip("BROKER_TEST_POSTGRES_URL not set")
    with fresh_schema(PG_URL, "broker_fit") as url:
        yield url


def test_scottish_fixture_ingests_on_every_database(db_url):
    """Before: PostgreSQL raised DataError on a 96-character buyer type and the file was never stored."""
    report = _ingest(db_url, [str(OPPORTUNITY_FIXTURES / "pcs_scotland_ocds_releases_2019_part1.json")])
    assert report.total("quarantined") == 0, report.files[0].problems[:3]
    count, _ = stored_digest(db_url)
    assert count == report.total("new") > 0
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        longest = max(len(t or "") for t in session.scalars(select(Opportunity.buyer_type)))
    engine.dispose()
    assert longest > 80  # the value the old VARCHAR(80) refused is stored whole


def test_every_fixture_stores_identically_on_sqlite_and_postgresql(sqlite_url, pg_url):
    paths = [str(OPPORTUNITY_FIXTURES)]
    on_sqlite, on_pg = _ingest(sqlite_url, paths), _ingest(pg_url, paths)
    assert on_sqlite.summary() == on_pg.summary()
    assert on_pg.total("quarantined") == 0
    assert stored_digest(sqlite_url) == stored_digest(pg_url)


def _long_release(ocid: str, rid: str) -> dict:
    return {"ocid": ocid, "id": rid, "date": "2025-03-01T09:00:00Z", "tag": ["tender"],
            "parties": [{"id": "B" * 300, "name": "Long Council", "roles": ["buyer"],
                         "details": {"classifications": [{"scheme": "TED_CA_TYPE", "id": "x" * 400}]}}],
            "buyer": {"id": "B" * 300, "name": "Long Council"},
            "tender": {"id": "t1", "title": "Support services", "status": "active",
                       "tenderPeriod": {"endDate": "2025-04-01T12:00:00Z"},
                       "value": {"amount": 50000, "currency": "GBP"}}}


def test_ids_over_255_characters_are_kept_whole(db_url, tmp_path):
    """Before: PostgreSQL raised DataError for an ocid, release id or buyer id over 255 characters."""
    ocid = "ocds-kuma6s-" + "9" * 300
    rid = "r-" + "7" * 400
    other = "ocds-kuma6s-" + "9" * 299 + "8"  # same readable start, different ocid
    package = {"uri": "u", "publishedDate": "2025-03-01T00:00:00Z",
               "releases": [_long_release(ocid, rid), _long_release(other, rid)]}
    path = tmp_path / "long.json"
    path.write_text(json.dumps(package), encoding="utf-8")
    report = _ingest(db_url, [str(path)])
    assert report.total("quarantined") == 0, report.files[0].problems
    assert report.total("new") == 2
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        row = find_opportunity(session, ocid)
        assert row is not None and row.ocid == ocid and len(row.id) <= 255
        assert row.buyer_id == "B" * 300 and row.buyer_type == "x" * 400
        assert find_opportunity(session, other).id != row.id
        raw = session.scalars(select(Release.raw).where(Release.ocid == row.id)).all()
        assert [r["id"] for r in raw] == [rid]
    engine.dispose()
    assert _ingest(db_url, [str(path)]).total("new") == 0  # idempotent under the hashed keys


_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=400)
_SHORT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
                 max_size=40)
_DT = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))
_PENCE = st.none() | st.integers(0, 2**63 - 1)


@st.composite
def records(draw) -> OpportunityRecord:
    """Every field a reader can fill, at lengths real publishers send and beyond."""
    return OpportunityRecord(
        id=draw(_SHORT), source="ocds", title=draw(_TEXT), buyer_name=draw(_TEXT),
        status=draw(st.sampled_from(("planned", "open", "closed", "cancelled", "awarded"))),
        raw_hash="r", description=draw(_TEXT), ocid=draw(st.none() | _TEXT), lot_id=draw(st.none() | _TEXT),
        buyer_id=draw(st.none() | _TEXT), buyer_type=draw(st.none() | _TEXT),
        notice_type=draw(st.none() | _TEXT), published_at=draw(st.none() | _DT), deadline_at=draw(st.none() | _DT),
        contract_start=draw(st.none() | _DT), contract_end=draw(st.none() | _DT),
        value_min_pence=draw(_PENCE), value_max_pence=draw(_PENCE), value_currency=draw(st.none() | _TEXT),
        value_original=draw(st.none() | _TEXT), postcode=draw(st.none() | _TEXT),
        lad_code=draw(st.none() | _TEXT), itl_code=draw(st.none() | _TEXT), region=draw(st.none() | _TEXT),
        cpv_codes=tuple(draw(st.lists(_SHORT, max_size=3))), regions=tuple(draw(st.lists(_SHORT, max_size=3))),
        source_ids=tuple(sorted(draw(st.sets(_TEXT, max_size=3)))),  # stored as a set url=draw(st.none() | _TEXT),
        nationwide=draw(st.booleans()), sme_suitable=draw(st.none() | st.booleans()),
        is_framework=draw(st.booleans()), is_dps=draw(st.booleans()),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(record=records())
def test_any_reader_value_round_trips_through_the_store(db_url, record):
    """What goes in comes out, on SQLite and PostgreSQL alike (PostgreSQL used to refuse long text)."""
    engine = make_engine(db_url)
    try:
        with session_factory(engine).begin() as session:
            session.execute(Opportunity.__table__.delete())
            from broker.store.models import OpportunityVersion, SourceRecord
            session.execute(SourceRecord.__table__.delete())
            session.execute(OpportunityVersion.__table__.delete())
            upsert_record(session, record)
        with session_factory(engine)() as session:
            back = to_record(session.get(Opportunity, record.id))
    finally:
        engine.dispose()
    assert back.to_json() == record.to_json()
