"""Compiling the releases of one ocid into its current state, with the OCDS merge rules.

Merging is done by ``ocdsmerge`` (research/ocds-sources.md §1.3, §5: reuse it, do not hand-write merge
rules). Its schema is built offline, once, from the vendored files in ``broker/data/schema/``: the OCDS
1.1.5 release schema JSON-merge-patched (RFC 7396) with the extensions UK publishers declare and we rely
on: OCP Suitability, CCS tender suitability, CCS party details VCSE, and the Cabinet Office UK extension.
ocdsmerge would otherwise download the schema.

The compiled release also carries ``x_compiledFrom``: the id, date, tag and UK notice types of each
release merged, in merge order. A compiled release has ``tag: ["compiled"]`` and an id made from its
date, so without this the normaliser could not tell the latest stage or list the notices seen.
"""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

import ocdsmerge
from ocdsmerge.exceptions import DuplicateIdValueWarning, OCDSMergeError
from ocdsmerge.merge import CompiledRelease

from broker.errors import InputError
from broker.normalise.dates import parse_datetime
from broker.normalise.record import canonical_hash, decimal_json
from broker.paths import SCHEMA_DIR

CORE_SCHEMA = "ocds_1.1.5_release-schema.json"
# Applied in this order: the UK extension adds `vcse` to the Suitability object the OCP extension defines.
EXTENSION_SCHEMAS = (
    "ocp_suitability_extension_release-schema.json",
    "ccs_tender_suitability_extension_release-schema.json",
    "ccs_partyDetails_vcse_extension_release-schema.json",
    "ocds_uk_extension_release-schema.json",
)
COMPILED_FROM = "x_compiledFrom"
_DOCUMENT_ARRAYS = (("planning",), ("tender",), ("awards", "*"), ("contracts", "*"))
_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@cache
def release_schema() -> dict[str, Any]:
    """The OCDS 1.1.5 release schema with the UK extensions patched in (built once per process)."""
    schema = _load(CORE_SCHEMA)
    for name in EXTENSION_SCHEMAS:
        schema = merge_patch(schema, _load(name))
    return schema


@cache
def merger() -> ocdsmerge.Merger:
    """A reusable ``ocdsmerge.Merger`` over :func:`release_schema` (no network)."""
    return ocdsmerge.Merger(release_schema())


def _load(name: str) -> dict[str, Any]:
    with open(SCHEMA_DIR / name, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def compile_releases(releases: list[dict[str, Any]], *, warnings_out: list[str] | None = None) -> dict[str, Any]:
    """Merge the releases of one ocid into a compiled release.

    Releases are merged in order of their ``date`` (as an instant: publishers mix ``Z`` and ``+01:00``
    offsets, so the text does not sort), then ``id``, so the result does not depend on arrival order.
    Numbers may be ``Decimal`` (as ijson reads them); they are kept as they are, ``1e9999`` included.

    Args:
        releases: full releases sharing one ``ocid``.
        warnings_out: if given, duplicate-id warnings from ocdsmerge are appended here as text
            instead of being emitted (real Contracts Finder data has them; they are not fatal).

    Raises:
        InputError: no releases, mixed ocids, or releases ocdsmerge cannot merge (a field that is an
            object in one release and a list in another).
    """
    if not releases:
        raise InputError("no releases to compile")
    ocid = releases[0].get("ocid")
    if any(r.get("ocid") != ocid for r in releases):
        raise InputError("releases of different ocids cannot be compiled together", locator=f"ocid {ocid}")
    ordered = _in_merge_order(releases)
    compiled_release = CompiledRelease(merge_rules=merger().merge_rules)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DuplicateIdValueWarning)
        try:
            for release in ordered:
                compiled_release.append(release)
            compiled = compiled_release.asdict()
        except (OCDSMergeError, TypeError, AttributeError) as exc:
            raise InputError(f"releases cannot be merged: {exc}", locator=f"ocid {ocid}") from None
    _report_warnings(caught, warnings_out)
    compiled[COMPILED_FROM] = [_provenance(r) for r in ordered]
    return compiled


def _in_merge_order(releases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sorted by :func:`_merge_order`; the content hash, its last and costliest part, is taken only
    when two releases tie on the rest (the order is the same either way)."""
    keys = [_merge_prefix(r) for r in releases]
    if len(set(keys)) == len(keys):
        return [r for _, r in sorted(zip(keys, releases, strict=True), key=lambda pair: pair[0])]
    return sorted(releases, key=_merge_order)


def _merge_prefix(release: dict[str, Any]) -> tuple[datetime, str, str]:
    raw = release.get("date")
    try:
        when = parse_datetime(raw) or _FAR_FUTURE
    except ValueError:
        when = _FAR_FUTURE
    return when, str(raw), str(release.get("id"))


def _merge_order(release: dict[str, Any]) -> tuple[datetime, str, str, str]:
    # The content hash last: a publisher re-sending one id and date with different content still
    # compiles the same way whatever order the copies arrive in.
    return (*_merge_prefix(release), canonical_hash(release))


def _report_warnings(caught: list[warnings.WarningMessage], out: list[str] | None) -> None:
    for w in caught:
        if out is not None and issubclass(w.category, DuplicateIdValueWarning):
            out.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _provenance(release: dict[str, Any]) -> dict[str, Any]:
    tag = release.get("tag")
    return {
        "id": release.get("id"),
        "date": release.get("date"),
        "tag": list(tag) if isinstance(tag, list) else ([tag] if tag else []),
        "noticeTypes": notice_types(release),
    }


def notice_types(release: dict[str, Any]) -> list[str]:
    """UK notice types (``UK1`` … ``UK17``) named by a release's documents, in document order.

    The UK extension puts ``noticeType`` on any Document (research/ocds-sources.md §2.5).
    """
    found: list[str] = []
    for path in _DOCUMENT_ARRAYS:
        for holder in _walk(release, path):
            docs = holder.get("documents") if isinstance(holder, dict) else None
            for doc in docs if isinstance(docs, list) else []:
                value = doc.get("noticeType") if isinstance(doc, dict) else None
                if isinstance(value, str) and value.strip() and value.strip() not in found:
                    found.append(value.strip())
    return found


def _walk(node: Any, path: tuple[str, ...]) -> list[Any]:
    if not path:
        return [node]
    if path[0] == "*":
        return [x for item in (node if isinstance(node, list) else []) for x in _walk(item, path[1:])]
    child = node.get(path[0]) if isinstance(node, dict) else None
    return _walk(child, path[1:]) if child is not None else []


def decimals_to_json(value: Any) -> Any:
    """A copy with ``Decimal`` numbers as ``int``/``float`` where exact enough, else their text.

    For callers that store compiled releases in a JSON column: the standard ``json`` module cannot
    write ``Decimal``, and ``1e9999`` is not a finite float (it becomes the string ``"1E+9999"``).
    """
    if isinstance(value, dict):
        return {k: decimals_to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decimals_to_json(v) for v in value]
    if isinstance(value, Decimal):
        # The same rule as canonical_json, so stored and hashed forms agree.
        return decimal_json(value)
    return value
