"""The Contracts Finder CSV export reader, on the real 2020 export, its trimmed fixture, a hand-made 2021
file, and broken files under tests/data (provenance: fixtures/opportunities/PROVENANCE_csv.md)."""

from __future__ import annotations

import csv
import io
import logging
import re
import tempfile
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from testpaths import real_file

from broker.errors import InputError
from broker.normalise import cf_csv as cf_norm
from broker.normalise import geography
from broker.normalise.record import canonical_hash
from broker.sources.cf_csv import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, read_cf_csv

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"

REAL_2020 = real_file("cf_search_export_2020-04-16_1000_open_notices.csv")
HEADER_2021 = real_file("cf_search_export_2021-08-28_header_only.csv")
SAMPLE_2020 = FIXTURES / "opportunities" / "cf_export_2020_sample.csv"
HANDMADE_2021 = FIXTURES / "opportunities" / "cf_export_2021_handmade.csv"
DATA = ROOT / "tests" / "data"

def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def read_all(path: Path) -> list:
    return list(read_cf_csv(str(path)))


def by_ref(items: list) -> dict:
    return {i.record.source_ids[0].removeprefix("cf-notice:"): i.record for i in items if i.kind == "record"}


def raw_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


# --- the real 1,000-row export -------------------------------------------------------------------------


def test_real_export_reads_every_row_without_errors():
    progress: list[int] = []
    items = list(read_cf_csv(str(REAL_2020), progress.append))
    # Every one of the 1,000 rows is a well-formed open notice: no bad dates, values or blank names.
    assert Counter(i.kind for i in items) == {"record": 1000}
    records = [i.record for i in items]
    assert len({r.id for r in records}) == 1000
    # Status comes from the row: 855 Contract notices are open, 87 Pipeline + 58 PreProcurement planned.
    assert Counter(r.status for r in records) == {"open": 855, "planned": 145}
    assert all(r.source == "contracts_finder_csv" and r.id.startswith("cf-csv:") for r in records)
    assert progress == sorted(progress) and progress[-1] == REAL_2020.stat().st_size


def test_real_export_locators_count_records_not_lines():
    items = read_all(REAL_2020)
    rows = raw_rows(REAL_2020)
    assert items[0].locator == "row 2 (record 1, line 2)"
    assert items[-1].locator.startswith("row 1001 (record 1000, line ")
    # Descriptions span lines, so the last record starts far below line 1001; the locator's line is where
    # that record's text begins in the file.
    # Lines are counted as universal newlines do (CRLF, LF, or a lone CR: the export has one of those).
    last_line = int(items[-1].locator.split("line ")[1].rstrip(")"))
    lines = re.split(r"\r\n|\r|\n", REAL_2020.read_bytes().decode("utf-8"))
    assert lines[last_line - 1].startswith(rows[-1]["Notice Identifier"])


def test_real_rows_spot_checks():
    recs = by_ref(read_all(REAL_2020))
    # Row 2: Highways England pipeline notice; Closing Date is the 01/01/2001 "no date" sentinel.
    he = recs["tender_237176/850550"]
    assert he.status == "planned" and he.notice_type == "Pipeline"
    assert he.deadline_at is None
    assert he.published_at == utc(2020, 4, 16, 19, 29, 42)
    assert he.contract_start == utc(2021, 4, 28, 23, 0)  # 29/04/2021 00:00 BST
    assert (he.value_min_pence, he.value_max_pence) == (800_000_000, 800_000_000)  # Low 8000000, High 0
    assert he.cpv_codes == ("45233100",) and he.nationwide is True  # "Any region"
    assert (he.sme_suitable, he.vcse_suitable) == (True, False)
    assert he.is_framework is True  # "... Works Framework"
    assert he.match_keys == (
        "cfref:highways england|tender 237176 850550",
        "title:highways england|concrete roads programme lifecycle extension works framework|none")
    # Row 41: eight CPV codes, VCO Yes, PreProcurement, Value High blank; nine English regions named.
    hub = recs["Expression of Interest - HMPPS CFO Activity Hub"]
    assert hub.cpv_codes == ("75200000", "79634000", "80000000", "85312300", "85312400", "85312500",
                             "85322000", "98000000")
    assert hub.vcse_suitable is True and hub.status == "planned"
    assert hub.deadline_at == utc(2020, 4, 27, 22, 59, 59)  # end of 27/04/2020 in BST
    assert hub.value_min_pence is None and hub.value_max_pence is None
    assert hub.url == "https://www.smartsurvey.co.uk/s/HMPPSActivityHubEOI/"
    # Row 68: WMCA framework, Value Low 0 ("not given") and High 10m.
    wmca = recs["tender_237459/849772"]
    assert wmca.buyer_name == "West Midlands Combined Authority"
    assert (wmca.value_min_pence, wmca.value_max_pence) == (1_000_000_000, 1_000_000_000)
    assert wmca.is_framework is True and wmca.nationwide is False
    # Row 83: Value Low "1" is CF's placeholder, so the range is the High figure.
    survey = recs["tender_237436/849887"]
    assert (survey.value_min_pence, survey.value_max_pence) == (9_000_000, 9_000_000)
    # Row 122: two links, the first is taken.
    police = recs["20200410083751-31727"]
    assert police.url == "https://uk.eu-supply.com/app/rfq/rwlentrance_s.asp?PID=32789&B=BLUELIGHT"
    # Row 496: Low 250000 > High 30000 in the export; the range is put in order.
    sd = recs["SD - 00000132"]
    assert (sd.value_min_pence, sd.value_max_pence) == (3_000_000, 25_000_000)
    # Row 173: a call-off from a framework is a contract, not a framework.
    assert recs["700501377"].is_framework is False
    # Row 960: a call-off from a DPS is neither a framework nor the DPS itself.
    assert (recs["RM3809**"].is_dps, recs["RM3809**"].is_framework) == (False, False)
    # Row 686: 60110000 is not a CPV 2008 code: kept aside, not dropped.
    assert recs["HTS0320"].cpv_codes == () and recs["HTS0320"].cpv_unknown == ("60110000",)
    # Row 980: the CF notice link in Additional Text is another notice (an award), not this one's URL.
    niobium = recs["UK SBS Niobium Material"]
    assert niobium.url is None and "contractsfinder.service.gov.uk" in niobium.description


def test_every_real_row_matches_its_raw_cells():
    """Properties that must hold row by row, checked against the raw CSV read independently."""
    items = read_all(REAL_2020)
    for item, row in zip(items, raw_rows(REAL_2020), strict=True):
        rec = item.record
        assert rec.raw_hash == canonical_hash(row)
        assert rec.title == " ".join(row["Title"].split())
        assert rec.vcse_suitable is (row["Suitable for VCO"] == "Yes")
        any_region = "Any region" in row["Region"].split(",")
        if any_region and not rec.nationwide:
            # "Any region", but the title, a council buyer or the description named the place.
            assert rec.local_authority or rec.region, rec.title
        else:
            assert rec.nationwide is any_region
        assert rec.deadline_at is None or rec.deadline_at.tzinfo is UTC
        assert (rec.deadline_at is None) is (row["Closing Date"] == "01/01/2001")
        assert rec.value_min_pence is None or 0 < rec.value_min_pence <= rec.value_max_pence
        assert set(rec.cpv_codes) | set(rec.cpv_unknown) == set(row["Cpv Codes"].split())
        assert_fits_the_store(rec)


def assert_fits_the_store(rec) -> None:
    """Widths of the store's VARCHAR columns (PostgreSQL refuses longer values; SQLite would not notice)."""
    assert len(rec.id) <= 255 and all(len(k) <= 255 for k in rec.match_keys)
    assert rec.notice_type is None or len(rec.notice_type) <= 40
    assert rec.postcode is None or len(rec.postcode) <= 16


# --- fixtures ------------------------------------------------------------------------------------------


def test_sample_fixture_is_a_trimmed_copy_of_the_real_export():
    """PROVENANCE: every West Midlands row, every 4th record, and five named rows, byte for byte."""
    real = REAL_2020.read_bytes().decode("utf-8")
    sample = SAMPLE_2020.read_bytes().decode("utf-8")
    real_rows, sample_rows = raw_rows(REAL_2020), raw_rows(SAMPLE_2020)
    wanted = [r for i, r in enumerate(real_rows, start=1)
              if "West Midlands" in r["Region"].split(",") or i % 4 == 0 or i + 1 in (243, 496, 686, 960, 980)]
    assert sample_rows == wanted and len(sample_rows) == 330
    assert sum("West Midlands" in r["Region"] for r in sample_rows) == 93
    # The records' original text is kept exactly (CRLF, quoting), so the sample reads like the export.
    for item in read_all(SAMPLE_2020):
        assert item.kind == "record"
    assert sample.split("\r\n", 1)[0] == real.split("\r\n", 1)[0]


def test_2021_vintage_with_closing_time():
    header = HANDMADE_2021.read_bytes().decode("utf-8").split("\r\n", 1)[0]
    assert header == HEADER_2021.read_bytes().decode("utf-8").strip()
    assert len(next(csv.reader(io.StringIO(header)))) == 43
    items = read_all(HANDMADE_2021)
    assert [i.kind for i in items] == ["record"] * 6
    recs = by_ref(items)
    first = recs["EXA-2021-0001"]
    assert first.deadline_at == utc(2021, 9, 15, 11, 0)  # 12:00 BST
    assert first.url == "https://www.contractsfinder.service.gov.uk/Notice/00000000-0000-4000-8000-000000000001"
    assert first.vcse_suitable is True and first.cpv_codes == ("85311000", "98000000")
    pipeline = recs["EXA-2021-0002"]
    assert (pipeline.status, pipeline.deadline_at, pipeline.contract_end) == ("planned", None, None)
    assert recs["FNT/RES/7"].status == "awarded"  # Status Closed, but an award is recorded
    assert recs["FNT/RES/8"].status == "cancelled"  # Withdrawn
    uni = recs["UNI-EX-44"]
    assert uni.deadline_at == utc(2021, 11, 5, 17, 0)  # 17:00:00 GMT
    assert uni.is_framework and not uni.is_dps
    assert uni.description.endswith("Bidders must register on the example portal.")
    assert uni.url == "https://example.org/uni/tenders/44"  # trailing full stop of the sentence dropped
    assert uni.contract_start is None  # blank Start Date
    dps = recs["DPS-EX-1"]
    assert dps.is_dps and not dps.is_framework and dps.nationwide is False
    # The multi-line description of record 5 pushes record 6 down to line 13.
    assert items[5].locator == "row 7 (record 6, line 13)"


def test_location_evidence_is_handed_to_geography(monkeypatch):
    calls = []

    def fake_resolve(**kwargs):
        calls.append(kwargs)
        return geography.Location(local_authority="Walsall", postcode="WS1 1AA", region="West Midlands")

    monkeypatch.setattr(geography, "resolve_location", fake_resolve)
    monkeypatch.setattr(geography, "cluster_for", lambda la, pc: f"cluster of {la} {pc}")
    recs = by_ref(read_all(HANDMADE_2021))
    assert calls[0] == {"postcodes": ["B1 1BB"], "region_names": ["West Midlands"], "nationwide": False}
    assert calls[1] == {"postcodes": [], "region_names": [], "nationwide": True}  # "Any region"
    assert calls[4]["region_names"] == ["West Midlands", "East Midlands"]
    rec = recs["EXA-2021-0001"]
    assert (rec.local_authority, rec.region, rec.cluster) == ("Walsall", "West Midlands", "cluster of Walsall WS1 1AA")


# --- encodings -----------------------------------------------------------------------------------------


def test_latin1_file_reads_like_its_utf8_original():
    raw = (DATA / "cf_latin1.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    latin = read_all(DATA / "cf_latin1.csv")
    assert [i.kind for i in latin] == ["record"] * 3
    sample = by_ref(read_all(SAMPLE_2020))
    for item in latin:
        ref = item.record.source_ids[0].removeprefix("cf-notice:")
        assert item.record == sample[ref]  # same text, so the same record and raw_hash
    text = " ".join(i.record.description for i in latin)
    assert "£" in text and "é" in text


def test_utf8_bom_and_cp1252(tmp_path):
    body = HANDMADE_2021.read_bytes()
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + body)
    assert [i.record for i in read_all(tmp_path / "bom.csv")] == [i.record for i in read_all(HANDMADE_2021)]
    # cp1252-only bytes: curly quotes (0x93/0x94) and the euro sign (0x80).
    text = body.decode("utf-8").replace("Community befriending", "\u201cCommunity\u201d befriending \u20ac5")
    (tmp_path / "cp1252.csv").write_bytes(text.encode("cp1252"))
    title = read_all(tmp_path / "cp1252.csv")[0].record.title
    assert title.startswith("\u201cCommunity\u201d befriending \u20ac5")


# --- bad input -----------------------------------------------------------------------------------------


def test_bad_rows_are_errors_naming_row_and_field_and_good_rows_survive():
    items = read_all(DATA / "cf_bad_rows.csv")
    errors = [(i.locator.split(" (")[0], i.error.field) for i in items if i.kind == "error"]
    assert errors == [
        ("row 3", "Closing Date"),  # 31/02/2020
        ("row 5", "Value Low"),  # "about 5k"
        ("row 6", "Title"),  # blank
        ("row 7", "Organisation Name"),  # blank
        ("row 9", None),  # 12 fields of 42
        ("row 10", "Status"),  # "Pending"
        ("row 11", "Suitable for VCO"),  # "Maybe"
        ("row 12", None),  # the file ends inside a quoted field
    ]
    assert [i.locator for i in items if i.kind == "record"] == [
        "row 2 (record 1, line 2)", "row 4 (record 3, line 13)", "row 8 (record 7, line 44)"]
    for item in items:
        if item.kind == "error":
            assert item.error.file == str(DATA / "cf_bad_rows.csv")
            assert item.error.locator == item.locator and item.raw
    bad_date = items[1]
    assert "31/02/2020" in bad_date.error.reason and "31/02/2020" in bad_date.raw
    assert "truncated" in items[-1].error.reason
    # The quarantined text is the record exactly as it was in the file.
    assert items[1].raw in (DATA / "cf_bad_rows.csv").read_bytes().decode("utf-8")


def header_with(columns: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(columns)
    return out.getvalue()


def test_missing_required_column_is_a_file_error_raised_at_call(tmp_path):
    columns = [c for c in REQUIRED_COLUMNS if c != "Closing Date"]
    path = tmp_path / "no_closing.csv"
    path.write_text(header_with(columns) + ",".join("x" for _ in columns) + "\r\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_cf_csv(str(path))  # no iteration needed: the header is checked before returning
    assert info.value.field == "Closing Date" and "Closing Date" in str(info.value)
    assert info.value.file == str(path) and info.value.locator == "row 1"


@pytest.mark.parametrize("content, words", [
    ("", "empty"),
    (header_with(list(REQUIRED_COLUMNS) + ["Title"]), "twice"),
    ("a,b,c\r\n1,2,3\r\n", "missing required column"),
])
def test_other_file_errors(tmp_path, content, words):
    path = tmp_path / "f.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=words):
        read_cf_csv(str(path))


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot open"):
        read_cf_csv(str(tmp_path / "nope.csv"))


def test_unknown_columns_are_ignored_with_a_warning(tmp_path, caplog):
    rows = list(csv.reader(io.StringIO(HANDMADE_2021.read_bytes().decode("utf-8"))))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Officer Notes"] + rows[0])
    for row in rows[1:]:
        writer.writerow(["=HYPERLINK(\"http://evil.example\")"] + row)
    path = tmp_path / "extra.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="broker.sources.cf_csv"):
        items = read_all(path)
    assert "Officer Notes" in caplog.text
    plain = read_all(HANDMADE_2021)
    assert [i.record.id for i in items] == [i.record.id for i in plain]
    assert [i.record.title for i in items] == [i.record.title for i in plain]


def test_blank_lines_are_skipped_but_counted(tmp_path):
    text = HANDMADE_2021.read_bytes().decode("utf-8")
    header, rest = text.split("\r\n", 1)
    path = tmp_path / "blank.csv"
    path.write_text(header + "\r\n\r\n" + "," * 42 + "\r\n" + rest, encoding="utf-8")
    items = read_all(path)
    assert len(items) == 6 and items[0].locator == "row 4 (record 3, line 4)"


def test_minimal_row_and_nul_cleaning():
    row = dict.fromkeys(REQUIRED_COLUMNS, "")
    row.update({"Notice Identifier": "X1", "Organisation Name": "Org", "Title": "T", "Status": "Open"})
    rec = cf_norm.record_from_row(row)
    assert (rec.status, rec.description, rec.deadline_at, rec.url) == ("open", "", None, None)
    assert (rec.sme_suitable, rec.vcse_suitable, rec.value_min_pence) == (None, None, None)
    row["Description"] = "ab<script>alert(1)</script>"
    assert cf_norm.record_from_row(row).description == "ab"
    row["Description"] = "a\x00b"  # a NUL byte refuses the row (quarantined), naming the column
    with pytest.raises(InputError) as info:
        cf_norm.record_from_row(row)
    assert info.value.field == "Description" and "NUL byte" in info.value.reason


def test_long_titles_keys_and_free_text_fit_the_store():
    row = dict.fromkeys(REQUIRED_COLUMNS, "")
    row.update({"Notice Identifier": "R" * 300, "Organisation Name": "Org", "Title": "word " * 100,
                "Status": "Open", "Postcode": "see the attached list of sites in the specification"})
    rec = cf_norm.record_from_row(row)
    assert_fits_the_store(rec)
    assert rec.title == ("word " * 100).strip()  # the title itself is not cut (a Text column)
    row["Notice Type"] = "Contract, Pipeline and something else entirely"
    with pytest.raises(InputError) as info:
        cf_norm.record_from_row(row)
    assert info.value.field == "Notice Type"


def test_a_value_the_record_refuses_becomes_an_error_item(monkeypatch):
    import broker.sources.cf_csv as reader

    def refuse(row):
        raise ValueError("title contains a NUL character or an unpaired surrogate")

    monkeypatch.setattr(reader, "record_from_row", refuse)
    items = read_all(HANDMADE_2021)
    assert [i.kind for i in items] == ["error"] * 6
    assert "unpaired surrogate" in items[0].error.reason and items[0].raw.startswith("EXA-2021-0001,")


# --- hypothesis: the mapping is a deterministic function and never makes negative money -------------------

COLUMNS_2021 = list(REQUIRED_COLUMNS) + [c for c in OPTIONAL_COLUMNS]
_codes = ["85311000", "98000000", "45000000", "79600000", "60130000", "03000000"]
# Mostly well-formed cells (so most rows map), with some garbage in every kind of column.
_good_date = st.dates(date(1990, 1, 1), date(2100, 12, 31)).map(lambda d: d.strftime("%d/%m/%Y"))
uk_dates = st.one_of(_good_date, _good_date, _good_date, st.sampled_from(["01/01/2001", "", "31/02/2020"]),
                     st.text(max_size=12))
amounts = st.one_of(
    st.integers(min_value=-10**3, max_value=10**13).map(str), st.integers(0, 10**9).map(str),
    st.decimals(allow_nan=False, places=2).map(str),
    st.sampled_from(["", "0", "1", "0.01", "£1,500", "1e9999", "n/a"]))
_words = st.text(st.characters(categories=["L", "N", "P"]), min_size=1, max_size=30)
_name = st.one_of(_words, _words, _words, st.text(max_size=30))
cells = {
    "Notice Identifier": _name,
    "Organisation Name": _name,
    "Title": _name,
    "Status": st.sampled_from(["Open", "Open", "Closed", "Cancelled", "Withdrawn", "Awarded", "open", "Odd"]),
    "Notice Type": st.sampled_from(["Contract", "Pipeline", "PreProcurement", "", "x" * 41]),
    "Postcode": st.one_of(st.sampled_from(["B1 1BB", "", "cv4 7al"]), st.text(max_size=30)),
    "Published Date": st.one_of(st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")), st.just("")),
    "Closing Date": uk_dates, "Start Date": uk_dates, "End Date": _good_date, "Awarded Date": st.just(""),
    "Closing Time": st.one_of(st.just(""), st.times().map(lambda t: t.strftime("%H:%M"))),
    "Value Low": amounts, "Value High": amounts, "Awarded Value": st.sampled_from(["", "0"]),
    "Cpv Codes": st.lists(st.one_of(st.sampled_from(_codes), st.text(max_size=9)), max_size=4).map(" ".join),
    "Region": st.lists(st.sampled_from(["Any region", "West Midlands", "London", "Wales", ""]),
                       max_size=3).map(",".join),
    "Suitable for SME": st.sampled_from(["Yes", "No", ""]), "Suitable for VCO": st.sampled_from(["Yes", "No", "x"]),
    "Links": st.text(max_size=40), "Description": st.text(max_size=80),
}


@st.composite
def cf_rows(draw):
    row = {c: "" for c in COLUMNS_2021}
    for column, strategy in cells.items():
        row[column] = draw(strategy)
    return row


@settings(max_examples=150, deadline=None)
@given(cf_rows())
def test_mapping_is_deterministic_and_money_never_negative(row):
    outcomes = []
    for _ in range(2):
        try:
            outcomes.append(cf_norm.record_from_row(dict(row)))
        except InputError as exc:
            outcomes.append((exc.field, exc.reason))
    assert outcomes[0] == outcomes[1]
    rec = outcomes[0]
    if not isinstance(rec, tuple):
        lo, hi = rec.value_min_pence, rec.value_max_pence
        assert (lo is None) == (hi is None)
        assert lo is None or 0 <= lo <= hi
        assert_fits_the_store(rec)


@settings(max_examples=40, deadline=None)
@given(st.lists(cf_rows(), min_size=1, max_size=4))
def test_reading_a_file_equals_mapping_its_rows(rows):
    """Writing generated rows to a CSV file and reading it back gives the same records or errors, one per
    row, in order (multi-line and quoted cells included)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS_2021)
    for row in rows:
        writer.writerow([row[c] for c in COLUMNS_2021])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gen.csv"
        path.write_text(out.getvalue(), encoding="utf-8", newline="")
        items = read_all(path)
    non_blank = [r for r in rows if any(v.strip() for v in r.values())]
    assert len(items) == len(non_blank)
    for item, row in zip(items, non_blank, strict=True):
        try:
            expected = cf_norm.record_from_row(row)
        except InputError as exc:
            assert item.kind == "error" and item.error.field == exc.field
        else:
            assert item.kind == "record" and item.record == expected


# --- through the lead's ingest into the store (SQLite, and PostgreSQL when configured) -------------------


@pytest.mark.parametrize("path", [SAMPLE_2020, HANDMADE_2021, DATA / "cf_bad_rows.csv", DATA / "cf_latin1.csv"])
def test_ingest_stores_records_and_quarantines_errors_idempotently(engine, path):
    from broker.ingest import ingest_items
    from broker.store.engine import session_factory

    sessions = session_factory(engine)
    items = read_all(path)
    first = ingest_items(sessions, read_cf_csv(str(path)), path=str(path), file_sha="sha")
    assert first.new == sum(i.kind == "record" for i in items)
    assert first.quarantined == sum(i.kind == "error" for i in items)
    again = ingest_items(sessions, read_cf_csv(str(path)), path=str(path), file_sha="sha")
    assert (again.new, again.updated, again.unchanged) == (0, 0, first.new)


def test_identifiers_without_letters_or_digits_are_errors():
    row = dict.fromkeys(REQUIRED_COLUMNS, "")
    row.update({"Notice Identifier": "***", "Organisation Name": "Org", "Title": "T", "Status": "Open"})
    with pytest.raises(InputError) as info:
        cf_norm.record_from_row(row)
    assert info.value.field == "Notice Identifier"
    # Case, spacing and punctuation do not change a notice's id; the buyer does.
    assert cf_norm.cf_record_id("Org Ltd", "AB-1/2") == cf_norm.cf_record_id("ORG  LTD", "ab 1 2")
    assert cf_norm.cf_record_id("Org Ltd", "AB-1/2") != cf_norm.cf_record_id("Other Ltd", "AB-1/2")
