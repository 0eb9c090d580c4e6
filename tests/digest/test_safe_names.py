"""Names built from untrusted ids stay inside the outbox and never collide."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.digest.outbox import relative_path, write_atomic
from broker.digest.safe_names import (
    digest_id,
    normalise_reference,
    path_within,
    reference_code,
    safe_name,
)
from broker.errors import BrokerError

NASTY = ["../../x", "..", ".", "CON", "con", "NUL", "COM1", "LPT9", "a/b", "a\\b", "/etc/passwd", "C:\\x",
         "x" * 5000, "Ünïcödé café", "東京", "", " ", "a\x00b", "a\r\nb", ".hidden", "-rf", "a b", "A B", "a_b",
         "a-b", "a--b", "😀", "prn.txt"]
SHAPE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@pytest.mark.parametrize("ident", NASTY)
def test_safe_name_is_a_plain_bounded_slug(ident: str) -> None:
    name = safe_name(ident)
    assert SHAPE.match(name), name
    assert len(name) <= 53
    assert not name.startswith(("-", "."))
    assert name.upper() not in {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
                                *(f"LPT{i}" for i in range(10))}


def test_all_nasty_ids_get_distinct_names() -> None:
    names = [safe_name(i) for i in NASTY]
    assert len(set(names)) == len(NASTY)
    # Ids that slug to the same text still differ (case, punctuation, spacing, Unicode folding).
    assert len({safe_name(i) for i in ("a b", "A B", "a_b", "a-b", "a--b", "a/b", "a\\b")}) == 7
    assert safe_name("Ünïcödé café").startswith("unicode-cafe-")


@given(st.text(max_size=300), st.text(max_size=300))
def test_different_ids_never_share_a_name(a: str, b: str) -> None:
    if a != b:
        assert safe_name(a) != safe_name(b)
    assert SHAPE.match(safe_name(a))


@pytest.mark.parametrize("ident", NASTY)
def test_digest_files_stay_inside_the_outbox(tmp_path: Path, ident: str) -> None:
    outbox = tmp_path / "outbox"
    path = write_atomic(outbox, relative_path("2025-01-16", ident), b"hello")
    assert path.parent == (outbox / "2025-01-16").resolve()
    assert path.read_bytes() == b"hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outbox"]


def test_path_within_refuses_escapes(tmp_path: Path) -> None:
    for parts in (("..", "x"), ("a", "..", "..", "x"), ("/etc/passwd",), (".",)):
        with pytest.raises(BrokerError):
            path_within(tmp_path, *parts)
    assert path_within(tmp_path, "a", "b.eml") == tmp_path.resolve() / "a" / "b.eml"


def test_ids_and_references_are_deterministic_and_distinct() -> None:
    assert digest_id("V1", "2025-01-16") == digest_id("V1", "2025-01-16")
    assert digest_id("V1", "2025-01-16").startswith("2025-01-16-")
    assert digest_id("V1", "2025-01-16") != digest_id("V1", "2025-01-17") != digest_id("V2", "2025-01-16")
    ref = reference_code("V1", "O1")
    assert re.fullmatch(r"[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}", ref)
    assert ref != reference_code("V1", "O2") and ref != reference_code("V2", "O1")
    # The separator keeps ("V1", "O1") apart from ("V", "1O1").
    assert reference_code("V", "1O1") != reference_code("V1", "O1")
    assert normalise_reference(ref.lower().replace("-", " ")) == ref
