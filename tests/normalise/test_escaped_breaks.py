"""Line breaks escaped twice by publishers (``\\r\\n`` as text, or its bare letters ``rn``) are decoded once,
at normalise time, so no reader sees ``rn rn`` in a summary."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_ocds_normalise import normalise_file
from testpaths import real_file

from broker.normalise.text import clean_text, decode_breaks

# What the artefact looks like in text: a bare "rn" token, a run of them, or one after a sentence's end.
ARTEFACT = re.compile(r"(?<![^\s])rn(?![^\s])|(?:rn){2,}|[.:;!?)]rn(?:[\sA-Z0-9]|$)")


@pytest.mark.parametrize(("raw", "clean"), [
    ("Support since 2014. rn rn Previously this was funded", "Support since 2014.\n\nPreviously this was funded"),
    ("councils.rnrnLuton Council will be leading", "councils.\n\nLuton Council will be leading"),
    ("accommodation.rn      rn      The Commencement Date", "accommodation.\n\nThe Commencement Date"),
    ("first line\\r\\nsecond\\n third\\tend", "first line\nsecond\nthird end"),
    # Words that hold the letters are left alone, and so is a case the letters cannot settle.
    ("return to modern learning; concerns", "return to modern learning; concerns"),
    ("via the below linkrnto apply", "via the below linkrnto apply"),
    ("RN nurses (Band 5)", "RN nurses (Band 5)"),
])
def test_escaped_breaks(raw, clean):
    assert clean_text(raw) == clean


@given(st.text(max_size=60))
def test_decoding_is_idempotent_through_clean_text(text):
    once = clean_text(text)
    assert clean_text(once) == once


@pytest.mark.parametrize("name", ["cf_ocds_releases_2025_part1.json", "pcs_scotland_ocds_releases_2019_part1.json",
                                  "sell2wales_ocds_releases_2025_part1.json"])
def test_real_files_that_carry_them_normalise_without_them(name):
    raw = real_file(name).read_text(encoding="utf-8")
    assert len(ARTEFACT.findall(raw)) >= 10  # these files do carry the artefact
    records = normalise_file(real_file(name)).values()
    left = [(r.id, m.group()) for r in records for m in ARTEFACT.finditer(r.description)]
    assert left == []
    assert any("\n" in r.description for r in records)  # decoded into real breaks, not deleted


def test_the_real_luton_notice_reads_in_paragraphs():
    records = normalise_file(real_file("cf_ocds_releases_2025_part1.json")).values()
    luton = [r.description for r in records if "Luton Council will be leading" in r.description]
    assert luton and "councils.\n\nLuton Council will be leading" in luton[0]
    assert decode_breaks(luton[0]) == luton[0]  # decoded once: nothing left to decode
