"""Geography: reference tables, authority names, postcodes, clusters and location resolution."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given
from hypothesis import strategies as st
from testpaths import real_file

from broker.errors import ConfigError
from broker.normalise import geography as geo
from broker.normalise.geography import (
    Location,
    canonical_local_authority,
    cluster_for,
    resolve_location,
)

WMCA = ("Birmingham", "Coventry", "Dudley", "Sandwell", "Solihull", "Walsall", "Wolverhampton")


@pytest.mark.parametrize(("text", "expected"), [
    ("Birmingham", "Birmingham"),
    ("birmingham", "Birmingham"),
    ("  BIRMINGHAM CITY COUNCIL ", "Birmingham"),
    ("Sandwell Metropolitan Borough Council", "Sandwell"),
    ("Sandwell MBC", "Sandwell"),
    ("City of Wolverhampton Council", "Wolverhampton"),
    ("Wolverhampton City Council", "Wolverhampton"),
    ("Dudley Metropolitan Borough Council", "Dudley"),
    ("Walsall Council", "Walsall"),
    ("Solihull", "Solihull"),
    ("Coventry City Council", "Coventry"),
    ("E08000025", "Birmingham"),
    ("GB-LAE-SAW", "Sandwell"),
    ("Telford & Wrekin Council", "Telford and Wrekin"),
    ("Herefordshire, County of", "Herefordshire"),
    ("Stoke-on-Trent City Council", "Stoke-on-Trent"),
    ("London Borough of Barnet Council", "Barnet"),
    ("REDCAR & CLEVELAND BOROUGH COUNCIL", "Redcar and Cleveland"),
    ("Borough Council of King's Lynn & West Norfolk", "King's Lynn and West Norfolk"),
    ("Aylesbury Vale District Council", "Buckinghamshire"),  # abolished district -> successor
    ("E08000016", "Barnsley"),  # former LAD code
    ("The Highland Council", "Highland"),
    ("City of Cardiff Council", "Cardiff"),
    ("Birmingham City Council - Adult Social Care", "Birmingham"),
    ("West Midlands", None),  # a region, never an authority
    ("West Midlands Combined Authority", None),
    ("Staffordshire County Council", None),  # upper tier, not a district
    ("Birmingham City University", None),
    ("Henley Town Council", None),
    ("", None),
    (None, None),
])
def test_canonical_local_authority(text, expected):
    assert canonical_local_authority(text) == expected


@pytest.mark.parametrize(("text", "full", "district", "area"), [
    ("b4 7wb", "B4 7WB", "B4", "B"),
    ("B152TT", "B15 2TT", "B15", "B"),
    ("  dy1   1hf ", "DY1 1HF", "DY1", "DY"),
    ("WV10 6QP", "WV10 6QP", "WV10", "WV"),
    ("SW1A 2AH", "SW1A 2AH", "SW1A", "SW"),
    ("B42", None, "B42", "B"),
    ("not a postcode", None, None, None),
    ("", None, None, None),
])
def test_postcode_parts(text, full, district, area):
    assert geo.normalise_postcode(text) == full
    assert geo.postcode_district(text) == district
    assert geo.postcode_area(text) == area


@pytest.mark.parametrize(("postcode", "authority"), [
    ("B4 7WB", "Birmingham"), ("B69 9EN", "Sandwell"), ("B91 3QJ", "Solihull"), ("B37 7AA", "Solihull"),
    ("CV1 2GN", "Coventry"), ("CV34 5BW", "Warwick"), ("DY1 1HF", "Dudley"), ("DY4 7AA", "Sandwell"),
    ("WS1 1TP", "Walsall"), ("WV1 1SH", "Wolverhampton"), ("WV12 4AA", "Walsall"), ("B98 7HA", "Redditch"),
    ("B62 8AA", "Dudley"), ("SY2 6ND", "Shropshire"), ("WR2 6AJ", "Worcester"),
    ("SW1A 2AH", None), ("AB24 3FX", None), ("nonsense", None),
])
def test_local_authority_for_postcode(postcode, authority):
    assert geo.local_authority_for_postcode(postcode) == authority


@pytest.mark.parametrize(("authority", "postcode", "cluster"), [
    ("Birmingham", "B8 1AA", "Ward End"),
    ("Birmingham City Council", "b23 5tl", "Perry Barr"),
    ("Birmingham", "B15 2TT", "Birmingham"),
    ("Birmingham", None, "Birmingham"),
    (None, "B8 2AB", "Ward End"),
    (None, "B44 9AA", "Perry Barr"),
    ("Sandwell", "B42 1AA", "Sandwell"),  # B42 is Perry Barr's district, but this organisation is in Sandwell
    ("Walsall", "WS3 1AA", "St Matthews Quarter"),
    ("Walsall", "WS1 1TP", "St Matthews Quarter"),
    ("Wolverhampton", "WV10 6QP", "Central Wolverhampton"),
    ("Dudley", None, "Dudley"),
    ("Solihull", "B91 3QJ", "Solihull"),
    ("Coventry", None, "Coventry"),
    ("Stafford", "ST16 2AA", None),  # West Midlands region, but no cluster
    ("Leeds", None, None),
    (None, None, None),
    ("not a place", "not a postcode", None),
])
def test_cluster_for(authority, postcode, cluster):
    assert cluster_for(authority, postcode) == cluster


def _loc(**kw):
    return Location(**kw)


BHAM = dict(local_authority="Birmingham", lad_code="E08000025", itl_code="TLG31", region="West Midlands",
            regions=("West Midlands",))


@pytest.mark.parametrize(("kwargs", "expected"), [
    (dict(postcodes=["b4 7wb"]), _loc(**BHAM, cluster="Birmingham", postcode="B4 7WB")),
    (dict(postcodes=["B8 1AA"]), _loc(**BHAM, cluster="Ward End", postcode="B8 1AA")),
    (dict(postcodes=["DY1 1HF"]), _loc(local_authority="Dudley", lad_code="E08000027", itl_code="TLG36",
                                       region="West Midlands", cluster="Dudley", postcode="DY1 1HF",
                                       regions=("West Midlands",))),
    (dict(nuts_codes=["UKG31"]), _loc(**BHAM, cluster="Birmingham")),
    (dict(nuts_codes=["tlg31"]), _loc(**BHAM, cluster="Birmingham")),
    (dict(nuts_codes=["UKG12"]), _loc(itl_code="TLG12", region="West Midlands", regions=("West Midlands",))),
    (dict(nuts_codes=["UKG3"]), _loc(itl_code="TLG3", region="West Midlands", regions=("West Midlands",))),
    (dict(nuts_codes=["UKG"]), _loc(itl_code="TLG", region="West Midlands", regions=("West Midlands",))),
    (dict(nuts_codes=["UKM82"]), _loc(itl_code="TLM82", region="Scotland", regions=("Scotland",))),
    (dict(nuts_codes=["UKL18", "UKL22"]), _loc(itl_code="TLL", region="Wales", regions=("Wales",))),
    (dict(nuts_codes=["UK"]), _loc(nationwide=True)),
    (dict(nuts_codes=["UKM50", "UKL11"]), _loc(regions=("Scotland", "Wales"))),
    (dict(region_names=["West Midlands"]), _loc(itl_code="TLG", region="West Midlands",
                                                 regions=("West Midlands",))),
    (dict(region_names=["Yorkshire and the Humber"]), _loc(itl_code="TLE", region="Yorkshire and The Humber",
                                                           regions=("Yorkshire and The Humber",))),
    (dict(region_names=["London", "South East"]), _loc(regions=("London", "South East"))),
    (dict(region_names=["London,South East"]), _loc(regions=("London", "South East"))),
    (dict(region_names=["Any region"]), _loc(nationwide=True)),
    (dict(region_names=["England"]), _loc(nationwide=True)),
    (dict(region_names=["United Kingdom"]), _loc(nationwide=True)),
    (dict(region_names=["West Midlands"], postcodes=["B69 9EN"]),
     _loc(local_authority="Sandwell", lad_code="E08000028", itl_code="TLG37", region="West Midlands",
          cluster="Sandwell", postcode="B69 9EN", regions=("West Midlands",))),
    # A Birmingham buyer postcode does not override a delivery region elsewhere.
    (dict(region_names=["London"], postcodes=["B4 7WB"]),
     _loc(itl_code="TLI", region="London", postcode="B4 7WB", regions=("London",))),
    # ... nor a NUTS3 code naming another West Midlands authority.
    (dict(nuts_codes=["UKG32"], postcodes=["B4 7WB"]),
     _loc(local_authority="Solihull", lad_code="E08000029", itl_code="TLG32", region="West Midlands",
          cluster="Solihull", postcode="B4 7WB", regions=("West Midlands",))),
    (dict(postcodes=["SW1A 2AH"]), _loc(itl_code="TLI", region="London", postcode="SW1A 2AH",
                                        regions=("London",))),
    (dict(postcodes=["ZZ1 1ZZ"]), _loc(postcode="ZZ1 1ZZ")),
    (dict(postcodes=["garbage", "", "WS1 1TP"]),
     _loc(local_authority="Walsall", lad_code="E08000030", itl_code="TLG38", region="West Midlands",
          cluster="St Matthews Quarter", postcode="WS1 1TP", regions=("West Midlands",))),
    (dict(place_names=["Coventry"]),
     _loc(local_authority="Coventry", lad_code="E08000026", itl_code="TLG33", region="West Midlands",
          cluster="Coventry", regions=("West Midlands",))),
    (dict(place_names=["Staffordshire"]), _loc(itl_code="TLG", region="West Midlands",
                                              regions=("West Midlands",))),
    (dict(place_names=["Leeds"]), _loc(local_authority="Leeds", lad_code="E08000035", itl_code="TLE",
                                       region="Yorkshire and The Humber", regions=("Yorkshire and The Humber",))),
    (dict(region_names=["England"], postcodes=["WS1 1TP"]),
     _loc(local_authority="Walsall", lad_code="E08000030", itl_code="TLG38", region="West Midlands",
          cluster="St Matthews Quarter", postcode="WS1 1TP", nationwide=True, regions=("West Midlands",))),
    (dict(), _loc()),
    (dict(nationwide=True), _loc(nationwide=True)),
])
def test_resolve_location(kwargs, expected):
    assert resolve_location(**kwargs) == expected


def test_wmca_and_west_midlands_helpers():
    assert all(geo.is_wmca_constituent(name) for name in WMCA)
    assert not geo.is_wmca_constituent("Stafford")
    assert geo.is_west_midlands("Stafford")
    assert geo.is_west_midlands("West Midlands")
    assert not geo.is_west_midlands("Leeds")
    assert geo.is_west_midlands(resolve_location(postcodes=["B4 7WB"]))
    assert geo.authority_by_lad("E08000031").name == "Wolverhampton"
    assert geo.authority_by_lad("Birmingham") is None


# ---------------------------------------------------------------------------------------------- the tables

def test_every_wmca_authority_has_the_section_4_2_codes():
    expected = {"Birmingham": ("E08000025", "GB-LAE-BIR", "TLG31"), "Solihull": ("E08000029", "GB-LAE-SOL", "TLG32"),
                "Coventry": ("E08000026", "GB-LAE-COV", "TLG33"), "Dudley": ("E08000027", "GB-LAE-DUD", "TLG36"),
                "Sandwell": ("E08000028", "GB-LAE-SAW", "TLG37"), "Walsall": ("E08000030", "GB-LAE-WLL", "TLG38"),
                "Wolverhampton": ("E08000031", "GB-LAE-WLV", "TLG39")}
    for name, (lad, org, itl) in expected.items():
        a = geo.authority(name)
        assert (a.lad_code, a.org_id, a.itl3, a.combined_authority_code) == (lad, org, itl, "E47000007")
    assert sorted(a.name for a in geo.authorities() if a.in_wmca) == sorted(WMCA)


def test_authorities_agree_with_the_ons_lookup():
    with open(real_file("la_all_codes_drkane.csv"), encoding="utf-8-sig") as fh:
        current = [r for r in csv.DictReader(fh) if r["Current"] == "TRUE"]
    assert len(geo.authorities()) == len(current)
    for row in current:
        a = geo.authority_by_lad(row["LADCD"])
        assert a is not None, row["LADCD"]
        assert a.region == (row["RGNNM"] or row["CTRYNM"])
        assert (a.combined_authority_code or "") == row["CAUTHCD"]
        assert canonical_local_authority(row["LADNM"]) == a.name


def test_postcode_table_and_clusters_are_consistent():
    table = geo.postcode_districts()
    for area in ("B", "CV", "DY", "WS", "WV"):
        assert any(geo.postcode_area(d) == area for d in table)
    for cluster in geo.clusters():
        for district in cluster.postcode_districts:
            assert table[district].local_authority == cluster.local_authority, (cluster.name, district)
        for other in cluster.neighbours:
            assert cluster.name in geo.neighbouring_clusters(other)
    defaults = {c.local_authority for c in geo.clusters() if c.authority_default}
    assert defaults == set(WMCA)
    assert set(geo.neighbouring_clusters("ward end")) >= {"Birmingham", "Solihull"}
    assert geo.neighbouring_clusters("Nowhere") == ()


def test_every_region_name_contracts_finder_uses_is_known():
    cf = ["North East", "North West", "Yorkshire and The Humber", "East Midlands", "West Midlands",
          "East of England", "London", "South East", "South West", "Wales", "Scotland", "Northern Ireland",
          "Channel Islands", "Isle of Man", "Any region", "England"]
    assert all(geo.canonical_region(name) for name in cf)
    assert geo.region("West Midlands").itl1 == "TLG"
    assert geo.region("Scotland").nuts1 == "UKM"


def test_broken_reference_files_are_config_errors(tmp_path):
    districts = tmp_path / "districts.csv"
    districts.write_text("district,local_authority,note\nB1,Birmingham,\nB2,Brum,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="row 3, field local_authority"):
        geo.load_postcode_districts(districts, ["Birmingham"])
    districts.write_text("district,local_authority\nB1,Birmingham\nb1,Birmingham\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="listed twice"):
        geo.load_postcode_districts(districts, ["Birmingham"])
    clusters = tmp_path / "clusters.csv"
    clusters.write_text("cluster,local_authority,authority_default,postcode_districts,neighbours\n"
                        "A,Birmingham,yes,B1,B\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown cluster"):
        geo.load_clusters(clusters, ["Birmingham"])
    clusters.write_text("cluster,local_authority,authority_default,postcode_districts,neighbours\n"
                        "A,Birmingham,yes,B1,B\nB,Birmingham,no,WS10 8,\n", encoding="utf-8")
    loaded = geo.load_clusters(clusters, ["Birmingham"])
    assert loaded[1].neighbours == ("A",)  # made symmetric
    with pytest.raises(ConfigError, match="cannot read"):
        geo.load_regions(tmp_path / "missing.csv")


def test_a_sector_row_overrides_its_district(tmp_path, monkeypatch):
    path = tmp_path / "districts.csv"
    path.write_text("district,local_authority\nWS10,Sandwell\nWS10 8,Walsall\n", encoding="utf-8")
    table = geo.load_postcode_districts(path, ["Sandwell", "Walsall"])
    monkeypatch.setattr(geo, "postcode_districts", lambda: table)
    assert geo.local_authority_for_postcode("WS10 8AA") == "Walsall"
    assert geo.local_authority_for_postcode("WS10 9AA") == "Sandwell"


# ---------------------------------------------------------------------------------------------- properties

_text = st.text(max_size=40)


@given(postcodes=st.lists(_text, max_size=3), regions=st.lists(_text, max_size=3),
       nuts=st.lists(st.one_of(_text, st.from_regex(r"(UK|TL)[C-NZ][0-9]{0,2}", fullmatch=True)), max_size=3),
       places=st.lists(_text, max_size=3), nationwide=st.booleans())
def test_resolve_location_never_raises_and_is_coherent(postcodes, regions, nuts, places, nationwide):
    loc = resolve_location(postcodes=postcodes, region_names=regions, nuts_codes=nuts, place_names=places,
                           nationwide=nationwide)
    assert isinstance(loc, Location)
    assert loc.nationwide or not nationwide
    if loc.local_authority is not None:
        assert geo.authority(loc.local_authority).region == loc.region
    if loc.cluster is not None:
        assert loc.cluster in geo.cluster_names()


@given(st.one_of(_text, st.sampled_from([a.name for a in geo.authorities()] + ["Sandwell MBC", "GB-LAE-BIR"])))
def test_canonical_forms_are_idempotent(text):
    name = canonical_local_authority(text)
    if name is not None:
        assert canonical_local_authority(name) == name
    postcode = geo.normalise_postcode(text)
    if postcode is not None:
        assert geo.normalise_postcode(postcode) == postcode
    region = geo.canonical_region(text)
    if region is not None:
        assert geo.canonical_region(region) == region


@given(st.from_regex(r"(B|CV|DY|WS|WV)[1-9][0-9]? ?[0-9][A-Z]{2}", fullmatch=True).map(str.lower))
def test_cluster_for_a_postcode_agrees_with_its_authority(postcode):
    la = geo.local_authority_for_postcode(postcode)
    cluster = cluster_for(None, postcode)
    if cluster is not None:
        assert next(c for c in geo.clusters() if c.name == cluster).local_authority == la
    assert cluster_for(la, postcode) == cluster
