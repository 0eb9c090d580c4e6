"""The nightly job: ingest the inbox, match, count, send digests, write the report. Safe to re-run.

Each step is idempotent and commits its own work, so a run killed at any point (``kill -9``) and started
again ends in the state an uninterrupted run reaches: ingest is idempotent, the match run's scope is
computed against the last *complete* run, the ledger appends each (stage, cause) once, digests are keyed
by (recipient, business date) and never repeat an opportunity. One lock per database keeps two runs apart.
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

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from broker.digest import DigestSettings, SmtpSettings, build_digests, deliver
from broker.ingest import ingest_file
from broker.locking import exclusive
from broker.match.rulesdir import RulesLocation
from broker.match.service import run_match
from broker.target.config import TargetConfig
from broker.target.ledger import reconcile_values, record_introduced, record_matches
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
    matched: int = 0
    ledger_entries: int = 0
    digests: int = 0
    digests_new: int = 0
    delivered: int = 0
    pending: int = 0
    counted_pence: int = 0
    report: str = ""
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.pending:
            return EXIT_FAILED
        return EXIT_QUARANTINED if self.quarantined or self.failed_files else EXIT_OK

    def line(self) -> str:
        return (f"nightly {self.as_of}: {self.files} files ({self.new} new, {self.updated} updated, "
                f"{self.quarantined} quarantined); {self.run_id or 'no run'}: {self.matched} matched; "
                f"{self.digests_new} new digests ({self.delivered} delivered, {self.pending} pending); "
                f"counted £{self.counted_pence / 100:,.0f} toward the target")


def run_nightly(engine: Engine, sessions: sessionmaker[Session], options: NightlyOptions,
                crash_hook: Callable[[str], None] | None = None) -> NightlySummary:
    """Run every step under the database's nightly lock. ``crash_hook(step)`` is for kill tests."""
    hook = crash_hook or (lambda step: None)
    summary = NightlySummary(as_of=options.as_of.isoformat())
    with exclusive(engine, wait_seconds=options.wait_seconds):
        if options.inbox is not None:
            _ingest_inbox(sessions, options.inbox, summary)
        hook("after_ingest")
        match = run_match(sessions, as_of=options.as_of, rules_dir=options.rules_dir,
                          progress=lambda done: hook("mid_match"))
        summary.run_id, summary.matched = match.run_id, match.counts.get("matched", 0)
        hook("after_match")
        with sessions.begin() as session:
            summary.ledger_entries = record_matches(session, match.run_id, options.as_of, config=options.target)
            reconcile_values(session, options.as_of, config=options.target)
        hook("after_ledger")
        _digests(sessions, options, summary, hook)
        hook("after_digests")
        _report(sessions, options, summary)
    log.info(summary.line())
    return summary


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
    def introduced(session: Session, opportunity_id: str, party_id: str, *, cause: str, as_of: date) -> Any:
        hook("mid_digest")
        return record_introduced(session, opportunity_id, party_id, cause=cause, as_of=as_of,
                                 config=options.target)

    with sessions() as session:
        batch = build_digests(session, as_of=options.as_of, outbox=options.outbox,
                              introduced_callback=introduced, settings=options.digest)
        summary.digests = len(batch)
        summary.digests_new = sum(1 for d in batch if d.new)
        if options.smtp is not None:
            delivery = deliver(session, options.outbox, options.smtp, as_of=options.as_of)
            summary.delivered, summary.pending = len(delivery.delivered), len(delivery.pending)


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

