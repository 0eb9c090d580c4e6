"""Private (anchor-institution) opportunities: CSV, JSON and JSONL readers on the fictional fixture set
(fixtures/opportunities/PROVENANCE_csv.md) and broken files under tests/data."""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.errors import InputError
from broker.normalise import geography
from broker.normalise.private import COLUMNS, canonical_fields, record_from_private
from broker.sources.private import read_private

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"

ANCHOR_CSV = FIXTURES / "opportunities" / "private_anchor_opportunities.csv"
ANCHOR_JSONL = FIXTURES / "opportunities" / "private_anchor_opportunities.jsonl"
DATA = ROOT / "tests" / "data"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def read(path: Path, fmt: str) -> list:
    return list(read_private(str(path), fmt))


def records(path: Path, fmt: str) -> list:
    items = read(path, fmt)
    assert [i.kind for i in items] == ["record"] * len(items), [i.error for i in items if i.error]
    return [i.record for i in items]


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --- the fixture set -----------------------------------------------------------------------------------


def test_anchor_csv_reads_all_twelve():
    recs = records(ANCHOR_CSV, "private_csv")
    rows = csv_rows(ANCHOR_CSV)
    assert len(recs) == len(rows) == 12
    for rec, row in zip(recs, rows, strict=True):
        assert rec.source == "private" and rec.status == "open"
        assert rec.source_ids == (f"private:{row['id']}",)
        assert rec.id == "private:" + row["id"].lower()  # these ids are already letters, digits and "-"
        assert rec.buyer_name == row["buyer"] and rec.buyer_type == row["buyer_type"]
        assert rec.deadline_at is not None and rec.deadline_at.tzinfo is UTC
        assert rec.vcse_suitable is {"yes": True, "no": False, "": None}[row["suitable_for_vcse"]]
        assert rec.url == (row["url"] or None)
        assert list(rec.cpv_codes) == row["cpv_codes"].split(";") and rec.cpv_unknown == ()
    by_id = {r.source_ids[0]: r for r in recs}
    first = by_id["private:WHT-2026-001"]
    assert (first.value_min_pence, first.value_max_pence) == (6_000_000, 9_000_000)
    assert first.deadline_at == utc(2026, 2, 27, 12, 0) and first.published_at == utc(2026, 1, 12)
    # dd/mm/yyyy deadline without a time: the end of that day, UK time (GMT in March before the clocks go).
    assert by_id["private:WHT-2026-002"].deadline_at == utc(2026, 3, 13, 23, 59, 59)
    # One figure given: it is both bounds, as for every source.
    assert (by_id["private:WHT-2026-002"].value_min_pence, by_id["private:WHT-2026-002"].value_max_pence) == (
        3_500_000, 3_500_000)
    assert by_id["private:WHT-2026-003"].value_min_pence == 1_200_000
    # "£45,000" as text.
    assert by_id["private:TVH-0044"].value_min_pence == 4_500_000
    # No values at all.
    assert by_id["private:FLU-SV-2026-10"].value_min_pence is None
    assert by_id["private:FLU-SV-2026-10"].value_currency is None
    # Zone-less time is UK local time.
    assert by_id["private:FLU-SV-2026-11"].deadline_at == utc(2026, 3, 16, 12, 0)
    # HTML in a description is reduced to text.
    assert "<p>" not in by_id["private:UOB-RFQ-117"].description
    assert by_id["private:UOB-RFQ-117"].description.startswith("Mentoring by trained volunteers")
    assert by_id["private:UOB-RFQ-117"].match_keys == (
        "title:university of brindley|widening participation mentoring for year 10 13 pupils|2026-02-20",)


def test_csv_json_and_jsonl_give_the_same_records(tmp_path):
    from_csv = records(ANCHOR_CSV, "private_csv")
    from_jsonl = records(ANCHOR_JSONL, "private_jsonl")
    objects = [json.loads(line) for line in ANCHOR_JSONL.read_text(encoding="utf-8").splitlines()]
    (tmp_path / "array.json").write_text(json.dumps(objects, indent=2), encoding="utf-8")
    (tmp_path / "wrapped.json").write_text(json.dumps({"publisher": "x", "opportunities": objects}),
                                           encoding="utf-8")
    from_array = records(tmp_path / "array.json", "private_json")
    from_wrapped = records(tmp_path / "wrapped.json", "private_json")
    assert from_csv == from_jsonl == from_array == from_wrapped
    # The JSON side really is typed differently (numbers, booleans, a CPV list), not a copy of the CSV text.
    assert isinstance(objects[0]["value_min_gbp"], int) and objects[0]["suitable_for_vcse"] is True
    assert isinstance(objects[0]["cpv_codes"], list)


def test_location_evidence_is_handed_to_geography(monkeypatch):
    calls = []

    def fake_resolve(**kwargs):
        calls.append(kwargs)
        return geography.Location(postcode=(kwargs["postcodes"] or [None])[0])

    monkeypatch.setattr(geography, "resolve_location", fake_resolve)
    monkeypatch.setattr(geography, "canonical_local_authority", lambda name: f"LA:{name}")
    recs = records(ANCHOR_CSV, "private_csv")
    assert calls[0] == {"postcodes": ["B8 2HB"], "place_names": ["LA:Birmingham"]}
    assert calls[2] == {"postcodes": [], "place_names": ["LA:Walsall"]}
    # The authority the officer named is kept when the postcode did not settle one.
    assert recs[2].local_authority == "LA:Walsall" and recs[0].postcode == "B8 2HB"


def test_progress_reports_bytes(tmp_path):
    for path, fmt in ((ANCHOR_CSV, "private_csv"), (ANCHOR_JSONL, "private_jsonl")):
        seen: list[int] = []
        list(read_private(str(path), fmt, seen.append))
        assert seen and seen == sorted(seen) and seen[-1] == path.stat().st_size


# --- bad input -----------------------------------------------------------------------------------------


def test_bad_csv_rows_are_errors_and_good_rows_survive(caplog):
    with caplog.at_level(logging.WARNING, logger="broker.sources.private"):
        items = read(DATA / "private_bad.csv", "private_csv")
    assert "'notes'" in caplog.text  # the unknown column is warned about, once
    errors = [(i.locator.split(" (")[0], i.error.field) for i in items if i.kind == "error"]
    assert errors == [
        ("row 3", "url"),  # javascript: URL
        ("row 4", "value_min_gbp"),  # min > max
        ("row 5", "deadline"),  # blank
        ("row 6", "deadline"),  # "next Friday"
        ("row 8", "suitable_for_vcse"),  # "maybe"
        ("row 9", "value_min_gbp"),  # negative
        ("row 10", "contact_email"),  # CRLF + Bcc: header injection
        ("row 11", "deadline"),  # before published
        ("row 13", "buyer"),  # blank
    ]
    good = {i.locator.split(" (")[0]: i.record for i in items if i.kind == "record"}
    assert sorted(good) == ["row 12", "row 14", "row 2", "row 7"]
    # Row 7 repeats row 2's id: the reader passes both on and ingest keeps the first (broker.ingest).
    assert good["row 7"].id == good["row 2"].id
    # A path-like id cannot escape: the record id holds letters, digits, "-" and %-escapes only.
    assert good["row 12"].id == "private:%2E%2E%2F%2E%2E%2Fetc%2Fpasswd"
    assert good["row 12"].source_ids == ("private:../../etc/passwd",)
    assert (good["row 14"].value_min_pence, good["row 14"].value_max_pence) == (1_250_050, 1_250_050)
    url_error = next(i for i in items if i.kind == "error")
    assert "javascript:" in url_error.error.reason and "javascript:" in url_error.raw
    # The CRLF inside the quoted email cell puts the next record one line further down.
    assert [i.locator for i in items][9] == "row 11 (record 10, line 12)"


def test_bad_jsonl_lines_are_errors_naming_the_line(caplog):
    with caplog.at_level(logging.WARNING, logger="broker.sources.private"):
        items = read(DATA / "private_bad.jsonl", "private_jsonl")
    assert [(i.kind, i.locator, i.error.field if i.error else None) for i in items] == [
        ("record", "line 1", None),
        ("error", "line 2", None),  # not JSON (cut short)
        ("error", "line 3", None),  # an array, not an object
        ("error", "line 5", "title"),  # title is an object (line 4 is blank and skipped)
        ("record", "line 6", None),  # unknown key "priority" ignored
    ]
    assert "not valid JSON" in items[1].error.reason and items[1].raw.startswith('{"id": "J-2"')
    assert "'priority'" in caplog.text


def test_truncated_json_keeps_the_records_before_the_break():
    items = read(DATA / "private_truncated.json", "private_json")
    assert [(i.kind, i.locator) for i in items] == [("record", "record 1"), ("error", "after record 1")]
    assert items[0].record.id == "private:j-1"
    assert "breaks after record 1" in items[1].error.reason


@pytest.mark.parametrize("content", ['{"items": []}', '"just text"', "{}", '{"opportunities": {"a": 1}}', ""])
def test_json_of_the_wrong_shape_is_a_file_error_at_call(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match="opportunities"):
        read_private(str(path), "private_json")


def test_empty_opportunities_array_is_fine(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text('\ufeff{"opportunities": []}', encoding="utf-8")  # a BOM is tolerated too
    assert read(path, "private_json") == []


def test_json_values_of_the_wrong_type_and_non_objects(tmp_path):
    path = tmp_path / "odd.json"
    path.write_text(json.dumps([1, {"id": "A", "buyer": "B", "title": "T", "deadline": "2026-05-01",
                                    "value_min_gbp": [1]}]), encoding="utf-8")
    items = read(path, "private_json")
    assert items[0].error.reason == "expected an object, got a number"
    assert items[1].error.field == "value_min_gbp" and "JSON array" in items[1].error.reason


def test_header_and_format_errors(tmp_path):
    path = tmp_path / "no_deadline.csv"
    path.write_text("id,buyer,title,published\r\nA,B,C,2026-01-01\r\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_private(str(path), "private_csv")
    assert info.value.field == "deadline" and info.value.locator == "row 1"
    with pytest.raises(InputError, match="unknown private opportunity format"):
        read_private(str(ANCHOR_CSV), "private_xlsx")
    with pytest.raises(InputError, match="cannot open"):
        read_private(str(tmp_path / "missing.jsonl"), "private_jsonl")


def test_lone_surrogate_is_an_error_not_a_crash(tmp_path):
    path = tmp_path / "surrogate.jsonl"
    path.write_text('{"id": "S1", "buyer": "B", "title": "bad \\ud800 text", "deadline": "2026-05-01"}\n'
                    '{"id": "S2", "buyer": "B", "title": "fine", "deadline": "2026-05-01"}\n', encoding="utf-8")
    items = read(path, "private_jsonl")
    assert [i.kind for i in items] == ["error", "record"]
    items[0].raw.encode("utf-8")  # the quarantined text itself is storable


@pytest.mark.parametrize("field, value", [
    ("url", "data:text/html,<script>alert(1)</script>"), ("url", "http://"), ("url", "https://a b.example"),
    ("url", "ftp://example.org/x"), ("contact_email", "a@example.org, b@example.org"),
    ("contact_email", "not an email"), ("id", "!!!"), ("value_max_gbp", "lots"), ("published", "2026-13-01"),
    ("id", "A" * 201), ("buyer_type", "x" * 81),
])
def test_single_bad_values(field, value):
    data = {"id": "X-1", "buyer": "B", "title": "T", "deadline": "2026-05-01", field: value}
    with pytest.raises(InputError) as info:
        record_from_private(canonical_fields(data))
    assert info.value.field == field


def test_formula_and_markup_stay_text():
    data = {"id": "X-1", "buyer": "=HYPERLINK(\"http://evil.example\")", "title": "<b>Cleaning</b>",
            "deadline": "2026-05-01", "description": "<script>alert(1)</script>Real text"}
    rec = record_from_private(canonical_fields(data))
    assert rec.buyer_name == '=HYPERLINK("http://evil.example")'  # kept as text; exports must escape it
    assert (rec.title, rec.description) == ("Cleaning", "Real text")


# --- hypothesis ----------------------------------------------------------------------------------------

_amount = st.one_of(st.none(), st.integers(-100, 10**9), st.decimals(-5, 10**7, places=2),
                    st.sampled_from(["", "0", "£1,000", "abc"]))
_date = st.one_of(st.dates().map(lambda d: d.isoformat()), st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
                  st.sampled_from(["", "soon"]))
private_rows = st.fixed_dictionaries({
    "id": st.text(min_size=1, max_size=12), "buyer": st.text(max_size=20),
    "title": st.one_of(st.text(max_size=20), st.text(min_size=250, max_size=300)),
    "value_min_gbp": _amount, "value_max_gbp": _amount, "published": _date, "deadline": _date,
    "cpv_codes": st.one_of(st.lists(st.sampled_from(["85311000", "98000000", "x"]), max_size=3),
                           st.sampled_from(["85311000;98000000", "85311000 x", ""])),
    "suitable_for_vcse": st.sampled_from([True, False, None, "yes", "No", "?"]),
})


@settings(max_examples=200, deadline=None)
@given(private_rows)
def test_mapping_is_deterministic_and_money_never_negative(data):
    outcomes = []
    for _ in range(2):
        try:
            outcomes.append(record_from_private(canonical_fields(dict(data))))
        except InputError as exc:
            outcomes.append((exc.field, exc.reason))
    assert outcomes[0] == outcomes[1]
    rec = outcomes[0]
    if not isinstance(rec, tuple):
        lo, hi = rec.value_min_pence, rec.value_max_pence
        assert (lo is None) == (hi is None) and (lo is None or 0 < lo <= hi)
        assert rec.id.startswith("private:") and "/" not in rec.id and " " not in rec.id
        assert len(rec.id) <= 255 and all(len(k) <= 255 for k in rec.match_keys)


@settings(max_examples=60, deadline=None)
@given(private_rows)
def test_csv_text_and_json_types_map_alike(data):
    """The same opportunity as CSV text (what canonical_fields makes of it) and as JSON values."""
    as_text = canonical_fields(data)
    via_json = json.loads(json.dumps({k: v for k, v in data.items()}, default=str), parse_float=Decimal)
    for source in (as_text, via_json):
        assert set(canonical_fields(source)) == set(COLUMNS)
    assert canonical_fields(via_json) == as_text
    out = io.StringIO()
    csv.writer(out).writerow([as_text[c] for c in COLUMNS])
    parsed = next(csv.reader(io.StringIO(out.getvalue())))
    assert canonical_fields(dict(zip(COLUMNS, parsed, strict=True))) == as_text


@pytest.mark.parametrize("path, fmt", [(ANCHOR_CSV, "private_csv"), (ANCHOR_JSONL, "private_jsonl"),
                                       (DATA / "private_bad.csv", "private_csv")])
def test_ingest_stores_records_and_quarantines_errors_idempotently(engine, path, fmt):
    from broker.ingest import ingest_items
    from broker.store.engine import session_factory

    sessions = session_factory(engine)
    items = read(path, fmt)
    first = ingest_items(sessions, read_private(str(path), fmt), path=str(path), file_sha="sha")
    records = [i.record for i in items if i.kind == "record"]
    distinct = len({r.id for r in records})
    assert first.new == distinct
    # A repeated id with other content (private_bad.csv row 7) is quarantined by ingest, the first kept.
    assert first.quarantined == sum(i.kind == "error" for i in items) + len(records) - distinct
    again = ingest_items(sessions, read_private(str(path), fmt), path=str(path), file_sha="sha")
    assert (again.new, again.updated) == (0, 0)
