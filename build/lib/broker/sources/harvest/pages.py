"""Reading one served page: decode, repair the known number quirks, check it is a release package.

A page is kept byte for byte when it is UTF-8 JSON that strict parsers accept. Otherwise it is
transcoded and/or patched and the repaired text is kept (UTF-8), with notes saying what was changed.

Known quirks (shared/research/ocds-sources.md §2.1, §2.4):

* Contracts Finder serves ISO-8859-1 (OCP's spider decodes it so); we try UTF-8 first because valid
  multi-byte UTF-8 is vanishingly unlikely in Latin-1 text, then fall back to ISO-8859-1, which never fails.
* Find a Tender has served ``1e9999`` (``maximumLotsBidPerSupplier``, meaning "no limit"). That *is*
  JSON syntax, but it overflows a double: Python reads it as ``inf`` and writes it back as ``Infinity``
  (not JSON), and strict parsers reject it. OCP's spider rewrites it to ``9999999``; so do we, for every
  number that overflows a double.
* Find a Tender has served ``" 000,"``, a number with leading zeros, which is not JSON at all; the
  spider rewrites it to ``" 0,"``. We strip leading zeros from any such number.

Numbers are only rewritten outside strings, so a description that mentions ``1e9999`` is left alone.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from broker.errors import BrokerError

# A JSON string (consumed whole so nothing inside it is touched), or a number-like token.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?')
_LEADING_ZEROS = re.compile(r"^(-?)0+(?=\d)")
OVERFLOW_REPLACEMENT = "9999999"  # as OCP's FTS spider (united_kingdom_fts.py)


class PageError(BrokerError):
    """A page that cannot be used: not JSON even after the known repairs, or not a release package."""


@dataclass(frozen=True)
class Page:
    """A usable page.

    Attributes:
        content: The bytes to store: exactly as served, or the repaired UTF-8 text.
        releases: How many releases the package holds.
        next_url: ``links.next``, or ``None`` on the last page.
        digest: sha256 of the canonical JSON of the ``releases`` array. The envelope is left out on
            purpose: ``publishedDate``, ``uri`` and the cursor change on every request, so a hash of the
            bytes would never recognise a page fetched again.
        notes: What was repaired (empty when the page is stored as served).
    """

    content: bytes
    releases: int
    next_url: str | None
    digest: str
    notes: tuple[str, ...]


def decode_body(body: bytes) -> tuple[str, str]:
    """Decode a page as UTF-8 (a byte-order mark is dropped), else ISO-8859-1.

    Returns:
        ``(text, encoding)`` where encoding is ``utf-8``, ``utf-8-sig`` (had a BOM) or ``iso-8859-1``.
    """
    bom = body.startswith(codecs.BOM_UTF8)
    data = body[len(codecs.BOM_UTF8):] if bom else body
    try:
        return data.decode("utf-8"), "utf-8-sig" if bom else "utf-8"
    except UnicodeDecodeError:
        return data.decode("iso-8859-1"), "iso-8859-1"


def strict_loads(text: str) -> Any:
    """``json.loads`` that also refuses ``NaN``/``Infinity`` and numbers that overflow a double.

    Raises:
        ValueError: the text is not JSON that a strict parser accepts.
    """
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(f"number {token[:40]} overflows a double")
    return value


def patch_numbers(text: str) -> tuple[str, tuple[str, ...]]:
    """Rewrite numbers outside strings that strict parsers reject. Returns ``(text, notes)``."""
    counts: dict[str, int] = {}

    def fix(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith('"'):
            return token
        fixed = _fix_number(token)
        if fixed != token:
            key = f"{token[:40]} -> {fixed}"
            counts[key] = counts.get(key, 0) + 1
        return fixed

    patched = _TOKEN.sub(fix, text)
    # Notes in first-seen order (dicts keep insertion order), so the report reads like the page.
    return patched, tuple(f"{key} ({n}x)" for key, n in counts.items())


def _fix_number(token: str) -> str:
    fixed = _LEADING_ZEROS.sub(r"\1", token)
    if not math.isfinite(float(fixed)):
        return ("-" if fixed.startswith("-") else "") + OVERFLOW_REPLACEMENT
    return fixed


def parse_page(body: bytes) -> Page:
    """Read one served page into a :class:`Page`.

    Raises:
        PageError: not JSON even after the known repairs, not a release package, or ``links.next``
            is not a string (so the next page cannot be followed).
    """
    text, encoding = decode_body(body)
    notes: list[str] = [] if encoding == "utf-8" else [f"decoded as {encoding}, stored as UTF-8"]
    try:
        doc = strict_loads(text)
    except (ValueError, RecursionError) as first:
        text, fixes = patch_numbers(text)
        if not fixes:
            raise PageError(f"not valid JSON ({encoding}): {first}") from None
        try:
            doc = strict_loads(text)
        except (ValueError, RecursionError) as exc:
            raise PageError(f"not valid JSON ({encoding}) even after repairing numbers: {exc}") from None
        notes.extend(f"number {fix}" for fix in fixes)
    releases = _releases(doc)
    content = body if not notes else text.encode("utf-8")
    return Page(content=content, releases=len(releases), next_url=_next_url(doc),
                digest=releases_digest(releases), notes=tuple(notes))


def _releases(doc: Any) -> list[Any]:
    releases = doc.get("releases") if isinstance(doc, dict) else None
    if not isinstance(releases, list):
        raise PageError("not an OCDS release package (no 'releases' array)")
    return releases


def _next_url(doc: dict[str, Any]) -> str | None:
    links = doc.get("links")
    if links is None:
        return None
    if not isinstance(links, dict):
        raise PageError("'links' is not an object, so links.next cannot be read")
    nxt = links.get("next")
    if nxt is None or nxt == "":
        return None
    if not isinstance(nxt, str):
        raise PageError("links.next is not a string, so the next page cannot be followed")
    return nxt


def releases_digest(releases: list[Any]) -> str:
    """sha256 of the canonical JSON of a ``releases`` array (keys sorted, no spaces)."""
    canonical = json.dumps(releases, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
