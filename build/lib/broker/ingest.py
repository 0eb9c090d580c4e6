"""Ingest: files in, normalised opportunities stored, bad records quarantined. Idempotent.

For each file: detect the format, stream its items, store raw OCDS releases (every version is kept),
compile the releases of each touched ocid into the current state with ocdsmerge, normalise to canonical
records, and upsert them (``broker.store.opportunities``), de-duplicating across sources. Work is
committed in chunks so a huge file streams in bounded memory; re-running a file changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broker.errors import InputError
from broker.normalise.record import canonical_hash, canonical_json
from broker.sources import registry
from broker.sources.base import SourceItem
from broker.store.models import IngestedFile, Release
from broker.store.opportunities import Outcome, upsert_record
from broker.store.quarantine import quarantine

# Called as progress(path, bytes_done, bytes_total); the CLI draws a bar on a terminal.
Progress = Callable[[str, int, int], None]
INGESTABLE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv")
CHUNK = 500


@dataclass
class FileReport:
    path: str
    format: str | None = None
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    releases_new: int = 0
    releases_seen: int = 0
    problems: list[str] = field(default_factory=list)

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def clean(self) -> bool:
        return self.total("quarantined") == 0

    def summary(self) -> dict[str, int]:
        return {name: self.total(name) for name in
                ("new", "updated", "unchanged", "quarantined", "releases_new", "releases_seen")} | {
                "files": len(self.files)}


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files named, and files under folders named (sorted; hidden files and docs skipped)."""
    out: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                rel = child.relative_to(p).parts
                if child.is_file() and not any(part.startswith(".") for part in rel) \
                        and child.suffix.lower() in INGESTABLE_SUFFIXES:
                    out.append(str(child))
        else:
            out.append(str(p))
    return out


def ingest(sessions: sessionmaker[Session], paths: Sequence[str], *,
           progress: Progress | None = None) -> IngestReport:
    """Ingest files and folders; returns per-file counts. Never raises for bad records."""
    report = IngestReport()
    for path in expand_paths(paths):
        report.files.append(ingest_file(sessions, path, progress=progress))
    return report


def ingest_file(sessions: sessionmaker[Session], path: str, *, progress: Progress | None = None) -> FileReport:
    report = FileReport(path=path)
    try:
        file_sha = _sha256_file(path)
        report.format = registry.detect(path)
        total = os.path.getsize(path)
        items = registry.read(path, report.format,
                              (lambda done: progress(path, done, total)) if progress else None)
    except (InputError, OSError) as exc:
        error = exc if isinstance(exc, InputError) else InputError(str(exc), file=path)
        if error.file is None:
            error.file = path
        with sessions.begin() as session:
            quarantine(session, error, None, file_sha256=_safe_sha(path))
        report.quarantined += 1
        report.problems.append(error.describe())
        return report
    ingest_items(sessions, items, path=path, file_sha=file_sha, report=report)
    with sessions.begin() as session:
        _record_file(session, path, file_sha, report)
    return report


def ingest_items(sessions: sessionmaker[Session], items: Iterable[SourceItem], *, path: str, file_sha: str,
                 report: FileReport | None = None) -> FileReport:
    """Store the items of one file, committing in chunks."""
    report = report or FileReport(path=path)
    seen: dict[tuple[str, str], str] = {}
    stream = _guarded(iter(items), path)
    for chunk in _chunks(stream, CHUNK):
        with sessions.begin() as session:
            _ingest_chunk(session, chunk, report, path, file_sha, seen)
    return report


def _guarded(items: Iterator[SourceItem], path: str) -> Iterator[SourceItem]:
    """A reader that fails part-way still gives its good items, then one error item for the failure."""
    count = 0
    try:
        for item in items:
            count += 1
            yield item
    except InputError as exc:
        exc.file = exc.file or path
        exc.locator = exc.locator or f"after item {count}"
        yield SourceItem(kind="error", locator=exc.locator, error=exc)
    except (OSError, UnicodeError, ValueError) as exc:
        yield SourceItem(kind="error", locator=f"after item {count}",
                         error=InputError(f"reading stopped: {exc}", file=path, locator=f"after item {count}"))


def _ingest_chunk(session: Session, chunk: list[SourceItem], report: FileReport, path: str,
                  file_sha: str, seen: dict[tuple[str, str], str]) -> None:
    touched: dict[str, dict[str, Any] | None] = {}
    seen_ocids: set[str] = set()
    stored = _stored_releases(session, chunk)
    for item in chunk:
        if item.kind == "error":
            assert item.error is not None
            _quarantine(session, item.error, item.raw, report, path, file_sha)
        elif item.kind == "record":
            assert item.record is not None
            _ingest_record(session, item, report, path, file_sha, seen)
        else:
            assert item.release is not None
            report.releases_seen += 1
            seen_ocids.add(str(item.release["ocid"]))
            if _store_release(session, item.release, item.package_meta, stored):
                report.releases_new += 1
                touched.setdefault(str(item.release["ocid"]), item.package_meta)
    for ocid in sorted(touched):
        _compile_ocid(session, ocid, touched[ocid], report, path, file_sha)
    # An ocid whose releases were all stored before compiles to what is stored already.
    report.unchanged += len(seen_ocids - touched.keys())


def _ingest_record(session: Session, item: SourceItem, report: FileReport, path: str, file_sha: str,
                   seen: dict[tuple[str, str], str]) -> None:
    """Upsert a record, unless the same id appeared earlier in this file with other content.

    Keeping the first and quarantining the conflicting one makes a file's result independent of how
    often it is ingested (taking the last would flip the record back and forth on every re-ingest).
    """
    record = item.record
    assert record is not None
    key, content = (record.source, record.id), record.content_hash
    earlier = seen.get(key)
    if earlier is None:
        seen[key] = content
        report.count(upsert_record(session, record))
    elif earlier == content:
        report.unchanged += 1
    else:
        error = InputError(f"duplicate record {record.id!r} in this file with different content; "
                           "the first one was kept", file=path, locator=item.locator, field="id")
        _quarantine(session, error, canonical_json(record.to_json()), report, path, file_sha)


def _compile_ocid(session: Session, ocid: str, meta: dict[str, Any] | None, report: FileReport,
                  path: str, file_sha: str) -> None:
    from broker.normalise.compile import compile_releases
    from broker.normalise.ocds import normalise_compiled

    releases = [r.raw for r in session.scalars(
        select(Release).where(Release.ocid == ocid).order_by(Release.date, Release.release_id, Release.id))]
    try:
        records = normalise_compiled(compile_releases(releases), package_meta=meta)
    except InputError as exc:
        exc.file = exc.file or path
        exc.locator = exc.locator or f"ocid {ocid}"
        _quarantine(session, exc, canonical_json(releases[-1]), report, path, file_sha)
        return
    for record in records:
        report.count(upsert_record(session, record))


def _stored_releases(session: Session, chunk: list[SourceItem]) -> set[tuple[str, str, str]]:
    """(ocid, release id, raw hash) of the chunk's releases already stored: one query per chunk."""
    ocids = sorted({str(i.release["ocid"]) for i in chunk if i.kind == "release" and i.release is not None})
    if not ocids:
        return set()
    rows = session.execute(select(Release.ocid, Release.release_id, Release.raw_hash)
                           .where(Release.ocid.in_(ocids))).all()
    return {(r[0], r[1], r[2]) for r in rows}


def _store_release(session: Session, release: dict[str, Any], meta: dict[str, Any] | None,
                   stored: set[tuple[str, str, str]]) -> bool:
    """Keep a raw release verbatim (JSON-safe); False when this exact release is already stored."""
    safe = json.loads(canonical_json(release))
    raw_hash = canonical_hash(safe)
    key = (str(safe["ocid"]), str(safe["id"]), raw_hash)
    if key in stored:
        return False
    stored.add(key)
    ocid, release_id = key[0], key[1]
    tags = safe.get("tag")
    session.add(Release(ocid=ocid, release_id=release_id, date=str(safe.get("date") or ""),
                        tags=tags if isinstance(tags, list) else [], raw_hash=raw_hash, raw=safe,
                        package_meta=json.loads(canonical_json(meta or {}))))
    return True


def _quarantine(session: Session, error: InputError, raw: str | None, report: FileReport, path: str,
                file_sha: str) -> None:
    if error.file is None:
        error.file = path
    quarantine(session, error, raw, file_sha256=file_sha)
    report.quarantined += 1
    report.problems.append(error.describe())


def _record_file(session: Session, path: str, sha: str, report: FileReport) -> None:
    if session.get(IngestedFile, sha) is None:
        session.add(IngestedFile(sha256=sha, path=path, format=report.format or "unknown",
                                 counts={"releases": report.releases_seen, "quarantined": report.quarantined},
                                 ingested_at=datetime.now(UTC)))  # metadata only


def _chunks(items: Iterator[SourceItem], size: int) -> Iterator[list[SourceItem]]:
    chunk: list[SourceItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe_sha(path: str) -> str:
    try:
        return _sha256_file(path)
    except OSError:
        return hashlib.sha256(path.encode()).hexdigest()
