"""`broker match` end to end: real Contracts Finder notices, the fixture directory, the shipped rules."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import func, select
from testpaths import FIXTURES, ROOT

from broker.store.engine import make_engine, session_factory
from broker.store.models import Decision, Match

CSV = str(FIXTURES / "opportunities" / "cf_export_2020_sample.csv")
VCSES = str(FIXTURES / "directory" / "vcses.csv")
CONSORTIA = str(FIXTURES / "directory" / "consortia.csv")


@pytest.fixture
def loaded(run):
    assert run("ingest", CSV).exit_code == 0
    assert run("directory", "import", VCSES, "--consortia", CONSORTIA).exit_code == 0
    return run


def _match(run, *args):
    result = run("match", "--as-of", "2020-04-16", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _pairs(db_url):
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        rows = s.execute(select(Match.opportunity_id, Match.party_id, Match.status)).all()
    engine.dispose()
    return rows


def test_match_gives_ranked_explained_matches(loaded, db_url):
    summary = _match(loaded, "--rules", str(ROOT / "rules"))
    assert summary["run_id"] == "run-000001" and summary["mode"] == "full"
    assert summary["counts"]["matched"] > 0
    assert summary["counts"]["pairs_through_rules"] >= summary["counts"]["pairs_considered"]
    items = json.loads(loaded("matches", "list", "--json").output)
    assert items
    for item in items:
        assert {"run_id", "opportunity_id", "party_id", "party_type", "score", "rank", "levels", "reasons"} <= set(item)
        assert 0 <= item["score"] <= 100
        assert item["party_type"] in ("vcse", "consortium", "suggested_consortium")
        assert item["reasons"], item
    by_party: dict[str, list[dict]] = {}
    for item in items:
        by_party.setdefault(item["party_id"], []).append(item)
    for party_items in by_party.values():
        assert [i["rank"] for i in party_items] == list(range(1, len(party_items) + 1))
        assert [i["score"] for i in party_items] == sorted((i["score"] for i in party_items), reverse=True)
    first = items[0]
    shown = json.loads(loaded("matches", "show", first["opportunity_id"], first["party_id"], "--json").output)
    assert shown["outcome"] == "matched" and shown["firings"] and shown["features"]


def test_running_twice_creates_no_duplicate_matches(loaded, db_url):
    _match(loaded, "--rules", str(ROOT / "rules"))
    before = sorted(_pairs(db_url))
    second = _match(loaded, "--rules", str(ROOT / "rules"))
    # Nothing changed, same business day: no run is recorded (it would repeat every decision).
    assert (second["mode"], second["noop"], second["run_id"]) == ("no-op", True, "run-000001")
    assert sorted(_pairs(db_url)) == before
    third = _match(loaded, "--rules", str(ROOT / "rules"), "--full")
    assert third["counts"]["matched"] > 0
    after = sorted(_pairs(db_url))
    assert after == before
    assert len({(o, p) for o, p, _ in after}) == len(after)


def test_editing_a_rule_file_changes_the_decisions(loaded, db_url, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    first = _match(loaded, "--rules", str(rules))
    text = (rules / "eligibility.yaml").read_text(encoding="utf-8")
    assert "{field: days_to_deadline, lt: 5}" in text
    (rules / "eligibility.yaml").write_text(text.replace("{field: days_to_deadline, lt: 5}",
                                                         "{field: days_to_deadline, lt: 14}"), encoding="utf-8")
    second = _match(loaded, "--rules", str(rules), "--full")
    assert second["counts"]["opportunities_rejected"] > first["counts"]["opportunities_rejected"]
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        reasons = s.scalars(select(Decision.firings).where(Decision.run_id == second["run_id"],
                                                          Decision.stage == "opportunity")).all()
        withdrawn = s.scalar(select(func.count()).select_from(Match).where(Match.status == "withdrawn"))
    engine.dispose()
    texts = [f["reason"] for firings in reasons for f in firings]
    assert any("too short to prepare a bid" in t and ("Deadline in 1" in t or "Deadline in 5" in t or "days" in t)
               for t in texts)
    assert withdrawn > 0  # matches to notices now too close to their deadline are withdrawn


def test_a_malformed_rule_file_is_refused_with_file_and_line(loaded, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "broken.yaml").write_text("rules:\n  - id: bad-rule\n    applies_to: pair\n"
                                       "    when: {field: no_such_field, eq: 1}\n    effect: {reject: true}\n"
                                       "    reason: x\n", encoding="utf-8")
    result = loaded("match", "--as-of", "2020-04-16", "--rules", str(rules))
    assert result.exit_code == 1
    assert "broken.yaml:" in result.output and "bad-rule" in result.output
