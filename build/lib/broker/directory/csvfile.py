"""Reading the officers' spreadsheets (CSV): encoding, header checks and spreadsheet row numbers.

Officers save from Excel, which writes "CSV UTF-8" with a byte-order mark, or plain "CSV" in the Windows
code page. Both are read; the second with a warning. Row numbers are the ones a spreadsheet shows: the
header is row 1, and a quoted cell spanning lines is still one row.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from broker.errors import InputError

# A cell longer than this is not a directory entry (csv's own limit is 128 KiB).
MAX_CELL = 20_000


@dataclass
class Table:
    """The rows of one CSV file, keyed by the known column names, with file-level warnings."""

    file: str
    columns: tuple[str, ...]
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    warnings: list[InputError] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)


def decode(data: bytes, file: str) -> tuple[str, InputError | None]:
    """UTF-8 (with or without BOM), else Windows-1252 with a warning; anything else is an InputError."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 or Windows-1252 text (byte {exc.start}); save it as 'CSV UTF-8'",
                         file=file) from None
    return text, InputError("not UTF-8; read as Windows-1252 (cp1252). Save it as 'CSV UTF-8' to be sure "
                            "accented letters and the pound sign survive", file=file)


def read_table(path: Path, *, columns: tuple[str, ...], required: tuple[str, ...],
               file: str | None = None) -> Table:
    """Read a CSV whose header must contain ``required`` and may contain the rest of ``columns``.

    Unknown columns are warned about and ignored; a missing optional column is treated as blank. A
    missing required column, a repeated column or an unreadable file raise ``InputError`` (nothing of
    the file can be trusted). Row-level problems (too many cells) are collected in ``Table.errors``.
    """
    name = file or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror}", file=name) from None
    text, warning = decode(data, name)
    table = Table(name, columns, warnings=[warning] if warning else [])
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise InputError(f"the file is empty; the first row must be the header {','.join(columns)}",
                             file=name)
        positions = _check_header(table, header, required)
        for number, cells in enumerate(reader, start=2):
            _add_row(table, number, cells, positions, len(header))
    except csv.Error as exc:
        raise InputError(f"not a readable CSV file ({exc})", file=name, locator=f"row {reader.line_num}") from None
    return table


def _check_header(table: Table, header: list[str], required: tuple[str, ...]) -> dict[str, int]:
    names = [h.strip().lower() for h in header]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        raise InputError(f"column(s) {', '.join(repeated)} appear more than once", file=table.file,
                         locator="row 1")
    missing = [c for c in required if c not in names]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(missing)}; the header must be "
                         f"{','.join(table.columns)}", file=table.file, locator="row 1")
    unknown = [h.strip() for h, n in zip(header, names, strict=True) if n and n not in table.columns]
    if unknown:
        table.warnings.append(InputError(f"unknown column(s) {', '.join(unknown)} ignored", file=table.file,
                                         locator="row 1"))
    absent = [c for c in table.columns if c not in names]
    if absent:
        table.warnings.append(InputError(f"column(s) {', '.join(absent)} missing; treated as blank",
                                         file=table.file, locator="row 1"))
    return {c: names.index(c) for c in table.columns if c in names}


def _add_row(table: Table, number: int, cells: list[str], positions: dict[str, int], width: int) -> None:
    if not any(c.strip() for c in cells):
        return  # blank line: spreadsheets leave them at the end
    if any(c.strip() for c in cells[width:]):
        table.errors.append(InputError(f"the row has {len(cells)} cells but the header has {width} columns "
                                       "(a comma inside a value needs quotes)", file=table.file,
                                       locator=f"row {number}"))
        return
    too_long = [c for c, i in positions.items() if i < len(cells) and len(cells[i]) > MAX_CELL]
    if too_long:
        table.errors.append(InputError(f"longer than {MAX_CELL} characters", file=table.file,
                                       locator=f"row {number}", field=too_long[0]))
        return
    table.rows.append((number, {c: (cells[i] if i < len(cells) else "") for c, i in positions.items()}))
