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


# ---- The second set (fixtures/labelled_2): other sources, new profiles, every pair graded. ----

LABELLED_2 = LABELLED.parent / "labelled_2"
SET2_FILES = {  # notice files the set uses, as committed in fixtures/opportunities (see PROVENANCE.md)
    "cf_ocds_search_2022-10-20_100releases.json": "965d25b2ca229492e84200ae14e01129feee793cc6c512a22259ea1e933424d6",
    "cf_ocds_releases_2025_part1.json": "62cb5069f804b1388b94991832e6b3d348ecb98eefaa305ce35b8117d975ad98",
    "pcs_scotland_ocds_releases_2019_part1.json": "7fa1329b41aefa2769ef799a4c2ae5a15c775ff4e76639144067d58fed38c591",
    "sell2wales_ocds_releases_2025_part1.json": "9be8879ee398ab7b86e811a6c3d0a271230d2a1e5d48af29af42c123ab4b17aa",
}
SET2_GRADES_COLUMNS = ["profile_id", "opportunity_id", "title", "grade", "methods", "note"]
POOL_METHODS = {"matcher", "keyword_alert", "bm25", "cpv", "random", "reading"}


def _read2(name: str) -> tuple[list[str], list[dict[str, str]]]:
    with (LABELLED_2 / name).open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


@pytest.fixture(scope="module")
def set2_live_notices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """{opportunity id: title} of every live notice the set's files give, read with the normal ingest."""
    from broker.evaluation.labelled import live_notices, scratch_store
    from broker.evaluation.sets import load_set
    from broker.ingest import ingest

    labelled = load_set(LABELLED_2)
    live: dict[str, str] = {}
    # each notice group as of its own business date, as `broker eval` runs it
    for group in labelled.notice_groups():
        with scratch_store(tmp_path_factory.mktemp("set2")) as sessions:
            report = ingest(sessions, [str(p) for p in group.files])
            assert sum(f.quarantined for f in report.files) == 0
            with sessions() as session:
                notices = {n.id: n.title for n in live_notices(session, group.as_of)}
        assert not set(notices) & set(live), "a notice is live in two groups"
        live.update(notices)
    return live


def test_set2_notice_files_are_the_committed_real_copies() -> None:
    for name, sha in SET2_FILES.items():
        assert hashlib.sha256((LABELLED.parent / "opportunities" / name).read_bytes()).hexdigest() == sha, name


def test_set2_profiles_follow_the_vcses_contract() -> None:
    header, rows = _read2("profiles.csv")
    assert header == VCSES_COLUMNS
    assert len(rows) >= 20
    forms = Counter(r["legal_form"] for r in rows)
    # a realistic mix: charities, CICs, co-operatives and community benefit societies
    assert {"Charity", "CIC", "Co-operative", "Community benefit society"} <= set(forms)
    for r in rows:
        assert re.fullmatch(r"M\d{2}", r["id"]), r["id"]
        assert r["capabilities"].strip() and r["local_authority"].strip()
        assert r["contact_email"].endswith(".example.org")
        for code in filter(None, r["cpv_codes"].split(";")):
            assert re.fullmatch(r"\d{8}(-\d)?", code), (r["id"], code)
    assert sum(1 for r in rows if not r["cpv_codes"]) > len(rows) / 2  # most leave CPV blank


def test_set2_profiles_import_without_errors(tmp_path: Path) -> None:
    from broker.directory import import_directory
    from broker.evaluation.labelled import scratch_store

    with scratch_store(tmp_path) as sessions, sessions.begin() as session:
        report = import_directory(session, LABELLED_2 / "profiles.csv")
    assert report.errors == []


def test_set2_every_profile_has_a_split_assigned_by_alternation() -> None:
    _, profiles = _read2("profiles.csv")
    header, rows = _read2("splits.csv")
    assert header == ["profile_id", "split"]
    ids = [r["id"] for r in profiles]
    assert [r["profile_id"] for r in rows] == ids
    assert [r["split"] for r in rows] == ["tune" if i % 2 == 0 else "test" for i in range(len(ids))]


def test_set2_grades_cover_every_pair_of_profile_and_live_notice(set2_live_notices: dict[str, str]) -> None:
    header, rows = _read2("grades.csv")
    assert header == SET2_GRADES_COLUMNS
    _, profiles = _read2("profiles.csv")
    pairs = Counter((r["profile_id"], r["opportunity_id"]) for r in rows)
    assert [p for p, n in pairs.items() if n > 1] == []
    assert set(pairs) == {(p["id"], oid) for p in profiles for oid in set2_live_notices}
    for r in rows:
        assert r["title"] == set2_live_notices[r["opportunity_id"]]
        assert r["grade"] in {"0", "1", "2"}
        assert set(r["methods"].split(";")) <= POOL_METHODS, r
        if r["grade"] != "0":
            assert r["note"].strip(), r  # every non-zero grade says why


def test_set2_has_relevant_pairs_in_both_splits() -> None:
    _, rows = _read2("grades.csv")
    split = {r["profile_id"]: r["split"] for r in _read2("splits.csv")[1]}
    relevant = Counter(split[r["profile_id"]] for r in rows if r["grade"] != "0")
    profiles_with = Counter(split[p] for p in {r["profile_id"] for r in rows if r["grade"] != "0"})
    # small (the files hold 136 live notices, few in the West Midlands); the README says so
    assert relevant["tune"] >= 8 and relevant["test"] >= 8, relevant
    assert profiles_with["tune"] >= 5 and profiles_with["test"] >= 5, profiles_with
