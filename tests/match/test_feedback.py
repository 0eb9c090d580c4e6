"""Learning from feedback: Rocchio terms move a party's ranking, are data on its view, and reach the store run."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

from sqlalchemy import select
from testpaths import FIXTURES, ROOT

from broker.match.feedback import INTERESTED, NOT_RELEVANT, party_feedback_terms, rocchio_terms
from broker.match.model import OpportunityView, PartyView
from broker.match.relevance import RelevanceModel
from broker.match.views import party_from_json, view_hash, view_json
from broker.store.engine import make_engine, session_factory
from broker.store.models import DigestFeedback, MatchRun, RunInput, Snapshot

MODEL = RelevanceModel()
CATERER = PartyView(id="P", name="Kitchen Co-op", capabilities="Catering for events, community cafes and schools",
                    keywords=("catering",))
SCHOOL = OpportunityView(id="O-SCHOOL", title="Primary school catering tender",
                         description="School meals for pupils at three primary schools.")
EVENTS = OpportunityView(id="O-EVENTS", title="Catering for conferences and events",
                         description="Buffet catering for conferences, meetings and civic events.")
ACADEMY = OpportunityView(id="O-ACADEMY", title="Academy trust school catering",
                          description="School meals service for pupils across the trust's schools.")


def test_not_relevant_pushes_similar_notices_down_and_interested_pulls_them_up():
    before = MODEL.score(CATERER, ACADEMY).raw
    away = replace(CATERER, feedback_terms=rocchio_terms(MODEL, [(NOT_RELEVANT, SCHOOL)]))
    toward = replace(CATERER, feedback_terms=rocchio_terms(MODEL, [(INTERESTED, SCHOOL)]))
    assert MODEL.score(away, ACADEMY).raw < before < MODEL.score(toward, ACADEMY).raw
    # the events notice shares little with the school one: it moves far less
    assert abs(MODEL.score(away, EVENTS).raw - MODEL.score(CATERER, EVENTS).raw) < before - MODEL.score(
        away, ACADEMY).raw
    words, through = MODEL.explain(away, MODEL.score(away, ACADEMY))
    assert "held back by your feedback on" in through


def test_learned_terms_are_deterministic_and_sorted():
    rows = [("P", "O-SCHOOL", NOT_RELEVANT), ("P", "O-EVENTS", INTERESTED), ("Q", "gone", INTERESTED)]
    notices = {o.id: o for o in (SCHOOL, EVENTS)}
    a = party_feedback_terms(MODEL, rows, notices)
    b = party_feedback_terms(MODEL, list(reversed(rows)), dict(reversed(list(notices.items()))))
    assert a == b and set(a) == {"P"}
    terms = a["P"]
    assert list(terms) == sorted(terms) and all(isinstance(w, int) and w != 0 for _, w in terms)
    assert dict(terms)["pupil"] < 0 < dict(terms)["conferenc"]


def test_feedback_is_part_of_the_view_and_round_trips():
    plain = CATERER
    learned = replace(CATERER, feedback_terms=(("pupil", -800), ("school", -1200)))
    assert "feedback_terms" not in view_json(plain)  # no feedback: the hash is what it always was
    assert view_hash(plain) != view_hash(learned)
    assert party_from_json(json.loads(json.dumps(view_json(learned)))) == learned


def test_a_party_with_new_feedback_is_rematched_with_its_learned_terms(run, db_url):
    assert run("ingest", str(FIXTURES / "opportunities" / "cf_export_2020_sample.csv")).exit_code == 0
    assert run("directory", "import", str(FIXTURES / "directory" / "vcses.csv")).exit_code == 0
    first = json.loads(run("match", "--as-of", "2020-04-16", "--rules", str(ROOT / "rules"), "--json").output)
    matches = json.loads(run("matches", "list", "--json").output)
    m = next(x for x in matches if x["party_type"] == "vcse")
    engine = make_engine(db_url)
    with session_factory(engine).begin() as s:
        s.add(DigestFeedback(party_id=m["party_id"], opportunity_id=m["opportunity_id"], kind="not_relevant",
                             as_of=date(2020, 4, 16).isoformat()))
    second = json.loads(run("match", "--as-of", "2020-04-16", "--rules", str(ROOT / "rules"), "--json").output)
    assert second["mode"] == "incremental" and second["run_id"] != first["run_id"]
    with session_factory(engine)() as s:
        run_row = s.get(MatchRun, second["run_id"])
        assert m["party_id"] in run_row.scope["party_ids"]
        record = s.scalars(select(Snapshot.record).join(RunInput, RunInput.content_hash == Snapshot.content_hash)
                           .where(RunInput.run_id == second["run_id"], RunInput.entity_id == m["party_id"])).one()
    engine.dispose()
    learned = party_from_json(record).feedback_terms
    assert learned and any(w < 0 for _, w in learned)
