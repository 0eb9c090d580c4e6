"""Invariant: importing a directory twice leaves the database exactly as importing it once."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from broker.directory import import_directory
from broker.directory.parse import CONSORTIUM_COLUMNS, VCSE_COLUMNS
from broker.store.engine import session_factory
from broker.store.models import Consortium, ConsortiumMember, Vcse

IDS = ["a", "b", "c", "d", "e"]
GENERATED = {"id", "name", "local_authority", "postcode", "service_areas", "capabilities", "keywords", "cpv_codes",
             "cluster", "max_contract_value_gbp", "digest_opt_in"}
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
vcse_rows = st.lists(st.fixed_dictionaries({
    "id": st.sampled_from(IDS + ["bad id"]),
    "name": st.sampled_from(["Kitchen", "Café & Co", ""]) | _text,
    "local_authority": st.sampled_from(["Birmingham", "Sandwell MBC", "Coventry", "Leeds", "Atlantis"]),
    "postcode": st.sampled_from(["", "B8 1QE", "ws1 1tp", "B42 1AA", "nope"]),
    "service_areas": st.sampled_from(["", "West Midlands", "National;Dudley", "Mars"]),
    "capabilities": st.sampled_from(["We cook", "We clean; we garden", ""]) | _text,
    "keywords": st.sampled_from(["", "a;b;A", "x"]),
    "cpv_codes": st.sampled_from(["", "85311000-2", "55520000;90910000", "12345678"]),
    "cluster": st.sampled_from(["", "Ward End", "Nowhere"]),
    "max_contract_value_gbp": st.sampled_from(["", "1000", "£25,000.50", "lots"]),
    "digest_opt_in": st.sampled_from(["yes", "no", "Y", "maybe"]),
}), max_size=8)
consortium_rows = st.lists(st.fixed_dictionaries({
    "id": st.sampled_from(["k1", "k2", "a"]),
    "name": st.just("Consortium"),
    "lead_id": st.sampled_from(IDS),
    "member_ids": st.lists(st.sampled_from(IDS + ["zz"]), min_size=1, max_size=3).map(";".join),
    "capabilities": st.sampled_from(["", "Together we cover it all"]),
    "max_contract_value_gbp": st.sampled_from(["", "50000"]),
}), max_size=4)


def _write(path: Path, columns, rows) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _snapshot(session):
    vcses = [{c.name: getattr(v, c.name) for c in Vcse.__table__.columns} for v in session.scalars(select(Vcse))]
    cons = [{c.name: getattr(k, c.name) for c in Consortium.__table__.columns}
            for k in session.scalars(select(Consortium))]
    members = session.execute(select(ConsortiumMember.consortium_id, ConsortiumMember.vcse_id,
                                     ConsortiumMember.position)).all()
    return sorted(vcses, key=lambda r: r["id"]), sorted(cons, key=lambda r: r["id"]), sorted(members)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(vcses=vcse_rows, consortia=consortium_rows)
def test_importing_twice_equals_importing_once(engine, vcses, consortia):
    sessions = session_factory(engine)
    with sessions.begin() as session:
        for model in (ConsortiumMember, Consortium, Vcse):
            session.execute(delete(model))
    with tempfile.TemporaryDirectory() as tmp:
        v_path = _write(Path(tmp) / "vcses.csv", [c for c in VCSE_COLUMNS if c in GENERATED], vcses)
        c_path = _write(Path(tmp) / "consortia.csv", CONSORTIUM_COLUMNS, consortia)
        with sessions.begin() as session:
            first = import_directory(session, v_path, c_path)
        with sessions() as session:
            once = _snapshot(session)
        with sessions.begin() as session:
            second = import_directory(session, v_path, c_path)
        with sessions() as session:
            twice = _snapshot(session)
    assert twice == once
    for a, b in ((first.vcses, second.vcses), (first.consortia, second.consortia)):
        assert (b.new, b.updated) == (0, 0)
        assert b.unchanged == a.new + a.updated + a.unchanged
        assert b.errors == a.errors
    assert [str(e) for e in second.errors] == [str(e) for e in first.errors]

