"""Reader for private (anchor-institution) opportunities: CSV, a JSON array, or JSON Lines.

The keys are the officers' contract in ``BRIEF.md`` (Input formats); what each means, what is required
and why, is in :mod:`broker.normalise.private`. Every format is streamed (``csv``, ``ijson``, one line at
a time), so memory stays bounded by the largest opportunity, not the file.

Locators: CSV ``row N (record M, line L)`` (header = row 1, as a spreadsheet shows it); JSON
``record N`` (1-based position in the array); JSONL ``line N``.
"""

from __future__ import annotations

import codecs
import json
import logging
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import IO, Any, BinaryIO

import ijson

from broker.errors import InputError
from broker.normalise.private import COLUMNS, REQUIRED, canonical_fields, json_type, record_from_private
from broker.sources.base import ProgressCallback, SourceItem
from broker.sources.cf_csv import CsvRecord, csv_records, open_csv_text

log = logging.getLogger(__name__)

FORMATS = ("private_csv", "private_json", "private_jsonl")
_JSON_SHAPE = "expected a JSON array of opportunities or an object with an 'opportunities' array"


def read_private(path: str, fmt: str, progress: ProgressCallback | None = None) -> Iterator[SourceItem]:
    """Read a private-opportunities file, one :class:`SourceItem` per opportunity.

    The file is opened and its shape checked (CSV header, JSON array or object) before this returns, so
    file-level problems raise here rather than on the first ``next()``.

    Args:
        path: the file.
        fmt: ``private_csv``, ``private_json`` (an array, or an object with an ``opportunities`` array)
            or ``private_jsonl`` (one object per line).
        progress: called with the number of bytes read so far.

    Returns:
        An iterator of ``record`` items, or ``error`` items naming the record and field with the
        record's text in ``raw``. A JSON file that breaks part-way yields the records before the break,
        then one error.

    Raises:
        InputError: unknown ``fmt``; the file cannot be opened; a CSV header lacks a required column;
            a JSON file is not an array or an object with an ``opportunities`` array.
    """
    openers = {"private_csv": _open_csv, "private_json": _open_json, "private_jsonl": _open_jsonl}
    if fmt not in openers:
        raise InputError(f"unknown private opportunity format {fmt!r}: expected one of {', '.join(FORMATS)}",
                         file=path)
    return openers[fmt](_State(path), progress)


class _State:
    """Per-file bookkeeping: the path for error messages and the unknown keys already warned about."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.warned: set[str] = set()

    def warn_unknown(self, keys: list[str]) -> None:
        fresh = [k for k in keys if k not in self.warned]
        if fresh:
            self.warned.update(fresh)
            log.warning("%s: ignoring unknown key(s) %s", self.path, ", ".join(repr(k) for k in fresh))

    def item(self, data: Mapping[str, Any], locator: str, raw: str) -> SourceItem:
        """Map one opportunity; a value that cannot be read becomes an error item.

        A repeated id is left to ingest, which keeps the first and quarantines a different second one.
        """
        try:
            record = record_from_private(canonical_fields(data))
        except InputError as exc:
            return self.error(exc.reason, locator, raw, exc.field)
        except ValueError as exc:  # the record refused a value (e.g. text a database cannot store)
            return self.error(str(exc), locator, raw)
        return SourceItem(kind="record", locator=locator, record=record)

    def error(self, reason: str, locator: str, raw: str | None, field: str | None = None) -> SourceItem:
        err = InputError(reason, file=self.path, locator=locator, field=field)
        return SourceItem(kind="error", locator=locator, error=err, raw=raw)


def _open_csv(state: _State, progress: ProgressCallback | None) -> Iterator[SourceItem]:
    fh = open_csv_text(state.path, progress)
    try:
        records = csv_records(fh)
        header = _csv_header(next(records, None), state.path)
    except BaseException:
        fh.close()
        raise
    state.warn_unknown([h for h in header if h not in COLUMNS])
    return _csv_items(fh, records, header, state)


def _csv_items(fh: IO[str], records: Iterator[CsvRecord], header: list[str],
               state: _State) -> Iterator[SourceItem]:
    with fh:
        for rec in records:
            if rec.is_blank:
                continue
            if rec.problem or rec.fields is None:
                yield state.error(rec.problem or "unreadable record", rec.locator, rec.raw)
            elif len(rec.fields) != len(header):
                yield state.error(f"row has {len(rec.fields)} fields, the header has {len(header)}",
                                  rec.locator, rec.raw)
            else:
                yield state.item(dict(zip(header, rec.fields, strict=True)), rec.locator, rec.raw)


def _csv_header(rec: CsvRecord | None, path: str) -> list[str]:
    if rec is None or not rec.fields or rec.problem:
        raise InputError("cannot read the header row", file=path, locator="row 1")
    header = [cell.strip().lstrip("\ufeff").strip().lower() for cell in rec.fields]
    for i, name in enumerate(header):
        if name in header[:i]:
            raise InputError(f"column {name!r} appears twice", file=path, locator="row 1", field=name)
    for name in REQUIRED:
        if name not in header:
            raise InputError(f"missing required column {name!r}", file=path, locator="row 1", field=name)
    return header


def _open_jsonl(state: _State, progress: ProgressCallback | None) -> Iterator[SourceItem]:
    return _jsonl_items(open_csv_text(state.path, progress), state)


def _jsonl_items(fh: IO[str], state: _State) -> Iterator[SourceItem]:
    with fh:
        for number, line in enumerate(fh, start=1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            locator = f"line {number}"
            try:
                data = json.loads(text, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                yield state.error(f"not valid JSON: {exc.msg} (column {exc.colno})", locator, text)
                continue
            yield _object_item(state, data, locator, text)


def _open_json(state: _State, progress: ProgressCallback | None) -> Iterator[SourceItem]:
    fh = _open_binary(state.path)
    try:
        first = _first_byte(fh)
        if first not in (b"[", b"{") or (first == b"{" and not _has_opportunities_array(state.path)):
            raise InputError(_JSON_SHAPE, file=state.path)
    except BaseException:
        fh.close()
        raise
    return _json_items(fh, "item" if first == b"[" else "opportunities.item", state, progress)


def _json_items(fh: BinaryIO, prefix: str, state: _State,
                progress: ProgressCallback | None) -> Iterator[SourceItem]:
    with fh:
        count = 0
        try:
            for count, data in enumerate(ijson.items(fh, prefix), start=1):
                if progress is not None:
                    progress(fh.tell())
                yield _object_item(state, data, f"record {count}", _raw_json(data))
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            reason = f"the JSON breaks after record {count}: {str(exc).splitlines()[0]}"
            yield state.error(reason, f"after record {count}", None)


def _object_item(state: _State, data: Any, locator: str, raw: str) -> SourceItem:
    if not isinstance(data, dict):
        return state.error(f"expected an object, got {json_type(data)}", locator, raw)
    state.warn_unknown([str(k) for k in data if k not in COLUMNS])
    return state.item(data, locator, raw)


def _raw_json(data: Any) -> str:
    """The record's text for the quarantine; ASCII escapes keep lone surrogates storable."""
    return json.dumps(data, sort_keys=True, ensure_ascii=True, default=str)


def _open_binary(path: str) -> BinaryIO:
    try:
        fh = open(path, "rb")  # the caller closes it (with-block)
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror or exc}", file=path) from None
    if fh.read(3) != codecs.BOM_UTF8:  # JSON is UTF-8 (RFC 8259); tolerate a BOM from Windows editors
        fh.seek(0)
    return fh


def _first_byte(fh: BinaryIO) -> bytes:
    """The first non-blank byte, leaving the file where it was."""
    start = fh.tell()
    while (chunk := fh.read(1)) and chunk.isspace():
        pass
    fh.seek(start)
    return chunk


def _has_opportunities_array(path: str) -> bool:
    """Whether the top-level object has an ``opportunities`` key holding an array (perhaps empty)."""
    with _open_binary(path) as fh:
        try:
            events = ijson.parse(fh)
            for prefix, event, value in events:
                if prefix == "" and event == "map_key" and value == "opportunities":
                    return next(events)[1] == "start_array"
        except ijson.JSONError:
            return False
    return False
