"""Compiling releases per ocid with ocdsmerge and the vendored, patched schema (no network)."""

from __future__ import annotations

import collections
import json
import random
import warnings
from decimal import Decimal

import pytest
from testpaths import real_file

from broker.errors import InputError
from broker.normalise.compile import (
    COMPILED_FROM,
    compile_releases,
    decimals_to_json,
    merge_patch,
    notice_types,
    release_schema,
)
from broker.normalise.record import canonical_hash
from broker.sources.ocds import read_ocds


def _release(rid: str, date: str, **kw) -> dict:
    return {"ocid": "ocds-h6vhtk-000001", "id": rid, "date": date, "tag": ["tender"], **kw}


def _by_ocid(name: str) -> dict[str, list[dict]]:
    path = real_file(name)
    groups: dict[str, list[dict]] = collections.defaultdict(list)
    for item in read_ocds(path, "ocds_release_package"):
        groups[item.release["ocid"]].append(item.release)
    return groups


def test_merge_patch_follows_rfc_7396():
    assert merge_patch({"a": "b", "c": {"d": "e", "f": "g"}}, {"a": "z", "c": {"f": None}}) == \
        {"a": "z", "c": {"d": "e"}}
    assert merge_patch({"a": [1]}, {"a": [2, 3]}) == {"a": [2, 3]}
    assert merge_patch("x", {"a": 1}) == {"a": 1}


def test_schema_has_the_uk_extensions():
    schema = release_schema()
    defs = schema["definitions"]
    assert set(defs["Suitability"]["properties"]) >= {"sme", "vcse"}
    assert "suitability" in defs["Tender"]["properties"]
    assert "noticeType" in defs["Document"]["properties"]
    assert "vcse" in defs["Organization"]["properties"]["details"]["properties"]
    assert "expressionOfInterestDeadline" in defs["Tender"]["properties"]
    assert release_schema() is schema  # built once


@pytest.mark.parametrize("name", ["cf_ocds_search_2022-10-20_100releases.json", "cf_ocds_releases_2025_part1.json",
                                  "sell2wales_ocds_releases_2025_part1.json", "pcs_scotland_ocds_releases_2019_part1.json"])
def test_every_ocid_of_the_real_files_compiles(name):
    groups = _by_ocid(name)
    for ocid, releases in groups.items():
        compiled = compile_releases(releases, warnings_out=[])
        assert compiled["ocid"] == ocid and compiled["tag"] == ["compiled"]
        history = compiled[COMPILED_FROM]
        assert sorted(r["id"] for r in history) == sorted(r["id"] for r in releases)
        assert compiled["date"] == history[-1]["date"]


def test_sandwell_amendments_merge_in_date_order():
    releases = _by_ocid("cf_ocds_search_2022-10-20_100releases.json")["ocds-b5fd17-215e2699-242c-4047-b254-b525a4f7887f"]
    compiled = compile_releases(releases)
    assert [r["id"] for r in compiled[COMPILED_FROM]] == [
        "07e9844f-6d88-43d3-ae74-b59472de03cb-582273", "07e9844f-6d88-43d3-ae74-b59472de03cb-582274"]
    assert compiled["date"] == "2022-10-19T16:41:16+01:00"


def test_order_is_by_instant_not_text_and_arrival_does_not_matter():
    # 10:30+01:00 is 09:30Z, before 10:00Z, though its text sorts after.
    early = _release("b", "2025-06-01T10:30:00+01:00", tender={"title": "early", "status": "active"})
    late = _release("a", "2025-06-01T10:00:00Z", tender={"title": "late"})
    same_time = _release("c", "2025-06-01T10:00:00Z", tender={"description": "tie broken by id"})
    results = []
    for _ in range(5):
        shuffled = [early, late, same_time]
        random.shuffle(shuffled)
        results.append(compile_releases(shuffled))
    assert all(r == results[0] for r in results)
    compiled = results[0]
    assert compiled["tender"] == {"title": "late", "status": "active", "description": "tie broken by id"}
    assert [r["id"] for r in compiled[COMPILED_FROM]] == ["b", "a", "c"]


def test_zone_less_dates_are_uk_local():
    summer = _release("x", "2025-06-01T10:30:00", tender={"title": "local 09:30Z"})
    utc = _release("y", "2025-06-01T09:45:00Z", tender={"title": "utc 09:45Z"})
    assert compile_releases([utc, summer])["tender"]["title"] == "utc 09:45Z"


def test_duplicate_ids_are_collected_not_raised():
    release = _release("r", "2025-01-01T00:00:00Z", awards=[{"id": "1", "title": "a"}, {"id": "1", "title": "b"}])
    collected: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = compile_releases([release], warnings_out=collected)
    assert len(collected) == 1 and "awards" in collected[0]
    assert len(compiled["awards"]) == 1


def test_numbers_survive_merging():
    release = _release("r", "2025-01-01T00:00:00Z",
                       tender={"value": {"amount": Decimal("48000.50")},
                               "lotDetails": {"maximumLotsBidPerSupplier": Decimal("1e9999")}})
    compiled = compile_releases([release])
    assert compiled["tender"]["value"]["amount"] == Decimal("48000.50")
    assert compiled["tender"]["lotDetails"]["maximumLotsBidPerSupplier"] == Decimal("1e9999")
    canonical_hash(compiled)  # hashable despite 1e9999
    as_json = decimals_to_json(compiled)
    assert as_json["tender"]["value"]["amount"] == 48000.5
    assert as_json["tender"]["lotDetails"]["maximumLotsBidPerSupplier"] == "1E+9999"
    json.dumps(as_json)


def test_bad_inputs_are_input_errors():
    with pytest.raises(InputError, match="no releases"):
        compile_releases([])
    with pytest.raises(InputError, match="different ocids"):
        compile_releases([_release("a", "2025-01-01T00:00:00Z"), {**_release("b", "2025-01-02T00:00:00Z"), "ocid": "o2"}])
    first = _release("a", "2025-01-01T00:00:00Z", tender={"title": "x"})
    # A field that is text in one release and an object in a later one cannot be merged.
    second = _release("b", "2025-01-02T00:00:00Z", tender={"title": {"en": "x"}})
    with pytest.raises(InputError, match="cannot be merged") as info:
        compile_releases([second, first])
    assert info.value.locator == "ocid ocds-h6vhtk-000001"


def test_notice_types_found_in_all_document_lists():
    release = {"planning": {"documents": [{"noticeType": "UK1"}]},
               "tender": {"documents": [{"noticeType": "UK4"}, {"noticeType": "UK4"}, {"noticeType": 4}]},
               "awards": [{"documents": [{"noticeType": " UK6 "}]}], "contracts": "junk"}
    assert notice_types(release) == ["UK1", "UK4", "UK6"]
