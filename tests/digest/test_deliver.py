"""Delivery to a real SMTP server (aiosmtpd) on 127.0.0.1: once, retried, logged, never twice."""

from __future__ import annotations

import shutil
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from digest_world import AS_OF, World
from sqlalchemy import select

from broker.digest import SmtpSettings, build_digests, deliver, parse_host_port, set_preferences
from broker.digest.deliver import delivery_log
from broker.errors import ConfigError
from broker.store.models import Digest

NEXT = AS_OF + timedelta(days=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Recorder:
    """An aiosmtpd handler that keeps what it receives and can refuse on demand."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.refuse: set[str] = set()
        self.busy = 0  # answer DATA with 451 this many times

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.busy:
            self.busy -= 1
            return "451 4.3.0 Try again later"
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "data": envelope.original_content,
                              "login": session.auth_data.login if session.authenticated else None,
                              "tls": session.ssl is not None  # after STARTTLS
                              or server.transport.get_extra_info("ssl_object") is not None})  # implicit TLS
        return "250 OK"


class Server:
    """Starts and stops aiosmtpd on 127.0.0.1 at a fixed port (so a test can start it later)."""

    def __init__(self, port: int, **smtp_kwargs: Any) -> None:
        self.port = port
        self.handler = Recorder()
        self.kwargs = smtp_kwargs
        self.controller: Controller | None = None

    def start(self) -> Server:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **self.kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.handler.messages


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server(free_port()).start()
    yield srv
    srv.stop()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def two_digests(world: World) -> list[Any]:
    world.vcse("V1")
    world.vcse("V2")
    world.opportunity("O1")
    world.match("O1", "V1", 60)
    world.match("O1", "V2", 60)
    world.commit()
    return list(build_digests(world.session, as_of=AS_OF, outbox=world.outbox))


def statuses(world: World) -> dict[str, tuple[str, int]]:
    world.session.expire_all()
    return {d.recipient_id: (d.status, d.attempts) for d in world.session.scalars(select(Digest))}


def test_delivers_the_exact_files_once(world: World, server: Server) -> None:
    built = two_digests(world)
    smtp = SmtpSettings("127.0.0.1", server.port)
    report = deliver(world.session, world.outbox, smtp, as_of=AS_OF, sleep=Sleeps())
    assert sorted(report.delivered) == sorted(d.digest_id for d in built)
    assert report.pending == [] and report.attempts == 2
    got = {m["to"][0]: m for m in server.messages}
    assert sorted(got) == ["v1@example.net", "v2@example.net"]
    assert not any(m["tls"] or m["login"] for m in server.messages)  # plain SMTP, no login
    for d in built:
        m = got[d.to_address]
        assert m["from"] == "brokerage@example.org"
        assert m["data"].rstrip(b"\r\n") == d.path.read_bytes().rstrip(b"\r\n")
    assert statuses(world) == {"V1": ("delivered", 1), "V2": ("delivered", 1)}
    assert [(r["attempt"], r["status"], r["error"], r["as_of"]) for r in delivery_log(world.session)] == [
        (1, "sent", None, "2025-01-16")] * 2
    # Re-running the night (or any later night) sends nothing again.
    again = deliver(world.session, world.outbox, smtp, as_of=AS_OF)
    later = deliver(world.session, world.outbox, smtp, as_of=NEXT)
    assert again.delivered == later.delivered == [] and again.attempts == later.attempts == 0
    assert len(server.messages) == 2


def test_refused_connection_stays_pending_then_goes_out_next_night(world: World) -> None:
    built = two_digests(world)
    port = free_port()  # nothing listens here yet
    smtp = SmtpSettings("127.0.0.1", port, timeout=5)
    sleeps = Sleeps()
    report = deliver(world.session, world.outbox, smtp, as_of=AS_OF, sleep=sleeps, max_attempts=3)
    assert report.delivered == [] and len(report.pending) == 2
    assert sleeps == [2.0, 4.0]  # back-off between the three tries; the second digest is not tried
    assert statuses(world) == {"V1": ("pending", 3), "V2": ("pending", 0)}
    log = delivery_log(world.session)
    assert [(r["attempt"], r["status"]) for r in log] == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert all("ConnectionRefusedError" in (r["error"] or "") for r in log)
    second = world.session.get(Digest, built[1].digest_id)
    assert second is not None and (second.last_error or "").startswith("not attempted this run: ")
    # Next night: a new match, and the server is up. Everything still pending goes, oldest first.
    world.opportunity("O2")
    world.match("O2", "V1", 70)
    world.commit()
    tonight = build_digests(world.session, as_of=NEXT, outbox=world.outbox)
    srv = Server(port).start()
    try:
        report = deliver(world.session, world.outbox, smtp, as_of=NEXT, sleep=Sleeps())
        assert report.delivered == [built[0].digest_id, built[1].digest_id, tonight[0].digest_id]
        assert len(srv.messages) == 3
        assert deliver(world.session, world.outbox, smtp, as_of=NEXT).delivered == []
        assert len(srv.messages) == 3
    finally:
        srv.stop()
    first_log = delivery_log(world.session, built[0].digest_id)
    assert [(r["attempt"], r["status"], r["as_of"]) for r in first_log][-1] == (4, "sent", "2025-01-17")


def test_a_busy_server_is_retried_within_the_run(world: World, server: Server) -> None:
    world.vcse("V1")
    world.opportunity("O1")
    world.match("O1", "V1", 60)
    world.commit()
    build_digests(world.session, as_of=AS_OF, outbox=world.outbox)
    server.handler.busy = 1
    sleeps = Sleeps()
    report = deliver(world.session, world.outbox, SmtpSettings("127.0.0.1", server.port), as_of=AS_OF,
                     sleep=sleeps, backoff_seconds=0.5)
    assert len(report.delivered) == 1 and sleeps == [0.5]
    log = delivery_log(world.session)
    assert [(r["attempt"], r["status"]) for r in log] == [(1, "failed"), (2, "sent")]
    assert "451" in (log[0]["error"] or "")
    assert len(server.messages) == 1


def test_a_refused_recipient_is_rejected_not_retried(world: World, server: Server) -> None:
    two_digests(world)
    server.handler.refuse.add("v2@example.net")
    smtp = SmtpSettings("127.0.0.1", server.port)
    sleeps = Sleeps()
    report = deliver(world.session, world.outbox, smtp, as_of=AS_OF, sleep=sleeps)
    assert len(report.delivered) == 1 and len(report.rejected) == 1 and sleeps == []
    assert "550" in report.rejected[0][1]
    assert statuses(world) == {"V1": ("delivered", 1), "V2": ("rejected", 1)}
    # Not retried by later runs unless asked.
    assert deliver(world.session, world.outbox, smtp, as_of=NEXT).attempts == 0
    server.handler.refuse.clear()
    report = deliver(world.session, world.outbox, smtp, as_of=NEXT, retry_rejected=True)
    assert len(report.delivered) == 1 and statuses(world)["V2"] == ("delivered", 2)
    assert len(server.messages) == 2


# aiosmtpd warns about AUTH without TLS; this server is on the loopback interface only.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_login(world: World) -> None:
    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = isinstance(auth_data, LoginPassword) and auth_data == (b"broker", b"s3cret")
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    srv = Server(free_port(), authenticator=authenticator, auth_require_tls=False, auth_required=True).start()
    try:
        two_digests(world)
        bad = SmtpSettings("127.0.0.1", srv.port, user="broker", password="wrong")
        report = deliver(world.session, world.outbox, bad, as_of=AS_OF, sleep=Sleeps(), max_attempts=2)
        assert report.delivered == [] and len(report.pending) == 2
        assert "SMTPAuthenticationError" in report.pending[0][1] and srv.messages == []
        good = SmtpSettings("127.0.0.1", srv.port, user="broker", password="s3cret")
        report = deliver(world.session, world.outbox, good, as_of=AS_OF, sleep=Sleeps())
        assert len(report.delivered) == 2
        assert [m["login"] for m in srv.messages] == [b"broker", b"broker"]
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: cannot make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_starttls_with_auth(world: World, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))

    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        return AuthResult(success=auth_data == (b"broker", b"s3cret"), handled=False, auth_data=auth_data)

    srv = Server(free_port(), tls_context=server_ctx, require_starttls=True, authenticator=authenticator,
                 auth_required=True).start()
    try:
        two_digests(world)
        plain = SmtpSettings("127.0.0.1", srv.port)
        report = deliver(world.session, world.outbox, plain, as_of=AS_OF, sleep=Sleeps(), max_attempts=1)
        assert report.delivered == [] and len(report.pending) == 2  # the server insists on STARTTLS
        assert "530" in report.pending[0][1]
        untrusted = SmtpSettings("127.0.0.1", srv.port, starttls=True, user="broker", password="s3cret")
        report = deliver(world.session, world.outbox, untrusted, as_of=AS_OF, sleep=Sleeps(), max_attempts=1)
        assert report.delivered == [] and "CERTIFICATE_VERIFY_FAILED" in report.pending[0][1]
        tls = SmtpSettings("127.0.0.1", srv.port, starttls=True, user="broker", password="s3cret",
                           ssl_context=client_ctx)
        report = deliver(world.session, world.outbox, tls, as_of=AS_OF, sleep=Sleeps())
        assert len(report.delivered) == 2
        assert all(m["tls"] and m["login"] == b"broker" for m in srv.messages)
    finally:
        srv.stop()


def test_implicit_tls(world: World, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    srv = Server(free_port(), ssl_context=server_ctx).start()
    try:
        two_digests(world)
        smtps = SmtpSettings("127.0.0.1", srv.port, implicit_tls=True,
                             ssl_context=ssl.create_default_context(cafile=str(cert)))
        report = deliver(world.session, world.outbox, smtps, as_of=AS_OF, sleep=Sleeps())
        assert len(report.delivered) == 2 and all(m["tls"] for m in srv.messages)
    finally:
        srv.stop()


def test_opted_out_before_sending_gets_nothing(world: World, server: Server) -> None:
    two_digests(world)
    set_preferences(world.session, "V2", opt_in=False)
    world.commit()
    report = deliver(world.session, world.outbox, SmtpSettings("127.0.0.1", server.port), as_of=AS_OF)
    assert len(report.delivered) == 1 and len(report.cancelled) == 1
    assert [m["to"] for m in server.messages] == [["v1@example.net"]]
    assert statuses(world)["V2"] == ("cancelled", 0)


def test_a_lost_file_is_rendered_again_and_sent_unchanged(world: World, server: Server) -> None:
    built = two_digests(world)
    original = built[0].path.read_bytes()
    built[0].path.unlink()
    deliver(world.session, world.outbox, SmtpSettings("127.0.0.1", server.port), as_of=AS_OF)
    sent = next(m for m in server.messages if m["to"] == [built[0].to_address])
    assert sent["data"].rstrip(b"\r\n") == original.rstrip(b"\r\n")
    assert built[0].path.read_bytes() == original


def test_digests_of_later_nights_are_not_sent_early(world: World, server: Server) -> None:
    two_digests(world)
    report = deliver(world.session, world.outbox, SmtpSettings("127.0.0.1", server.port),
                     as_of=AS_OF - timedelta(days=1))
    assert report.attempts == 0 and server.messages == []


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="in clear"):
        SmtpSettings("mail.example.org", 25, user="u", password="p").validate()
    with pytest.raises(ConfigError, match="password"):
        SmtpSettings("127.0.0.1", 25, user="u").validate()
    with pytest.raises(ConfigError, match="not both"):
        SmtpSettings("mail.example.org", 465, starttls=True, implicit_tls=True).validate()
    SmtpSettings("mail.example.org", 587, user="u", password="p", starttls=True).validate()
    SmtpSettings("::1", 25, user="u", password="p").validate()
    assert parse_host_port("mail.example.org:587") == ("mail.example.org", 587)
    assert parse_host_port("mail.example.org") == ("mail.example.org", 25)
    assert parse_host_port("[::1]:2525") == ("::1", 2525)
    for bad in ("host:port", "host:0", ":25", "host:99999"):
        with pytest.raises(ConfigError):
            parse_host_port(bad)


def test_smtplib_is_what_refuses(world: World) -> None:
    """Guard: the errors classified above are the ones smtplib really raises."""
    assert issubclass(smtplib.SMTPAuthenticationError, smtplib.SMTPResponseException)
    assert not issubclass(smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException)
