"""No silent merges or misreads: exact private ids, European money, NUL bytes, negative amounts."""

from __future__ import annotations

import json
import warnings

import pytest
from poisonkit import (
    CF_CSV,
    OPP,
    PRIVATE_CSV,
    csv_rows,
    distinct_releases,
    package,
    run_ingest,
    stored,
    write_csv,
    write_json,
)


def _private_file(tmp_path, name: str, officer_id: str, title: str, **changes: str):
    rows = csv_rows(PRIVATE_CSV)
    header, row = rows[0], list(rows[1])
    row[header.index("id")] = officer_id
    row[header.index("title")] = title
    for key, value in changes.items():
        row[header.index(key)] = value
    return write_csv(tmp_path / name, [header, row])


def test_private_ids_that_differ_in_punctuation_are_three_opportunities(db_url, tmp_path):
    """Before: one opportunity, two titles silently overwritten, exit 0."""
    files = [_private_file(tmp_path, f"{n}.csv", officer_id, f"Title {n}")
             for n, officer_id in enumerate(("WHT/2026/001", "WHT-2026-001", "wht 2026 001"))]
    report = run_ingest(db_url, *files)
    titles = stored(db_url)["titles"]
    assert sorted(titles.values()) == ["Title 0", "Title 1", "Title 2"]
    warned = [w for f in report.files for w in f.warnings]
    assert len(warned) == 2 and all("only in punctuation or spacing" in w for w in warned)
    assert "'WHT-2026-001' differs from 'WHT/2026/001'" in warned[0]


def test_private_ids_differing_only_in_case_and_surrounding_space_are_one(db_url, tmp_path):
    first = _private_file(tmp_path, "a.csv", "WHT-2026-001", "First")
    second = _private_file(tmp_path, "b.csv", "  wht-2026-001 ", "Second")
    report = run_ingest(db_url, first, second)
    assert list(stored(db_url)["titles"].values()) == ["Second"]
    assert report.files[1].updated == 1 and not report.files[1].warnings


@pytest.mark.parametrize("text", ["1.000,50", "1000,50", "1.000"])
def test_european_money_in_a_private_file_is_refused_never_one_pound(db_url, tmp_path, text):
    """Before: 1.000,50 was stored as £1.00."""
    path = _private_file(tmp_path, "p.csv", "EU-1", "European", value_min_gbp=text, value_max_gbp="")
    run_ingest(db_url, path)
    [(locator, field, reason)] = stored(db_url)["quarantine"]
    assert locator.startswith("row 2 ") and field == "value_min_gbp" and text in reason
    assert not stored(db_url)["ids"]


def test_european_money_in_the_contracts_finder_csv_is_refused(db_url, tmp_path):
    rows = csv_rows(CF_CSV)
    rows[3][rows[0].index("Value Low")] = "1.000,50"
    report = run_ingest(db_url, write_csv(tmp_path / "cf.csv", rows))
    [(locator, field, reason)] = stored(db_url)["quarantine"]
    assert locator.startswith("row 4 ") and field == "Value Low" and "UK number format" in reason
    assert report.total("new") == len(rows) - 2


def test_uk_grouped_money_still_reads(db_url, tmp_path):
    path = _private_file(tmp_path, "p.csv", "UK-1", "UK", value_min_gbp="£1,000.50", value_max_gbp="2,000")
    run_ingest(db_url, path)
    from broker.store.engine import make_engine, session_factory
    from broker.store.models import Opportunity

    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        row = s.query(Opportunity).one()
        assert (row.value_min_pence, row.value_max_pence) == (100_050, 200_000)
    engine.dispose()


@pytest.mark.parametrize("reader", ["cf", "private"])
def test_one_nul_byte_quarantines_only_its_row(db_url, tmp_path, reader):
    """Before: the whole file was refused as binary (and the offset given was the end of the file)."""
    source = CF_CSV if reader == "cf" else PRIVATE_CSV
    column = "Title" if reader == "cf" else "title"
    rows = csv_rows(source)
    rows[3][rows[0].index(column)] += "\x00tail"
    report = run_ingest(db_url, write_csv(tmp_path / f"{reader}.csv", rows))
    [(locator, field, reason)] = stored(db_url)["quarantine"]
    assert locator.startswith("row 4 ") and field == column and "NUL byte" in reason
    assert report.total("new") == len(rows) - 2


def test_negative_amounts_are_refused_the_same_way_in_every_reader(db_url, tmp_path):
    """Before: quarantined in the CSV readers, silently "value unknown" in OCDS."""
    pkg = package()
    releases = distinct_releases(pkg, 3)
    releases[1]["tender"]["value"] = {"amount": -5, "currency": "GBP"}
    rows = csv_rows(CF_CSV)
    rows[3][rows[0].index("Value Low")] = "-5"
    files = [write_json(tmp_path / "p.json", {**pkg, "releases": releases}),
             write_csv(tmp_path / "cf.csv", rows),
             _private_file(tmp_path, "private.csv", "NEG-1", "Negative", value_min_gbp="-5")]
    report = run_ingest(db_url, *files)
    got = stored(db_url)["quarantine"]
    assert [(field, "negative amount -5" in reason) for _, field, reason in got] == [
        ("value.amount", True), ("Value Low", True), ("value_min_gbp", True)]
    assert [f.quarantined for f in report.files] == [1, 1, 1]
    assert releases[1]["ocid"] not in stored(db_url)["ocids"]


def test_ocdsmerge_duplicate_id_warnings_are_one_line_per_file(db_url, tmp_path, run):
    """Before: one warning per duplicate on stderr (828 for a 250 MB file), filling the cron log."""
    pkg = package()
    releases = distinct_releases(pkg, 5)
    for release in releases:
        item = {"id": "1", "description": "repeated"}
        release.setdefault("tender", {})["items"] = [item, dict(item, description="again")]
    path = write_json(tmp_path / "dups.json", {**pkg, "releases": releases})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = run_ingest(db_url, path)
    assert not [w for w in caught if "id" in str(w.message)]
    [line] = report.files[0].warnings
    assert "ocdsmerge merged 5 arrays holding repeated ids" in line
    result = run("ingest", str(path))  # unchanged now, so no merge runs; a fresh file shows the line
    assert "ocdsmerge" not in result.stderr
    releases[0]["tender"]["title"] = "changed"
    result = run("ingest", str(write_json(tmp_path / "dups2.json", {**pkg, "releases": releases})))
    assert result.stderr.count("ocdsmerge merged") == 1


def test_malformed_record_releases_names_the_field(db_url, tmp_path):
    record = json.loads((OPP / "cf_legacy_2017_record_ocds-b5fd17-2c330cf9.json").read_text(encoding="utf-8"))
    record["releases"] = {"not": "a list"}
    del record["compiledRelease"]
    run_ingest(db_url, write_json(tmp_path / "rec.json", record))
    [(_, field, reason)] = stored(db_url)["quarantine"]
    assert field == "releases" and "an object, not a list" in reason


def test_cli_ingest_of_a_null_releases_package_exits_4_naming_the_field(run, tmp_path):
    pkg = package()
    path = write_json(tmp_path / "null.json", {"uri": pkg["uri"], "publishedDate": pkg["publishedDate"],
                                                 "releases": None})
    result = run("ingest", str(path))
    assert result.exit_code == 4 and "field releases: releases is null" in result.stderr
