"""Match keys shared by every reader (OCDS and the Contracts Finder CSV) for cross-source de-duplication."""

from __future__ import annotations

from datetime import UTC, datetime

from broker.normalise.keys import reference_key, title_key


def test_reference_key_folds_case_and_punctuation():
    assert reference_key("Dudley Metropolitan Borough Council", "IT-9-3815-24137") == \
        "cfref:dudley metropolitan borough council|it 9 3815 24137"
    assert reference_key("DUDLEY  Metropolitan Borough Council ", "it 9/3815/24137") == \
        reference_key("Dudley Metropolitan Borough Council", "IT-9-3815-24137")
    assert reference_key("", "X") is None and reference_key("B", "  ") is None and reference_key("B", None) is None


def test_title_key_uses_the_uk_calendar_day_of_the_deadline():
    bst_evening = datetime(2025, 7, 7, 22, 59, 59, tzinfo=UTC)  # 23:59:59 BST on 7 July
    assert title_key("Birmingham City Council", "Peer Support – Ward End", bst_evening) == \
        "title:birmingham city council|peer support ward end|2025-07-07"
    assert title_key("B", "T", datetime(2025, 7, 6, 23, 30, tzinfo=UTC)).endswith("|2025-07-07")
    assert title_key("B", "T", datetime(2025, 1, 6, 23, 30, tzinfo=UTC)).endswith("|2025-01-06")
    assert title_key("B", "T", None) == "title:b|t|none"
    assert title_key("", "T", None) is None and title_key("B", "", None) is None


def test_keys_ignore_accents_and_markup():
    assert title_key("Café Trust", "<b>Catering</b> &amp; events", None) == "title:cafe trust|catering events|none"
