"""Format detection by content: every real file, each OCDS container, CSV headers, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testpaths import FIXTURES, real_file

from broker.errors import InputError
from broker.sources.detect import FORMATS, PRIVATE_KEYS, detect_format

REAL = {
    "cf_ocds_search_2022-10-20_100releases.json": "ocds_release_package",
    "cf_ocds_releases_2025_part1.json": "ocds_release_package",
    "cf_ocds_search_2025-01-23_page.json": "ocds_release_package",
    "pcs_scotland_ocds_releases_2019_part1.json": "ocds_release_package",
    "sell2wales_ocds_releases_2025_part1.json": "ocds_release_package",
    # A bare record: releases + compiledRelease + versionedRelease, no package (ocdskit calls it a package).
    "cf_legacy_2017_record_ocds-b5fd17-2c330cf9.json": "ocds_record",
    "cf_legacy_2017_release_ocds-b5fd17-2c330cf9.json": "ocds_release",
    "cf_search_export_2020-04-16_1000_open_notices.csv": "cf_csv",
    "cf_search_export_2021-08-28_header_only.csv": "cf_csv",
}

RELEASE = {"ocid": "ocds-b5fd17-1", "id": "r1", "date": "2025-01-01T00:00:00Z", "tag": ["tender"],
           "tender": {"title": "A"}}


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_files(name):
    assert detect_format(real_file(name)) == REAL[name]


def test_fts_fixture_is_a_release_package():
    assert detect_format(FIXTURES / "opportunities" / "fts_uk_extension_sample.json") == "ocds_release_package"


def test_jsonl_of_releases_and_single_release(tmp_path):
    lines = "\n".join(json.dumps({**RELEASE, "id": f"r{i}"}) for i in range(3)) + "\n"
    assert detect_format(_write(tmp_path, "x.jsonl", lines)) == "ocds_release_jsonl"
    assert detect_format(_write(tmp_path, "one.json", json.dumps(RELEASE, indent=2))) == "ocds_release"
    # A single-line file holding one release is one release, whatever its extension.
    assert detect_format(_write(tmp_path, "one.jsonl", json.dumps(RELEASE) + "\n")) == "ocds_release"
    # A broken second line still makes it JSON Lines (the reader reports that line).
    broken = json.dumps(RELEASE) + "\n{not json\n"
    assert detect_format(_write(tmp_path, "b.jsonl", broken)) == "ocds_release_jsonl"


def test_record_package_and_bare_records(tmp_path):
    package = {"uri": "u", "publisher": {"name": "p"}, "records": [{"ocid": "o", "releases": [RELEASE]}]}
    assert detect_format(_write(tmp_path, "rp.json", json.dumps(package))) == "ocds_record_package"
    # Keys in any order: the data may come before the identifying keys.
    record = {"releases": [RELEASE], "ocid": "ocds-b5fd17-1"}
    assert detect_format(_write(tmp_path, "r.json", json.dumps(record))) == "ocds_record"
    late_meta = {"releases": [RELEASE], "uri": "u", "publisher": {"name": "p"}}
    assert detect_format(_write(tmp_path, "p.json", json.dumps(late_meta))) == "ocds_release_package"


def test_detection_by_content_not_extension(tmp_path):
    package = {"uri": "u", "releases": [RELEASE]}
    assert detect_format(_write(tmp_path, "misnamed.csv", json.dumps(package))) == "ocds_release_package"


def test_detection_stops_early(tmp_path):
    # Package metadata first, then a body that is not even JSON: decided before reading it.
    text = '{"uri": "u", "version": "1.1", "releases": [' + "@" * 10_000
    assert detect_format(_write(tmp_path, "big.json", text)) == "ocds_release_package"


def test_csv_formats(tmp_path):
    # Excel's BOM and a Windows-1252 copy are the same CSV.
    raw = real_file("cf_search_export_2021-08-28_header_only.csv").read_bytes()
    assert detect_format(_write(tmp_path, "bom.csv", b"\xef\xbb\xbf" + raw)) == "cf_csv"
    assert detect_format(_write(tmp_path, "cp.csv", raw.decode("utf-8").encode("cp1252"))) == "cf_csv"
    private = ",".join(PRIVATE_KEYS) + "\np1,Trust,nhs,Title,,,,,,,,,,,\n"
    assert detect_format(_write(tmp_path, "private.txt", private)) == "private_csv"


def test_private_json_formats(tmp_path):
    row = {k: "" for k in PRIVATE_KEYS} | {"id": "p1", "buyer": "Trust", "title": "Catering"}
    assert detect_format(_write(tmp_path, "p.json", json.dumps([row, row]))) == "private_json"
    assert detect_format(_write(tmp_path, "p.jsonl", json.dumps(row) + "\n" + json.dumps(row))) == "private_jsonl"


@pytest.mark.parametrize(("content", "expected"), [
    ("", "empty"),
    ("   \n", "empty"),
    ('{"name": "x", "rows": []}', "top-level keys name, rows"),
    ("a,b,c\n1,2,3\n", "columns a, b, c"),
    ('[{"ocid": "o", "id": "1"}]', "wrap them in a release package"),
    ('[{"x": 1}]', "first item has keys x"),
    ('{"uri": "u", "relea', "cannot be parsed"),
    (b"%PDF-1.4\x00\x01", "binary"),
])
def test_unknown_formats_say_what_was_found(tmp_path, content, expected):
    path = _write(tmp_path, "bad.dat", content)
    with pytest.raises(InputError) as info:
        detect_format(path)
    assert "unknown format" in str(info.value)
    assert expected in str(info.value)
    assert info.value.file == str(path)


def test_unreadable_path(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        detect_format(tmp_path / "missing.json")
    with pytest.raises(InputError, match="cannot read"):
        detect_format(tmp_path)


def test_formats_are_the_documented_set():
    assert set(FORMATS) == {"ocds_release_package", "ocds_record_package", "ocds_release_jsonl", "ocds_release",
                            "ocds_record", "cf_csv", "private_csv", "private_json", "private_jsonl"}
