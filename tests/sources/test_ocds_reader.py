"""Streaming OCDS reader: real files, broken files, records, JSON Lines, numbers, progress, memory."""

from __future__ import annotations

import json
import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest
from testpaths import FIXTURES, OCDS_FILES, real_file

from broker.errors import InputError
from broker.normalise.record import canonical_json
from broker.sources.detect import detect_format
from broker.sources.ocds import DERIVED_ID_PREFIX, RAW_LIMIT, package_meta, read_ocds

FTS = FIXTURES / "opportunities" / "fts_uk_extension_sample.json"
CF_2022 = real_file("cf_ocds_search_2022-10-20_100releases.json")


def _items(path: Path, **kw):
    return list(read_ocds(path, detect_format(path), **kw))


def _real(name: str) -> Path:
    return real_file(name)


def _release(i: int = 1, **kw) -> dict:
    return {"ocid": "ocds-b5fd17-x", "id": f"r{i}", "date": f"2025-01-{i:02d}T00:00:00Z", "tag": ["tender"],
            "tender": {"title": f"T{i}"}, **kw}


@pytest.mark.parametrize("name", OCDS_FILES)
def test_every_real_ocds_file_reads_completely(name):
    path = _real(name)
    items = _items(path)
    assert items and all(i.kind == "release" for i in items), [i.error for i in items if i.error]
    data = json.loads(path.read_text(encoding="utf-8"))
    assert len(items) == (len(data["releases"]) if "releases" in data else 1)
    for item in items:
        assert item.release["ocid"] and item.release["id"] and item.release["date"]


def test_release_content_is_kept_exactly():
    path = _real("cf_ocds_search_2022-10-20_100releases.json")
    items = _items(path)
    data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    assert [i.release for i in items] == data["releases"]
    assert items[11].locator.startswith("release 12 (ocid=")


def test_package_meta_from_before_the_releases():
    items = _items(_real("cf_ocds_search_2022-10-20_100releases.json"))
    meta = items[0].package_meta
    assert meta["publisher"]["name"] == "Cabinet Office"
    assert meta["uri"].startswith("https://www.contractsfinder.service.gov.uk/Published/Notices/OCDS/Search")
    assert any("ocds_tender_suitability_extension" in e for e in meta["extensions"])
    assert meta["publishedDate"]
    assert set(meta) == {"publisher", "uri", "extensions", "publishedDate"}


def test_legacy_single_release_meta_comes_from_package_info():
    items = _items(_real("cf_legacy_2017_release_ocds-b5fd17-2c330cf9.json"))
    assert items[0].package_meta["uri"].startswith("https://www.contractsfinder.service.gov.uk/")


def test_numbers_stay_exact_and_1e9999_does_not_crash():
    items = _items(FTS)
    framework = next(i.release for i in items if i.release["ocid"] == "ocds-h6vhtk-04f1d9")
    assert framework["tender"]["lotDetails"]["maximumLotsBidPerSupplier"] == Decimal("1e9999")
    amounts = [i.release["tender"].get("value", {}).get("amount") for i in items]
    assert not any(isinstance(a, float) for a in amounts)
    assert "1E+9999" in canonical_json(framework)


def test_truncated_package_yields_good_releases_then_one_error(tmp_path):
    path = _real("cf_ocds_search_2022-10-20_100releases.json")
    raw = path.read_bytes()
    cut = tmp_path / "half.json"
    cut.write_bytes(raw[: len(raw) // 2])
    items = list(read_ocds(cut, "ocds_release_package"))
    good = [i for i in items if i.kind == "release"]
    errors = [i for i in items if i.kind == "error"]
    assert len(errors) == 1 and items[-1] is errors[0]
    full = json.loads(raw, parse_float=Decimal)["releases"]
    assert 30 < len(good) < 70
    assert [i.release for i in good] == full[: len(good)]
    error = errors[0].error
    assert error.file == str(cut)
    assert error.locator.startswith(f"after release {len(good)} (near byte offset ")
    assert "premature EOF" in error.reason


def test_garbage_in_the_middle(tmp_path):
    text = json.dumps({"uri": "u", "releases": [_release(1), _release(2)]})
    text = text.replace('"r2"', '"r2" !!', 1)
    path = tmp_path / "bad.json"
    path.write_text(text)
    items = list(read_ocds(path, "ocds_release_package"))
    assert [i.kind for i in items] == ["release", "error"]
    assert "after release 1" in items[1].locator


def test_release_missing_required_fields_are_error_items(tmp_path):
    bad_ocid = _release(2)
    del bad_ocid["ocid"]
    bad_date = _release(3, date="next tuesday")
    huge = _release(4, tender={"description": "x" * (RAW_LIMIT * 2)})
    del huge["date"]
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"uri": "u", "releases": [_release(1), bad_ocid, bad_date, huge, "oops", _release(5)]}))
    items = list(read_ocds(path, "ocds_release_package"))
    assert [i.kind for i in items] == ["release", "error", "error", "error", "error", "release"]
    assert items[1].error.field == "ocid" and "release 2" in items[1].locator
    assert items[2].error.field == "date" and "not a date" in items[2].error.reason
    assert items[3].error.field == "date" and len(items[3].raw) == RAW_LIMIT
    assert "not a JSON object" in items[4].error.reason
    assert json.loads(items[1].raw)["id"] == "r2"


def test_release_without_id_gets_a_stable_derived_id(tmp_path):
    release = _release(1)
    del release["id"]
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"releases": [release]}))
    first = _items(path)[0]
    second = _items(path)[0]
    assert first.kind == "release"
    assert first.release["id"].startswith(DERIVED_ID_PREFIX)
    assert first.release["id"] == second.release["id"]
    assert "id derived from content" in first.locator


def test_pcs_releases_without_ids_are_kept():
    items = _items(_real("pcs_scotland_ocds_releases_2019_part1.json"))
    ids = [i.release["id"] for i in items]
    assert len(set(ids)) == 12 and all(i.startswith(DERIVED_ID_PREFIX) for i in ids)


def test_legacy_bare_record_yields_its_full_release():
    items = _items(_real("cf_legacy_2017_record_ocds-b5fd17-2c330cf9.json"))
    assert len(items) == 1
    assert items[0].release["tag"] == ["tender"] and items[0].release["id"].endswith("ghl8ty")


def test_record_package_full_linked_and_compiled_only(tmp_path):
    linked = {"url": "https://example.org/r9.json", "date": "2025-01-09T00:00:00Z", "tag": ["tender"]}
    compiled = {**_release(7, ocid="ocds-b5fd17-c"), "tag": ["compiled"]}
    records = [
        {"ocid": "ocds-b5fd17-x", "releases": [_release(1), _release(2), linked]},
        {"ocid": "ocds-b5fd17-c", "releases": [linked], "compiledRelease": compiled},
        {"ocid": "ocds-b5fd17-l", "releases": [linked]},
        {"ocid": "ocds-b5fd17-e"},
    ]
    path = tmp_path / "rp.json"
    path.write_text(json.dumps({"uri": "u", "publisher": {"name": "P"}, "records": records}))
    items = _items(path)
    kinds = [(i.kind, (i.release or {}).get("id")) for i in items]
    assert kinds == [("release", "r1"), ("release", "r2"), ("error", None), ("release", "r7"),
                     ("error", None), ("error", None)]
    assert "not fetched" in items[2].error.reason and "r9.json" in items[2].error.reason
    assert "compiledRelease" in items[3].locator
    assert "neither releases nor a compiledRelease" in items[5].error.reason
    assert items[0].package_meta == {"uri": "u", "publisher": {"name": "P"}}


def test_jsonl_bad_line_does_not_stop_the_rest(tmp_path):
    lines = [json.dumps(_release(1)), "", '{"ocid": broken', json.dumps(_release(2)), '{"a": NaN}',
             json.dumps(_release(3))]
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(lines) + "\n")
    items = _items(path)
    assert [i.kind for i in items] == ["release", "error", "release", "error", "release"]
    assert items[1].locator == "line 3" and items[1].raw == '{"ocid": broken'
    assert items[2].locator.startswith("line 4, release 2")


def test_concatenated_pretty_json_is_read_as_a_stream(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_release(1), indent=2) + "\n" + json.dumps(_release(2), indent=2))
    assert detect_format(path) == "ocds_release_jsonl"
    assert [i.release["id"] for i in _items(path)] == ["r1", "r2"]


def test_windows_1252_copy_reads_identically(tmp_path):
    path = _real("cf_ocds_search_2022-10-20_100releases.json")
    text = path.read_text(encoding="utf-8")
    assert "£" in text and "é" in text
    copy = tmp_path / "cp1252.json"
    copy.write_bytes(text.encode("cp1252"))
    assert [i.release for i in _items(copy)] == [i.release for i in _items(path)]


def test_latin1_release(tmp_path):
    path = tmp_path / "l1.json"
    release = _release(1, tender={"title": "Café provision, budget £5,000"})
    path.write_bytes(json.dumps(release, ensure_ascii=False).encode("latin-1"))
    assert _items(path)[0].release["tender"]["title"] == "Café provision, budget £5,000"


def test_progress_reports_bytes_read(tmp_path):
    path = _real("cf_ocds_search_2022-10-20_100releases.json")
    seen: list[int] = []
    assert len(list(read_ocds(path, "ocds_release_package", seen.append))) == 100
    assert seen == sorted(seen) and seen[-1] == path.stat().st_size


def test_not_an_ocds_format():
    with pytest.raises(InputError, match="not an OCDS format"):
        next(read_ocds(CF_2022, "cf_csv"))
    with pytest.raises(InputError, match="cannot read"):
        next(read_ocds("/nonexistent/x.json", "ocds_release_package"))


def test_package_meta_stops_at_releases(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"uri": "u", "extensions": ["e"], "releases": [' + "!" * 100)
    assert package_meta(path) == {"uri": "u", "extensions": ["e"]}


def _peak_while_streaming(path: Path, releases: int) -> int:
    filler = "Community support service. " * 40
    with path.open("w") as fh:
        fh.write('{"uri": "u", "publisher": {"name": "p"}, "releases": [')
        for i in range(releases):
            fh.write(("," if i else "") + json.dumps(_release(1, id=f"r{i}", tender={"description": filler})))
        fh.write("]}")
    tracemalloc.start()
    try:
        assert sum(1 for _ in read_ocds(path, "ocds_release_package", encoding="utf-8")) == releases
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded_for_a_large_package(tmp_path):
    # 4x the releases (about 6 MB → 23 MB) must not need more memory: only I/O buffers and one release.
    small = _peak_while_streaming(tmp_path / "small.json", 5_000)
    big = _peak_while_streaming(tmp_path / "big.json", 20_000)
    assert (tmp_path / "big.json").stat().st_size > 20_000_000
    assert big < small * 1.25 + 500_000, (small, big)
    assert big < 8_000_000
