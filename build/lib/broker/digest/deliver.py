"""Deliver built digests over SMTP, with retries, a delivery log and no second sending.

Every digest still ``pending`` (tonight's, and earlier nights' whose sending failed) is sent as the
exact bytes of its ``.eml`` file, retried within the run with exponential back-off, and otherwise left
pending for the next night. Each attempt is logged (``digest_deliveries``) and committed at once.

Delivery is at-least-once, not exactly-once: there is one unavoidable window between the SMTP server
accepting the message (the reply to DATA) and our commit marking the digest delivered. A run killed, or
a database failing, inside that window sends the digest again on the next run. The window is one
commit long; the Message-ID is the same both times (it derives from the digest id), which lets mail
clients and many servers drop the duplicate. Outside that window a digest marked delivered is never
selected again. Runs must not overlap (the nightly job runs them one after another).
"""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from broker.digest.build import materialise
from broker.digest.preferences import effective
from broker.errors import ConfigError
from broker.store.models import Digest, DigestDelivery, DigestPreference, Vcse

ERROR_MAX = 500


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send: ``--smtp HOST:PORT [--starttls | --ssl] [--smtp-user U --smtp-password-env V]``."""

    host: str
    port: int = 25
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    implicit_tls: bool = False  # SMTPS, usually port 465 (``--ssl``)
    timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def validate(self) -> None:
        """Refuse settings that cannot work or would send a password in clear over the network."""
        if not self.host or not 0 < self.port < 65536:
            raise ConfigError(f"bad SMTP server {self.host!r}:{self.port}")
        if self.starttls and self.implicit_tls:
            raise ConfigError("choose STARTTLS or implicit TLS (--ssl), not both")
        if self.user and self.password is None:
            raise ConfigError("an SMTP user needs a password (--smtp-password-env VAR names the variable)")
        if self.user and not (self.starttls or self.implicit_tls) and not _loopback(self.host):
            raise ConfigError(f"refusing to send the SMTP password in clear to {self.host}: use --starttls or --ssl")

    def context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_host_port(text: str, default_port: int = 25) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST`` or ``[IPv6]:PORT`` as (host, port); raises ``ConfigError`` otherwise."""
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ConfigError(f"--smtp {text!r}: the port must be a number (HOST:PORT)") from None
    if not host or not 0 < port < 65536:
        raise ConfigError(f"--smtp {text!r}: expected HOST:PORT")
    return host, port


@dataclass
class DeliveryReport:
    """What one delivery run did. ``pending`` and ``rejected`` carry the last error text."""

    delivered: list[str] = field(default_factory=list)
    pending: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    attempts: int = 0


class _ConnectFailed(Exception):
    """Could not reach, greet, secure or log in to the server: no digest can go this run."""


class _Client:
    """One SMTP connection, opened when first needed and re-opened after a failure."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        smtp: smtplib.SMTP | None = None
        try:
            if s.implicit_tls:
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=s.context())
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            smtp.ehlo()
            if s.starttls:
                smtp.starttls(context=s.context())
                smtp.ehlo()
            if s.user:
                smtp.login(s.user, s.password or "")
        except (OSError, smtplib.SMTPException) as exc:
            if smtp is not None:
                smtp.close()
            raise _ConnectFailed(describe(exc)) from exc
        return smtp

    def send(self, sender: str, recipient: str, data: bytes) -> None:
        if self.smtp is None:
            self.smtp = self._open()
        self.smtp.sendmail(sender, [recipient], data)

    def reset(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
            finally:
                self.smtp.close()
                self.smtp = None


def describe(exc: BaseException) -> str:
    """An error as one bounded line of text for the log."""
    if isinstance(exc, smtplib.SMTPResponseException):
        msg = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        text = f"{type(exc).__name__}: {exc.smtp_code} {msg}"
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        text = f"SMTPRecipientsRefused: {sorted((code, str(m)) for code, m in exc.recipients.values())}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:ERROR_MAX]


def permanent(exc: BaseException) -> bool:
    """A 5xx refusal of this message or its recipient: retrying the same bytes will not help."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPDataError) and 500 <= exc.smtp_code < 600


def server_wide(exc: BaseException) -> bool:
    """A failure no other digest would escape this run: unreachable server, bad login, sender refused.

    (A refused sender, e.g. ``530 Must issue a STARTTLS command first``, is a setting, not a message.)
    """
    return isinstance(exc, (_ConnectFailed, smtplib.SMTPSenderRefused))


def _utcnow() -> datetime:
    return datetime.now(UTC)  # wall clock: delivery-log metadata only, never a decision


@dataclass
class _Run:
    session: Session
    outbox: Path
    client: _Client
    as_of: str
    max_attempts: int
    backoff_seconds: float
    sleep: Callable[[float], None]
    clock: Callable[[], datetime]
    report: DeliveryReport = field(default_factory=DeliveryReport)
    unreachable: str | None = None  # set on a server-wide failure: the remaining digests wait

    def log(self, digest: Digest, status: str, error: str | None) -> None:
        digest.attempts += 1
        self.report.attempts += 1
        self.session.add(DigestDelivery(digest_id=digest.id, attempt=digest.attempts, status=status, error=error,
                                        as_of=self.as_of, logged_at=self.clock()))
        digest.last_error = error

    def deliver_one(self, digest: Digest, sender: str) -> None:
        """Send one digest from ``sender`` (its From address), retrying with back-off; commit after every attempt."""
        data = materialise(self.outbox, digest)
        for attempt in range(self.max_attempts):
            try:
                self.client.send(sender, digest.to_address, data)
            except (_ConnectFailed, OSError, smtplib.SMTPException) as exc:
                self.client.reset()
                error = str(exc) if isinstance(exc, _ConnectFailed) else describe(exc)
                if permanent(exc):
                    self.log(digest, "rejected", error)
                    digest.status = "rejected"
                    self.session.commit()
                    self.report.rejected.append((digest.id, error))
                    return
                self.log(digest, "failed", error)
                self.session.commit()
                if attempt + 1 < self.max_attempts:
                    self.sleep(self.backoff_seconds * 2 ** attempt)
                elif server_wide(exc):
                    self.unreachable = error
            else:
                # At-least-once window: the server has the message; until this commit it counts as unsent.
                self.log(digest, "sent", None)
                digest.status, digest.delivered_as_of, digest.delivered_at = "delivered", self.as_of, self.clock()
                self.session.commit()
                self.report.delivered.append(digest.id)
                return
        self.report.pending.append((digest.id, digest.last_error or ""))


def deliver(session: Session, outbox: Path, smtp: SmtpSettings, *, as_of: date, max_attempts: int = 3,
            backoff_seconds: float = 2.0, sleep: Callable[[float], None] = time.sleep,
            clock: Callable[[], datetime] = _utcnow, retry_rejected: bool = False) -> DeliveryReport:
    """Send every undelivered digest of ``as_of`` or earlier, oldest night first.

    A transient failure (connection refused, timeout, 4xx) is retried up to ``max_attempts`` times
    with back-off ``backoff_seconds * 2**n`` (``sleep`` is injectable for tests), then left pending
    for the next run; when the server cannot be reached at all, the remaining digests are not tried
    this run and stay pending. A 5xx refusal marks the digest ``rejected`` (retried only with
    ``retry_rejected``). A recipient who opted out since the digest was built gets nothing (the
    digest is ``cancelled``). Commits after every attempt. See the module docstring for the
    at-least-once window.

    Raises:
        ConfigError: unusable SMTP settings.
    """
    smtp.validate()
    if max_attempts < 1:
        raise ConfigError("max_attempts must be at least 1")
    statuses = ("pending", "rejected") if retry_rejected else ("pending",)
    as_of_s = as_of.isoformat()
    # Payloads stay in the database unless a file must be rendered again (a backlog can be large).
    digests = session.execute(select(Digest, Digest.payload["sender"]["address"].as_string())
                              .options(defer(Digest.payload))
                              .where(Digest.status.in_(statuses), Digest.as_of <= as_of_s)
                              .order_by(Digest.as_of, Digest.recipient_id)).all()
    run = _Run(session, Path(outbox), _Client(smtp), as_of_s, max_attempts, backoff_seconds, sleep, clock)
    try:
        for digest, sender in digests:
            if not _still_opted_in(session, digest.recipient_id):
                digest.status, digest.last_error = "cancelled", "the recipient opted out before delivery"
                session.commit()
                run.report.cancelled.append(digest.id)
            elif run.unreachable is not None:
                digest.last_error = f"not attempted this run: {run.unreachable}"
                run.report.pending.append((digest.id, digest.last_error))
            else:
                run.deliver_one(digest, sender)
        session.commit()
    finally:
        run.client.reset()
    return run.report


def _still_opted_in(session: Session, recipient_id: str) -> bool:
    """Contact details go only to opted-in recipients (BRIEF, Security): checked again at sending."""
    vcse = session.get(Vcse, recipient_id)
    return vcse is not None and effective(vcse, session.get(DigestPreference, recipient_id)).opt_in


def delivery_log(session: Session, digest_id: str | None = None) -> list[dict[str, object]]:
    """The delivery log (optionally for one digest), in order."""
    stmt = select(DigestDelivery).order_by(DigestDelivery.digest_id, DigestDelivery.attempt)
    if digest_id is not None:
        stmt = stmt.where(DigestDelivery.digest_id == digest_id)
    return [{"digest_id": d.digest_id, "attempt": d.attempt, "status": d.status, "error": d.error,
             "as_of": d.as_of, "logged_at": d.logged_at.isoformat()} for d in session.scalars(stmt)]
