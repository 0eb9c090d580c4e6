"""Streaming reader for OCDS files: release and record packages, records, releases, JSON Lines.

Releases are read one at a time with ijson (``releases.item`` of a package), so memory stays bounded
however large the file; numbers come back as ``int`` or ``Decimal`` (never float), so ``1e9999`` and
long amounts survive unchanged into the stored raw release. Nothing here compiles or normalises: the
ingest groups releases by ocid and calls :func:`broker.normalise.compile.compile_releases`.

Bad input never stops the good (BRIEF, pipeline step 2): a release without ``ocid`` or ``date``, a
linked release we cannot fetch, or a broken JSON Lines line becomes an ``error`` item; a package that
breaks part-way (truncated download) yields every release before the break and then one ``error`` item.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import ijson

from broker.errors import InputError
from broker.normalise.dates import parse_datetime
from broker.normalise.record import canonical_hash, canonical_json
from broker.sources.base import ProgressCallback, SourceItem
from broker.sources.detect import (
    OCDS_FORMATS,
    OCDS_RECORD,
    OCDS_RECORD_PACKAGE,
    OCDS_RELEASE,
    OCDS_RELEASE_JSONL,
    OCDS_RELEASE_PACKAGE,
)
from broker.sources.encoding import open_utf8_binary, scan_encoding

PACKAGE_META_KEYS = ("publisher", "uri", "extensions", "publishedDate")
RAW_LIMIT = 100_000
"""Characters of a bad release's text kept for the quarantine."""
DERIVED_ID_PREFIX = "derived-sha256-"
_LINKED_KEYS = frozenset({"url", "date", "tag"})
_ITEM_PREFIX = {OCDS_RELEASE_PACKAGE: "releases.item", OCDS_RECORD_PACKAGE: "records.item",
                OCDS_RECORD: "", OCDS_RELEASE: "", OCDS_RELEASE_JSONL: ""}


def read_ocds(path: str | Path, fmt: str, progress: ProgressCallback | None = None, *,
              encoding: str | None = None) -> Iterator[SourceItem]:
    """Yield one ``release`` item per release in an OCDS file, and ``error`` items for bad parts.

    Args:
        path: the file.
        fmt: its format from :func:`broker.sources.detect.detect_format` (one of ``OCDS_FORMATS``).
        progress: called now and then with the number of bytes read so far.
        encoding: the file's encoding from :func:`broker.sources.encoding.scan_encoding`, if the
            caller already has it (to warn about a non-UTF-8 file); otherwise the file is scanned.

    Raises:
        InputError: ``fmt`` is not an OCDS format, or the file cannot be opened.
    """
    if fmt not in OCDS_FORMATS:
        raise InputError(f"not an OCDS format: {fmt}", file=str(path))
    name = str(path)
    try:
        encoding = encoding or scan_encoding(path)
        meta = package_meta(path, encoding) if fmt in (OCDS_RELEASE_PACKAGE, OCDS_RECORD_PACKAGE) else None
        stream, _ = open_utf8_binary(path, encoding=encoding, on_read=progress)
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", file=name) from None
    with stream:
        if fmt == OCDS_RELEASE_JSONL and _first_line_is_json(path, encoding):
            yield from _read_lines(stream, name)
        else:
            # Concatenated JSON that is not one value per line is read as a stream of values.
            yield from _read_stream(stream, name, fmt, meta)


def _first_line_is_json(path: str | Path, encoding: str) -> bool:
    stream, _ = open_utf8_binary(path, encoding=encoding)
    with stream:
        for line in stream:
            if line.strip():
                try:
                    json.loads(line, parse_float=Decimal)
                except ValueError:
                    return False
                return True
    return False


def _read_stream(stream: IO[bytes], name: str, fmt: str, meta: dict[str, Any] | None) -> Iterator[SourceItem]:
    """Items of a JSON document (or concatenated documents) under the format's ijson prefix."""
    reader = _Counter()
    try:
        for value in ijson.items(stream, _ITEM_PREFIX[fmt], multiple_values=True):
            if fmt in (OCDS_RECORD_PACKAGE, OCDS_RECORD):
                yield from _record_items(value, reader, name, meta)
            else:
                yield _release_item(value, reader.next(), name, meta or _packageinfo(value))
    except ijson.JSONError as exc:
        offset = getattr(getattr(stream, "raw", None), "bytes_read", None)
        where = f"after release {reader.count}" + (f" (near byte offset {offset})" if offset is not None else "")
        reason = (str(exc).splitlines() or ["malformed JSON"])[0].strip()
        yield _error(InputError(f"the file is not valid JSON from here on ({reason}); "
                                f"{reader.count} releases before it were read", file=name, locator=where))


class _Counter:
    """Counts release items read so far (good or bad), for locators."""

    def __init__(self) -> None:
        self.count = 0

    def next(self) -> int:
        self.count += 1
        return self.count


def _read_lines(stream: IO[bytes], name: str) -> Iterator[SourceItem]:
    """JSON Lines: each line on its own, so a broken line is one error and the next lines still read."""
    reader = _Counter()
    for number, line in enumerate(stream, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            value = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
        except ValueError as exc:
            yield _error(InputError(f"line is not valid JSON ({exc})", file=name, locator=f"line {number}"),
                         raw=text.decode("utf-8", "replace"))
            continue
        yield _release_item(value, reader.next(), name, _packageinfo(value), where=f"line {number}")


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def _record_items(record: Any, reader: _Counter, name: str, meta: dict[str, Any] | None) -> Iterator[SourceItem]:
    """The full releases of one record; its compiledRelease when that is all it has."""
    if not isinstance(record, dict):
        yield _error(InputError("a record is not a JSON object", file=name, locator=f"release {reader.next()}"),
                     raw=_raw(record))
        return
    ocid = record.get("ocid")
    raw_releases = record.get("releases")
    releases: list[Any] = raw_releases if isinstance(raw_releases, list) else []
    linked = [r for r in releases if _is_linked(r)]
    full = [r for r in releases if not _is_linked(r)]
    for release in full:
        yield _release_item(release, reader.next(), name, meta)
    if full:
        for release in linked:
            yield _linked_error(release, reader.next(), name, ocid)
        return
    compiled = record.get("compiledRelease")
    if isinstance(compiled, dict):
        # Only linked releases (or none): the publisher's compiled state is the best we have.
        yield _release_item(compiled, reader.next(), name, meta, where="compiledRelease")
        return
    for release in linked:
        yield _linked_error(release, reader.next(), name, ocid)
    if not linked:
        yield _error(InputError("the record has neither releases nor a compiledRelease", file=name,
                                locator=f"release {reader.next()} (record ocid={ocid})", field="releases"),
                     raw=_raw(record))


def _is_linked(release: Any) -> bool:
    """A linked release (OCDS record ``releases``): only ``url``, ``date`` and ``tag``."""
    return isinstance(release, dict) and "url" in release and set(release) <= _LINKED_KEYS


def _linked_error(release: dict[str, Any], number: int, name: str, ocid: Any) -> SourceItem:
    reason = (f"linked release {str(release.get('url'))[:300]!r} is not fetched (broker reads files, not URLs); "
              "supply the release itself, or a record with its full releases or a compiledRelease")
    return _error(InputError(reason, file=name, locator=f"release {number} (record ocid={ocid})",
                             field="releases"), raw=_raw(release))


def _release_item(release: Any, number: int, name: str, meta: dict[str, Any] | None, *,
                  where: str | None = None) -> SourceItem:
    """Check the fields every release needs and wrap it; a bad release becomes an ``error`` item."""
    label = f"{where}, release {number}" if where else f"release {number}"
    if not isinstance(release, dict):
        return _error(InputError("a release is not a JSON object", file=name, locator=label), raw=_raw(release))
    ocid, rid = release.get("ocid"), release.get("id")
    locator = f"{label} (ocid={ocid}, id={rid})"
    problem = _missing(release)
    if problem is not None:
        field, reason = problem
        return _error(InputError(reason, file=name, locator=locator, field=field), raw=_raw(release))
    if _blank(rid):
        # Seen in real Public Contracts Scotland data: releases without `id`. The id is only needed to
        # tell releases apart, so derive a stable one from the content rather than quarantine them.
        release = {**release, "id": DERIVED_ID_PREFIX + canonical_hash(release)[:16]}
        locator = f"{label} (ocid={ocid}, id derived from content: {release['id']})"
    return SourceItem(kind="release", locator=locator, release=release, package_meta=meta)


def _missing(release: dict[str, Any]) -> tuple[str, str] | None:
    """(field, reason) for the first required field that is missing or unusable."""
    ocid = release.get("ocid")
    if _blank(ocid) or not isinstance(ocid, str):
        return "ocid", "the release has no ocid"
    date = release.get("date")
    if _blank(date):
        return "date", "the release has no date"
    try:
        parse_datetime(date)
    except ValueError:
        return "date", f"the release date {str(date)[:40]!r} is not a date"
    rid = release.get("id")
    if not _blank(rid) and not isinstance(rid, (str, int)):
        return "id", "the release id is not a string"
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _packageinfo(release: Any) -> dict[str, Any] | None:
    """Legacy Contracts Finder single releases carry their package metadata in ``packageInfo``."""
    info = release.get("packageInfo") if isinstance(release, dict) else None
    if not isinstance(info, dict):
        return None
    return {k: info[k] for k in PACKAGE_META_KEYS if k in info}


def _error(error: InputError, raw: str | None = None) -> SourceItem:
    return SourceItem(kind="error", locator=error.locator or "", error=error, raw=raw)


def _raw(value: Any) -> str:
    try:
        text = canonical_json(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text[:RAW_LIMIT]


def package_meta(path: str | Path, encoding: str | None = None) -> dict[str, Any]:
    """The package's ``publisher``, ``uri``, ``extensions`` and ``publishedDate`` seen before its data.

    Reads only the top of the file: it stops at ``releases`` / ``records`` (metadata written after the
    data is not seen; Contracts Finder and Find a Tender write it first).
    """
    meta: dict[str, Any] = {}
    try:
        stream, _ = open_utf8_binary(path, prescan=False, encoding=encoding)
    except OSError:
        return meta
    with stream:
        try:
            _collect_meta(ijson.parse(stream), meta)
        except ijson.JSONError:
            pass  # the reader reports the break itself
    return meta


def _collect_meta(events: Iterable[tuple[str, str, Any]], meta: dict[str, Any]) -> None:
    builder: Any = None
    key = ""
    for prefix, event, value in events:
        if prefix == "" and event in ("map_key", "end_map"):
            if builder is not None:
                meta[key] = builder.value
                builder = None
            if event == "end_map" or value in ("releases", "records"):
                return
            if value in PACKAGE_META_KEYS:
                key, builder = value, ijson.ObjectBuilder()
        elif builder is not None:
            builder.event(event, value)
