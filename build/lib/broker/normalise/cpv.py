"""CPV 2008 codes: canonical 8-digit form, labels, hierarchy.

The catalogue is ``broker/data/cpv2008_en.json`` (the 9,454 CPV 2008 codes with English labels, from
ProzorroUKR/standards with its 4 local additions dropped; see ``broker/data/README.md``). A code's level
is set by its trailing zeros: ``85000000`` division, ``85300000`` group, ``85310000`` class, and so on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache

from broker.paths import DATA_DIR

_CODE = re.compile(r"^\s*(\d{7,8})(?:-\d)?\s*$")
# Named levels by number of significant digits (the CPV regulation's terms).
LEVEL_NAMES = {2: "division", 3: "group", 4: "class", 5: "category"}


class CpvCatalogue:
    def __init__(self, labels: dict[str, str]) -> None:
        self._labels = labels

    def __len__(self) -> int:
        return len(self._labels)

    def known(self, code: str) -> bool:
        return code in self._labels

    def label(self, code: str) -> str | None:
        return self._labels.get(code)

    def parent(self, code: str) -> str | None:
        """The nearest existing ancestor (35 codes have no immediate parent in CPV 2008)."""
        digits = significant_digits(code)
        while digits > 2:
            digits -= 1
            candidate = code[:digits].ljust(8, "0")
            if candidate in self._labels:
                return candidate
        return None

    def ancestors(self, code: str) -> list[str]:
        """Existing ancestors, nearest first."""
        out = []
        current = self.parent(code)
        while current is not None:
            out.append(current)
            current = self.parent(current)
        return out

    def split(self, codes: Iterable[object]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Canonicalise codes; returns (known, unknown) in first-seen order without duplicates.

        Unknown includes well-formed codes missing from CPV 2008 and malformed text (kept as given).
        """
        known: list[str] = []
        unknown: list[str] = []
        for raw in codes:
            code = canonical_code(raw)
            if code is not None and code in self._labels:
                if code not in known:
                    known.append(code)
            else:
                kept = code or str(raw).strip()
                if kept and kept not in unknown:
                    unknown.append(kept)
        return tuple(known), tuple(unknown)


def canonical_code(value: object) -> str | None:
    """``85311000-2``, ``85311000`` or ``3000000`` (leading zero lost) → 8 digits; otherwise ``None``."""
    if value is None:
        return None
    m = _CODE.match(str(value))
    if not m:
        return None
    return m[1].rjust(8, "0")


def significant_digits(code: str) -> int:
    """Digits before the trailing zeros, at least 2 (a division)."""
    return max(2, len(code.rstrip("0")))


def level_name(code: str) -> str:
    return LEVEL_NAMES.get(significant_digits(code), "subcategory")


@cache
def catalogue() -> CpvCatalogue:
    with open(DATA_DIR / "cpv2008_en.json", encoding="utf-8") as fh:
        return CpvCatalogue(json.load(fh))
