"""Fixtures for the target tests: rows built directly through the store models (no match run needed)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from broker.store.engine import make_engine, session_factory
from broker.store.models import Consortium, ConsortiumMember, Match, Opportunity, Vcse

D = date.fromisoformat


class Rows:
    """Adds opportunities, VCSEs, consortia and matches with only the fields a test cares about."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def opportunity(self, oid: str, *, lo: int | None = 5_000_000, hi: int | None = None,
                    framework: bool = False, dps: bool = False, status: str = "open",
                    title: str | None = None, buyer: str = "Sandwell MBC", **extra: Any) -> Opportunity:
        row = Opportunity(
            id=oid, ocid=None, lot_id=None, source="private", title=title or f"Opportunity {oid}",
            description="", buyer_name=buyer, status=status, value_min_pence=lo,
            value_max_pence=hi if hi is not None else lo, cpv_codes=[], cpv_unknown=[], nationwide=False,
            reserved_participation=[], is_framework=framework, is_dps=dps, source_ids=[oid], match_keys=[],
            raw_hash="r", content_hash="c", version=1, **extra)
        self.session.add(row)
        self.session.flush()
        return row

    def vcse(self, vid: str, cluster: str | None, *, name: str | None = None) -> Vcse:
        row = Vcse(id=vid, name=name or f"VCSE {vid}", cluster=cluster, cluster_derived=False,
                   local_authority="Sandwell", service_areas=[], capabilities="support", keywords=[],
                   exclude_keywords=[], cpv_codes=[], certifications=[], digest_opt_in=True, content_hash="c")
        self.session.add(row)
        self.session.flush()
        return row

    def consortium(self, cid: str, lead: str, members: list[str]) -> Consortium:
        row = Consortium(id=cid, name=f"Consortium {cid}", lead_id=lead, capabilities="", capabilities_derived=True,
                         max_contract_value_pence=None, max_value_derived=True, content_hash="c")
        self.session.add(row)
        self.session.flush()
        for i, member in enumerate(members):
            self.session.add(ConsortiumMember(consortium_id=cid, vcse_id=member, position=i))
        self.session.flush()
        return row

    def match(self, oid: str, party: str, run: str, *, party_type: str = "vcse", lead: str | None = None,
              members: list[str] | None = None, first_run: str | None = None, status: str = "active") -> Match:
        row = self.session.query(Match).filter_by(opportunity_id=oid, party_id=party).one_or_none()
        if row is None:
            row = Match(opportunity_id=oid, party_id=party, party_type=party_type, lead_id=lead,
                        members=members or [], score=80, levels={}, reasons=[], flags=[], status=status,
                        first_run_id=first_run or run, last_run_id=run)
            self.session.add(row)
        else:
            row.last_run_id = run
            row.status = status
        self.session.flush()
        return row

    def amend(self, oid: str, **changes: Any) -> None:
        """Change an opportunity as a later ingest would."""
        row = self.session.get(Opportunity, oid)
        for key, value in changes.items():
            setattr(row, key, value)
        row.version += 1
        self.session.flush()


@pytest.fixture
def rows(session: Session, fabricated_matches: None) -> Rows:
    return Rows(session)


@pytest.fixture
def rows_for() -> type[Rows]:
    return Rows


@pytest.fixture
def fresh_sessions(db_url: str, request: pytest.FixtureRequest, tmp_path: Path,
                   fabricated_matches: None) -> Iterator[Callable[[], Any]]:
    """A factory of sessions on a new, empty, migrated database (one per hypothesis example).

    The ledger refuses DELETE, so examples cannot share rows: SQLite gets a fresh copy of the migrated
    template, PostgreSQL a TRUNCATE of the tables these tests write (not a row operation, so not refused).
    """
    counter = iter(range(1_000_000))
    shared = None if db_url.startswith("sqlite") else make_engine(db_url)

    @contextmanager
    def make() -> Iterator[Session]:
        if shared is None:
            path = tmp_path / f"example-{next(counter)}.db"
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
            engine = make_engine(f"sqlite:///{path}")
        else:
            engine = shared
            with engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {', '.join(TOUCHED)} RESTART IDENTITY CASCADE"))
        try:
            with session_factory(engine)() as session:
                yield session
        finally:
            if engine is not shared:
                engine.dispose()

    yield make
    if shared is not None:
        shared.dispose()


TOUCHED = ("audit_chain", "target_entries", "target_batches", "matches", "consortium_members", "consortia", "vcses",
           "opportunities", "quarantine")


@pytest.fixture
def scenario(session: Session, fabricated_matches: None) -> Session:
    """The database holds :func:`build_scenario`'s ledger (committed); returns the session."""
    build_scenario(session)
    return session


def build_scenario(session: Session) -> None:
    """A few months of brokerage across three clusters, with hostile text in titles, names and notes."""
    from broker.target import reconcile_values, record_introduced, record_matches, record_outcome

    r = Rows(session)
    r.vcse("v-ward", "Ward End", name="Ward End Community Trust")
    r.vcse("v-walsall", "St Matthews Quarter", name="St Matthews <b>Food</b> Co-op")
    r.vcse("v-wolves", "Wolverhampton", name="Wolves Youth CIC")
    r.consortium("c-1", lead="v-walsall", members=["v-walsall", "v-ward"])
    r.opportunity("o-care", lo=12_000_000, hi=20_000_000, title="Domestic abuse support services",
                  buyer="Sandwell MBC")
    r.opportunity("o-xss", lo=4_500_000, title='<script>alert("x")</script> Youth work & mentoring',
                  buyer="<img src=x onerror=alert(1)> Council")
    r.opportunity("o-fw", lo=None, hi=360_000_000_000, framework=True, title="Social care framework")
    r.opportunity("o-unknown", lo=None, title="Community transport (value not published)")
    r.opportunity("o-cancel", lo=2_500_000, title="Parks volunteering programme")
    r.match("o-care", "v-ward", "run-1")
    r.match("o-care", "c-1", "run-1", party_type="consortium", lead="v-walsall", members=["v-walsall", "v-ward"])
    r.match("o-xss", "v-wolves", "run-1")
    r.match("o-fw", "v-walsall", "run-2")
    r.match("o-unknown", "v-wolves", "run-2")
    r.match("o-cancel", "v-ward", "run-2")
    record_matches(session, "run-1", D("2025-04-10"))
    record_introduced(session, "o-care", "v-ward", cause="digest:d1", as_of=D("2025-04-11"))
    record_introduced(session, "o-care", "c-1", cause="digest:d1", as_of=D("2025-04-11"))
    record_introduced(session, "o-xss", "v-wolves", cause="digest:d1", as_of=D("2025-04-11"))
    record_matches(session, "run-2", D("2025-05-20"))
    for oid, party in (("o-fw", "v-walsall"), ("o-unknown", "v-wolves"), ("o-cancel", "v-ward")):
        record_introduced(session, oid, party, cause="digest:d2", as_of=D("2025-05-21"))
    record_outcome(session, "o-care", "c-1", "bid", as_of=D("2025-06-01"), note='=HYPERLINK("http://evil")')
    record_outcome(session, "o-xss", "v-wolves", "won", value_pence=5_000_000, as_of=D("2025-07-01"),
                   note="<i>delighted</i>")
    record_outcome(session, "o-fw", "v-walsall", "won", value_pence=8_000_000, as_of=D("2025-08-15"),
                   note="call-off 1")
    r.amend("o-cancel", status="cancelled")
    reconcile_values(session, D("2025-08-20"))
    r.amend("o-care", value_min_pence=15_000_000)
    reconcile_values(session, D("2025-09-01"))
    session.commit()
