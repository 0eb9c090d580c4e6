"""`broker audit explain`: every rule that fired with the values it saw, or why a pair was never decided."""

from __future__ import annotations

import json

from audit_world import RULES, add_notice, match, session_on
from sqlalchemy import select

from broker.match.features import party_fact
from broker.match.rulefiles import load_rules
from broker.match.views import party_from_json
from broker.store.models import Decision, RunInput, Snapshot


def _explain(run, *args: str) -> dict:
    result = run("audit", "explain", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _rendered_again(firing: dict) -> bool:
    """The firing's reason, rendered anew from the values explain says the rule saw, is the stored one."""
    return load_rules(RULES).get(firing["rule_id"]).reason.render(firing["saw"]) == firing["reason"]


def _one(db_url, *where) -> Decision:
    with session_on(db_url) as session:
        return session.scalars(select(Decision).where(*where).order_by(Decision.seq).limit(1)).one()


def test_a_matched_pair_lists_every_firing_with_the_values_it_saw(loaded, db_url):
    run_id = match(loaded)["run_id"]
    d = _one(db_url, Decision.stage == "pair", Decision.outcome == "matched")
    data = _explain(loaded, "--run", run_id, d.opportunity_id, d.party_id)
    assert data["decided"] and data["outcome"] == "matched" and data["score"] == d.score
    assert data["verdict"].startswith(f"matched: score {d.score}") and str(data["min_score"]) in data["verdict"]
    assert [f["rule_id"] for f in data["firings"]] == [f["rule_id"] for f in d.firings]
    facts = {**data["opportunity_facts"], **data["party_facts"], **d.features}
    for f in data["firings"]:
        assert f["saw"], f  # every shipped rule reads at least one field
        for name, value in f["saw"].items():
            assert facts[name] == value  # what the rule saw is what the run recorded
        assert f["description"] and _rendered_again(f)
    text = loaded("audit", "explain", "--run", run_id, d.opportunity_id, d.party_id).output
    assert "rules that fired:" in text and data["firings"][0]["rule_id"] in text and "saw " in text


def test_a_pair_whose_opportunity_a_rule_rejected(loaded, db_url):
    run_id = match(loaded)["run_id"]
    opp = _one(db_url, Decision.stage == "opportunity", Decision.outcome == "rejected")
    data = _explain(loaded, "--run", run_id, opp.opportunity_id, "wm-0001")
    assert not data["decided"]
    rule = next(f["rule_id"] for f in opp.firings if f["effect"] == "reject")
    assert "opportunity was rejected before any pairing" in data["why_not"] and rule in data["why_not"]
    assert data["firings"][0]["rule_id"] == rule and data["firings"][0]["saw"]


def test_a_pair_the_blocking_step_never_proposed(loaded, db_url):
    add_notice(db_url, "road-1", "Resurfacing of the A38 carriageway", "Asphalt planing and road markings.",
               cpv=("45233142",))
    run_id = match(loaded)["run_id"]
    data = _explain(loaded, "--run", run_id, "road-1", "wm-0003")  # a domestic abuse charity
    assert not data["decided"]
    assert data["why_not"].startswith("the blocking step never proposed it: ")
    assert "no shared capability terms or CPV codes" in data["why_not"]


def test_inputs_the_run_never_read(loaded, db_url, tmp_path):
    run_id = match(loaded)["run_id"]
    # Ids nothing has are a typo, refused with a message (not explained as "no decision").
    typo = loaded("audit", "explain", "--run", run_id, "nope", "nobody")
    assert typo.exit_code == 1 and "no opportunity 'nope'" in typo.output and "'nobody'" in typo.output
    # Known ids the run never read: stored after it.
    add_notice(db_url, "later-1", "Lunch club", "Lunch clubs for older people")
    vcses = tmp_path / "later.csv"
    vcses.write_text("id,name,capabilities,local_authority,digest_opt_in\nlater-v,Later,Lunch clubs,Birmingham,no\n",
                     encoding="utf-8")
    assert loaded("directory", "import", str(vcses)).exit_code == 0
    assert "opportunity was not among the run's inputs" in _explain(loaded, "--run", run_id, "later-1", "wm-0001")[
        "why_not"]
    d = _explain(loaded, "--run", run_id, "ocds-b5fd17-0064608c-a004-4bf1-bea8-bcc569de6670", "later-v")
    assert "party was not among the run's inputs" in d["why_not"]


def test_a_pair_outside_an_incremental_runs_scope(loaded, db_url):
    first = match(loaded)["run_id"]
    d = _one(db_url, Decision.run_id == first, Decision.stage == "pair", Decision.outcome == "matched")
    # A new notice live on the same business day (a notice published after it would not be an input).
    add_notice(db_url, "new-1", "Community lunch club", "Weekly lunch clubs for older people in Birmingham.")
    second = match(loaded)
    assert second["mode"] == "incremental"
    data = _explain(loaded, "--run", second["run_id"], d.opportunity_id, d.party_id)
    assert "not in the run's scope" in data["why_not"] and f"last decided in {first}: matched" in data["why_not"]
    latest = _explain(loaded, d.opportunity_id, d.party_id)  # default: the latest complete run
    assert latest["run_id"] == second["run_id"]


def test_a_suggested_grouping_shows_its_members_facts(loaded, db_url):
    run_id = match(loaded)["run_id"]
    d = _one(db_url, Decision.stage == "pair", Decision.party_type == "suggested_consortium")
    data = _explain(loaded, "--run", run_id, d.opportunity_id, d.party_id)
    assert data["decided"] and data["grouping"]["members"] == d.detail["members"]
    assert data["party_facts"]["member_count"] == len(d.detail["members"])
    assert data["party_facts"]["party_type"] == "suggested_consortium"
    # Rebuilt from the members as the run read them.
    with session_on(db_url) as session:
        lead = session.scalars(select(Snapshot.record).join(RunInput, RunInput.content_hash == Snapshot.content_hash)
                               .where(RunInput.run_id == run_id, RunInput.entity_id == d.detail["lead"])).one()
    assert data["party_facts"]["party_cluster"] == party_fact(party_from_json(lead))["party_cluster"]
    for f in data["firings"]:
        assert "(not recorded)" not in f["saw"].values(), f
        assert _rendered_again(f), f  # e.g. the combined capacity a "needs partners" reason quoted
