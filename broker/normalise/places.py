"""The delivery place of a notice whose place fields are vague, read from its own words.

Publishers often put "Any region", "England" or "United Kingdom" where the delivery place belongs, or
leave it blank, even when the work is plainly local: "Oxfordshire Domestic Abuse Champion's Network",
bought by Oxfordshire County Council, "to support Lincolnshire residents". Treated as UK-wide, such
notices reach organisations far away that could never deliver them. So when the location is vague, the
place is read from, strongest first:

1. place names in the title ("Oxfordshire ...", "... in Walsall");
2. the buyer, when it is a council (a council buys for its own area);
3. full postcodes in the description;
4. place names in the description.

The first source that names a place settles it; a notice whose words say the work is national
("nationwide", "across the UK", "national service") keeps its UK-wide location unless its title names a
place. Place names are local authority, two-tier county and region names from the reference data in
``broker/data`` (``broker.normalise.geography``), matched as capitalised words.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from functools import lru_cache

from broker.normalise import geography
from broker.normalise.geography import Location

# Authority names that are also ordinary capitalised words or names in running text.
_AMBIGUOUS = frozenset({"reading", "rugby", "eden", "wells", "bath", "halton", "wealden", "wyre", "arun"})
_NATIONAL_WORDS = re.compile(
    r"\bnation(?:wide|ally|al\s+(?:service|contract|programme|helpline|framework|coverage))\b|"
    r"\b(?:across|throughout|anywhere\s+in)\s+(?:the\s+)?(?:uk|united\s+kingdom|england|great\s+britain|"
    r"country)\b|\buk[\s-]wide\b|\bengland[\s-]wide\b", re.IGNORECASE)
_COUNCIL = re.compile(r"\b(?:council|borough|county|city\s+of|metropolitan)\b", re.IGNORECASE)
_POSTCODE = re.compile(r"\b[A-Z]{1,2}[0-9][A-Z0-9]?\s*[0-9][A-Z]{2}\b")
# Runs of capitalised words (with "and", "of", "upon", "on", "the" inside): candidate place names.
_RUN = re.compile(r"[A-Z][\w'’.-]*(?:\s+(?:(?:and|of|upon|on|the|&)\s+)?[A-Z][\w'’.-]*)*")
_MAX_WORDS = 5
_MAX_TEXT = 20_000


def is_vague(location: Location) -> bool:
    """UK-wide, or no place at all: the place fields say nothing about where the work is."""
    return location.nationwide or not (location.local_authority or location.region or location.regions)


def sharpen(location: Location, *, title: str, buyer: str = "", description: str = "") -> Location:
    """``location`` unchanged when it is specific; else the place the notice's words name, if any."""
    if not is_vague(location):
        return location
    national = bool(_NATIONAL_WORDS.search(title) or _NATIONAL_WORDS.search(description[:_MAX_TEXT]))
    sources = [lambda: _from_names(title)]
    if not national:
        sources += [lambda: _from_buyer(buyer), lambda: _from_postcodes(description),
                    lambda: _from_names(description)]
    for source in sources:
        found = source()
        if found is not None:
            return dataclasses.replace(found, nationwide=False, postcode=found.postcode or location.postcode)
    return location


def _specific(loc: Location) -> Location | None:
    return loc if loc.local_authority or loc.region else None


def _from_buyer(buyer: str) -> Location | None:
    if not buyer or not _COUNCIL.search(buyer):
        return None
    return _specific(geography.resolve_location(place_names=[buyer]))


def _from_postcodes(text: str) -> Location | None:
    codes = list(dict.fromkeys(m[0] for m in _POSTCODE.finditer(text[:_MAX_TEXT])))
    return _specific(geography.resolve_location(postcodes=codes[:5])) if codes else None


def _from_names(text: str) -> Location | None:
    names = list(dict.fromkeys(place_names(text)))
    if not names:
        return None
    return _specific(geography.resolve_location(place_names=names[:5]))


def place_names(text: str) -> Iterator[str]:
    """Place names in ``text``, in order: each is exactly an authority, county or region name."""
    for run in _RUN.finditer(text[:_MAX_TEXT]):
        words = run[0].replace("&", "and").split()
        i = 0
        while i < len(words):
            for j in range(min(len(words), i + _MAX_WORDS), i, -1):
                span = " ".join(words[i:j]).strip(".'’-")
                if _is_place(span):
                    yield span
                    i = j - 1
                    break
            i += 1


@lru_cache(maxsize=1 << 14)
def _is_place(span: str) -> bool:
    key = geography.name_key(span)
    if not key or key in _AMBIGUOUS or len(key) < 4:
        return False
    found = geography.authority(span)
    if found is not None and key in {geography.name_key(found.name), *map(geography.name_key, found.aliases)}:
        return True
    region = geography.region(span)
    if region is not None and region.kind == "region" and geography.name_key(region.name) == key:
        return True
    return any(geography.name_key(a.county or "") == key for a in geography.authorities())
