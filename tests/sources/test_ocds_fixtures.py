"""Every opportunity fixture has a provenance section, and recorded hashes match the files."""

from __future__ import annotations

import hashlib
import re

from testpaths import FIXTURES

FOLDER = FIXTURES / "opportunities"
HEADING = re.compile(r"^### `([^`]+)`\s*$", re.MULTILINE)


def _sections() -> dict[str, str]:
    text = (FOLDER / "PROVENANCE.md").read_text(encoding="utf-8")
    parts = HEADING.split(text)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_fixture_file_has_a_provenance_section():
    sections = _sections()
    files = sorted(p.name for p in FOLDER.iterdir() if p.is_file() and p.name != "PROVENANCE.md")
    assert files
    assert [f for f in files if f not in sections] == []
    assert [s for s in sections if not (FOLDER / s).exists()] == []


def test_recorded_hashes_match():
    checked = 0
    for name, body in _sections().items():
        recorded = re.search(r"sha256 `([0-9a-f]{64})`", body)
        if recorded:
            assert hashlib.sha256((FOLDER / name).read_bytes()).hexdigest() == recorded[1], name
            checked += 1
    assert checked >= 6


def test_hand_built_fixture_says_so():
    assert "Hand-built, not real data" in _sections()["fts_uk_extension_sample.json"]
    assert "HAND-BUILT FIXTURE" in (FOLDER / "fts_uk_extension_sample.json").read_text(encoding="utf-8")
