"""The workspace on a real night: the shipped directory, a real Contracts Finder export, a real match run."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select
from testpaths import FIXTURES, ROOT
from web_world import OFFICER, PASSWORD, Clock, login, make_client

from broker.match.queries import list_matches
from broker.store.engine import session_factory
from broker.store.models import Vcse
from broker.web.officers import add_officer


def test_tonight_explain_and_why_not_after_a_real_match_run(run, engine):
    assert run("directory", "import", str(FIXTURES / "directory" / "vcses.csv"), "--consortia",
               str(FIXTURES / "directory" / "consortia.csv")).exit_code == 0
    run("ingest", str(FIXTURES / "opportunities" / "cf_export_2020_sample.csv"))
    assert run("match", "--as-of", "2020-04-16", "--rules", str(ROOT / "rules")).exit_code == 0
    with session_factory(engine).begin() as s:
        add_officer(s, OFFICER, PASSWORD)
        matches = list_matches(s)
        matched = {(m["opportunity_id"], m["party_id"]) for m in matches}
        unmatched_party = next(v for v in s.scalars(select(Vcse.id).order_by(Vcse.id))
                               if (matches[0]["opportunity_id"], v) not in matched)
    assert matches
    with make_client(engine, Clock(date(2020, 4, 16))) as client:
        login(client)
        tonight = client.get("/").text
        assert "Latest complete run run-" in tonight
        shown = re.search(r"(\d+) match(?:es)?", tonight)
        assert shown and int(shown[1]) == len(matches)  # the first run made every match new
        link = re.search(r'href="(/explain\?opportunity=[^"]+)"', tonight)[1].replace("&amp;", "&")
        explained = client.get(link)
        assert explained.status_code == 200 and "Decided by run run-" in explained.text
        why_not = client.get("/explain", params={"opportunity": matches[0]["opportunity_id"],
                                                 "party": unmatched_party})
        assert why_not.status_code == 200 and "No decision on this pair" in why_not.text
        by_vcse = client.get("/?by=vcse").text
        assert by_vcse.count("<section>") >= 2
        opp = client.get("/opportunity", params={"id": matches[0]["opportunity_id"]})
        assert opp.status_code == 200 and "Why not matched?" in opp.text
