"""Delivery that counts only what arrived and never sends twice, against a real SMTP server (aiosmtpd):
introduced means delivered (SMTP accepted it, or an officer marked it sent); a server that takes the whole
message and never replies gets it once (unconfirmed, logged, not resent); a failing server cannot hold a
run up (a time budget and a limit on digests failing in a row)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from digest_world import AS_OF, World
from sqlalchemy import select
from test_deliver import Server, Sleeps, free_port, statuses, two_digests
from test_deliver import server as server  # noqa: F401  (a fixture, used by name)

from broker.digest import SmtpSettings, build_digests, deliver
from broker.digest.deliver import delivery_log, mark_sent, undelivered
from broker.store.models import Digest, TargetEntry
from broker.target.ledger import record_introduced_many

NEXT = AS_OF + timedelta(days=1)


class Silent:
    """A handler that takes the whole message, then closes the connection without a reply."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        self.messages.append(envelope.original_content)
        server.transport.close()
        return "250 OK"  # never reaches the client: the connection is gone


@pytest.fixture
def silent() -> Iterator[tuple[Silent, int]]:
    handler, port = Silent(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def introduced(world: World) -> list[tuple[str, str, str, str]]:
    world.session.expire_all()
    return sorted(world.session.execute(select(TargetEntry.opportunity_id, TargetEntry.party_id, TargetEntry.cause,
                                               TargetEntry.as_of).where(TargetEntry.stage == "introduced")).all())


def test_only_what_the_server_accepted_is_introduced(world: World, server: Server) -> None:
    built = two_digests(world)
    assert introduced(world) == []  # built is not delivered
    assert undelivered(world.session, AS_OF) == {"pending": 2}
    server.handler.refuse.add("v2@example.net")
    report = deliver(world.session, world.outbox, SmtpSettings("127.0.0.1", server.port), as_of=NEXT,
                     sleep=Sleeps(), delivered=record_introduced_many)
    assert len(report.delivered) == 1 and len(report.rejected) == 1
    # Introduced on the day it was delivered, naming the digest; the refused one stays uncounted.
    assert introduced(world) == [("O1", "V1", f"digest:{built[0].digest_id}", NEXT.isoformat())]


def test_smtp_failure_leaves_introduced_uncounted(world: World) -> None:
    two_digests(world)
    smtp = SmtpSettings("127.0.0.1", free_port(), timeout=5)
    report = deliver(world.session, world.outbox, smtp, as_of=AS_OF, sleep=Sleeps(), delivered=record_introduced_many)
    assert report.delivered == [] and len(report.pending) == 2
    assert introduced(world) == []


def test_an_officer_marks_outbox_digests_sent(world: World) -> None:
    built = two_digests(world)
    marked = mark_sent(world.session, [built[1].digest_id], as_of=NEXT, note="sent from the office mailbox",
                       delivered=record_introduced_many)
    world.commit()
    assert marked == [built[1].digest_id]
    assert introduced(world) == [("O1", "V2", f"digest:{built[1].digest_id}", NEXT.isoformat())]
    assert statuses(world) == {"V1": ("pending", 0), "V2": ("delivered", 1)}
    log = delivery_log(world.session, built[1].digest_id)
    assert [(r["status"], r["error"]) for r in log] == [("marked-sent", "sent from the office mailbox")]
    # Marking it again changes nothing.
    assert mark_sent(world.session, [built[1].digest_id], as_of=NEXT, delivered=record_introduced_many) == []
    assert len(introduced(world)) == 1


def test_no_reply_after_data_is_sent_once_and_never_again_automatically(world: World, silent) -> None:
    handler, port = silent
    built = two_digests(world)
    smtp = SmtpSettings("127.0.0.1", port, timeout=5)
    sleeps = Sleeps()
    report = deliver(world.session, world.outbox, smtp, as_of=AS_OF, sleep=sleeps, delivered=record_introduced_many)
    assert [d for d, _ in report.unconfirmed] == [d.digest_id for d in built]
    assert report.delivered == report.pending == [] and sleeps == []  # no retry
    assert len(handler.messages) == 2  # each once
    assert "no reply came after DATA" in report.unconfirmed[0][1]
    assert statuses(world) == {"V1": ("unconfirmed", 1), "V2": ("unconfirmed", 1)}
    assert introduced(world) == []  # not accepted: not counted
    # The next run, and the next night, leave them alone.
    for day in (AS_OF, NEXT):
        again = deliver(world.session, world.outbox, smtp, as_of=day, sleep=sleeps)
        assert again.attempts == 0
    assert len(handler.messages) == 2
    assert undelivered(world.session, NEXT) == {"unconfirmed": 2}
    # An officer may resend one on purpose: the same bytes, the same Message-ID.
    deliver(world.session, world.outbox, smtp, as_of=NEXT, resend=[built[0].digest_id], sleep=sleeps)
    assert len(handler.messages) == 3 and handler.messages[2] == handler.messages[0]
    # Or confirm it arrived: then it counts.
    mark_sent(world.session, [built[1].digest_id], as_of=NEXT, delivered=record_introduced_many)
    world.commit()
    assert introduced(world) == [("O1", "V2", f"digest:{built[1].digest_id}", NEXT.isoformat())]


def test_an_attempt_interrupted_by_a_dead_run_is_not_resent(world: World, server: Server) -> None:
    built = two_digests(world)
    digest = world.session.get(Digest, built[0].digest_id)
    assert digest is not None
    digest.status = "sending"  # what a run killed between the server's reply and its commit leaves behind
    world.commit()
    report = deliver(world.session, world.outbox, SmtpSettings("127.0.0.1", server.port), as_of=AS_OF,
                     sleep=Sleeps())
    assert report.delivered == [built[1].digest_id]
    assert [m["to"] for m in server.messages] == [["v2@example.net"]]
    assert statuses(world)["V1"][0] == "unconfirmed"


def many_digests(world: World, n: int) -> list[Any]:
    world.opportunity("O1")
    for i in range(n):
        world.vcse(f"V{i:02d}")
        world.match("O1", f"V{i:02d}", 60)
    world.commit()
    return list(build_digests(world.session, as_of=AS_OF, outbox=world.outbox))


def test_a_server_failing_every_message_stops_the_run_after_a_few_digests(world: World, server: Server) -> None:
    built = many_digests(world, 42)
    server.handler.busy = 10_000  # 451 for every message
    sleeps = Sleeps()
    report = deliver(world.session, world.outbox, SmtpSettings("127.0.0.1", server.port), as_of=AS_OF,
                     sleep=sleeps)
    assert report.stopped == "3 digests in a row could not be delivered: the server is failing"
    assert report.attempts == 9 and sleeps == [2.0, 4.0] * 3  # not 42 digests x 3 attempts
    assert len(report.pending) == 42 and report.delivered == []
    untried = [e for _, e in report.pending if e.startswith("not attempted this run")]
    assert len(untried) == 39
    # They all go the next night, once the server works again.
    server.handler.busy = 0
    later = deliver(world.session, world.outbox, SmtpSettings("127.0.0.1", server.port), as_of=NEXT,
                    sleep=Sleeps())
    assert sorted(later.delivered) == sorted(d.digest_id for d in built)


class Clock:
    """A monotonic clock that only sleeping moves (the transfers themselves take no time here)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_time_budget_bounds_a_run(world: World, server: Server) -> None:
    many_digests(world, 42)
    server.handler.busy = 10_000
    clock = Clock()
    smtp = SmtpSettings("127.0.0.1", server.port, budget_seconds=10, max_failing_digests=100)
    report = deliver(world.session, world.outbox, smtp, as_of=AS_OF, sleep=clock.sleep, monotonic=clock)
    # Digest 1: three tries, 2 s + 4 s of back-off; digest 2: 2 s more, then the next pause would pass 10 s.
    assert clock.now - 1000.0 == 8.0 and report.attempts == 5
    assert report.stopped == "the delivery time budget for this run was used up"
    assert len(report.pending) == 42



class _DropsMidTransfer(Controller):
    """aiosmtpd, but DATA is cut off after its first line: the connection closes with no reply."""

    def factory(self):  # type: ignore[no-untyped-def]
        from aiosmtpd.smtp import SMTP

        class Dropping(SMTP):
            async def smtp_DATA(self, arg: str) -> None:  # noqa: N802
                await self.push("354 End data with <CR><LF>.<CR><LF>")
                await self._reader.readuntil(b"\r\n")
                self.transport.close()

        return Dropping(self.handler, **self.SMTP_kwargs)


def test_a_server_dropping_every_message_mid_transfer_holds_the_run_for_three_digests(world: World) -> None:
    many_digests(world, 42)
    port = free_port()
    controller = _DropsMidTransfer(Silent(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        sleeps = Sleeps()
        report = deliver(world.session, world.outbox, SmtpSettings("127.0.0.1", port, timeout=5), as_of=AS_OF,
                         sleep=sleeps, delivered=record_introduced_many)
    finally:
        controller.stop()
    assert report.stopped == "3 digests in a row could not be delivered: the server is failing"
    # Whether the client saw the cut before or after its last byte, three digests were tried, not 42.
    tried = {d for d, _ in report.unconfirmed} | {d for d, e in report.pending if not e.startswith("not attempted")}
    assert len(tried) == 3 and report.attempts <= 9 and sum(sleeps) <= 18
    assert report.delivered == [] and introduced(world) == []
