"""`broker nightly`: idempotent nights, resuming after kill -9, the lock, exit codes, real SMTP delivery.

Kill tests run the job in a child process with ``BROKER_TEST_KILL_AT=STEP`` (fault injection read only by
the nightly CLI), so the process dies by SIGKILL at that step; a re-run must reach the state an
uninterrupted run reaches, and deliver no email twice.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from testpaths import FIXTURES, ROOT

from broker.locking import exclusive
from broker.match.queries import list_matches
from broker.store.engine import make_engine, session_factory
from broker.store.models import Digest, DigestItem, Match, MatchRun, Opportunity, TargetEntry

AS_OF = "2020-04-16"
CSV = FIXTURES / "opportunities" / "cf_export_2020_sample.csv"


@pytest.fixture
def world(run, tmp_path):
    assert run("directory", "import", str(FIXTURES / "directory" / "vcses.csv"), "--consortia",
               str(FIXTURES / "directory" / "consortia.csv")).exit_code == 0
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(CSV, inbox / CSV.name)
    return inbox, tmp_path / "outbox"


def nightly(db_url: str, inbox: Path, outbox: Path, *extra: str, kill_at: str | None = None):
    env = {k: v for k, v in os.environ.items() if k != "BROKER_TEST_KILL_AT"}
    if kill_at:
        env["BROKER_TEST_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "broker", "--db", db_url, "nightly", "--inbox", str(inbox),
                           "--outbox", str(outbox), "--as-of", AS_OF, "--rules", str(ROOT / "rules"), *extra],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)


def state(db_url: str, outbox: Path) -> dict:
    """What a user sees after a night: no run ids (a killed run leaves an abandoned run behind)."""
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        out = {
            "opportunities": sorted(s.execute(select(Opportunity.id, Opportunity.content_hash)).all()),
            "matches": sorted(s.execute(select(Match.opportunity_id, Match.party_id, Match.score,
                                               Match.status, Match.reasons)).all()),
            "ranks": sorted((m["party_id"], m["rank"], m["opportunity_id"]) for m in list_matches(s)),
            "digests": sorted(s.execute(select(Digest.id, Digest.recipient_id, Digest.content_sha256)).all()),
            "items": sorted(s.execute(select(DigestItem.digest_id, DigestItem.opportunity_id,
                                             DigestItem.party_id)).all()),
            "ledger": sorted(s.execute(select(TargetEntry.kind, TargetEntry.opportunity_id, TargetEntry.party_id,
                                              TargetEntry.stage, TargetEntry.amount_pence)).all()),
        }
    engine.dispose()
    out["files"] = sorted(str(p.relative_to(outbox)) for p in outbox.rglob("*.eml"))
    return {k: [tuple(r) if not isinstance(r, str) else r for r in v] for k, v in out.items()}


def test_same_night_twice_gives_one_set_of_digests_and_new_files_add_only_new_matches(world, db_url):
    inbox, outbox = world
    first = nightly(db_url, inbox, outbox)
    assert first.returncode == 0, first.stderr
    assert "matched" in first.stdout
    assert (inbox / "archive" / CSV.name).exists() and not (inbox / CSV.name).exists()
    once = state(db_url, outbox)
    assert once["digests"] and once["ledger"]
    second = nightly(db_url, inbox, outbox)
    assert second.returncode == 0, second.stderr
    assert state(db_url, outbox) == once
    # A new file on a later night (after its notices were published, 2026-01-05 to 2026-02-02): only its
    # matches are new, earlier digests are untouched.
    (inbox / "private.csv").write_bytes((FIXTURES / "opportunities" / "private_anchor_opportunities.csv").read_bytes())
    third = subprocess.run([sys.executable, "-m", "broker", "--db", db_url, "nightly", "--inbox", str(inbox),
                            "--outbox", str(outbox), "--as-of", "2026-02-03", "--rules", str(ROOT / "rules")],
                           capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert third.returncode == 0, third.stderr
    after = state(db_url, outbox)
    assert set(once["digests"]) <= set(after["digests"])
    new_items = set(after["items"]) - set(once["items"])
    assert new_items and all(opp.startswith("private:") for _, opp, _ in new_items)
    assert set(once["items"]) <= set(after["items"])


@pytest.mark.parametrize("step", ["after_ingest", "mid_match", "after_match", "mid_digest", "after_digests"])
def test_a_run_killed_at_any_step_resumes_to_the_uninterrupted_state(world, db_url, tmp_path, step, run):
    inbox, outbox = world
    killed = nightly(db_url, inbox, outbox, kill_at=step)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    rerun = nightly(db_url, inbox, outbox)
    assert rerun.returncode == 0, rerun.stderr
    resumed = state(db_url, outbox)
    # The same night, never interrupted, in a second database.
    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    assert subprocess.run([sys.executable, "-m", "broker", "--db", clean_url, "init"], cwd=ROOT,
                          capture_output=True).returncode == 0
    assert subprocess.run([sys.executable, "-m", "broker", "--db", clean_url, "directory", "import",
                           str(FIXTURES / "directory" / "vcses.csv"), "--consortia",
                           str(FIXTURES / "directory" / "consortia.csv")], cwd=ROOT, capture_output=True).returncode == 0
    clean_inbox, clean_outbox = tmp_path / "clean-inbox", tmp_path / "clean-outbox"
    clean_inbox.mkdir()
    shutil.copy(CSV, clean_inbox / CSV.name)
    assert nightly(clean_url, clean_inbox, clean_outbox).returncode == 0
    assert resumed == state(clean_url, clean_outbox)


class Inbox:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[bytes] = []
        self.lock = threading.Lock()

        class Handler:
            async def handle_DATA(inner, server, session, envelope):  # noqa: N802, N805
                with self.lock:
                    self.messages.append(envelope.original_content)
                return "250 OK"

        self.port = _free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> Inbox:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_killed_mid_digest_then_rerun_delivers_every_digest_exactly_once(world, db_url):
    inbox, outbox = world
    with Inbox() as smtp:
        killed = nightly(db_url, inbox, outbox, "--smtp", smtp.address, kill_at="mid_digest")
        assert killed.returncode == -signal.SIGKILL
        rerun = nightly(db_url, inbox, outbox, "--smtp", smtp.address)
        assert rerun.returncode == 0, rerun.stderr
        again = nightly(db_url, inbox, outbox, "--smtp", smtp.address)
        assert again.returncode == 0
        digests = state(db_url, outbox)["digests"]
        ids = [m.split(b"Message-ID:")[1].split(b"\r\n")[0].strip() for m in smtp.messages]
    assert len(smtp.messages) == len(digests) > 0
    assert len(set(ids)) == len(ids)


def test_killed_after_the_server_accepted_then_rerun_never_sends_it_again(world, db_url):
    inbox, outbox = world
    with Inbox() as smtp:
        # Dies inside the first delivery's ledger step: the server has the message, the database does not know.
        killed = nightly(db_url, inbox, outbox, "--smtp", smtp.address, kill_at="mid_delivery")
        assert killed.returncode == -signal.SIGKILL
        assert len(smtp.messages) == 1
        rerun = nightly(db_url, inbox, outbox, "--smtp", smtp.address)
        assert rerun.returncode == 1, rerun.stderr  # one digest needs an officer's look
        assert "1 unconfirmed (not resent)" in rerun.stdout
        digests = state(db_url, outbox)["digests"]
        ids = [m.split(b"Message-ID:")[1].split(b"\r\n")[0].strip() for m in smtp.messages]
    assert len(smtp.messages) == len(digests) and len(set(ids)) == len(ids)  # every digest exactly once
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        unconfirmed = s.scalars(select(Digest.id).where(Digest.status == "unconfirmed")).all()
        introduced = s.scalars(select(TargetEntry.cause).where(TargetEntry.stage == "introduced")).all()
    engine.dispose()
    assert len(unconfirmed) == 1 and f"digest:{unconfirmed[0]}" not in introduced
    assert len(set(introduced)) == len(digests) - 1


def test_refused_smtp_leaves_digests_pending_and_exits_1(world, db_url):
    inbox, outbox = world
    result = nightly(db_url, inbox, outbox, "--smtp", f"127.0.0.1:{_free_port()}")  # nothing listens there
    assert result.returncode == 1
    assert "pending" in result.stdout
    engine = make_engine(db_url)
    with session_factory(engine)() as s:  # SMTP failure leaves introduced uncounted
        assert s.scalars(select(TargetEntry).where(TargetEntry.stage == "introduced")).all() == []
    engine.dispose()


def test_outbox_only_counts_nothing_as_introduced_until_an_officer_marks_it_sent(world, db_url, run):
    inbox, outbox = world
    result = nightly(db_url, inbox, outbox)
    assert result.returncode == 0, result.stderr
    digests = state(db_url, outbox)["digests"]
    assert f"0 delivered, {len(digests)} in the outbox awaiting `broker digest mark-sent`" in result.stdout
    assert "0 pending" not in result.stdout
    shown = run("digest", "show", digests[0][0], "--outbox", str(outbox), "--json")
    assert '"status": "pending"' in shown.output  # the summary and `digest show` agree
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        assert s.scalars(select(TargetEntry).where(TargetEntry.stage == "introduced")).all() == []
    marked = run("digest", "mark-sent", "--all-pending", "--as-of", AS_OF, "--note", "sent by hand")
    assert marked.exit_code == 0 and f"{len(digests)} digests marked sent" in marked.output
    with session_factory(engine)() as s:
        causes = set(s.scalars(select(TargetEntry.cause).where(TargetEntry.stage == "introduced")))
    engine.dispose()
    assert causes == {f"digest:{d[0]}" for d in digests}
    # Nothing confirmed interest yet: the headline is £0 and the introductions are the pipeline.
    doc = json.loads(run("target", "--as-of", AS_OF, "--json").output)
    assert (doc["counting_stage"], doc["counted_opportunities"]) == ("interested", 0)
    assert doc["pipeline"]["stage"] == "introduced" and doc["pipeline"]["opportunities"] > 0
    # Every counted pound names its evidence: here the officer's mark-sent, and then an interested outcome.
    cfg = outbox.parent / "introduced.toml"
    cfg.write_text('counting_stage = "introduced"\n', encoding="utf-8")
    doc = json.loads(run("target", "--as-of", AS_OF, "--explain", "--json", "--config", str(cfg)).output)
    assert doc["evidence"] and all("marked sent by an officer on 2020-04-16 (sent by hand)" in r["evidence"]
                                   for r in doc["evidence"])
    opp, party = doc["evidence"][0]["opportunity_id"], doc["evidence"][0]["party_id"]
    assert run("outcome", "record", opp, party, "--stage", "interested", "--date", AS_OF).exit_code == 0
    doc = json.loads(run("target", "--as-of", AS_OF, "--explain", "--json").output)
    assert [(r["opportunity_id"], r["party_id"], r["stage"]) for r in doc["evidence"]] == [(opp, party, "interested")]
    assert doc["evidence"][0]["evidence"].startswith("officer entry #")


def test_a_kill_between_matching_and_counting_credits_the_run_that_matched(world, db_url):
    inbox, outbox = world
    assert nightly(db_url, inbox, outbox, kill_at="after_match").returncode == -signal.SIGKILL
    rerun = nightly(db_url, inbox, outbox)
    assert rerun.returncode == 0, rerun.stderr
    assert "nothing new since run-000001 (no run recorded)" in rerun.stdout
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        causes = set(s.scalars(select(TargetEntry.cause).where(TargetEntry.stage == "matched")))
        runs = s.scalars(select(MatchRun.id)).all()
    engine.dispose()
    assert causes == {"run:run-000001"} and runs == ["run-000001"]


def test_a_second_run_while_the_first_holds_the_lock_exits_with_a_clear_message(world, db_url):
    inbox, outbox = world
    engine = make_engine(db_url)
    try:
        with exclusive(engine):
            result = nightly(db_url, inbox, outbox)
    finally:
        engine.dispose()
    assert result.returncode == 75  # "skipped", which cron can tell from "failed" (1)
    assert result.stderr.startswith("Error: skipped: another broker run holds the lock on ")
    assert "wait for it to finish, or run again with --wait SECONDS" in result.stderr
    assert (inbox / CSV.name).exists()  # nothing was touched


def test_quarantined_input_exits_4_and_moves_the_file(world, db_url):
    inbox, outbox = world
    (inbox / "notes.txt").write_text("not an opportunity file\n", encoding="utf-8")
    result = nightly(db_url, inbox, outbox)
    assert result.returncode == 4, result.stderr
    assert (inbox / "quarantine" / "notes.txt").exists()
    assert "unknown format" in (inbox / "quarantine" / "notes.txt.reason.txt").read_text(encoding="utf-8")
