"""Field and row parsing of the directory spreadsheets (no database)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.directory import parse
from broker.directory.csvfile import decode
from broker.directory.parse import parse_consortium_row, parse_vcse_row


@pytest.mark.parametrize(("text", "value"), [
    ("yes", True), ("Y", True), ("TRUE", True), ("1", True), (" no ", False), ("n", False), ("False", False),
    ("0", False),
])
def test_parse_bool(text, value):
    assert parse.parse_bool(text) is value


@pytest.mark.parametrize("text", ["maybe", "ja", "2", "yes please"])
def test_parse_bool_rejects(text):
    with pytest.raises(ValueError, match="not yes or no"):
        parse.parse_bool(text)


@pytest.mark.parametrize(("text", "pence"), [
    ("250000", 25_000_000), ("£250,000", 25_000_000), ("1250.5", 125_050), ("0", 0), ("GBP 75", 7_500),
])
def test_parse_pence(text, pence):
    assert parse.parse_pence(text) == pence


@pytest.mark.parametrize("text", ["lots", "-5", "1e9999", "1e30", "NaN"])
def test_parse_pence_rejects(text):
    with pytest.raises(ValueError):
        parse.parse_pence(text)


@pytest.mark.parametrize(("text", "codes"), [
    ("85311000", ["85311000"]), ("85311000-2", ["85311000"]), ("85311000-2; 55520000", ["85311000", "55520000"]),
    ("3000000", ["03000000"]), ("85311000, 85311000-2", ["85311000"]),
])
def test_parse_cpv(text, codes):
    assert parse.parse_cpv(text) == codes


@pytest.mark.parametrize("text", ["12345678", "85311000;social care", "60173000"])
def test_parse_cpv_rejects_unknown_codes(text):
    with pytest.raises(ValueError, match="not CPV 2008"):
        parse.parse_cpv(text)


@pytest.mark.parametrize(("text", "ok"), [
    ("info@example.org", True), ("first.last+tag@sub.example.org", True), ("a@b", False),
    ("two@example.org, three@example.org", False), ("x@example.org\r\nBcc: y@example.org", False),
    ("no-at-sign.example.org", False), ("<a@example.org>", False),
])
def test_parse_email(text, ok):
    if ok:
        assert parse.parse_email(text) == text
    else:
        with pytest.raises(ValueError):
            parse.parse_email(text)


def test_identifiers_numbers_and_forms():
    assert parse.parse_company_number("1234567") == "01234567"
    assert parse.parse_company_number("sc123456") == "SC123456"
    assert parse.parse_charity_number("SC012345") == "SC012345"
    assert parse.parse_charity_number("1100001-1") == "1100001-1"
    for bad in ("../../etc/passwd", "a b", "-lead", "x" * 101):
        with pytest.raises(ValueError, match="not a usable id"):
            parse.parse_id(bad)
    assert parse.parse_legal_form("community interest company") == "CIC"
    assert parse.parse_legal_form("Co-op") == "Co-operative"
    assert parse.parse_legal_form("Parish trust") == "Parish trust"
    assert parse.parse_count("1,200") == 1200
    with pytest.raises(ValueError):
        parse.parse_count("12.5")


def test_service_areas_and_lists():
    assert parse.parse_service_areas("Sandwell MBC; west midlands; Any region; Sandwell") == [
        "Sandwell", "West Midlands", "National"]
    with pytest.raises(ValueError, match="Narnia"):
        parse.parse_service_areas("Birmingham; Narnia")
    assert parse.split_list(" catering;; Catering ; school  meals ;") == ["catering", "school meals"]


def _row(**values):
    base = {"id": "v1", "name": "Kitchen", "local_authority": "Birmingham City Council", "postcode": "b8 1qe",
            "capabilities": "We <b>cook</b> meals", "digest_opt_in": "yes", "contact_email": "a@example.org"}
    return {**base, **values}


def test_vcse_row_is_normalised():
    # A problem in optional fields is a warning: the fields are left out, the VCSE kept.
    rec, check = parse_vcse_row("v.csv", 2, _row(min_contract_value_gbp="10", max_contract_value_gbp="5"))
    assert check.errors == []
    assert (rec["min_contract_value_pence"], rec["max_contract_value_pence"]) == (None, None)
    assert [str(e) for e in check.warnings] == ["v.csv, row 2, field min_contract_value_gbp: is more than "
                                               "max_contract_value_gbp; both left out (the row is kept without them)"]
    rec, check = parse_vcse_row("v.csv", 2, _row())
    assert check.errors == [] and check.warnings == []
    assert rec["local_authority"] == "Birmingham" and rec["postcode"] == "B8 1QE"
    assert rec["capabilities"] == "We cook meals"  # markup removed, never stored
    assert (rec["cluster"], rec["cluster_derived"], rec["service_areas"]) == ("Ward End", True, ["Birmingham"])


def test_vcse_row_warnings():
    _, check = parse_vcse_row("v.csv", 5, _row(contact_email="", local_authority="Sandwell"))
    messages = [str(w) for w in check.warnings]
    assert "v.csv, row 5, field contact_email: digest_opt_in is yes but there is no contact_email" in messages[0]
    assert "field postcode: postcode B8 1QE is mostly in Birmingham, not Sandwell" in messages[1]


def test_consortium_row_checks():
    rec, check = parse_consortium_row("c.csv", 2, {"id": "c1", "name": "C", "lead_id": "a",
                                                  "member_ids": "a; b", "max_contract_value_gbp": "£1,000"})
    assert check.errors == []
    assert rec == {"id": "c1", "name": "C", "lead_id": "a", "member_ids": ["a", "b"], "capabilities": None,
                   "max_contract_value_pence": 100_000}
    _, check = parse_consortium_row("c.csv", 3, {"id": "c2", "name": "C", "lead_id": "", "member_ids": "../x;b"})
    assert {e.field for e in check.errors} == {"member_ids", "lead_id"}


def test_decode():
    assert decode("£".encode("utf-8-sig"), "f") == ("£", None)
    text, warning = decode("£".encode("cp1252"), "f")
    assert text == "£" and "Windows-1252" in str(warning)


@given(st.dictionaries(st.sampled_from(parse.VCSE_COLUMNS), st.text(max_size=60)))
def test_any_row_parses_to_a_record_or_errors(values):
    rec, check = parse_vcse_row("v.csv", 2, values)
    assert (rec is None) == bool(check.errors)
    assert all(e.file == "v.csv" and e.locator == "row 2" and e.field for e in check.errors)
    if rec is not None:
        assert rec["digest_opt_in"] in (True, False) and rec["service_areas"]
