"""Deliver built digests over SMTP, with retries, a time budget, a delivery log and no second sending.

Every digest still ``pending`` (tonight's, and earlier nights' whose sending failed) is sent as the
exact bytes of its ``.eml`` file, retried within the run with exponential back-off, and otherwise left
pending for the next night. Each attempt is logged (``digest_deliveries``) and committed at once.

A digest is *delivered* when the server accepts it (the reply to the end of DATA) or when an officer marks
it sent (outbox-only mode, ``mark_sent``); only then are its items recorded as introduced, through the
``delivered`` callback, in the same transaction that marks it delivered. A digest built but not delivered
is pipeline, not brokerage.

Never a second copy of a message the server may have: the digest is marked ``sending`` (and committed)
before any byte of an attempt goes out. When the whole message went out and no reply came (the server closed the
connection or timed out after the end of DATA), or a run stopped during an attempt and left ``sending``
behind, the digest becomes ``unconfirmed``: logged, never resent automatically, for an officer to
``mark_sent`` (the VCSE got it) or resend on purpose (same bytes, same Message-ID, so clients drop a
duplicate). A run also stops trying, leaving the rest pending, when its time budget is spent or when
several digests in a row fail, so a server that drops every message cannot hold the night up.
Runs must not overlap (the nightly job runs them one after another).
"""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from broker.digest.build import materialise
from broker.digest.preferences import effective
from broker.errors import BrokerError, ConfigError
from broker.store.models import Digest, DigestDelivery, DigestItem, DigestPreference, Vcse

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
    budget_seconds: float = 300.0  # the whole delivery run: what is left after that waits for the next run
    max_failing_digests: int = 3  # this many digests in a row failing transiently: the server is failing
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
        if not self.budget_seconds > 0 or self.max_failing_digests < 1:
            raise ConfigError("the delivery time budget must be positive and max_failing_digests at least 1")

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
    unconfirmed: list[tuple[str, str]] = field(default_factory=list)  # the server may have it: not resent
    attempts: int = 0
    stopped: str | None = None  # why the run stopped trying before the end (budget, failing server)


class _ConnectFailed(Exception):
    """Could not reach, greet, secure or log in to the server: no digest can go this run."""


class _Unconfirmed(Exception):
    """The whole message went out and no final reply came: the server may have taken it."""


class _Tracking:
    """Mixin for ``smtplib.SMTP``: notes when the end of DATA (the lone ``.``) has been sent."""

    body_sent = False
    _in_data = False

    def data(self, msg):  # type: ignore[no-untyped-def]
        self._in_data, self.body_sent = True, False
        try:
            return super().data(msg)  # type: ignore[misc]
        finally:
            self._in_data = False

    def send(self, s):  # type: ignore[no-untyped-def]
        super().send(s)  # type: ignore[misc]
        if self._in_data and isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.body_sent = True  # from here on, a lost reply may hide an accepted message


class _SMTP(_Tracking, smtplib.SMTP):
    pass


class _SMTPS(_Tracking, smtplib.SMTP_SSL):
    pass


class _Client:
    """One SMTP connection, opened when first needed and re-opened after a failure."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.smtp: _SMTP | _SMTPS | None = None

    def _open(self) -> _SMTP | _SMTPS:
        s = self.settings
        smtp: _SMTP | _SMTPS | None = None
        try:
            if s.implicit_tls:
                smtp = _SMTPS(s.host, s.port, timeout=s.timeout, context=s.context())
            else:
                smtp = _SMTP(s.host, s.port, timeout=s.timeout)
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
        """Send one message; ``_Unconfirmed`` when it all went out but no final reply came."""
        if self.smtp is None:
            self.smtp = self._open()
        smtp = self.smtp
        smtp.body_sent = False
        try:
            smtp.sendmail(sender, [recipient], data)
        except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused):
            raise  # the server replied: its answer decides
        except OSError as exc:  # a disconnect (SMTPServerDisconnected) or a socket error or timeout
            if smtp.body_sent:
                raise _Unconfirmed(f"the message went out but no reply came after DATA ({describe(exc)})") from exc
            raise

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


class DeliveredCallback(Protocol):
    """The target ledger's hook (``broker.target.ledger.record_introduced_many``): must not commit."""

    def __call__(self, session: Session, pairs: list[tuple[str, str]], *, cause: str, as_of: date) -> Any: ...


def _items(session: Session, digest_id: str) -> list[tuple[str, str]]:
    """The digest's ``(opportunity id, matched party id)`` pairs, in the order they appear."""
    return [(o, p) for o, p in session.execute(select(DigestItem.opportunity_id, DigestItem.party_id)
                                               .where(DigestItem.digest_id == digest_id).order_by(DigestItem.position))]


def _log(session: Session, digest: Digest, status: str, error: str | None, as_of: str,
         clock: Callable[[], datetime]) -> None:
    """Append to the delivery log (never updated: an interrupted attempt gets an entry of its own later)."""
    digest.attempts += 1
    digest.last_error = error
    session.add(DigestDelivery(digest_id=digest.id, attempt=digest.attempts, status=status, error=error,
                               as_of=as_of, logged_at=clock()))


def _mark_delivered(session: Session, digest: Digest, as_of: str, clock: Callable[[], datetime],
                    delivered: DeliveredCallback | None) -> None:
    """The digest is delivered: its items are introduced (the caller commits both together)."""
    digest.status, digest.delivered_as_of, digest.delivered_at = "delivered", as_of, clock()
    if delivered is not None:
        delivered(session, _items(session, digest.id), cause=f"digest:{digest.id}", as_of=date.fromisoformat(as_of))


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
    delivered: DeliveredCallback | None
    deadline: float
    monotonic: Callable[[], float]
    max_failing: int
    report: DeliveryReport = field(default_factory=DeliveryReport)
    unreachable: str | None = None  # set on a server-wide failure, a spent budget or a failing server
    failing_in_a_row: int = 0

    def log(self, digest: Digest, status: str, error: str | None) -> None:
        self.report.attempts += 1
        _log(self.session, digest, status, error, self.as_of, self.clock)

    def _out_of_time(self, pause: float = 0.0) -> bool:
        """Whether the run's budget is spent (or would be, after a pause); then nothing more is tried."""
        if self.monotonic() + pause < self.deadline:
            return False
        self.unreachable = self.report.stopped = "the delivery time budget for this run was used up"
        return True

    def deliver_one(self, digest: Digest, sender: str) -> None:
        """Send one digest from ``sender`` (its From address), retrying with back-off; commit after every attempt."""
        data = materialise(self.outbox, digest)
        for attempt in range(self.max_attempts):
            if self._out_of_time():
                break
            digest.status = "sending"
            self.session.commit()  # from here on the server may get the message: never send it blind again
            try:
                self.client.send(sender, digest.to_address, data)
            except _Unconfirmed as exc:
                self.client.reset()
                self.log(digest, "unconfirmed", str(exc))
                digest.status = "unconfirmed"
                self.session.commit()
                self.report.unconfirmed.append((digest.id, str(exc)))
                self._failed_in_a_row()
                return
            except (_ConnectFailed, OSError, smtplib.SMTPException) as exc:
                self.client.reset()
                error = str(exc) if isinstance(exc, _ConnectFailed) else describe(exc)
                if permanent(exc):
                    self.log(digest, "rejected", error)
                    digest.status = "rejected"
                    self.session.commit()
                    self.report.rejected.append((digest.id, error))
                    self.failing_in_a_row = 0
                    return
                self.log(digest, "failed", error)
                digest.status = "pending"
                self.session.commit()
                if server_wide(exc) and attempt + 1 >= self.max_attempts:
                    self.unreachable = error
                elif attempt + 1 < self.max_attempts:
                    pause = self.backoff_seconds * 2 ** attempt
                    if self._out_of_time(pause):
                        break
                    self.sleep(pause)
            else:
                self.log(digest, "sent", None)
                _mark_delivered(self.session, digest, self.as_of, self.clock, self.delivered)
                self.session.commit()
                self.report.delivered.append(digest.id)
                self.failing_in_a_row = 0
                return
        self._still_pending(digest)

    def _still_pending(self, digest: Digest) -> None:
        digest.status = "pending"
        self.session.commit()
        self.report.pending.append((digest.id, digest.last_error or ""))
        self._failed_in_a_row()

    def _failed_in_a_row(self) -> None:
        self.failing_in_a_row += 1
        if self.unreachable is None and self.failing_in_a_row >= self.max_failing:
            self.unreachable = self.report.stopped = (f"{self.failing_in_a_row} digests in a row could not be "
                                                      "delivered: the server is failing")


def deliver(session: Session, outbox: Path, smtp: SmtpSettings, *, as_of: date, max_attempts: int = 3,
            backoff_seconds: float = 2.0, sleep: Callable[[float], None] = time.sleep,
            clock: Callable[[], datetime] = _utcnow, retry_rejected: bool = False,
            resend: Sequence[str] = (), delivered: DeliveredCallback | None = None,
            monotonic: Callable[[], float] = time.monotonic) -> DeliveryReport:
    """Send every undelivered digest of ``as_of`` or earlier, oldest night first.

    A transient failure (connection refused, timeout, 4xx) is retried up to ``max_attempts`` times
    with back-off ``backoff_seconds * 2**n`` (``sleep`` is injectable for tests), then left pending
    for the next run; when the server cannot be reached at all, when ``smtp.max_failing_digests``
    digests in a row stay pending, or when ``smtp.budget_seconds`` have passed, the remaining digests
    are not tried this run and stay pending. A 5xx refusal marks the digest ``rejected`` (retried only
    with ``retry_rejected``). A recipient who opted out since the digest was built gets nothing (the
    digest is ``cancelled``). An ``unconfirmed`` digest (see the module docstring) is sent again only
    when its id is in ``resend``. Each delivered digest's items go to ``delivered`` (the ledger's
    introduced stage) in the transaction that marks it delivered. Commits after every attempt.

    Raises:
        ConfigError: unusable SMTP settings.
    """
    smtp.validate()
    if max_attempts < 1:
        raise ConfigError("max_attempts must be at least 1")
    as_of_s = as_of.isoformat()
    _settle_interrupted(session, as_of_s, clock)
    statuses = ("pending", "rejected") if retry_rejected else ("pending",)
    wanted = Digest.status.in_(statuses)
    if resend:
        wanted = wanted | ((Digest.status == "unconfirmed") & Digest.id.in_(sorted(resend)))
    # Payloads stay in the database unless a file must be rendered again (a backlog can be large).
    digests = session.execute(select(Digest, Digest.payload["sender"]["address"].as_string())
                              .options(defer(Digest.payload))
                              .where(wanted, Digest.as_of <= as_of_s)
                              .order_by(Digest.as_of, Digest.recipient_id)).all()
    run = _Run(session, Path(outbox), _Client(smtp), as_of_s, max_attempts, backoff_seconds, sleep, clock,
               delivered, monotonic() + smtp.budget_seconds, monotonic, smtp.max_failing_digests)
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


def _settle_interrupted(session: Session, as_of: str, clock: Callable[[], datetime]) -> None:
    """A digest left ``sending`` by a run that stopped mid-attempt may be with the server: unconfirmed."""
    error = ("a delivery run stopped during this digest's attempt; the server may have it, so it is not sent "
             "again automatically")
    for digest in list(session.scalars(select(Digest).where(Digest.status == "sending").order_by(Digest.id))):
        _log(session, digest, "unconfirmed", error, as_of, clock)
        digest.status = "unconfirmed"
    session.commit()


class NotSendable(BrokerError):
    """``mark_sent`` on a digest that is delivered, cancelled or unknown."""


def mark_sent(session: Session, digest_ids: Sequence[str], *, as_of: date, note: str | None = None,
              delivered: DeliveredCallback | None = None, clock: Callable[[], datetime] = _utcnow) -> list[str]:
    """An officer sent these digests by hand (outbox-only mode) or confirmed an unconfirmed one arrived.

    Each becomes ``delivered`` (logged as ``marked-sent``) and its items are introduced, as if the SMTP
    server had accepted it. Does not commit (the caller's transaction). Already delivered digests are
    skipped and not returned.

    Raises:
        NotSendable: an unknown or cancelled digest (nothing is marked).
    """
    as_of_s = as_of.isoformat()
    todo = []
    for digest_id in sorted(set(digest_ids)):
        digest = session.get(Digest, digest_id)
        if digest is None:
            raise NotSendable(f"no digest {digest_id!r}. Try `broker digest build --json` for the ids.")
        if digest.status == "cancelled":
            raise NotSendable(f"digest {digest_id} was cancelled (its recipient opted out): it must not be sent")
        if digest.status != "delivered":
            todo.append(digest)
    for digest in todo:
        _log(session, digest, "marked-sent", (note or "").strip()[:ERROR_MAX] or None, as_of_s, clock)
        _mark_delivered(session, digest, as_of_s, clock, delivered)
    return [d.id for d in todo]


def undelivered(session: Session, as_of: date) -> dict[str, int]:
    """How many digests of ``as_of`` or earlier are not delivered, by status (pending, unconfirmed, ...)."""
    rows = session.execute(select(Digest.status, func.count()).where(
        Digest.as_of <= as_of.isoformat(), Digest.status.in_(("pending", "unconfirmed", "rejected", "sending")))
        .group_by(Digest.status))
    return {status: n for status, n in sorted(rows)}


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
