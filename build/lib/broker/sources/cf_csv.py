"""Reader for the Contracts Finder CSV export (``research/ocds-sources.md`` §2.2).

Two vintages are known: 42 columns (2020) and 43 with ``Closing Time`` appended (2021). The file is
streamed one record at a time with the ``csv`` module, so quoted fields spanning several lines work and
memory stays bounded by the longest record.

Locators name the row as a spreadsheet shows it (header = row 1, one row per CSV record), the data record
number, and the physical line where the record starts, because a description with line breaks makes
the two differ: ``row 57 (record 56, line 210)``.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO

from broker.errors import InputError
from broker.normalise.cf_csv import record_from_row
from broker.sources.base import ProgressCallback, SourceItem
from broker.sources.encoding import NOT_UTF8, open_utf8_binary, scan_encoding

log = logging.getLogger(__name__)

# Columns the mapping cannot do without. A file lacking one is not (this format of) the export.
REQUIRED_COLUMNS = (
    "Notice Identifier", "Notice Type", "Organisation Name", "Status", "Published Date", "Title",
    "Description", "Postcode", "Region", "Cpv Codes", "Links", "Closing Date", "Suitable for SME",
    "Suitable for VCO", "Value Low", "Value High",
)
# The rest of the 2020/2021 export: read when present (Closing Time is 2021 only) or known and unused.
OPTIONAL_COLUMNS = (
    "Nationwide", "Contact Name", "Contact Email", "Contact Address 1", "Contact Address 2", "Contact Town",
    "Contact Postcode", "Contact Country", "Contact Telephone", "Contact Website", "Attachments",
    "Additional Text", "Start Date", "End Date", "Is sub-contract", "Parent Reference", "Supply Chain",
    "OJEU Contract Type", "Awarded Date", "Awarded Value",
    "Supplier [Name|Address|Ref type|Ref Number|Is SME|Is VCSE]", "Supplier's contact name",
    "Contract start date", "Contract end date", "OJEU Procedure Type", "Accelerated Justification",
    "Closing Time",
)
_KNOWN = {name.casefold(): name for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS}
_CHUNK = 1 << 20


def read_cf_csv(path: str, progress: ProgressCallback | None = None) -> Iterator[SourceItem]:
    """Read a Contracts Finder CSV export, one :class:`SourceItem` per data row.

    The file is opened and its header checked before this returns, so file-level problems raise here
    rather than on the first ``next()``.

    Args:
        path: the export file (UTF-8 with or without BOM, or cp1252/ISO-8859-1).
        progress: called with the number of bytes read so far.

    Returns:
        An iterator of ``record`` items with the normalised opportunity, or ``error`` items naming the
        row and column, with the record's original text in ``raw`` for the quarantine.

    Raises:
        InputError: the file cannot be opened, is empty, or its header lacks a required column.
    """
    fh = open_csv_text(path, progress)
    try:
        records = csv_records(fh)
        header = _read_header(next(records, None), path)
    except BaseException:
        fh.close()
        raise
    return _items(fh, records, header, path)


def _items(fh: IO[str], records: Iterator[CsvRecord], header: list[str], path: str) -> Iterator[SourceItem]:
    with fh:
        for rec in records:
            if not rec.is_blank:
                yield _item(rec, header, path)


@dataclass(frozen=True)
class CsvRecord:
    """One CSV record as read, with where it was and its exact text."""

    row: int  # spreadsheet row number, header = 1
    line: int  # physical line where the record starts
    fields: list[str] | None  # None when the csv module could not parse it
    raw: str
    problem: str | None = None  # why the record is unusable as read (parse error, file truncated)

    @property
    def is_blank(self) -> bool:
        """An empty line or a row of empty cells: nothing to keep or quarantine."""
        return self.fields is not None and not self.problem and not any(f.strip() for f in self.fields)

    @property
    def locator(self) -> str:
        return f"row {self.row} (record {self.row - 1}, line {self.line})"


def csv_records(fh: IO[str], progress: ProgressCallback | None = None) -> Iterator[CsvRecord]:
    """Stream the records of a CSV text file, each with its row number, start line and original text.

    A record that ends because the file ended inside a quoted field is marked as truncated. Blank lines
    are records with no fields (a spreadsheet shows them as empty rows), so row numbers stay true.
    """
    tap = _LineTap(fh)
    reader = csv.reader(tap)
    row = 0
    buffer = getattr(fh, "buffer", None)
    last_pos = -1
    while True:
        start_line = tap.lines_read + 1
        try:
            fields: list[str] | None = next(reader)
            problem = "the file ends inside a quoted field (truncated?)" if tap.exhausted else None
        except StopIteration:
            return
        except csv.Error as exc:
            fields, problem = None, f"not valid CSV: {exc}"
        row += 1
        if progress is not None and buffer is not None and buffer.seekable() \
                and (pos := buffer.tell()) != last_pos:
            last_pos = pos
            progress(pos)
        yield CsvRecord(row, start_line, fields, tap.take(), problem)


class _LineTap:
    """Feeds lines to ``csv.reader`` and remembers them, so each record's exact text can be quarantined."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self._held: list[str] = []
        self.lines_read = 0
        self.exhausted = False

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        try:
            line = next(self._lines)
        except StopIteration:
            self.exhausted = True
            raise
        self.lines_read += 1
        self._held.append(line)
        return line

    def take(self) -> str:
        text = "".join(self._held)
        self._held.clear()
        return text


def _read_header(rec: CsvRecord | None, path: str) -> list[str]:
    """Canonical column names in file order; unknown columns keep their own name and are warned about."""
    if rec is None or not rec.fields:
        raise InputError("the file is empty: expected a Contracts Finder CSV header", file=path, locator="row 1")
    if rec.problem:
        raise InputError(f"cannot read the header: {rec.problem}", file=path, locator="row 1")
    names = [cell.strip().lstrip("\ufeff").strip() for cell in rec.fields]
    canonical = [_KNOWN.get(name.casefold(), name) for name in names]
    seen: set[str] = set()
    for name in canonical:
        if name in seen:
            raise InputError(f"column {name!r} appears twice", file=path, locator="row 1", field=name)
        seen.add(name)
    for required in REQUIRED_COLUMNS:
        if required not in seen:
            raise InputError(f"missing required column {required!r}: is this a Contracts Finder CSV export?",
                             file=path, locator="row 1", field=required)
    unknown = [name for name in canonical if name.casefold() not in _KNOWN]
    if unknown:
        log.warning("%s: ignoring unknown column(s) %s", path, ", ".join(repr(n) for n in unknown))
    return canonical


def _item(rec: CsvRecord, header: list[str], path: str) -> SourceItem:
    def error(reason: str, field: str | None = None) -> SourceItem:
        err = InputError(reason, file=path, locator=rec.locator, field=field)
        return SourceItem(kind="error", locator=rec.locator, error=err, raw=rec.raw)

    if rec.problem or rec.fields is None:
        return error(rec.problem or "unreadable record")
    if len(rec.fields) != len(header):
        return error(f"row has {len(rec.fields)} fields, the header has {len(header)}"
                     + (" (truncated?)" if len(rec.fields) < len(header) else ""))
    row: Mapping[str, str] = dict(zip(header, rec.fields, strict=True))
    try:
        record = record_from_row(row)
    except InputError as exc:
        return error(exc.reason, exc.field)
    except ValueError as exc:  # the record refused a value (e.g. text a database cannot store)
        return error(str(exc))
    return SourceItem(kind="record", locator=rec.locator, record=record)


def open_csv_text(path: str, progress: ProgressCallback | None = None) -> IO[str]:
    """Open a CSV file as text in the encoding its bytes allow (UTF-8, with or without BOM, else
    Windows-1252), warning when it is not UTF-8. The whole file is checked first in one streaming pass:
    a reader that switched encodings half-way would already have yielded wrongly decoded records.
    ``progress`` is called with the bytes of the file read so far."""
    try:
        encoding = scan_encoding(path)
        binary, _ = open_utf8_binary(path, encoding=encoding, on_read=progress)
        fh = io.TextIOWrapper(binary, encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror or exc}", file=path) from None
    if encoding in NOT_UTF8:
        log.warning("%s is not UTF-8; read as %s", path, encoding)
    return fh
