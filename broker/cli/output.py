"""Listings people can use: one set of output options for every listing, and text that is safe to print.

``--json`` prints one JSON document, ``--nl`` one JSON object per line (for ``jq`` and streaming),
``--csv`` a spreadsheet with a header row; without them, a table with a header row for people.
Whatever a publisher or an officer typed is shown, never obeyed: control characters (a terminal's escape
sequences, bidirectional overrides) are printed as visible escapes, and a CSV cell that a spreadsheet
would read as a formula is prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

# C0 (but tab and newline), DEL, C1, and the Unicode controls that reorder or hide text.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_UNSAFE_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# A spreadsheet evaluates a cell starting with these (OWASP's list for CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(value: Any, *, one_line: bool = True) -> str:
    """``value`` as text a terminal shows but never obeys (``\\x1b`` for ESC); newlines kept if asked."""
    text = "" if value is None else str(value)
    return (_UNSAFE_ONE_LINE if one_line else _UNSAFE).sub(_escape, text)


def csv_cell(value: Any) -> str:
    """One CSV cell: lists joined by ``; ``, mappings as JSON, a would-be formula made plain text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    elif isinstance(value, list | tuple):
        text = "; ".join(csv_cell(v) for v in value)
    else:
        text = str(value)
    text = _UNSAFE.sub(_escape, text)
    return "'" + text if text.startswith(_FORMULA_START) else text


def output_options(fn: F) -> F:
    """``--json``, ``--csv`` and ``--nl`` for a listing; the command gets ``output`` (``human`` by default)."""
    for flag, doc in (("--nl", "One JSON object per line."), ("--csv", "CSV with a header row."),
                      ("--json", "Output one JSON document.")):
        fn = click.option(flag, "output", flag_value=flag[2:], help=doc)(fn)
    return click.option("--human", "output", flag_value="human", default=True, hidden=True)(fn)  # type: ignore[return-value]


def emit(rows: Sequence[Mapping[str, Any]], output: str, columns: Sequence[str],
         human: Callable[[Sequence[Mapping[str, Any]]], None]) -> None:
    """Print ``rows`` in the chosen format; ``columns`` are the CSV's, ``human`` prints the table."""
    if output == "json":
        click.echo(json.dumps(list(rows), indent=2, ensure_ascii=False, default=str))
    elif output == "nl":
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False, default=str, separators=(",", ":")))
    elif output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180, as spreadsheets write it
        writer.writerow(columns)
        for row in rows:
            writer.writerow([csv_cell(row.get(c)) for c in columns])
        click.echo(buffer.getvalue(), nl=False)
    else:
        human(rows)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, cut: int | None = 60) -> None:
    """A left-aligned table with a header row; every cell made safe, long ones cut with an ellipsis.

    Ids are never cut (a column named ``id`` or ending in `` id``): a listing's ids are usable as shown.
    """
    keep = {i for i, h in enumerate(header) if h == "id" or h.endswith(" id") or h.endswith("_id")}
    cells = [[safe(c) for c in header]]
    for row in rows:
        cells.append([_cut(safe(c), None if i in keep else cut) for i, c in enumerate(row)])
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for r in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _cut(text: str, limit: int | None) -> str:
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"
