"""Which reader a file needs, decided by its content, never by its extension alone.

JSON is recognised by the top-level keys of its first value (read as a stream with ijson, so a 1 GB
package is never loaded), following OCDS 1.1.5's container schemas (research/ocds-sources.md §1.1):
a release package has ``releases`` plus package metadata, a record package has ``records``, a bare
record has ``releases`` with ``ocid`` / ``compiledRelease`` / ``versionedRelease``, a release has
``ocid`` and no ``releases``. CSV is recognised by its header row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ijson

from broker.errors import InputError
from broker.sources.encoding import open_utf8_binary

OCDS_RELEASE_PACKAGE = "ocds_release_package"
OCDS_RECORD_PACKAGE = "ocds_record_package"
OCDS_RELEASE_JSONL = "ocds_release_jsonl"
OCDS_RELEASE = "ocds_release"
OCDS_RECORD = "ocds_record"
CF_CSV = "cf_csv"
PRIVATE_CSV = "private_csv"
PRIVATE_JSON = "private_json"
PRIVATE_JSONL = "private_jsonl"

OCDS_FORMATS = (OCDS_RELEASE_PACKAGE, OCDS_RECORD_PACKAGE, OCDS_RELEASE_JSONL, OCDS_RELEASE, OCDS_RECORD)
PRIVATE_FORMATS = (PRIVATE_CSV, PRIVATE_JSON, PRIVATE_JSONL)
FORMATS = (*OCDS_FORMATS, CF_CSV, *PRIVATE_FORMATS)

# The private-opportunity contract (BRIEF, "Input formats"): these keys are what tell it apart.
PRIVATE_KEYS = ("id", "buyer", "buyer_type", "title", "description", "value_min_gbp", "value_max_gbp",
                "published", "deadline", "cpv_codes", "postcode", "local_authority", "suitable_for_vcse",
                "url", "contact_email")
_PRIVATE_REQUIRED = frozenset({"id", "buyer", "title"})
_PRIVATE_DISTINCT = frozenset(PRIVATE_KEYS) - {"id", "title", "description", "url", "buyer"}
# Contracts Finder "Download CSV" columns (research/ocds-sources.md §2.2) that no other format has.
_CF_CSV_COLUMNS = frozenset({"Notice Identifier", "Notice Type", "Organisation Name", "Suitable for SME",
                             "Suitable for VCO", "Cpv Codes", "Value Low", "Value High", "Closing Date"})
_PACKAGE_KEYS = frozenset({"uri", "publisher", "publishedDate", "version", "extensions", "license",
                           "publicationPolicy", "links", "packages"})
_RECORD_KEYS = frozenset({"compiledRelease", "versionedRelease"})
_RELEASE_KEYS = frozenset({"ocid", "id", "date", "tag", "initiationType", "tender", "planning", "awards",
                           "contracts", "parties", "buyer"})
# Past this many bytes without a decision, a file whose first key was ``releases`` is a release package.
_SCAN_LIMIT = 64 << 20
_CSV_SNIFF = 1 << 16


def detect_format(path: str | Path) -> str:
    """Name the format of ``path``: one of :data:`FORMATS`.

    Raises:
        InputError: the file is empty, not JSON or CSV, or JSON/CSV of a shape no reader understands;
            the message says what was found.
    """
    name = str(path)
    try:
        stream, _ = open_utf8_binary(path, prescan=False)
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", file=name) from None
    with stream:
        head = stream.peek(_CSV_SNIFF)[:_CSV_SNIFF].lstrip()
        if not head:
            raise InputError("unknown format: the file is empty", file=name)
        if head[:1] in (b"{", b"["):
            return _detect_json(stream, name)
        if b"\x00" in head:
            raise InputError("unknown format: a binary file, not JSON or CSV", file=name)
    return _detect_csv(path, name)


def _detect_json(stream: io.BufferedReader, name: str) -> str:
    events = ijson.parse(stream, multiple_values=True)
    try:
        first = next(events)
        if first[1] == "start_array":
            return _detect_array(events, name)
        return _detect_object(events, stream, name)
    except ijson.JSONError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "malformed JSON"
        raise InputError(f"unknown format: JSON that cannot be parsed ({reason})", file=name) from None


def _detect_object(events: Iterator[tuple[str, str, Any]], stream: io.BufferedReader, name: str) -> str:
    keys: list[str] = []
    for prefix, event, value in events:
        if prefix == "" and event == "map_key":
            keys.append(value)
            decided = _decide_keys(keys, final=False)
            if decided:
                return decided
            if "releases" in keys and stream.raw.bytes_read > _SCAN_LIMIT:  # type: ignore[attr-defined]
                return OCDS_RELEASE_PACKAGE
        elif prefix == "" and event == "end_map":
            break
    decided = _decide_keys(keys, final=True)
    if decided == OCDS_RELEASE:
        # One release, or the first line of JSON Lines: another top-level value follows in JSONL.
        return OCDS_RELEASE_JSONL if _more_values(events) else OCDS_RELEASE
    if decided == PRIVATE_JSONL:
        return PRIVATE_JSONL
    if decided:
        return decided
    shown = ", ".join(keys[:12]) or "none"
    raise InputError(f"unknown format: a JSON object with top-level keys {shown}; expected an OCDS release "
                     "package, record package, record or release, or a private opportunity", file=name)


def _more_values(events: Iterator[tuple[str, str, Any]]) -> bool:
    """Whether anything follows the first top-level value (even a broken line: that is JSON Lines too)."""
    try:
        return next(events, None) is not None
    except ijson.JSONError:
        return True


def _decide_keys(keys: list[str], *, final: bool) -> str | None:
    """The format the top-level keys seen so far prove, or ``None`` while undecided."""
    seen = set(keys)
    if "records" in seen:
        return OCDS_RECORD_PACKAGE
    if seen & _RECORD_KEYS:
        return OCDS_RECORD
    if "releases" in seen:
        if "ocid" in seen:
            return OCDS_RECORD
        if seen & _PACKAGE_KEYS:
            return OCDS_RELEASE_PACKAGE
        # Neither ocid nor package metadata yet: they may come after the releases array.
        return OCDS_RELEASE_PACKAGE if final else None
    if not final:
        return None
    if "ocid" in seen and len(seen & _RELEASE_KEYS) >= 2:
        return OCDS_RELEASE
    if _looks_private(seen):
        return PRIVATE_JSONL
    return None


def _looks_private(keys: set[str]) -> bool:
    return _PRIVATE_REQUIRED <= keys and bool(keys & _PRIVATE_DISTINCT)


def _detect_array(events: Iterator[tuple[str, str, Any]], name: str) -> str:
    """A top-level array: private opportunities as a JSON list (OCDS has no bare-array container)."""
    keys: set[str] = set()
    for prefix, event, value in events:
        if prefix == "item" and event == "map_key":
            keys.add(value)
        elif prefix == "item" and event == "end_map":
            break
        elif prefix == "" and event == "end_array":
            break
    if _looks_private(keys):
        return PRIVATE_JSON
    if "ocid" in keys:
        raise InputError("unknown format: a JSON array of OCDS releases; wrap them in a release package "
                         '({"releases": [...]}) or write one release per line (JSON Lines)', file=name)
    shown = ", ".join(sorted(keys)[:12]) or "none"
    raise InputError(f"unknown format: a JSON array whose first item has keys {shown}; expected private "
                     f"opportunities with keys {','.join(PRIVATE_KEYS)}", file=name)


def _detect_csv(path: str | Path, name: str) -> str:
    stream, _ = open_utf8_binary(path, prescan=False)
    with io.TextIOWrapper(stream, encoding="utf-8", newline="") as text:
        header = next(csv.reader(text), [])
    columns = [c.strip() for c in header]
    if len(_CF_CSV_COLUMNS & set(columns)) >= 4:
        return CF_CSV
    lowered = {c.lower() for c in columns}
    if _looks_private(lowered):
        return PRIVATE_CSV
    shown = ", ".join(columns[:12]) or "none"
    raise InputError(f"unknown format: not JSON, and the first CSV row has columns {shown}; expected a "
                     "Contracts Finder CSV export (Notice Identifier, …, Suitable for VCO) or private "
                     f"opportunities ({','.join(PRIVATE_KEYS)})", file=name)
