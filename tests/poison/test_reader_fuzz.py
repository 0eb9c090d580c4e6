"""Fuzz every reader with real records, one of them corrupted: never raises, never loses the good ones.

Each example takes a few real records from the shipped fixtures, corrupts one (a field replaced by a
hostile value: deep nesting, year 9999, NUL, lone surrogates, huge numbers, wrong types, European money,
or bytes garbled inside its line), writes the file in the reader's format and reads it. Bounded example
counts keep the module under a minute in CI.
"""

from __future__ import annotations

import copy
import json
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from poisonkit import CF_CSV, PRIVATE_JSONL, csv_rows, distinct_releases, package, write_csv
from sqlalchemy import select

from broker.ingest import ingest_file
from broker.sources.registry import read
from broker.store.engine import make_engine, session_factory
from broker.store.models import Base, Opportunity

PKG = package()
RELEASES = distinct_releases(PKG, 4)
CF_ROWS = csv_rows(CF_CSV)
PRIVATE = [json.loads(line) for line in PRIVATE_JSONL.read_text(encoding="utf-8").splitlines()][:4]
# BROKER_FUZZ_EXAMPLES=500 for a longer hunt; CI keeps the default.
EXAMPLES = int(os.environ.get("BROKER_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _nested(depth: int) -> str:
    """A placeholder that :func:`_dump` writes as ``depth`` nested lists (json.dumps would recurse)."""
    return f"@@deep{depth}@@"


_HOSTILE_TEXT = st.sampled_from([
    "9999-12-31T23:00:00-05:00", "31/12/9999", "0001-01-01T00:30:00+14:00", "1.000,50", "-5", "1e9999",
    "\x00", "bad\x00byte", "\ud800", "\u202e\x1b]0;title\x07", "", " ", "NaN", "Infinity", "£1,000.50",
    "=HYPERLINK(\"x\")", "x" * 5000, "2025-02-30", "24:00", "ocds-b5fd17-" + "9" * 400,
])
HOSTILE = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | _HOSTILE_TEXT | st.text(max_size=30)
    | st.decimals(allow_nan=False, allow_infinity=False, places=3)
    | st.integers(1, 3000).map(_nested),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
OCDS_PATHS = [("date",), ("ocid",), ("id",), ("tag",), ("tender",), ("tender", "title"), ("tender", "value"),
              ("tender", "value", "amount"), ("tender", "minValue", "amount"), ("tender", "tenderPeriod", "endDate"),
              ("tender", "lots"), ("tender", "items"), ("buyer",), ("parties",), ("awards",), ("planning",),
              ("tender", "status"), ("tender", "classification"), ("release-extra",)]


def _set(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    target[path[-1]] = value


def _dump(value: Any) -> str:
    """JSON text; Decimals as numbers, lone surrogates escaped (ensure_ascii), deep placeholders expanded."""
    text = json.dumps(value, ensure_ascii=True, default=lambda d: float(d) if isinstance(d, Decimal) else str(d))
    return re.sub(r'"@@deep(\d+)@@"', lambda m: "[" * int(m[1]) + "1" + "]" * int(m[1]), text)


@st.composite
def corrupted_releases(draw) -> tuple[list[dict[str, Any]], int]:
    releases = copy.deepcopy(RELEASES)
    victim = draw(st.integers(0, len(releases) - 1))
    for _ in range(draw(st.integers(1, 3))):
        _set(releases[victim], draw(st.sampled_from(OCDS_PATHS)), draw(HOSTILE))
    return releases, victim


def _ocids(items) -> set[str]:
    return {str(i.release["ocid"]) for i in items if i.kind == "release"}


def _good_ocids(releases: list[dict[str, Any]], victim: int) -> set[str]:
    return {r["ocid"] for i, r in enumerate(releases) if i != victim} - {str(releases[victim].get("ocid"))}


@FUZZ
@given(case=corrupted_releases())
def test_release_package(tmp_path, case):
    releases, victim = case
    path = tmp_path / "package.json"
    path.write_text(_dump({**{k: v for k, v in PKG.items() if k != "releases"}, "releases": releases}))
    assert _good_ocids(releases, victim) <= _ocids(list(read(str(path), "ocds_release_package")))


@FUZZ
@given(case=corrupted_releases())
def test_record_package(tmp_path, case):
    releases, victim = case
    records = [{"ocid": str(r.get("ocid")), "releases": [r]} for r in releases]
    path = tmp_path / "records.json"
    path.write_text(_dump({"uri": "u", "publishedDate": "2025-01-01T00:00:00Z", "records": records}))
    assert _good_ocids(releases, victim) <= _ocids(list(read(str(path), "ocds_record_package")))


@FUZZ
@given(case=corrupted_releases(), garble=st.binary(min_size=1, max_size=12), at=st.floats(0, 1))
def test_release_json_lines(tmp_path, case, garble, at):
    """Values corrupted, and bytes garbled inside the victim's line (no line break added)."""
    releases, victim = case
    lines = [_dump(r).encode() for r in releases]
    cut = int(len(lines[victim]) * at)
    lines[victim] = lines[victim][:cut] + garble.replace(b"\n", b" ").replace(b"\r", b" ") + lines[victim][cut:]
    path = tmp_path / "releases.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    items = list(read(str(path), "ocds_release_jsonl"))
    assert _good_ocids(releases, victim) <= _ocids(items)


def _cell() -> st.SearchStrategy[str]:
    return _HOSTILE_TEXT | st.text(max_size=40)


@FUZZ
@given(victim=st.integers(1, len(CF_ROWS) - 1), column=st.integers(0, len(CF_ROWS[0]) - 1), value=_cell())
def test_contracts_finder_csv(tmp_path, victim, column, value):
    rows = copy.deepcopy(CF_ROWS)
    rows[victim][column] = value
    path = write_csv(tmp_path / "cf.csv", rows)
    items = list(read(str(path), "cf_csv"))
    baseline = {i.locator.split(" (")[0] for i in read(str(CF_CSV), "cf_csv") if i.kind == "record"}
    good = {i.locator.split(" (")[0] for i in items if i.kind == "record"}
    assert baseline - {f"row {victim + 1}"} <= good


def _private_rows(victim: int, key: str, value: Any) -> list[dict[str, Any]]:
    rows = copy.deepcopy(PRIVATE)
    rows[victim][key] = value
    return rows


PRIVATE_KEYS = st.sampled_from(sorted({k for r in PRIVATE for k in r}) + ["extra"])


def _private_ids(items) -> set[str]:
    return {i.record.id for i in items if i.kind == "record"}


def _good_private(rows: list[dict[str, Any]], victim: int) -> set[str]:
    from broker.normalise.private import private_key

    return {private_key(r["id"]) for i, r in enumerate(rows) if i != victim} - {
        private_key(str(rows[victim].get("id")))}


@FUZZ
@given(victim=st.integers(0, len(PRIVATE) - 1), key=PRIVATE_KEYS, value=HOSTILE)
def test_private_json_and_jsonl(tmp_path, victim, key, value):
    rows = _private_rows(victim, key, value)
    array, lines = tmp_path / "p.json", tmp_path / "p.jsonl"
    array.write_text(_dump(rows))
    lines.write_text("\n".join(_dump(r) for r in rows) + "\n")
    good = _good_private(rows, victim)
    assert good <= _private_ids(read(str(array), "private_json"))
    assert good <= _private_ids(read(str(lines), "private_jsonl"))


def _as_cell(value: Any) -> str:
    if value is None:
        return ""
    return ";".join(map(str, value)) if isinstance(value, list) else str(value)


@FUZZ
@given(victim=st.integers(0, len(PRIVATE) - 1), key=PRIVATE_KEYS, value=_cell())
def test_private_csv(tmp_path, victim, key, value):
    rows = _private_rows(victim, key, value)
    header = list(dict.fromkeys(k for r in rows for k in r))
    path = write_csv(tmp_path / "p.csv", [header] + [[_as_cell(r.get(k)) for k in header] for r in rows])
    assert _good_private(rows, victim) <= _private_ids(read(str(path), "private_csv"))


@pytest.mark.parametrize("kind", ["package", "jsonl"])
@settings(max_examples=max(EXAMPLES // 2, 5), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=corrupted_releases())
def test_the_whole_ingest_never_raises_and_keeps_the_good(db_url, tmp_path, kind, case):
    """Through compile, normalise and the store, on SQLite and PostgreSQL."""
    releases, victim = case
    path = tmp_path / f"fuzz.{'json' if kind == 'package' else 'jsonl'}"
    if kind == "package":
        path.write_text(_dump({**{k: v for k, v in PKG.items() if k != "releases"}, "releases": releases}))
    else:
        path.write_text("\n".join(_dump(r) for r in releases) + "\n")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:  # each example starts from an empty store
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
        report = ingest_file(session_factory(engine), str(path))
        with session_factory(engine)() as s:
            ocids = set(s.scalars(select(Opportunity.ocid)))
    finally:
        engine.dispose()
    assert report.failed is None, report.problems
    assert _good_ocids(releases, victim) <= ocids
    assert report.quarantined <= 1, report.problems


def test_fuzz_inputs_are_real_records():
    """The fuzz starts from the shipped fixtures: four OCDS releases, CSV rows and private records."""
    assert len(RELEASES) == 4 and len(CF_ROWS) > 3 and len(PRIVATE) == 4
    assert Path(CF_CSV).exists()
