"""The directory as officers write it: clusters as the programme's papers name them, society numbers, and
optional fields that are wrong without costing the VCSE its place in matching."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from test_directory import row, write_vcses

from broker.directory.clusters import aliases, read_cluster
from broker.directory.parse import parse_company_number, parse_vcse_row
from broker.normalise import geography
from broker.store.models import Vcse


@pytest.mark.parametrize(("typed", "cluster", "note"), [
    ("St Matthews Quarter", "St Matthews Quarter", None),
    ("ward END", "Ward End", None),
    ("Walsall St Matthews", "St Matthews Quarter", "read 'Walsall St Matthews' as cluster 'St Matthews Quarter'"),
    ("Wolverhampton", "Central Wolverhampton",
     "read 'Wolverhampton' as cluster 'Central Wolverhampton' (the cluster for Wolverhampton)"),
    ("Walsall", "St Matthews Quarter", "read 'Walsall' as cluster 'St Matthews Quarter' (the cluster for Walsall)"),
    ("Witton Lodge", "Perry Barr", "read 'Witton Lodge' as cluster 'Perry Barr'"),
    ("Perry Bar", "Perry Barr", "read 'Perry Bar' as cluster 'Perry Barr'"),  # a slip of the keyboard
    ("St Mathews Quater", "St Matthews Quarter", "read 'St Mathews Quater' as cluster 'St Matthews Quarter'"),
])
def test_cluster_names_as_officers_write_them(typed, cluster, note):
    assert read_cluster(typed) == (reading := read_cluster(typed))
    assert (reading.cluster, reading.note) == (cluster, note)


def test_an_unknown_cluster_says_what_it_may_mean_and_is_derived():
    reading = read_cluster("Atlantis Quarter")
    assert reading.cluster is None
    assert reading.note.startswith("'Atlantis Quarter' is not a configured cluster (did you mean 'St Matthews Quarter'?")
    assert reading.note.endswith("derived from the authority instead")
    assert "did you mean" not in read_cluster("zzzz").note


def test_every_alias_names_a_configured_cluster():
    assert set(aliases().values()) <= set(geography.cluster_names())


@pytest.mark.parametrize(("typed", "stored"), [
    ("12345R", "12345R"), ("ip29007r", "IP29007R"), ("RS001234", "RS001234"), ("IP 012345", "IP012345"),
    ("SP002345", "SP002345"), ("NI012345", "NI012345"), ("R0001234", "R0001234"), ("1234567", "01234567"),
])
def test_society_and_company_numbers(typed, stored):
    assert parse_company_number(typed) == stored


def test_legal_form_guides_which_number_is_expected():
    rec, check = parse_vcse_row("v.csv", 2, row(legal_form="Community Benefit Society", company_number="01234567"))
    assert rec is not None and rec["company_number"] == "01234567"
    assert "a CBS is usually registered with the FCA (such as 12345R)" in str(check.warnings[0])
    rec, check = parse_vcse_row("v.csv", 2, row(legal_form="CIC", company_number="12345R"))
    assert rec is not None and "an FCA society number, but a CIC is registered at Companies House" in str(
        check.warnings[0])
    rec, check = parse_vcse_row("v.csv", 2, row(legal_form="co-operative society", company_number="12345R"))
    assert check.warnings == [] and rec["company_number"] == "12345R"


def test_an_independent_spreadsheet_goes_in_whole(run, session, tmp_path):
    rows = [
        row(id="wm-a", cluster="Walsall St Matthews", local_authority="Walsall", postcode="WS1 1AA",
            legal_form="Community Benefit Society", company_number="31285R"),
        row(id="wm-b", cluster="Wolverhampton", local_authority="Wolverhampton", postcode="WV1 1AA",
            legal_form="CIC", company_number="RS007123", charity_number="not known"),
        row(id="wm-c", cluster="Nowhere Near", employees="about ten", contact_email="office at example dot org",
            annual_turnover_gbp="1.000,50?", cpv_codes="853100", service_areas="the Black Country"),
        row(id="wm-d", cluster="perry barr", postcode="B99 ZZZ", min_contract_value_gbp="£50,000",
            max_contract_value_gbp="£5,000"),
    ]
    path = write_vcses(tmp_path / "vcses.csv", rows)
    result = run("directory", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "4 rows: 4 new, 0 updated, 0 unchanged, 0 errors" in result.stdout
    err = result.stderr
    for expected in (
            f"{path}, row 2, field cluster: read 'Walsall St Matthews' as cluster 'St Matthews Quarter'",
            f"{path}, row 3, field cluster: read 'Wolverhampton' as cluster 'Central Wolverhampton'",
            f"{path}, row 3, field charity_number: 'not known' is not a charity number",
            f"{path}, row 4, field cluster: 'Nowhere Near' is not a configured cluster",
            f"{path}, row 4, field employees:", f"{path}, row 4, field contact_email:",
            f"{path}, row 4, field annual_turnover_gbp:", f"{path}, row 4, field cpv_codes:",
            f"{path}, row 4, field service_areas:", f"{path}, row 5, field postcode:",
            f"{path}, row 5, field min_contract_value_gbp: is more than max_contract_value_gbp"):
        assert expected in err, expected
    got = {v.id: v for v in session.scalars(select(Vcse))}
    assert (got["wm-a"].cluster, got["wm-a"].cluster_derived, got["wm-a"].company_number) == (
        "St Matthews Quarter", False, "31285R")
    assert (got["wm-b"].cluster, got["wm-b"].charity_number) == ("Central Wolverhampton", None)
    assert (got["wm-c"].cluster, got["wm-c"].cluster_derived, got["wm-c"].employees) == ("Ward End", True, None)
    assert got["wm-c"].service_areas == ["Birmingham"]
    assert got["wm-d"].cluster == "Perry Barr" and got["wm-d"].postcode is None


def test_a_county_in_service_areas_is_its_districts_and_unknown_names_are_left_out():
    rec, check = parse_vcse_row("v.csv", 2, row(service_areas="Coventry;Warwickshire;Atlantis"))
    assert rec is not None and check.errors == []
    assert rec["service_areas"][0] == "Coventry" and "Warwick" in rec["service_areas"]
    assert "Atlantis" not in rec["service_areas"]
    assert "not a local authority, county, region or 'National': Atlantis; left out; kept Coventry" in str(
        check.warnings[0])
