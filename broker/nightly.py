"""The nightly job: ingest the inbox, match, count, send digests, write the report. Safe to re-run.

Each step is idempotent and commits its own work, so a run killed at any point (``kill -9``) and started
again ends in the state an uninterrupted run reaches: ingest is idempotent, the match run's scope is
computed against the last *complete* run, the ledger appends each (stage, cause) once, digests are keyed
by (recipient, business date) and never repeat an opportunity. One lock per database keeps two runs apart.

A night with nothing new records no run (the match step reports "nothing new since run-…"). Digests
count as introduced only once delivered (SMTP accepted them) or marked sent by an officer. After the
night the audit chain's head is appended to the heads file; the next night first checks that every head
published before is still in the chain (a deleted tail shows there, exit 1).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from broker.audit.heads import current_head, head_problems, publish_head, read_heads
from broker.digest import DigestSettings, SmtpSettings, build_digests, deliver
from broker.digest.deliver import undelivered
from broker.errors import BrokerError
from broker.ingest import ingest_file
from broker.locking import exclusive
from broker.match.rulesdir import RulesLocation
from broker.match.service import run_match
from broker.store.models import AuditLink
from broker.target.config import TargetConfig
from broker.target.ledger import reconcile_values, record_introduced_many, record_matches
from broker.target.progress import compute_progress
from broker.target.report import render_report

log = logging.getLogger(__name__)

ARCHIVE, QUARANTINE = "archive", "quarantine"
EXIT_OK, EXIT_FAILED, EXIT_QUARANTINED = 0, 1, 4


@dataclass
class NightlyOptions:
    as_of: date
    inbox: Path | None
    outbox: Path
    rules_dir: RulesLocation | Path | None  # None: the rules shipped with broker
    report: Path | None = None
    smtp: SmtpSettings | None = None
    digest: DigestSettings = field(default_factory=DigestSettings)
    target: TargetConfig = field(default_factory=TargetConfig)
    wait_seconds: float = 0.0
    heads: Path | None = None  # the published chain heads (one line per night), checked, then appended to


@dataclass
class NightlySummary:
    as_of: str
    files: int = 0
    archived: int = 0
    failed_files: int = 0
    new: int = 0
    updated: int = 0
    quarantined: int = 0
    run_id: str = ""
    noop: bool = False  # nothing new since run_id: no run recorded
    matched: int = 0
    ledger_entries: int = 0
    digests: int = 0
    digests_new: int = 0
    delivered: int = 0
    pending: int = 0  # SMTP configured: digests still undelivered after trying (failed or refused)
    awaiting: int = 0  # outbox only: digests built and not yet marked sent by an officer
    unconfirmed: int = 0  # the server may have them (no reply after DATA): never resent automatically
    delivery_stopped: str = ""  # why delivery stopped trying before the end (time budget, failing server)
    counted_pence: int = 0
    report: str = ""
    head: str = ""  # the audit chain's head after the night: "#SEQ HASH"
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    audit_problems: list[str] = field(default_factory=list)  # published heads the chain no longer holds

    @property
    def exit_code(self) -> int:
        if self.pending or self.unconfirmed or self.audit_problems:
            return EXIT_FAILED
        return EXIT_QUARANTINED if self.quarantined or self.failed_files else EXIT_OK

    def _delivery(self) -> str:
        parts = [f"{self.delivered} delivered"]
        if self.awaiting:
            parts.append(f"{self.awaiting} in the outbox awaiting `broker digest mark-sent` (outbox only)")
        if self.pending:
            parts.append(f"{self.pending} pending")
        if self.unconfirmed:
            parts.append(f"{self.unconfirmed} unconfirmed (not resent)")
        return ", ".join(parts)

    def line(self) -> str:
        run = (f"nothing new since {self.run_id} (no run recorded)" if self.noop
               else f"{self.run_id or 'no run'}: {self.matched} matched")
        return (f"nightly {self.as_of}: {self.files} files ({self.new} new, {self.updated} updated, "
                f"{self.quarantined} quarantined); {run}; "
                f"{self.digests_new} new digests; {self._delivery()}; "
                f"counted £{self.counted_pence / 100:,.0f} toward the target; audit chain head {self.head or '(empty)'}")


def run_nightly(engine: Engine, sessions: sessionmaker[Session], options: NightlyOptions,
                crash_hook: Callable[[str], None] | None = None) -> NightlySummary:
    """Run every step under the database's nightly lock. ``crash_hook(step)`` is for kill tests."""
    hook = crash_hook or (lambda step: None)
    summary = NightlySummary(as_of=options.as_of.isoformat())
    with exclusive(engine, wait_seconds=options.wait_seconds):
        _check_heads(sessions, options, summary)
        if options.inbox is not None:
            _ingest_inbox(sessions, options.inbox, summary)
        hook("after_ingest")
        match = run_match(sessions, as_of=options.as_of, rules_dir=options.rules_dir,
                          progress=lambda done: hook("mid_match"))
        summary.run_id, summary.noop = match.run_id, match.noop
        summary.matched = 0 if match.noop else match.counts.get("matched", 0)
        hook("after_match")
        with sessions.begin() as session:
            summary.ledger_entries = record_matches(session, match.run_id, options.as_of, config=options.target)
            reconcile_values(session, options.as_of, config=options.target)
        hook("after_ledger")
        _digests(sessions, options, summary, hook)
        hook("after_digests")
        _report(sessions, options, summary)
        _publish_head(sessions, options, summary)
    log.info(summary.line())
    for problem in summary.audit_problems:
        log.error("audit: %s", problem)
    return summary


def _check_heads(sessions: sessionmaker[Session], options: NightlyOptions, summary: NightlySummary) -> None:
    """Every head published on earlier nights must still be in the chain (a deleted tail shows here)."""
    if options.heads is None or not options.heads.exists():
        return
    try:
        heads = read_heads(str(options.heads))
    except BrokerError as exc:  # an unreadable heads file is itself a finding, not a reason to stop the night
        summary.audit_problems = [str(exc)]
        return
    with sessions() as session:
        links = list(session.scalars(select(AuditLink).order_by(AuditLink.seq)))
    summary.audit_problems = [message for _, message in head_problems(links, heads)]


def _publish_head(sessions: sessionmaker[Session], options: NightlyOptions, summary: NightlySummary) -> None:
    with sessions() as session:
        head = current_head(session)
    if head is None:
        return
    summary.head = f"#{head.seq} {head.hash}"
    if options.heads is not None:
        publish_head(options.heads, head, options.as_of.isoformat())


def _ingest_inbox(sessions: sessionmaker[Session], inbox: Path, summary: NightlySummary) -> None:
    """Ingest every file at the top of the inbox; move it to archive/ (read) or quarantine/ (unreadable)."""
    for path in sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")):
        report = ingest_file(sessions, str(path))
        summary.files += 1
        summary.new += report.new
        summary.updated += report.updated
        summary.quarantined += report.quarantined
        summary.problems.extend(report.problems)
        summary.warnings.extend(f"{path.name}: {w}" for w in report.warnings)
        if report.format is None or report.failed:
            summary.failed_files += 1
            target = _move(path, inbox / QUARANTINE)
            target.with_name(target.name + ".reason.txt").write_text("\n".join(report.problems) + "\n",
                                                                      encoding="utf-8")
        else:
            summary.archived += 1
            _move(path, inbox / ARCHIVE)


def _move(path: Path, folder: Path) -> Path:
    """Move a file into ``folder``; a different file already there under that name is kept too."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        if _sha(target) == _sha(path):
            path.unlink()
            return target
        target = folder / f"{path.stem}-{_sha(path)[:12]}{path.suffix}"
    shutil.move(str(path), target)
    return target


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digests(sessions: sessionmaker[Session], options: NightlyOptions, summary: NightlySummary,
             hook: Callable[[str], None]) -> None:
    """Build tonight's digests; deliver them when SMTP is configured. Only a delivered digest's items are
    introduced (in the transaction that marks it delivered); without SMTP they await an officer's
    ``broker digest mark-sent``."""
    def introduced(session: Session, pairs: list[tuple[str, str]], *, cause: str, as_of: date) -> Any:
        hook("mid_delivery")
        return record_introduced_many(session, pairs, cause=cause, as_of=as_of, config=options.target)

    with sessions() as session:
        batch = build_digests(session, as_of=options.as_of, outbox=options.outbox, settings=options.digest,
                              on_built=lambda digest_id: hook("mid_digest"))
        summary.digests = len(batch)
        summary.digests_new = sum(1 for d in batch if d.new)
        if options.smtp is not None:
            delivery = deliver(session, options.outbox, options.smtp, as_of=options.as_of, delivered=introduced)
            summary.delivered = len(delivery.delivered)
            summary.delivery_stopped = delivery.stopped or ""
        waiting = undelivered(session, options.as_of)
    summary.unconfirmed = waiting.get("unconfirmed", 0)
    if options.smtp is not None:
        summary.pending = waiting.get("pending", 0) + waiting.get("rejected", 0)
    else:
        summary.awaiting = waiting.get("pending", 0)


def _report(sessions: sessionmaker[Session], options: NightlyOptions, summary: NightlySummary) -> None:
    with sessions() as session:
        progress = compute_progress(session, options.as_of, options.target)
        summary.counted_pence = progress.counted_pence
        if options.report is not None:
            html, _ = render_report(session, options.as_of, options.target)
            options.report.parent.mkdir(parents=True, exist_ok=True)
            tmp = options.report.with_name(options.report.name + ".tmp")
            tmp.write_text(html, encoding="utf-8")
            tmp.replace(options.report)
            summary.report = str(options.report)

