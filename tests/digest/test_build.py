"""Building digests: the selection policies, never twice, idempotent nights, and resuming after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from digest_world import AS_OF, World, deadline
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from broker.digest import DigestSettings, build_digests, record_feedback, set_preferences
from broker.store.engine import make_engine, session_factory
from broker.store.models import Digest, DigestItem

NEXT = AS_OF + timedelta(days=1)


def build(world: World, as_of: date = AS_OF, **kw: Any):  # type: ignore[no-untyped-def]
    world.commit()
    return build_digests(world.session, as_of=as_of, outbox=world.outbox, **kw)


def sent(world: World, recipient: str) -> list[str]:
    """Opportunity ids ever included for a recipient, in digest then position order."""
    rows = world.session.execute(select(DigestItem.opportunity_id).join(Digest, Digest.id == DigestItem.digest_id)
                                 .where(DigestItem.recipient_id == recipient)
                                 .order_by(Digest.as_of, DigestItem.position))
    return [r[0] for r in rows]


def counts(session: Session) -> tuple[int, int]:
    return (session.scalar(select(func.count()).select_from(Digest)) or 0,
            session.scalar(select(func.count()).select_from(DigestItem)) or 0)


def test_never_twice_and_idempotent_nights(world: World) -> None:
    seen: list[str] = []
    hook = seen.append  # told of each new digest; building records nothing in the target ledger
    world.vcse("V1")
    world.vcse("V2")
    for oid in ("O1", "O2"):
        world.opportunity(oid)
        world.match(oid, "V1", 60)
    world.match("O1", "V2", 50)
    first = build(world, on_built=hook)
    assert [(d.recipient_id, d.opportunity_ids, d.new) for d in first] == [
        ("V1", ("O1", "O2"), True), ("V2", ("O1",), True)]
    files = {d.path: d.path.read_bytes() for d in first}
    assert seen == [first[0].digest_id, first[1].digest_id]
    assert {d.status for d in first} == {"pending"}
    # The same night again: the same digests, nothing new written, recorded or reported to the ledger.
    again = build(world, on_built=hook)
    assert [(d.digest_id, d.opportunity_ids, d.new) for d in again] == [
        (d.digest_id, d.opportunity_ids, False) for d in first]
    assert {d.path: d.path.read_bytes() for d in again} == files
    assert counts(world.session) == (2, 3) and len(seen) == 2
    # A match arriving later the same night waits for the next night (tonight's digest is final).
    world.opportunity("O3")
    world.match("O3", "V1", 99)
    assert [d.opportunity_ids for d in build(world) if d.recipient_id == "V1"] == [("O1", "O2")]
    # Next night: only what is new.
    nxt = build(world, NEXT, on_built=hook)
    assert [(d.recipient_id, d.opportunity_ids) for d in nxt] == [("V1", ("O3",))]
    assert sent(world, "V1") == ["O1", "O2", "O3"]
    # And the night after: nothing at all.
    assert list(build(world, NEXT + timedelta(days=1))) == []


def test_the_unique_constraint_makes_never_twice_structural(world: World) -> None:
    world.vcse("V1")
    world.opportunity("O1")
    world.match("O1", "V1", 60)
    digest = build(world)[0]
    world.session.add(Digest(id="x", recipient_id="V1", as_of="2025-02-01", file_name="x", message_id="x",
                             to_address="x", subject="x", item_count=1, content_sha256="x", payload={},
                             status="pending", attempts=0))
    world.session.flush()
    world.session.add(DigestItem(digest_id="x", recipient_id="V1", opportunity_id="O1", party_id="V1",
                                 party_type="vcse", position=1, score=60, reference="AAAA-AAAA-AAAA"))
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        world.session.flush()
    world.session.rollback()
    assert sent(world, "V1") == ["O1"] and digest.new


def test_opt_in_and_preferences(world: World) -> None:
    world.vcse("IN")
    world.vcse("OUT", opt_in=False)
    world.vcse("OUT-BUT-PREF", opt_in=False)
    world.vcse("IN-BUT-PREF")
    world.opportunity("O1")
    for v in ("IN", "OUT", "OUT-BUT-PREF", "IN-BUT-PREF"):
        world.match("O1", v, 60)
    set_preferences(world.session, "OUT-BUT-PREF", opt_in=True)
    set_preferences(world.session, "IN-BUT-PREF", opt_in=False)
    batch = build(world)
    assert [d.recipient_id for d in batch] == ["IN", "OUT-BUT-PREF"]
    assert batch.skipped == []
    # Opted-out parties' matches are not consumed: opting in later brings them.
    set_preferences(world.session, "OUT", opt_in=True)
    assert [d.recipient_id for d in build(world, NEXT)] == ["OUT"]


def test_cap_default_setting_and_preference(world: World) -> None:
    world.vcse("V1")
    world.vcse("V2")
    for n in range(12):
        world.opportunity(f"O{n:02d}")
        world.match(f"O{n:02d}", "V1", 50 + n)
        world.match(f"O{n:02d}", "V2", 50 + n)
    set_preferences(world.session, "V2", cap=3)
    batch = build(world)
    assert batch[0].opportunity_ids == tuple(f"O{n:02d}" for n in range(11, 1, -1))  # the 10 best
    assert batch[1].opportunity_ids == ("O11", "O10", "O09")
    nxt = build(world, NEXT, settings=DigestSettings(cap=1))
    assert [d.opportunity_ids for d in nxt] == [("O01",), ("O08", "O07", "O06")]


def test_minimum_score(world: World) -> None:
    world.vcse("V1")
    world.vcse("V2")
    for oid, score in (("O1", 59), ("O2", 60), ("O3", 90)):
        world.opportunity(oid)
        world.match(oid, "V1", score)
        world.match(oid, "V2", score)
    set_preferences(world.session, "V1", min_score=60)
    batch = build(world, settings=DigestSettings(min_score=90))
    assert [d.opportunity_ids for d in batch] == [("O3", "O2"), ("O3",)]


def test_ranking_score_then_deadline_then_id(world: World) -> None:
    world.vcse("V1")
    world.opportunity("B", deadline_at=deadline(30))
    world.opportunity("A", deadline_at=deadline(30))
    world.opportunity("C", deadline_at=deadline(25))
    world.opportunity("D", deadline_at=None)
    world.opportunity("E", deadline_at=deadline(21))
    for oid in "ABCD":
        world.match(oid, "V1", 70)
    world.match("E", "V1", 71)
    assert build(world)[0].opportunity_ids == ("E", "C", "A", "B", "D")


def test_deadline_and_status_policy(world: World) -> None:
    world.vcse("V1")
    opps = {
        "four-days": deadline(20, hour=23),  # 20 Jan: 4 days after 16 Jan
        "five-days": deadline(21, hour=0),  # 21 Jan 00:00 UK: exactly 5 days
        "past": deadline(10),
        "today": deadline(16, hour=5),
        "no-deadline": None,
    }
    for oid, when in opps.items():
        world.opportunity(oid, deadline_at=when)
        world.match(oid, "V1", 70)
    for status in ("closed", "cancelled", "awarded", "planned"):
        world.opportunity(status, status=status)
        world.match(status, "V1", 70)
    world.opportunity("withdrawn-match")
    world.match("withdrawn-match", "V1", 70, status="withdrawn")
    assert build(world)[0].opportunity_ids == ("five-days", "no-deadline")
    # With no minimum the next night, what is still ahead goes (even due that day), never a past deadline.
    world.opportunity("later-today", deadline_at=datetime(2025, 1, 17, 17, tzinfo=UTC))
    world.match("later-today", "V1", 70)
    nxt = build(world, NEXT, settings=DigestSettings(min_days=0))
    assert nxt[0].opportunity_ids == ("later-today", "four-days")
    assert b"(due today)" in nxt[0].path.read_bytes().replace(b"=\r\n", b"")  # undo quoted-printable wraps


def test_not_relevant_suppresses_for_the_party_and_its_lead(world: World) -> None:
    world.vcse("V1")
    world.vcse("V2")
    world.consortium("C1", "V2", ["V2", "V1"])
    for oid in ("O1", "O2", "O3"):
        world.opportunity(oid)
    world.match("O1", "V1", 70)
    world.match("O2", "V1", 70)
    world.match("O2", "C1", 70, party_type="consortium", lead="V2")
    world.match("O3", "C1", 70, party_type="consortium", lead="V2")
    record_feedback(world.session, "V1", "O1", "not_relevant", as_of=AS_OF)  # the VCSE itself
    record_feedback(world.session, "C1", "O3", "not_relevant", as_of=AS_OF)  # the consortium
    record_feedback(world.session, "V2", "O2", "not_relevant", as_of=AS_OF)  # the lead, for all it receives
    record_feedback(world.session, "V1", "O2", "interested", as_of=AS_OF)  # interest suppresses nothing
    assert [(d.recipient_id, d.opportunity_ids) for d in build(world)] == [("V1", ("O2",))]


def test_one_item_per_opportunity_for_a_lead_matched_twice(world: World) -> None:
    world.vcse("V1")
    world.consortium("C1", "V1", ["V1"])
    world.opportunity("O1")
    world.opportunity("O2")
    world.match("O1", "V1", 60)
    world.match("O1", "C1", 80, party_type="consortium", lead="V1")
    world.match("O2", "V1", 70)
    world.match("O2", "C1", 70, party_type="consortium", lead="V1")
    batch = build(world)
    assert batch[0].opportunity_ids == ("O1", "O2")
    rows = world.session.execute(select(DigestItem.opportunity_id, DigestItem.party_id)
                                 .order_by(DigestItem.position)).all()
    assert [tuple(r) for r in rows] == [("O1", "C1"), ("O2", "V1")]  # the better match; a tie goes to the VCSE


def test_unknown_lead_is_reported(world: World) -> None:
    world.opportunity("O1")
    world.match("O1", "S1", 70, party_type="suggested_consortium", lead="GONE")
    world.match("O1", "S2", 70, party_type="suggested_consortium", lead=None)
    batch = build(world)
    assert list(batch) == [] and [(s.recipient_id, s.reason) for s in batch.skipped] == [
        ("GONE", "not in the directory")]


def test_a_deleted_or_altered_file_is_restored_byte_for_byte(world: World) -> None:
    world.vcse("V1")
    world.opportunity("O1")
    world.match("O1", "V1", 60)
    path = build(world)[0].path
    original = path.read_bytes()
    path.write_bytes(b"tampered")
    assert build(world)[0].path.read_bytes() == original
    path.unlink()
    assert build(world)[0].path.read_bytes() == original


# --- resuming after kill -9 -----------------------------------------------------------------------------------

KILLER = textwrap.dedent("""
    import os, signal, sys
    from datetime import date
    from pathlib import Path
    import broker.digest.build as build
    import broker.digest.outbox as outbox
    from broker.store.engine import make_engine, session_factory

    url, box, point, nth = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    count = {"n": 0}

    def die_at(name):
        count["n"] += name == point
        if name == point and count["n"] == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    real_replace, real_write, real_record, real_commit = os.replace, build.write_atomic, build._record, build._commit

    def replace(a, b):  # inside write_atomic: the temporary file is complete, not yet renamed
        die_at("before_rename")
        return real_replace(a, b)

    def write(*a, **k):
        path = real_write(*a, **k)
        die_at("after_write")
        return path

    def record(*a, **k):
        real_record(*a, **k)
        die_at("after_record")  # rows flushed, not committed

    def commit(session):
        die_at("before_commit")
        real_commit(session)
        die_at("after_commit")

    outbox.os.replace = replace
    build.write_atomic, build._record, build._commit = write, record, commit
    build.COMMIT_EVERY = 2  # three digests: a commit after the second, another at the end
    with session_factory(make_engine(url))() as s:
        build.build_digests(s, as_of=date(2025, 1, 16), outbox=box)
    sys.exit(3)  # the kill point was never reached
""")


def snapshot(session: Session, outbox: Path) -> dict[str, Any]:
    session.expire_all()
    digests = session.execute(select(Digest.id, Digest.recipient_id, Digest.file_name, Digest.content_sha256,
                                     Digest.item_count, Digest.status, Digest.payload).order_by(Digest.id)).all()
    items = session.execute(select(DigestItem.digest_id, DigestItem.recipient_id, DigestItem.opportunity_id,
                                   DigestItem.party_id, DigestItem.position, DigestItem.reference)
                            .order_by(DigestItem.digest_id, DigestItem.position)).all()
    files = {str(p.relative_to(outbox)): p.read_bytes() for p in sorted(outbox.rglob("*")) if p.is_file()}
    return {"digests": [tuple(d) for d in digests], "items": [tuple(i) for i in items], "files": files}


def reset(session: Session, outbox: Path) -> None:
    session.execute(delete(DigestItem))
    session.execute(delete(Digest))
    session.commit()
    for p in sorted(outbox.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()


@pytest.mark.parametrize(("point", "nth"), [("before_rename", 1), ("after_write", 1), ("after_record", 1),
                                           ("after_write", 2), ("before_commit", 1), ("after_commit", 1),
                                           ("before_rename", 3), ("after_write", 3), ("after_record", 3),
                                           ("before_commit", 2), ("after_commit", 2)])
def test_killed_anywhere_then_rerun_equals_an_uninterrupted_run(world: World, db_url: str, point: str,
                                                                nth: int) -> None:
    for v in ("V1", "V2", "V3"):
        world.vcse(v)
    for n in range(4):
        world.opportunity(f"O{n}")
        for v in ("V1", "V2", "V3"):
            world.match(f"O{n}", v, 50 + n)
    world.commit()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", KILLER, db_url, str(world.outbox), point, str(nth)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    build(world)
    resumed = snapshot(world.session, world.outbox)
    reset(world.session, world.outbox)
    build(world)
    assert snapshot(world.session, world.outbox) == resumed
    assert len(resumed["digests"]) == 3 and len(resumed["files"]) == 3


def test_rerun_after_a_kill_removes_a_file_the_database_never_recorded(world: World, db_url: str) -> None:
    world.vcse("V1")
    world.vcse("V2")
    world.opportunity("O1")
    world.match("O1", "V1", 60)
    world.match("O1", "V2", 60)
    world.commit()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", KILLER, db_url, str(world.outbox), "after_write", "1"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert len(list(world.outbox.rglob("*.eml"))) == 1
    # Before the re-run, V1 opts out: its file from the killed run must not stay in the outbox.
    set_preferences(world.session, "V1", opt_in=False)
    batch = build(world)
    assert [d.recipient_id for d in batch] == ["V2"]
    assert [p.name for p in world.outbox.rglob("*.eml")] == [batch[0].path.name]
    assert len(batch.removed_orphans) == 1


def test_a_fresh_connection_sees_the_committed_digests(world: World, db_url: str) -> None:
    world.vcse("V1")
    world.opportunity("O1")
    world.match("O1", "V1", 60)
    build(world)
    engine = make_engine(db_url)
    with session_factory(engine)() as other:
        assert counts(other) == (1, 1)
    engine.dispose()
