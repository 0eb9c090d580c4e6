"""Feedback (not relevant / interested, by ids or by a quoted reference) and per-VCSE preferences."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from digest_world import AS_OF, World
from sqlalchemy import delete, select

from broker.digest import build_digests, record_feedback, resolve_reference, set_preferences, show_preferences
from broker.digest.feedback import list_feedback
from broker.digest.preferences import clear_preferences
from broker.errors import InputError, NotFound
from broker.store.models import DigestItem, Vcse


def test_feedback_is_recorded_once_and_kept_for_tuning(world: World, calls) -> None:  # type: ignore[no-untyped-def]
    seen, hook = calls
    world.vcse("V1")
    world.opportunity("O1")
    first = record_feedback(world.session, "V1", "O1", "not_relevant", as_of=AS_OF,
                            reason="we do not do catering\x00\r\n", outcome_callback=hook)
    again = record_feedback(world.session, "V1", "O1", "not_relevant", as_of=AS_OF, outcome_callback=hook)
    assert first.new and not again.new
    assert first.reason == "we do not do catering" and again.reason == first.reason
    assert seen == []  # "not relevant" is not an outcome stage
    assert list_feedback(world.session) == [{"party_id": "V1", "opportunity_id": "O1", "kind": "not_relevant",
                                             "reason": "we do not do catering", "reference": None,
                                             "as_of": "2025-01-16"}]


def test_interested_records_the_stage_once(world: World, calls) -> None:  # type: ignore[no-untyped-def]
    seen, hook = calls
    world.vcse("V1")
    world.opportunity("O1")
    record_feedback(world.session, "V1", "O1", "interested", as_of=AS_OF, outcome_callback=hook)
    record_feedback(world.session, "V1", "O1", "interested", as_of=AS_OF, outcome_callback=hook)
    (row,) = list_feedback(world.session, kind="interested")
    assert len(seen) == 1 and seen[0][:2] == ("O1", "V1")
    kw = dict(seen[0][2])
    assert (kw["as_of"], kw["stage"]) == (AS_OF, "interested") and kw["cause"].startswith("feedback:")


def test_feedback_checks_its_ids(world: World) -> None:
    world.vcse("V1")
    world.opportunity("O1")
    world.match("O1", "sugg-1", 60, party_type="suggested_consortium", lead="V1")
    with pytest.raises(NotFound, match="no VCSE, consortium"):
        record_feedback(world.session, "NOPE", "O1", "not_relevant", as_of=AS_OF)
    with pytest.raises(NotFound, match="no opportunity"):
        record_feedback(world.session, "V1", "NOPE", "not_relevant", as_of=AS_OF)
    with pytest.raises(InputError, match="kind"):
        record_feedback(world.session, "V1", "O1", "spam", as_of=AS_OF)
    # A suggested consortium exists only as a match: its feedback is accepted.
    assert record_feedback(world.session, "sugg-1", "O1", "not_relevant", as_of=AS_OF).new


def test_a_quoted_reference_finds_the_item(world: World) -> None:
    world.vcse("V1")
    world.vcse("LEAD")
    world.consortium("C1", "LEAD", ["LEAD", "V1"])
    world.opportunity("O1")
    world.match("O1", "C1", 60, party_type="consortium", lead="LEAD")
    world.commit()
    batch = build_digests(world.session, as_of=AS_OF, outbox=world.outbox)
    msg = message_from_bytes(batch[0].path.read_bytes(), policy=policy.default)
    body = msg.get_body(("plain",))
    assert isinstance(msg, EmailMessage) and body is not None
    stored = world.session.scalars(select(DigestItem)).one()
    assert f"Reference: {stored.reference} " in body.get_content()
    typed = stored.reference.lower().replace("-", " ")
    found = resolve_reference(world.session, f"  {typed} ")
    assert (found.party_id, found.opportunity_id, found.recipient_id) == ("C1", "O1", "LEAD")
    with pytest.raises(NotFound, match="ABCD-EFGH-JKLM"):
        resolve_reference(world.session, "ZZZZ-ZZZZ-ZZZZ")


def test_preferences_validate_and_show(world: World) -> None:
    world.vcse("V1", opt_in=False)
    assert show_preferences(world.session, "V1")["effective"] == {
        "opt_in": False, "opt_in_source": "directory", "digest_cap": 10, "min_score": 0}
    set_preferences(world.session, "V1", opt_in=True, cap=5, min_score=60)
    set_preferences(world.session, "V1", cap=None)  # back to the default, the rest untouched
    shown = show_preferences(world.session, "V1")
    assert shown["stored"] == {"opt_in": True, "digest_cap": None, "min_score": 60}
    assert shown["effective"] == {"opt_in": True, "opt_in_source": "preference", "digest_cap": 10,
                                  "min_score": 60}
    for kwargs in ({"cap": 0}, {"cap": 101}, {"min_score": -1}, {"min_score": 101}):
        with pytest.raises(InputError):
            set_preferences(world.session, "V1", **kwargs)
    with pytest.raises(NotFound):
        set_preferences(world.session, "NOPE", opt_in=False)
    assert clear_preferences(world.session, "V1") and not clear_preferences(world.session, "V1")
    assert show_preferences(world.session, "V1")["stored"] is None


def test_preferences_survive_a_directory_reimport(world: World) -> None:
    world.vcse("V1", opt_in=True)
    world.opportunity("O1")
    world.match("O1", "V1", 60)
    set_preferences(world.session, "V1", opt_in=False)
    world.commit()
    # The directory import replaces the VCSE row (here: deleted and written again, still opted in).
    world.session.execute(delete(Vcse).where(Vcse.id == "V1"))
    world.commit()
    world.vcse("V1", opt_in=True)
    world.commit()
    batch = build_digests(world.session, as_of=AS_OF, outbox=world.outbox)
    assert list(batch) == [] and batch.skipped == []
    # Without the preference the re-imported VCSE would have had its digest.
    set_preferences(world.session, "V1", opt_in=None)
    world.commit()
    assert [d.recipient_id for d in build_digests(world.session, as_of=AS_OF, outbox=world.outbox)] == ["V1"]
