"""One bad record never loses a file; one bad file never blocks a night (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import shutil
from datetime import date

import pytest
from poisonkit import (
    CF_CSV,
    PRIVATE_CSV,
    csv_rows,
    distinct_releases,
    package,
    run_ingest,
    stored,
    write_csv,
    write_json,
)
from testpaths import ROOT

from broker.nightly import EXIT_QUARANTINED, NightlyOptions, run_nightly
from broker.store.engine import make_engine, session_factory

YEAR_9999 = "9999-12-31T23:00:00-05:00"


def test_year_9999_release_date_quarantines_that_release_only(db_url, tmp_path):
    """Before: OverflowError escaped the reader; nothing of the file was stored or quarantined."""
    pkg = package()
    releases = distinct_releases(pkg, 5)
    releases[2]["date"] = YEAR_9999
    path = write_json(tmp_path / "p.json", {**pkg, "releases": releases})
    report = run_ingest(db_url, path)
    got = stored(db_url)
    assert got["ocids"] == {r["ocid"] for i, r in enumerate(releases) if i != 2}
    [(locator, field, reason)] = got["quarantine"]
    assert "release 3" in locator and field == "date" and "out of range" in reason
    assert report.total("new") == 4


def test_year_9999_deadline_quarantines_that_opportunity_only(db_url, tmp_path):
    pkg = package()
    releases = distinct_releases(pkg, 4)
    releases[1].setdefault("tender", {}).setdefault("tenderPeriod", {})["endDate"] = YEAR_9999
    path = write_json(tmp_path / "p.json", {**pkg, "releases": releases})
    run_ingest(db_url, path)
    got = stored(db_url)
    assert got["ocids"] == {r["ocid"] for i, r in enumerate(releases) if i != 1}
    assert len(got["release_ocids"]) == 4  # the raw release is kept; only its compiled record is refused
    [(locator, _, reason)] = got["quarantine"]
    assert releases[1]["ocid"] in locator and "out of range" in reason


def test_year_9999_in_the_contracts_finder_csv_quarantines_that_row_only(db_url, tmp_path):
    rows = csv_rows(CF_CSV)
    column = rows[0].index("Closing Date")
    rows[3][column] = "31/12/9999"
    rows[3][rows[0].index("Closing Time")] = ""  # end of the day: one second before year 10000
    report = run_ingest(db_url, write_csv(tmp_path / "cf.csv", rows))
    [(locator, field, reason)] = stored(db_url)["quarantine"]
    assert locator.startswith("row 4 ") and field == "Closing Date" and "out of range" in reason
    assert report.total("new") == len(rows) - 2


def test_year_9999_in_a_private_csv_quarantines_that_row_only(db_url, tmp_path):
    rows = csv_rows(PRIVATE_CSV)
    rows[2][rows[0].index("deadline")] = "31/12/9999"
    report = run_ingest(db_url, write_csv(tmp_path / "private.csv", rows))
    [(locator, field, reason)] = stored(db_url)["quarantine"]
    assert locator.startswith("row 3 ") and field == "deadline" and "out of range" in reason
    assert report.total("new") == len(rows) - 2


def _options(inbox, tmp_path) -> NightlyOptions:
    return NightlyOptions(as_of=date(2025, 3, 1), inbox=inbox, outbox=tmp_path / "outbox", rules_dir=ROOT / "rules")


def test_a_file_that_fails_whole_is_moved_aside_and_the_night_goes_on(db_url, tmp_path, monkeypatch):
    """Before: an exception in one file stopped the nightly, and the file stayed in the inbox for ever."""
    import broker.ingest as ingest_module

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    pkg = package()
    good = distinct_releases(pkg, 3)
    write_json(inbox / "a_null_releases.json", {**pkg, "releases": None})
    write_json(inbox / "b_crashes.json", {**pkg, "releases": distinct_releases(pkg, 4)[3:]})
    write_json(inbox / "c_good.json", {**pkg, "releases": good})
    real = ingest_module.ingest_items

    def crash_on_b(sessions, items, *, path, **kw):
        if path.endswith("b_crashes.json"):
            raise RuntimeError("disk on fire")
        return real(sessions, items, path=path, **kw)

    monkeypatch.setattr(ingest_module, "ingest_items", crash_on_b)
    engine = make_engine(db_url)
    try:
        summary = run_nightly(engine, session_factory(engine), _options(inbox, tmp_path))
    finally:
        engine.dispose()
    assert summary.exit_code == EXIT_QUARANTINED == 4
    assert summary.failed_files == 2 and summary.archived == 1
    assert (inbox / "archive" / "c_good.json").exists()
    for name, words in (("a_null_releases.json", "releases is null"), ("b_crashes.json", "disk on fire")):
        assert (inbox / "quarantine" / name).exists()
        assert words in (inbox / "quarantine" / f"{name}.reason.txt").read_text(encoding="utf-8")
    assert stored(db_url)["ocids"] == {r["ocid"] for r in good}


@pytest.mark.parametrize("body, words", [
    ({"releases": {"ocid": "x"}}, "releases is an object"),
    ({"releases": None}, "releases is null"),
    ({"records": "none"}, "records is a string"),
])
def test_a_malformed_package_is_an_error_naming_the_field(db_url, tmp_path, body, words):
    """Before: 0 items and exit 0."""
    pkg = package()
    path = write_json(tmp_path / "bad.json", {"uri": pkg["uri"], "publishedDate": pkg["publishedDate"], **body})
    report = run_ingest(db_url, path)
    [(_, field, reason)] = stored(db_url)["quarantine"]
    assert field == next(iter(body)) and words in reason
    assert report.files[0].failed and report.total("quarantined") == 1


def test_the_shipped_fixtures_are_untouched_by_the_nightly_file_rules(db_url, tmp_path):
    """A folder of good real files: nothing moved to quarantine/, exit 0 from the ingest side."""
    inbox = tmp_path / "inbox"
    shutil.copytree(ROOT / "fixtures" / "opportunities", inbox, ignore=shutil.ignore_patterns("*.md"))
    engine = make_engine(db_url)
    try:
        summary = run_nightly(engine, session_factory(engine), _options(inbox, tmp_path))
    finally:
        engine.dispose()
    assert summary.failed_files == 0 and summary.quarantined == 0, summary.problems[:3]
    assert not (inbox / "quarantine").exists()


def test_a_record_the_database_refuses_is_quarantined_alone(db_url, tmp_path, monkeypatch):
    """Before: one refused row rolled back its whole chunk and stopped the file."""
    import sqlalchemy.exc

    import broker.ingest as ingest_module

    pkg = package()
    releases = distinct_releases(pkg, 4)
    victim = releases[2]["ocid"]
    real = ingest_module._upsert

    def refuse(batch, record):
        if record.ocid == victim:
            raise sqlalchemy.exc.DataError("INSERT ...", {}, Exception("value too long for type"))
        return real(batch, record)

    monkeypatch.setattr(ingest_module, "_upsert", refuse)
    report = run_ingest(db_url, write_json(tmp_path / "p.json", {**pkg, "releases": releases}))
    got = stored(db_url)
    assert got["ocids"] == {r["ocid"] for r in releases} - {victim}
    [(locator, _, reason)] = got["quarantine"]
    assert victim in locator and "the database refused it (DataError" in reason
    assert report.files[0].failed is None and report.total("new") == 3 and report.total("quarantined") == 1


def test_a_jsonl_release_with_an_unpaired_surrogate_is_quarantined_alone(db_url, tmp_path):
    """Before: UnicodeEncodeError when storing it stopped the file (on both databases)."""
    releases = distinct_releases(package(), 3)
    releases[0]["tender"]["title"] = "bad \ud800 title"
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=True) for r in releases) + "\n", encoding="utf-8")
    report = run_ingest(db_url, path)
    got = stored(db_url)
    assert got["ocids"] == {r["ocid"] for r in releases[1:]}
    [(locator, _, reason)] = got["quarantine"]
    assert locator.startswith("line 1") and "unpaired surrogate" in reason
    assert report.files[0].failed is None
