"""Listings people can use: full ids with header rows, --json/--csv/--nl on every listing, CSV safe in a
spreadsheet, text safe on a terminal, `opportunities show` in people's units and by notice identifier."""

from __future__ import annotations

import csv
import io
import json

import pytest
from testpaths import FIXTURES

from broker.cli.output import csv_cell, safe

CSV_2020 = str(FIXTURES / "opportunities" / "cf_export_2020_sample.csv")
HEADER = ("id,buyer,buyer_type,title,description,value_min_gbp,value_max_gbp,published,deadline,cpv_codes,"
          "postcode,local_authority,suitable_for_vcse,url,contact_email\n")
# A publisher id and title carrying terminal escapes: set the window title, clear the screen, hide text,
# and a buyer a spreadsheet would run. The OCDS reader keeps ids exactly as published.
HOSTILE_OCDS = {"uri": "https://example.org/p", "publishedDate": "2026-01-12T00:00:00Z", "version": "1.1",
                "publisher": {"name": "x"},
                "releases": [{"ocid": "ocds-b5fd17-\x1b]0;owned\x07EVIL\x1b[2J", "id": "r1\x9b31m",
                              "date": "2026-01-12T00:00:00Z", "tag": ["tender"], "buyer": {"name": "=cmd|' /C calc'!A0"},
                              "tender": {"id": "t1", "title": "Lunch \x1b[8mclubs\u202e", "status": "active",
                                         "tenderPeriod": {"endDate": "2026-02-27T12:00:00Z"}}}]}
HOSTILE = ("\x1b]0;owned\x07EVIL-1\x1b[2J,=HYPERLINK(\"http://x\"),other,@SUM(1+1) \x1b[8mhidden\u202e,"
           "Lunch clubs,1000,2000,2026-01-12,2026-02-27T12:00:00Z,85311000,B8 2HB,Birmingham,yes,,\n")


def test_safe_and_csv_cell():
    assert safe("a\x1b[2Jb\x07\u202ec\x9b") == "a\\x1b[2Jb\\x07\\u202ec\\x9b"
    assert safe("line\nbreak") == "line\\x0abreak" and safe("line\nbreak", one_line=False) == "line\nbreak"
    for bad in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1"):
        assert csv_cell(bad) == "'" + bad
    assert csv_cell(["a", "b"]) == "a; b" and csv_cell(None) == "" and csv_cell(True) == "yes"


@pytest.fixture
def hostile(run, tmp_path):
    path = tmp_path / "private.csv"
    path.write_text(HEADER + HOSTILE, encoding="utf-8")
    ocds = tmp_path / "hostile.json"
    ocds.write_text(json.dumps(HOSTILE_OCDS), encoding="utf-8")
    assert run("ingest", CSV_2020, str(path), str(ocds)).exit_code == 0
    return run


def _no_raw_controls(text: str) -> None:
    assert not any(ch in text for ch in ("\x1b", "\x07", "\u202e", "\x9b")), repr(text)


def test_human_listings_escape_control_characters(hostile):
    listing = hostile("opportunities", "list")
    assert listing.exit_code == 0
    _no_raw_controls(listing.output)
    assert "\\x1b[2J" in listing.output
    ident = json.loads(hostile("opportunities", "list", "--json").output)
    hostile_id = next(o["id"] for o in ident if "EVIL" in o["id"])
    assert "\x1b" in hostile_id  # stored exactly as published; only the terminal gets the escaped form
    shown = hostile("opportunities", "show", hostile_id)
    assert shown.exit_code == 0, shown.output
    _no_raw_controls(shown.output)
    assert hostile("quarantine", "list").exit_code == 0


def test_every_listing_has_json_csv_and_nl(run):
    assert run("ingest", CSV_2020).exit_code == 0
    for listing in (["opportunities", "list"], ["quarantine", "list"], ["matches", "list"]):
        as_json = json.loads(run(*listing, "--json").output)
        lines = [json.loads(line) for line in run(*listing, "--nl").output.splitlines()]
        assert lines == as_json, listing
        table = list(csv.reader(io.StringIO(run(*listing, "--csv").output)))
        assert table and len(table) == len(as_json) + 1, listing  # a header row, then one row each
    head = run("opportunities", "list", "--limit", "2").output.splitlines()[0]
    assert head.split() == ["id", "status", "deadline", "value", "where", "title"]


def test_csv_output_never_holds_a_formula(hostile):
    rows = list(csv.DictReader(io.StringIO(hostile("opportunities", "list", "--csv").output)))
    private = next(r for r in rows if r["id"].startswith("private:"))
    assert private["title"].startswith("'@SUM") and private["buyer"].startswith("'=HYPERLINK")
    published = next(r for r in rows if "EVIL" in r["id"])
    assert published["buyer"] == "'=cmd|' /C calc'!A0" and "\\x1b" in published["id"]
    for row in rows:
        assert not any(v.startswith(("=", "+", "-", "@")) for v in row.values()), row


def test_listed_ids_are_whole_and_show_takes_them_or_their_start(run):
    assert run("ingest", CSV_2020).exit_code == 0
    ids = [line.split()[0] for line in run("opportunities", "list").output.splitlines()[1:-1]]
    stored = [o["id"] for o in json.loads(run("opportunities", "list", "--json").output)]
    assert ids == stored
    assert run("opportunities", "show", stored[0][:14]).exit_code == 0
    ambiguous = run("opportunities", "show", "cf-csv:")
    assert ambiguous.exit_code == 1 and "starts more than one opportunity id" in ambiguous.stderr


def test_opportunities_show_by_notice_identifier_in_peoples_units(run):
    assert run("ingest", CSV_2020).exit_code == 0
    by_notice = run("opportunities", "show", "tender_235874/845912")
    assert by_notice.exit_code == 0, by_notice.output
    out = by_notice.output
    assert "Estimating Food and Drink Demand Elasticities" in out
    assert "deadline           Friday 17 April 2020, 23:59" in out
    assert "15000000 Food, beverages, tobacco and related products" in out
    assert "value_min_pence" not in out and "['" not in out
    same = run("opportunities", "show", "cf-notice:tender_235874/845912")
    assert same.output == out
    valued = run("opportunities", "show", "IOW001-DN474783-12103822").output
    assert "value              £30,000" in valued


def test_choices_ignore_case_and_dates_take_uk_order(run):
    assert run("ingest", CSV_2020).exit_code == 0
    upper = json.loads(run("opportunities", "list", "--status", "OPEN", "--json").output)
    assert upper and all(o["status"] == "open" for o in upper)
    iso = run("opportunities", "list", "--open-on", "2020-04-16", "--json").output
    assert run("opportunities", "list", "--open-on", "16/04/2020", "--json").output == iso
    bad = run("opportunities", "list", "--open-on", "31/04/2020")
    assert bad.exit_code == 1 and "not a YYYY-MM-DD date (nor dd/mm/yyyy)" in bad.stderr


def test_ingest_exits_4_on_quarantine_like_nightly(run, tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text(HEADER + "x1,Buyer,other,Title,,lots,,2026-01-12,,,,,yes,,\n", encoding="utf-8")
    result = run("ingest", str(broken))
    assert result.exit_code == 4, result.output


def test_every_choice_option_ignores_case():
    import click
    from test_cli_fuzz import COMMANDS

    choices = [(path, p.name) for path, command in COMMANDS for p in command.params
               if isinstance(p.type, click.Choice)]
    assert ("outcome record", "stage") in choices
    for path, command in COMMANDS:
        for p in command.params:
            if isinstance(p.type, click.Choice):
                assert p.type.case_sensitive is False, (path, p.name)
