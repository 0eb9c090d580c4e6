"""Import an exported run into this database, so that it can be replayed and verified here.

The run keeps its id. Every hash is checked before the transaction commits: each rule text against its
sha256, each snapshot record against its content hash, each decision against its decision hash, the input
list, decisions and manifest against the run's digests. Importing a run that is already here with the same
manifest digest changes nothing; one with the same id and different content is refused. The import is
chained here as a link of kind ``import`` carrying the original manifest digest (and the link that
recorded the run in its own database, for cross-checking with that database's chain).
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from broker.audit.chain import append_link
from broker.audit.digests import DECISION_FIELDS, decision_digest, decision_hash, input_digest
from broker.audit.export import FORMAT, VERSION, companion_path, decision_from_csv
from broker.audit.stored import AuditError, manifest_digest_of
from broker.errors import InputError
from broker.normalise.record import canonical_hash
from broker.store.models import Decision, MatchRun, RunInput, RunRuleFile, Snapshot

BATCH = 2000
RUN_FIELDS = ("seq", "as_of", "mode", "status", "params", "software", "scope", "rules_sha256", "counts",
              "input_digest", "decision_digest", "sequence_digest")


@dataclass(frozen=True)
class ImportReport:
    run_id: str
    already_present: bool
    inputs: int
    decisions: int
    link_seq: int | None

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "already_present": self.already_present, "inputs": self.inputs,
                "decisions": self.decisions, "link_seq": self.link_seq}


def import_run(session: Session, path: Path) -> ImportReport:
    """Import the export at ``path`` (``.jsonl``; or ``.csv`` with its ``.manifest.json`` beside it).

    The caller owns the transaction: on any error nothing is kept.

    Raises:
        InputError: the file is not a complete, untampered broker export (names the line and what broke).
        AuditError: a run with the same id and different content is already in this database.
    """
    items = _read_csv(path) if path.suffix.lower() == ".csv" else _read_jsonl(path)
    where, header = next(items, (None, None))
    if header is None or header.get("type") != "manifest":
        raise InputError("the first line is not a broker audit export manifest", file=str(path), locator=where)
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise InputError(f"not a {FORMAT} version {VERSION} file", file=str(path), locator=where)
    manifest, digest = header["run"], header["manifest_digest"]
    existing = session.get(MatchRun, manifest["run_id"])
    if existing is not None:
        return _already(session, existing, digest)
    run = _create_run(session, manifest, header["rule_files"], digest, str(path))
    loader = _Loader(session, run, str(path))
    for where, item in items:
        loader.take(where, item)
    loader.finish()
    link = append_link(session, "import", run.id, digest,
                       {"manifest_digest": digest, "original_link": header.get("link"), "file": path.name})
    return ImportReport(run.id, False, loader.inputs, loader.decisions, link.seq)


def _already(session: Session, existing: MatchRun, digest: str) -> ImportReport:
    here = manifest_digest_of(session, existing)
    if existing.manifest_digest == digest and here == digest:
        inputs = session.scalar(select(func.count()).select_from(RunInput).where(RunInput.run_id == existing.id))
        decisions = session.scalar(select(func.count()).select_from(Decision).where(Decision.run_id == existing.id))
        return ImportReport(existing.id, True, inputs or 0, decisions or 0, None)
    raise AuditError(f"run {existing.id} is already in this database with different content (manifest digest "
                     f"{here[:12]} here, {digest[:12]} in the file): import into a fresh database, or run "
                     "`broker audit verify` here")


def _create_run(session: Session, manifest: dict[str, Any], files: list[dict[str, Any]], digest: str,
                file: str) -> MatchRun:
    try:
        clash = session.scalar(select(MatchRun.id).where(MatchRun.seq == int(manifest["seq"])))
        if clash is not None:
            raise AuditError(f"run {clash} here already has sequence number {manifest['seq']}; "
                             f"run {manifest['run_id']} cannot be imported into this database")
        run = MatchRun(id=manifest["run_id"], started_at=_parse_time(manifest["started_at"]),
                       finished_at=_parse_time(manifest["finished_at"]), manifest_digest=digest,
                       **{name: manifest[name] for name in RUN_FIELDS})
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"the manifest is incomplete: {exc!r}", file=file, locator="manifest") from None
    session.add(run)
    session.flush()
    for f in files:
        if hashlib.sha256(f["text"].encode("utf-8")).hexdigest() != f["sha256"]:
            raise InputError(f"rule file {f['name']}: its text does not match its sha256", file=file,
                             locator="manifest")
        session.add(RunRuleFile(run_id=run.id, name=f["name"], sha256=f["sha256"], text=f["text"]))
    session.flush()
    now = manifest_digest_of(session, run)
    if now != digest:
        raise InputError(f"the manifest does not match its digest (recorded {digest[:12]}, it hashes to "
                         f"{now[:12]})", file=file, locator="manifest")
    return run


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class _Loader:
    """Checks and inserts the inputs and decisions of an export, a batch at a time."""

    def __init__(self, session: Session, run: MatchRun, file: str) -> None:
        self.session, self.run, self.file = session, run, file
        self.listed: list[tuple[str, str, str]] = []
        self.hashes: list[bytes] = []
        self.input_rows: list[dict[str, Any]] = []
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.decision_rows: list[dict[str, Any]] = []
        self.inputs = self.decisions = 0
        self.ended: dict[str, Any] | None = None

    def take(self, where: str, item: dict[str, Any]) -> None:
        kind = item.get("type")
        if self.ended is not None:
            raise InputError("content after the end line", file=self.file, locator=where)
        if kind == "input":
            self._input(where, item)
        elif kind == "decision":
            self._decision(where, item)
        elif kind == "end":
            self.ended = item
        else:
            raise InputError(f"unknown line type {kind!r}", file=self.file, locator=where)

    def _input(self, where: str, item: dict[str, Any]) -> None:
        if item.get("kind") not in ("opportunity", "party") or canonical_hash(item.get("record")) != item.get(
                "content_hash"):
            raise InputError("the input record does not match its content hash", file=self.file, locator=where)
        self.inputs += 1
        self.listed.append((item["kind"], item["entity_id"], item["content_hash"]))
        self.input_rows.append({"run_id": self.run.id, "kind": item["kind"], "entity_id": item["entity_id"],
                                "content_hash": item["content_hash"]})
        self.snapshots[item["content_hash"]] = {"content_hash": item["content_hash"], "kind": item["kind"],
                                                "record": item["record"]}
        if len(self.input_rows) >= BATCH:
            self._flush_inputs()

    def _decision(self, where: str, item: dict[str, Any]) -> None:
        try:
            row = {"run_id": self.run.id, "seq": int(item["seq"]), "decision_hash": item["decision_hash"],
                   **{name: item[name] for name in DECISION_FIELDS}}
            now = decision_hash(row)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a decision: {exc!r}", file=self.file, locator=where) from None
        if item.get("run_id", self.run.id) != self.run.id:
            raise InputError(f"a decision of run {item.get('run_id')}, not {self.run.id}", file=self.file,
                             locator=where)
        if now != row["decision_hash"]:
            raise InputError(f"decision #{row['seq']} does not match its decision hash (it was edited)",
                             file=self.file, locator=where)
        self.decisions += 1
        self.hashes.append(bytes.fromhex(now))
        self.decision_rows.append(row)
        if len(self.decision_rows) >= BATCH:
            self._flush_decisions()

    def _flush_inputs(self) -> None:
        if self.snapshots:
            keys = sorted(self.snapshots)
            have = set(self.session.scalars(select(Snapshot.content_hash).where(Snapshot.content_hash.in_(keys))))
            new = [self.snapshots[k] for k in keys if k not in have]
            if new:
                self.session.execute(insert(Snapshot), new)
        if self.input_rows:
            self.session.execute(insert(RunInput), self.input_rows)
        self.snapshots, self.input_rows = {}, []

    def _flush_decisions(self) -> None:
        if self.decision_rows:
            self.session.execute(insert(Decision), self.decision_rows)
        self.decision_rows = []

    def finish(self) -> None:
        self._flush_inputs()
        self._flush_decisions()
        if self.ended is None:
            raise InputError("the file ends before its end line: it is truncated", file=self.file)
        if (self.ended.get("inputs"), self.ended.get("decisions")) != (self.inputs, self.decisions):
            raise InputError(f"the end line counts {self.ended.get('inputs')} inputs and "
                             f"{self.ended.get('decisions')} decisions; the file holds {self.inputs} and "
                             f"{self.decisions}", file=self.file, locator="end")
        if input_digest(self.listed) != self.run.input_digest:
            raise InputError("the inputs do not match the run's input digest", file=self.file)
        if decision_digest(self.hashes) != self.run.decision_digest:
            raise InputError("the decisions do not match the run's decision digest (some are missing or added)",
                             file=self.file)


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    yield f"line {number}", _object(json.loads(line), path, number)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the export: {exc}", file=str(path)) from None


def _object(data: Any, path: Path, number: int) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError("a line that is not a JSON object", file=str(path), locator=f"line {number}")
    return data


def _read_csv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    manifest_file = companion_path(path)
    try:
        header = _object(json.loads(manifest_file.read_text(encoding="utf-8")), manifest_file, 1)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"a CSV export needs its manifest beside it: {exc}", file=str(manifest_file)) from None
    inputs, decisions = header.pop("inputs", []), header.pop("decisions", None)
    yield "manifest", header
    for i, item in enumerate(inputs, 1):
        yield f"manifest input {i}", {"type": "input", **item}
    count = 0
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # features and firings are long JSON cells
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            for number, row in enumerate(csv.DictReader(fh), 2):
                try:
                    item = decision_from_csv(row)
                except (ValueError, TypeError) as exc:
                    raise InputError(f"not a decision row: {exc}", file=str(path), locator=f"row {number}") from None
                count += 1
                yield f"row {number}", item
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read the export: {exc}", file=str(path)) from None
    yield "end", {"type": "end", "inputs": len(inputs), "decisions": decisions if decisions is not None else -1}
