"""Well-formedness of the labelled matching set in fixtures/labelled (see its README.md).

These checks guard the set the evaluation relies on: profiles in the BRIEF `vcses.csv` format, grades that
point at real notices of the copied Contracts Finder export, and tune/test splits big enough to report on.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from pathlib import Path

import pytest

LABELLED = Path(__file__).resolve().parent.parent / "fixtures" / "labelled"

# The contract from BRIEF.md ("Input formats the officers use"), in order.
VCSES_COLUMNS = (
    "id,name,legal_form,charity_number,company_number,cluster,local_authority,postcode,service_areas,"
    "capabilities,keywords,exclude_keywords,cpv_codes,annual_turnover_gbp,employees,min_contract_value_gbp,"
    "max_contract_value_gbp,certifications,contact_email,digest_opt_in"
).split(",")
GRADES_COLUMNS = ["profile_id", "buyer", "notice_identifier", "title", "grade", "note"]
EXPORT_SHA256 = "338c3b3d176e65c5df3e8d755dde77600be758ee7cde79377b537163843238db"


def _read(name: str) -> tuple[list[str], list[dict[str, str]]]:
    with (LABELLED / name).open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


@pytest.fixture(scope="module")
def notices() -> dict[tuple[str, str], dict[str, str]]:
    _, rows = _read("cf_export_2020-04-16.csv")
    keyed = {(r["Organisation Name"], r["Notice Identifier"]): r for r in rows}
    # A notice is the pair (buyer, identifier); the README records that the pair is unique in this export.
    assert len(keyed) == len(rows) == 1000
    return keyed


@pytest.fixture(scope="module")
def profiles() -> dict[str, dict[str, str]]:
    header, rows = _read("profiles.csv")
    assert header == VCSES_COLUMNS
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    return {r["id"]: r for r in rows}


@pytest.fixture(scope="module")
def grades() -> list[dict[str, str]]:
    header, rows = _read("grades.csv")
    assert header == GRADES_COLUMNS
    return rows


def test_export_is_the_unchanged_copy() -> None:
    digest = hashlib.sha256((LABELLED / "cf_export_2020-04-16.csv").read_bytes()).hexdigest()
    assert digest == EXPORT_SHA256


@pytest.mark.parametrize("name", ["profiles.csv", "profiles_no_relevant.csv"])
def test_profiles_follow_the_vcses_contract(name: str) -> None:
    header, rows = _read(name)
    assert header == VCSES_COLUMNS
    assert rows
    for r in rows:
        assert re.fullmatch(r"L\d{2}", r["id"]), r["id"]
        for field in ("name", "capabilities", "local_authority"):
            assert r[field].strip(), (r["id"], field)
        assert r["digest_opt_in"] in {"yes", "no"}
        assert 20 <= len(r["capabilities"].split()) <= 60, r["id"]
        # Fictional organisations only: contact addresses live under example.org.
        assert r["contact_email"].endswith(".example.org") or r["contact_email"].endswith("@example.org")
        for code in filter(None, r["cpv_codes"].split(";")):
            assert re.fullmatch(r"\d{8}(-\d)?", code), (r["id"], code)


def test_every_grade_names_a_profile_and_a_real_notice(
    grades: list[dict[str, str]],
    profiles: dict[str, dict[str, str]],
    notices: dict[tuple[str, str], dict[str, str]],
) -> None:
    for g in grades:
        assert g["profile_id"] in profiles, g
        notice = notices.get((g["buyer"], g["notice_identifier"]))
        assert notice is not None, g
        assert g["title"] == notice["Title"]
        assert g["grade"] in {"0", "1", "2"}, g


def test_no_duplicate_pairs(grades: list[dict[str, str]]) -> None:
    pairs = Counter((g["profile_id"], g["buyer"], g["notice_identifier"]) for g in grades)
    assert [p for p, n in pairs.items() if n > 1] == []


def test_every_profile_has_something_relevant(
    grades: list[dict[str, str]], profiles: dict[str, dict[str, str]]
) -> None:
    relevant = {g["profile_id"] for g in grades if g["grade"] in {"1", "2"}}
    assert set(profiles) <= relevant


def test_splits_cover_profiles_and_are_big_enough(profiles: dict[str, dict[str, str]]) -> None:
    header, rows = _read("splits.csv")
    assert header == ["profile_id", "split"]
    split = {r["profile_id"]: r["split"] for r in rows}
    assert len(split) == len(rows)
    assert set(split.values()) <= {"tune", "test"}
    assert set(profiles) <= set(split)
    counts = Counter(split[p] for p in profiles)
    assert counts["tune"] >= 15 and counts["test"] >= 15, counts


def test_no_relevant_profiles_are_kept_apart(
    profiles: dict[str, dict[str, str]], notices: dict[tuple[str, str], dict[str, str]]
) -> None:
    _, extra = _read("profiles_no_relevant.csv")
    header, rows = _read("grades_no_relevant.csv")
    assert header == GRADES_COLUMNS
    extra_ids = {r["id"] for r in extra}
    assert not extra_ids & set(profiles)
    for g in rows:
        assert g["profile_id"] in extra_ids
        assert (g["buyer"], g["notice_identifier"]) in notices
        assert g["grade"] == "0"
