"""Outcomes kept in an officer's spreadsheet: ``outcomes.csv`` imported row by row into the ledger.

Columns (UTF-8, a BOM is allowed; a header row names them, in any order):

``opportunity_id,party_id,stage,value_gbp,note,date``

- ``opportunity_id`` (required): an opportunity id, OCDS ocid or publisher notice id.
- ``party_id`` (required): a VCSE id, a consortium id, or the id of a suggested consortium matched to it.
- ``stage`` (required): matched, introduced, interested, bid, won, lost or withdrawn.
- ``value_gbp``: the awarded value, only with ``won`` (e.g. ``45000`` or ``£45,000.00``).
- ``note``: free text, kept as written.
- ``date``: when it happened, ``YYYY-MM-DD`` or ``dd/mm/yyyy``; blank means the import's business date.

A bad row is reported by row number and field and quarantined with its reason; the good rows are
recorded. Cells are data: a cell such as ``=HYPERLINK(...)`` is stored as that text, never evaluated,
and is not a number. Importing the same rows again records nothing new.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy.orm import Session

from broker.errors import InputError, NotFound
from broker.normalise.money import gbp_to_pence
from broker.store.opportunities import find_opportunity
from broker.store.quarantine import quarantine
from broker.target.config import TargetConfig
from broker.target.ledger import LedgerWriter, record_outcome
from broker.target.stages import STAGES

COLUMNS = ("opportunity_id", "party_id", "stage", "value_gbp", "note", "date")
REQUIRED = ("opportunity_id", "party_id", "stage")
_UK_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_Bad = Callable[[str, str], InputError]


@dataclass
class ImportResult:
    """What an import did: rows read, entries appended, rows already recorded, and the bad rows."""

    file: str
    sha256: str
    rows: int = 0
    recorded_rows: int = 0
    entries: int = 0
    unchanged_rows: int = 0
    errors: list[InputError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {"file": self.file, "sha256": self.sha256, "rows": self.rows, "recorded_rows": self.recorded_rows,
                "entries": self.entries, "unchanged_rows": self.unchanged_rows,
                "errors": [{"row": e.locator, "field": e.field, "reason": e.reason} for e in self.errors],
                "warnings": self.warnings}


def import_outcomes(session: Session, path: Path, *, as_of: date, config: TargetConfig | None = None) -> ImportResult:
    """Record every good row of an outcomes CSV; quarantine the bad ones with their reason.

    Raises:
        InputError: the file cannot be read, is not UTF-8 CSV, or lacks a required column.
    """
    data = _read(path)
    sha = hashlib.sha256(data).hexdigest()
    result = ImportResult(file=str(path), sha256=sha)
    header, records = _parse(path, data)
    result.warnings = [f"{path}: column {name!r} is not an outcomes column and was ignored"
                       for name in header if name not in COLUMNS]
    writer = LedgerWriter(session, cause=f"import:{sha}", as_of=as_of, config=config)
    for line, row in records:
        result.rows += 1
        try:
            added = _import_row(session, writer, row, path=path, line=line, sha=sha, as_of=as_of)
        except InputError as exc:
            result.errors.append(exc)
            quarantine(session, exc, json.dumps(row, ensure_ascii=False), file_sha256=sha)
            continue
        result.entries += added
        if added:
            result.recorded_rows += 1
        else:
            result.unchanged_rows += 1
    writer.seal()
    return result


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc})", file=str(path)) from None


def _parse(path: Path, data: bytes) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start}); save the sheet as CSV UTF-8", file=str(path)) \
            from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InputError(f"missing column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}",
                             file=str(path), locator="row 1")
        records = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            # Spreadsheet row numbers: the header is row 1.
            records.append((reader.line_num, {h: (cells[i] if i < len(cells) else "")
                                              for i, h in enumerate(header) if h in COLUMNS}))
    except csv.Error as exc:
        raise InputError(f"not valid CSV ({exc})", file=str(path), locator=f"row {reader.line_num}") from None
    return header, records


def _import_row(session: Session, writer: LedgerWriter, row: dict[str, str], *, path: Path, line: int, sha: str,
                as_of: date) -> int:
    where = {"file": str(path), "locator": f"row {line}"}

    def bad(reason: str, column: str) -> InputError:
        return InputError(reason, field=column, **where)

    for column, cell in row.items():
        if "\x00" in cell:  # neither database can store a NUL, and no id or note holds one
            raise bad("contains a NUL character", column)
    for column in REQUIRED:
        if not row.get(column, "").strip():
            raise bad("required, but blank", column)
    opportunity = find_opportunity(session, row["opportunity_id"].strip())
    if opportunity is None:
        raise bad(f"no opportunity {row['opportunity_id'].strip()!r}", "opportunity_id")
    stage = row["stage"].strip().lower()
    if stage not in STAGES:
        raise bad(f"unknown stage {row['stage'].strip()!r}; one of {', '.join(STAGES)}", "stage")
    value = _value(row.get("value_gbp", ""), bad)
    day = _date(row.get("date", ""), as_of, bad)
    try:
        return record_outcome(session, opportunity.id, row["party_id"].strip(), stage, value_pence=value,
                              note=row.get("note"), cause=f"import:{sha[:12]}:row {line}", as_of=day,
                              config=writer.config, writer=writer)
    except InputError as exc:
        raise bad(exc.reason, _column(exc.field)) from None
    except NotFound as exc:
        raise bad(str(exc).split(". Try")[0], "party_id") from None


def _column(name: str | None) -> str:
    return {"value": "value_gbp"}.get(name or "", name or "")


def _value(text: str, bad: _Bad) -> int | None:
    try:
        return gbp_to_pence(text.strip() or None)
    except ValueError as exc:
        raise bad(str(exc), "value_gbp") from None


def _date(text: str, as_of: date, bad: _Bad) -> date:
    text = text.strip()
    if not text:
        return as_of
    m = _UK_DATE.match(text)
    try:
        day = date(int(m[3]), int(m[2]), int(m[1])) if m else date.fromisoformat(text)
    except ValueError:
        raise bad(f"not a date (YYYY-MM-DD or dd/mm/yyyy): {text[:40]!r}", "date") from None
    if day > as_of:
        raise bad(f"{day} is after the business date {as_of}", "date")
    return day

