"""Ingest: files in, normalised opportunities stored, bad records quarantined. Idempotent.

For each file: detect the format, stream its items, store raw OCDS releases (every version is kept),
compile the releases of each touched ocid into the current state with ocdsmerge, normalise to canonical
records, and upsert them (``broker.store.opportunities``), de-duplicating across sources. Work is
committed in chunks so a huge file streams in bounded memory; re-running a file changes nothing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from broker.errors import InputError
from broker.normalise.keys import fit_key
from broker.normalise.private import SOURCE as PRIVATE_SOURCE
from broker.normalise.private import loose_private_key
from broker.normalise.record import OpportunityRecord, canonical_json
from broker.sources import registry
from broker.sources.base import SourceItem
from broker.store.models import IngestedFile, Release
from broker.store.opportunities import Outcome, RecordBatch
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
    # Why the file as a whole could not be read (nothing in it was): the nightly moves it to quarantine/.
    failed: str | None = None
    # Stored, but worth a look: possible id typos, ocdsmerge's duplicate-id notes (one line per file).
    warnings: list[str] = field(default_factory=list)
    duplicate_ids: int = 0
    duplicate_example: str | None = None

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
        _file_failed(sessions, report, error, _safe_sha(path))
        return report
    try:
        ingest_items(sessions, items, path=path, file_sha=file_sha, report=report)
        with sessions.begin() as session:
            _record_file(session, path, file_sha, report)
    except Exception as exc:  # noqa: BLE001 - one file's failure must not stop the files after it
        # Chunks committed before the failure stay (ingest is idempotent: the file can be ingested again).
        _file_failed(sessions, report, InputError(f"ingest stopped ({type(exc).__name__}: {str(exc)[:300]})",
                                                  file=path, locator=f"after {report.releases_seen} releases"),
                     file_sha)
    return report


def _file_failed(sessions: sessionmaker[Session], report: FileReport, error: InputError, file_sha: str) -> None:
    with sessions.begin() as session:
        quarantine(session, error, None, file_sha256=file_sha)
    report.quarantined += 1
    report.problems.append(error.describe())
    report.failed = error.describe()


def ingest_items(sessions: sessionmaker[Session], items: Iterable[SourceItem], *, path: str, file_sha: str,
                 report: FileReport | None = None) -> FileReport:
    """Store the items of one file, committing in chunks."""
    report = report or FileReport(path=path)
    seen: dict[tuple[str, str], str] = {}
    stream = _guarded(iter(items), path, report)
    for chunk in _chunks(stream, CHUNK):
        _store_chunk(sessions, chunk, report, path, file_sha, seen)
    if report.duplicate_ids:
        report.warnings.append(f"ocdsmerge merged {report.duplicate_ids} arrays holding repeated ids "
                               f"(publisher data; the first: {report.duplicate_example})")
    return report


def _store_chunk(sessions: sessionmaker[Session], chunk: list[SourceItem], report: FileReport, path: str,
                 file_sha: str, seen: dict[tuple[str, str], str]) -> None:
    """One transaction per chunk; if the database refuses something in it, the chunk again item by item,
    so only the item it refuses is quarantined (with the database's reason) and the rest are stored."""
    before, seen_before = copy.deepcopy(report), dict(seen)
    try:
        with sessions.begin() as session:
            _ingest_chunk(session, chunk, report, path, file_sha, seen)
        return
    except Exception:  # noqa: BLE001 - retried below, one item at a time, to find the one refused
        pass
    _restore(report, before)
    seen.clear()
    seen.update(seen_before)
    for item in chunk:
        kept, seen_kept = copy.deepcopy(report), dict(seen)
        try:
            with sessions.begin() as session:
                _ingest_chunk(session, [item], report, path, file_sha, seen)
        except Exception as exc:  # noqa: BLE001 - this item alone is refused
            _restore(report, kept)
            seen.clear()
            seen.update(seen_kept)
            error = InputError(f"the database refused it ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})",
                               file=path, locator=item.locator)
            raw = canonical_json(item.release) if item.release is not None else item.raw
            with sessions.begin() as session:
                _quarantine(session, error, _safe_text(raw), report, path, file_sha)


def _restore(report: FileReport, saved: FileReport) -> None:
    for name in vars(saved):
        setattr(report, name, getattr(saved, name))


def _safe_text(text: str | None) -> str | None:
    try:
        return text if text is None else text.encode("utf-8", "backslashreplace").decode("utf-8")
    except Exception:  # noqa: BLE001 - the raw text is a courtesy; the reason is what matters
        return None


def _guarded(items: Iterator[SourceItem], path: str, report: FileReport) -> Iterator[SourceItem]:
    """A reader that fails part-way still gives its good items, then one error item for the failure.

    A failure before the first item means the file as a whole could not be read (``report.failed``).
    """
    count = 0
    try:
        for item in items:
            count += 1
            yield item
    except InputError as exc:
        exc.file = exc.file or path
        exc.locator = exc.locator or (f"after item {count}" if count else None)
        if not count:
            report.failed = exc.describe()
        yield SourceItem(kind="error", locator=exc.locator or "", error=exc)
    except Exception as exc:  # noqa: BLE001 - the items read so far are kept whatever stopped the reader
        error = InputError(f"reading stopped ({type(exc).__name__}: {str(exc)[:300]})", file=path,
                           locator=f"after item {count}")
        if not count:
            report.failed = error.describe()
        yield SourceItem(kind="error", locator=error.locator or "", error=error)


def _ingest_chunk(session: Session, chunk: list[SourceItem], report: FileReport, path: str,
                  file_sha: str, seen: dict[tuple[str, str], str]) -> None:
    """One chunk in one transaction: a few bulk reads, the decisions in memory, one write per table."""
    touched: dict[str, dict[str, Any] | None] = {}
    seen_ocids: set[str] = set()
    stored = _stored_releases(session, chunk)
    had_releases = {key[0] for key in stored}
    new_releases: dict[str, list[dict[str, Any]]] = {}
    release_rows: list[dict[str, Any]] = []
    batch = RecordBatch(session, [i.record for i in chunk if i.kind == "record" and i.record is not None])
    for item in chunk:
        if item.kind == "error":
            assert item.error is not None
            _quarantine(session, item.error, item.raw, report, path, file_sha)
        elif item.kind == "record":
            assert item.record is not None
            _ingest_record(batch, item, report, path, file_sha, seen)
        else:
            assert item.release is not None
            report.releases_seen += 1
            ocid_key = fit_key(str(item.release["ocid"]))
            seen_ocids.add(ocid_key)
            row = _release_row(item.release, item.package_meta, stored)
            if row is not None:
                release_rows.append(row)
                new_releases.setdefault(ocid_key, []).append(row["raw"])
                report.releases_new += 1
                touched.setdefault(ocid_key, item.package_meta)
    if release_rows:
        session.execute(insert(Release), release_rows)
    earlier = _releases_of(session, sorted(had_releases & touched.keys()))
    compiled: list[OpportunityRecord] = []
    for ocid in sorted(touched):
        releases = earlier.get(ocid, []) + new_releases[ocid]
        compiled.extend(_compile_ocid(session, ocid, releases, touched[ocid], report, path, file_sha))
    batch.prefetch(compiled)
    for record in compiled:
        report.count(_upsert(batch, record))
    batch.write()
    # An ocid whose releases were all stored before compiles to what is stored already.
    report.unchanged += len(seen_ocids - touched.keys())


def _upsert(batch: RecordBatch, record: OpportunityRecord) -> Outcome:
    """One record into the chunk's batch (a seam the tests use to make the database refuse one)."""
    return batch.upsert(record)


def _ingest_record(batch: RecordBatch, item: SourceItem, report: FileReport, path: str, file_sha: str,
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
        if record.source == PRIVATE_SOURCE:
            _check_private_id(batch, record, item.locator, report)
        report.count(_upsert(batch, record))
    elif earlier == content:
        report.unchanged += 1
    else:
        error = InputError(f"duplicate record {record.id!r} in this file with different content; "
                           "the first one was kept", file=path, locator=item.locator, field="id")
        _quarantine(batch.session, error, canonical_json(record.to_json()), report, path, file_sha)


def _check_private_id(batch: RecordBatch, record: OpportunityRecord, locator: str, report: FileReport) -> None:
    """Warn when an officer's id differs from one already stored only in punctuation or spacing.

    Both are kept as separate opportunities (ids are compared exactly); the warning lets an officer
    notice a typo such as ``WHT/2026/001`` for ``WHT-2026-001``.
    """
    officer_id = record.source_ids[0].removeprefix("private:") if record.source_ids else record.id
    key = loose_private_key(officer_id)
    owner = batch.owner(key)
    if owner is None:
        batch.add_key(key, record.id)
        return
    if owner == record.id:
        return
    other = batch.stored_record(PRIVATE_SOURCE, owner)
    shown = (other or {}).get("source_ids", [owner])[0].removeprefix("private:")
    report.warnings.append(f"{locator}: private id {officer_id!r} differs from {shown!r} only in punctuation or "
                           "spacing; they are kept as two opportunities (use one id if they are the same)")


def _compile_ocid(session: Session, ocid: str, releases: list[dict[str, Any]], meta: dict[str, Any] | None,
                  report: FileReport, path: str, file_sha: str) -> list[OpportunityRecord]:
    """The records of one ocid, compiled from all its releases (stored before and new in this chunk)."""
    from broker.normalise.compile import compile_releases
    from broker.normalise.ocds import normalise_compiled

    notes: list[str] = []
    try:
        return normalise_compiled(compile_releases(releases, warnings_out=notes), package_meta=meta)
    except Exception as exc:  # noqa: BLE001 - one ocid that cannot be compiled never stops the others
        error = exc if isinstance(exc, InputError) else InputError(
            f"the releases could not be compiled ({type(exc).__name__}: {str(exc)[:300]})")
        error.file = error.file or path
        error.locator = error.locator or f"ocid {ocid}"
        # The latest as stored (date, then id, then arrival), as when they were read back from the store.
        latest = sorted(releases, key=lambda r: (str(r.get("date") or ""), fit_key(str(r.get("id")))))[-1]
        _quarantine(session, error, canonical_json(latest), report, path, file_sha)
        return []
    finally:
        if notes:
            report.duplicate_ids += len(notes)
            report.duplicate_example = report.duplicate_example or f"ocid {ocid}: {notes[0][:200]}"


def _releases_of(session: Session, ocids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The stored releases of these ocids, in one query per few hundred ocids."""
    out: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(ocids), 500):
        for ocid, raw in session.execute(select(Release.ocid, Release.raw).where(
                Release.ocid.in_(ocids[start:start + 500])).order_by(Release.date, Release.release_id, Release.id)):
            out.setdefault(ocid, []).append(raw)
    return out


def _stored_releases(session: Session, chunk: list[SourceItem]) -> set[tuple[str, str, str]]:
    """(ocid, release id, raw hash) of the chunk's releases already stored: one query per chunk."""
    ocids = sorted({fit_key(str(i.release["ocid"])) for i in chunk if i.kind == "release" and i.release is not None})
    if not ocids:
        return set()
    rows = session.execute(select(Release.ocid, Release.release_id, Release.raw_hash)
                           .where(Release.ocid.in_(ocids))).all()
    return {(r[0], r[1], r[2]) for r in rows}


def _release_row(release: dict[str, Any], meta: dict[str, Any] | None,
                 stored: set[tuple[str, str, str]]) -> dict[str, Any] | None:
    """The row keeping a raw release verbatim (JSON-safe); None when this exact release is stored."""
    text = canonical_json(release)
    safe = json.loads(text)
    # The hash of ``safe`` without serialising it again: canonical JSON read back and written again is
    # the same text (numbers were already made plain JSON numbers or text the first time).
    raw_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    key = (fit_key(str(safe["ocid"])), fit_key(str(safe["id"])), raw_hash)
    if key in stored:
        return None
    stored.add(key)
    tags = safe.get("tag")
    return {"ocid": key[0], "release_id": key[1], "date": str(safe.get("date") or ""),
            "tags": tags if isinstance(tags, list) else [], "raw_hash": raw_hash, "raw": safe,
            "package_meta": json.loads(canonical_json(meta or {}))}


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
