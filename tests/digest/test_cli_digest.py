"""The digest, feedback and preferences commands, end to end against a local SMTP server."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from digest_world import World

from broker.cli.digest import _ledger_hook


class Inbox:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.received.append(envelope.original_content)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(world: World) -> None:
    world.vcse("V1", name="Ward End Trust")
    world.vcse("V2", opt_in=False)
    for oid in ("O1", "O2"):
        world.opportunity(oid)
        world.match(oid, "V1", 70)
        world.match(oid, "V2", 70)
    world.commit()


def test_build_show_send_and_rerun(world: World, run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    setup(world)
    outbox = str(tmp_path / "outbox")
    first = run("digest", "build", "--as-of", "2025-01-16", "--outbox", outbox, "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    assert [(d["recipient_id"], d["items"], d["new"]) for d in data["digests"]] == [("V1", 2, True)]
    assert data["skipped"] == []  # V2 opted out: not a problem to report
    again = json.loads(run("digest", "build", "--as-of", "2025-01-16", "--outbox", outbox, "--json").output)
    assert [d["new"] for d in again["digests"]] == [False]
    text = run("digest", "build", "--as-of", "2025-01-16", "--outbox", outbox)
    assert "1 digests for 2025-01-16 (0 new), 0 recipients skipped." in text.output
    digest_id = data["digests"][0]["id"]
    shown = json.loads(run("digest", "show", digest_id, "--json").output)
    assert [i["opportunity_id"] for i in shown["items"]] == ["O1", "O2"] and shown["status"] == "pending"
    by_ref = json.loads(run("digest", "show", shown["items"][1]["reference"].lower(), "--json").output)
    assert by_ref["id"] == digest_id

    port = free_port()
    refused = run("digest", "send", "--as-of", "2025-01-16", "--outbox", outbox, "--smtp", f"127.0.0.1:{port}",
                  "--max-attempts", "1")
    assert refused.exit_code == 1
    assert "still pending" in refused.output and "ConnectionRefusedError" in refused.output
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        sent = run("digest", "send", "--as-of", "2025-01-17", "--outbox", outbox, "--smtp", f"127.0.0.1:{port}",
                   "--json")
        assert sent.exit_code == 0, sent.output
        assert json.loads(sent.output)["delivered"] == [digest_id]
        assert run("digest", "send", "--outbox", outbox, "--smtp", f"127.0.0.1:{port}",
                   "--as-of", "2025-01-17").exit_code == 0
    finally:
        controller.stop()
    assert len(inbox.received) == 1
    log = json.loads(run("digest", "show", digest_id, "--json").output)["deliveries"]
    assert [(d["attempt"], d["status"]) for d in log] == [(1, "failed"), (2, "sent")]


def test_feedback_commands(world: World, run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    setup(world)
    world.opportunity("O3")
    world.match("O3", "V1", 70)
    world.commit()
    result = run("feedback", "V1", "O3", "--not-relevant", "--reason", "not our area", "--as-of", "2025-01-16")
    assert result.exit_code == 0 and "not relevant recorded" in result.output
    again = run("feedback", "V1", "O3", "--not-relevant", "--as-of", "2025-01-16")
    assert "already recorded" in again.output
    outbox = str(tmp_path / "outbox")
    built = json.loads(run("digest", "build", "--as-of", "2025-01-16", "--outbox", outbox, "--json").output)
    assert built["digests"][0]["opportunity_ids"] == ["O1", "O2"]
    ref = json.loads(run("digest", "show", built["digests"][0]["id"], "--json").output)["items"][0]["reference"]
    interested = run("feedback", "--ref", ref, "--interested", "--json", "--as-of", "2025-01-16")
    assert interested.exit_code == 0, interested.output
    assert json.loads(interested.output) == {
        "party_id": "V1", "opportunity_id": "O1", "kind": "interested", "reason": None, "as_of": "2025-01-16",
        "reference": ref, "new": True}
    assert run("feedback", "V1", "O1").exit_code == 2  # no kind
    assert run("feedback", "V1", "--interested").exit_code == 2  # no opportunity
    assert run("feedback", "V1", "NOPE", "--interested").exit_code == 1
    assert run("feedback", "--ref", "AAAA-AAAA-AAAA", "--interested").exit_code == 1


def test_preferences_commands(world: World, run) -> None:  # type: ignore[no-untyped-def]
    setup(world)
    result = run("preferences", "set", "V2", "--opt-in", "--cap", "5", "--min-score", "60", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["effective"] == {"opt_in": True, "opt_in_source": "preference",
                                                      "digest_cap": 5, "min_score": 60}
    result = run("preferences", "set", "V2", "--cap", "default", "--directory-opt-in")
    assert "digests off (from the directory), at most 10 items, minimum score 60." in result.output
    listed = json.loads(run("preferences", "show", "--json").output)
    assert listed == [{"party_id": "V2", "opt_in": None, "digest_cap": None, "min_score": 60}]
    assert run("preferences", "set", "V2", "--reset").exit_code == 0
    assert json.loads(run("preferences", "show", "V2", "--json").output)["stored"] is None
    assert run("preferences", "set", "V2").exit_code == 2  # nothing to set
    assert run("preferences", "set", "V2", "--cap", "0").exit_code == 1
    assert run("preferences", "set", "V2", "--cap", "lots").exit_code == 2
    assert run("preferences", "set", "NOPE", "--opt-out").exit_code == 1


def test_send_needs_the_password_variable(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("BROKER_TEST_NO_SUCH_VAR", raising=False)
    result = run("digest", "send", "--outbox", str(tmp_path), "--smtp", "mail.example.org:587", "--starttls",
                 "--smtp-user", "u", "--smtp-password-env", "BROKER_TEST_NO_SUCH_VAR")
    assert result.exit_code == 1 and "BROKER_TEST_NO_SUCH_VAR" in result.output
    result = run("digest", "send", "--outbox", str(tmp_path), "--smtp", "mail.example.org:bad")
    assert result.exit_code == 1 and "the port must be a number (HOST:PORT)" in result.output


def test_ledger_hooks_are_optional_until_the_target_ledger_exists() -> None:
    hook = _ledger_hook("record_introduced")
    try:
        import broker.target.ledger  # noqa: F401
    except ModuleNotFoundError:
        assert hook is None
    else:
        assert callable(hook)
