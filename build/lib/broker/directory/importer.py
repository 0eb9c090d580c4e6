"""``broker directory import``: upsert VCSEs and consortia from the officers' spreadsheets.

Both files are read and checked first, then written in the caller's transaction. A row with errors is
reported (file, spreadsheet row, field) and skipped; good rows are imported. Rows are upserted by ``id``
and compared by ``content_hash`` (the canonical hash of the normalised record), so re-importing an
unchanged file reports every row unchanged and writes nothing. Entries missing from the file are kept:
removing a VCSE is a deliberate act, not a side effect of a shorter spreadsheet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from broker.directory.csvfile import Table, read_table
from broker.directory.parse import (
    CONSORTIUM_COLUMNS,
    CONSORTIUM_REQUIRED,
    VCSE_COLUMNS,
    VCSE_REQUIRED,
    RowCheck,
    parse_consortium_row,
    parse_vcse_row,
)
from broker.errors import InputError
from broker.normalise.record import canonical_hash
from broker.store.models import Consortium, ConsortiumMember, Vcse

_CHUNK = 500  # ids per IN (...) query


@dataclass
class FileSummary:
    """Counts for one imported file. ``errors`` counts rows that were not imported."""

    file: str
    rows: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: int = 0

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "rows": self.rows, "new": self.new, "updated": self.updated,
                "unchanged": self.unchanged, "errors": self.errors}


@dataclass
class ImportReport:
    """What an import did: per-file counts, row errors and warnings (each naming file, row and field)."""

    vcses: FileSummary
    consortia: FileSummary | None = None
    errors: list[InputError] = field(default_factory=list)
    warnings: list[InputError] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    def to_json(self) -> dict[str, Any]:
        return {"vcses": self.vcses.to_json(),
                "consortia": self.consortia.to_json() if self.consortia else None,
                "errors": [_problem_json(e) for e in self.errors],
                "warnings": [_problem_json(w) for w in self.warnings]}


def _problem_json(problem: InputError) -> dict[str, Any]:
    return {"file": problem.file, "row": problem.locator, "field": problem.field, "reason": problem.reason}


def import_directory(session: Session, vcses_path: Path, consortia_path: Path | None = None, *,
                     vcses_name: str | None = None, consortia_name: str | None = None) -> ImportReport:
    """Import ``vcses.csv`` (and optionally ``consortia.csv``) into the database in ``session``.

    The caller owns the transaction (``with sessions.begin() as session``). File-level problems (unreadable
    file, missing required column) raise ``InputError`` before anything is written; row-level problems are
    in the report, whose ``failed`` is true when any row was not imported.

    Args:
        session: an open session inside a transaction.
        vcses_path: the VCSE directory, columns as in BRIEF.md.
        consortia_path: the consortia file, or ``None``.
        vcses_name: how to name the VCSE file in messages (default: the path as given).
        consortia_name: likewise for the consortia file.
    """
    vcse_table = read_table(vcses_path, columns=VCSE_COLUMNS, required=VCSE_REQUIRED, file=vcses_name)
    cons_table = (read_table(consortia_path, columns=CONSORTIUM_COLUMNS, required=CONSORTIUM_REQUIRED,
                             file=consortia_name) if consortia_path is not None else None)
    report = ImportReport(FileSummary(vcse_table.file), FileSummary(cons_table.file) if cons_table else None)
    failed_rows = _import_vcses(session, vcse_table, report)
    if cons_table is not None:
        session.flush()  # the consortia check their members against this import's VCSEs
        _import_consortia(session, cons_table, report, failed_rows)
    files = [vcse_table.file, cons_table.file if cons_table else ""]
    for problems in (report.errors, report.warnings):  # in file order, then spreadsheet order
        problems.sort(key=lambda p: (files.index(p.file) if p.file in files else 2, _row_number(p)))
    return report


def _row_number(problem: InputError) -> int:
    locator = problem.locator or ""
    return int(locator[4:]) if locator.startswith("row ") and locator[4:].isdigit() else 0


def _import_vcses(session: Session, table: Table, report: ImportReport) -> dict[str, int]:
    """Upsert the good rows; returns the ids of rows that failed, with their row numbers."""
    summary = report.vcses
    report.warnings.extend(table.warnings)
    _count_table_errors(table, summary, report)
    records: list[dict[str, Any]] = []
    failed: dict[str, int] = {}
    seen: dict[str, int] = {}
    for number, row in table.rows:
        summary.rows += 1
        rec, check = parse_vcse_row(table.file, number, row)
        report.warnings.extend(check.warnings)
        if rec is not None and rec["id"] in seen:
            check.error("id", f"{rec['id']} is already used by row {seen[rec['id']]} of this file")
            rec = None
        if rec is None:
            _fail(check.errors, summary, report)
            failed.setdefault(check.raw("id"), number)
            continue
        seen[rec["id"]] = number
        records.append(rec)
    consortium_ids = _existing(session, Consortium.id, [r["id"] for r in records])
    current = _vcses_by_id(session, {r["id"] for r in records})  # one query per 500 rows, not one per row
    for rec in records:
        if rec["id"] in consortium_ids:
            _fail([InputError(f"{rec['id']} is already a consortium id", file=table.file,
                              locator=f"row {seen[rec['id']]}", field="id")], summary, report)
            failed.setdefault(rec["id"], seen[rec["id"]])
            continue
        summary.count(_upsert(session, Vcse, rec, current.get(rec["id"])))
    return failed


def _import_consortia(session: Session, table: Table, report: ImportReport, failed_vcses: dict[str, int]) -> None:
    summary = report.consortia
    assert summary is not None
    report.warnings.extend(table.warnings)
    _count_table_errors(table, summary, report)
    parsed: list[tuple[int, dict[str, Any], RowCheck]] = []
    for number, row in table.rows:
        summary.rows += 1
        parsed.append((number, *parse_consortium_row(table.file, number, row)))
    members = _vcses_by_id(session, {m for _, rec, _ in parsed for m in rec["member_ids"]})
    vcse_ids = _existing(session, Vcse.id, [rec["id"] for _, rec, _ in parsed if rec["id"]])
    seen: dict[str, int] = {}
    for number, rec, check in parsed:
        _check_consortium(check, rec, members, failed_vcses, seen, vcse_ids, report.vcses.file)
        if check.errors:
            _fail(check.errors, summary, report)
            continue
        seen[rec["id"]] = number
        final = derive_consortium(rec, [members[m] for m in rec["member_ids"]])
        row = {k: v for k, v in final.items() if k != "member_ids"}
        outcome = _upsert(session, Consortium, row, session.get(Consortium, rec["id"]), content=final)
        if outcome != "unchanged":
            _replace_members(session, final["id"], final["member_ids"])
        summary.count(outcome)


def _check_consortium(check: RowCheck, rec: dict[str, Any], members: dict[str, Vcse], failed: dict[str, int],
                      seen: dict[str, int], vcse_ids: set[str], vcse_file: str) -> None:
    if rec["id"] and rec["id"] in seen:
        check.error("id", f"{rec['id']} is already used by row {seen[rec['id']]} of this file")
    if rec["id"] and rec["id"] in vcse_ids:
        check.error("id", f"{rec['id']} is already a VCSE id")
    missing = [m for m in rec["member_ids"] if m not in members]
    if missing:
        detail = ", ".join(f"{m} (row {failed[m]} of {vcse_file} has errors)" if m in failed else m
                           for m in missing)
        check.error("member_ids", f"not in the directory: {detail}")


def derive_consortium(rec: dict[str, Any], members: list[Vcse]) -> dict[str, Any]:
    """Fill blank capabilities and max value from the members (BRIEF: "derived from the members").

    Capabilities: the members' own words joined in member order. Max value: the sum of the members' max
    contract values when every member states one; otherwise unknown.
    """
    out = dict(rec)
    out["capabilities_derived"] = rec["capabilities"] is None
    if out["capabilities_derived"]:
        out["capabilities"] = "\n".join(m.capabilities for m in members)
    values = [m.max_contract_value_pence for m in members]
    out["max_value_derived"] = rec["max_contract_value_pence"] is None and all(v is not None for v in values)
    if out["max_value_derived"]:
        out["max_contract_value_pence"] = sum(v for v in values if v is not None)
    return out


def _upsert(session: Session, model: type[Vcse] | type[Consortium], rec: dict[str, Any],
            existing: Vcse | Consortium | None, *, content: dict[str, Any] | None = None) -> str:
    """Insert, update or leave one row; returns ``new``, ``updated`` or ``unchanged``."""
    digest = canonical_hash(content if content is not None else rec)
    if existing is None:
        session.add(model(**rec, content_hash=digest))
        return "new"
    if existing.content_hash == digest:
        return "unchanged"
    for key, value in rec.items():
        setattr(existing, key, value)
    existing.content_hash = digest
    return "updated"


def _replace_members(session: Session, consortium_id: str, member_ids: list[str]) -> None:
    session.flush()
    session.execute(delete(ConsortiumMember).where(ConsortiumMember.consortium_id == consortium_id))
    session.add_all(ConsortiumMember(consortium_id=consortium_id, vcse_id=m, position=i)
                    for i, m in enumerate(member_ids))


def _vcses_by_id(session: Session, ids: set[str]) -> dict[str, Vcse]:
    wanted = sorted(ids)
    out: dict[str, Vcse] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        out.update((v.id, v) for v in session.scalars(select(Vcse).where(Vcse.id.in_(chunk))))
    return out


def _existing(session: Session, column: Any, ids: Iterable[str]) -> set[str]:
    wanted = sorted(set(ids))
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        found.update(session.scalars(select(column).where(column.in_(wanted[start:start + _CHUNK]))))
    return found


def _count_table_errors(table: Table, summary: FileSummary, report: ImportReport) -> None:
    for error in table.errors:
        summary.rows += 1
        _fail([error], summary, report)


def _fail(errors: list[InputError], summary: FileSummary, report: ImportReport) -> None:
    summary.errors += 1
    report.errors.extend(errors)
