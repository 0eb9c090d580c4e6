"""Paths the tests share. A module of its own (not conftest) so test files can import it by name:
several folders have a conftest.py, and ``from conftest import`` would pick whichever loaded first.

Every real published file the tests read is in ``fixtures/`` (the repository stands alone: nothing here
looks outside the checkout). :data:`REAL_FILES` names each one by the name it was published or saved
under, so a test can say which real file it reads without knowing which fixture folder holds it;
the provenance of each is in ``fixtures/opportunities/PROVENANCE.md`` and ``fixtures/sources/PROVENANCE.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

_OPPORTUNITIES = FIXTURES / "opportunities"
_SOURCES = FIXTURES / "sources"

REAL_FILES: dict[str, Path] = {
    "cf_ocds_search_2022-10-20_100releases.json": _OPPORTUNITIES / "cf_ocds_search_2022-10-20_100releases.json",
    "cf_ocds_releases_2025_part1.json": _OPPORTUNITIES / "cf_ocds_releases_2025_part1.json",
    "pcs_scotland_ocds_releases_2019_part1.json": _OPPORTUNITIES / "pcs_scotland_ocds_releases_2019_part1.json",
    "sell2wales_ocds_releases_2025_part1.json": _OPPORTUNITIES / "sell2wales_ocds_releases_2025_part1.json",
    "cf_legacy_2017_record_ocds-b5fd17-2c330cf9.json":
        _OPPORTUNITIES / "cf_legacy_2017_record_ocds-b5fd17-2c330cf9.json",
    # Kept out of fixtures/opportunities (which the demo ingests as one inbox): the same release id as the
    # record above with slightly different content would look like a publisher editing a release in place.
    "cf_legacy_2017_release_ocds-b5fd17-2c330cf9.json": _SOURCES / "cf_legacy_2017_release_ocds-b5fd17-2c330cf9.json",
    "cf_ocds_search_2025-01-23_page.json": _SOURCES / "cf_ocds_search_2025-01-23_page.json",
    # The whole 1,000-row export; the labelled set is graded on it, so it lives there (byte-identical).
    "cf_search_export_2020-04-16_1000_open_notices.csv": FIXTURES / "labelled" / "cf_export_2020-04-16.csv",
    "cf_search_export_2021-08-28_header_only.csv": _SOURCES / "cf_search_export_2021-08-28_header_only.csv",
    "la_all_codes_drkane.csv": _SOURCES / "la_all_codes_drkane.csv",
}

# The real OCDS files, by published name: the readers and the normaliser are checked on every one.
OCDS_FILES = sorted(name for name in REAL_FILES if name.endswith(".json"))


def real_file(name: str) -> Path:
    """The fixture copy of the real file published as ``name`` (KeyError if the tests have none)."""
    return REAL_FILES[name]


# A clone has no "shared" folder beside it (nor beside the folder holding it), so no test may read one.
OUTSIDE_DATA = tuple(f"{base / 'shared'}{os.sep}" for base in (ROOT.parent, ROOT.parent.parent))


def refuse_outside_data(event: str, args: tuple) -> None:
    """An audit hook (conftest installs it): opening or listing anything under :data:`OUTSIDE_DATA` fails."""
    if event not in ("open", "os.listdir", "os.scandir") or not args:
        return
    target = args[0]
    if isinstance(target, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(target))
        if isinstance(path, str) and (path + os.sep).startswith(OUTSIDE_DATA):
            raise PermissionError(f"{path}: tests must use fixtures/, not a folder beside the checkout")
