"""The normalising primitives: money, dates, text, CPV, and the record's JSON form.

Table cases pin the policies (sentinels are unknown, never numbers); hypothesis properties pin the
invariants: normalising is idempotent and money is never negative.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.normalise.cpv import canonical_code, catalogue, level_name, significant_digits
from broker.normalise.dates import iso_utc, parse_datetime, parse_uk_date
from broker.normalise.money import gbp_to_pence, to_money, value_range
from broker.normalise.record import OpportunityRecord
from broker.normalise.text import clean_text, match_key


@pytest.mark.parametrize(("value", "currency", "pence", "cur", "original"), [
    (48000, "GBP", 4_800_000, "GBP", None),
    ("£1,250.50", "GBP", 125_050, "GBP", None),
    (Decimal("145017.8"), "GBP", 14_501_780, "GBP", None),
    (0, "GBP", None, None, None),                     # Contracts Finder "not given"
    (Decimal("0.01"), "GBP", None, None, None),       # Sell2Wales placeholder
    (Decimal("1E+9999"), "GBP", None, None, None),    # Find a Tender placeholder
    ("", "GBP", None, None, None),
    (5000, "EUR", None, "EUR", "5000"),               # kept, counts as unknown
])
def test_money(value, currency, pence, cur, original):
    money = to_money(value, currency)
    assert (money.pence, money.currency, money.original) == (pence, cur, original)


def test_money_refuses_text_and_negatives():
    with pytest.raises(ValueError):
        to_money("about fifty grand")
    with pytest.raises(ValueError):
        to_money(-5)
    with pytest.raises(ValueError):
        gbp_to_pence("1e30")


def test_value_range_orders_and_fills():
    assert value_range(to_money(60000), to_money(48000)) == (4_800_000, 6_000_000)
    assert value_range(to_money(0), to_money(48000)) == (4_800_000, 4_800_000)


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-02-14T14:00:00Z", "2025-02-14T14:00:00Z"),
    ("2022-10-20T09:42:13+01:00", "2022-10-20T08:42:13Z"),
    ("2025-07-07T12:00:00", "2025-07-07T11:00:00Z"),   # zone-less: UK summer time
    ("2025-01-07T12:00:00", "2025-01-07T12:00:00Z"),   # zone-less: UK winter time
    ("01/01/2001", None),                               # Contracts Finder sentinel
    ("", None),
])
def test_dates(text, expected):
    assert iso_utc(parse_datetime(text)) == expected


def test_uk_dates_with_a_separate_closing_time_and_end_of_day():
    assert iso_utc(parse_uk_date("17/04/2020", clock="12:00")) == "2020-04-17T11:00:00Z"
    assert iso_utc(parse_uk_date("17/04/2020", end_of_day=True)) == "2020-04-17T22:59:59Z"
    with pytest.raises(ValueError):
        parse_uk_date("31/02/2020")


def test_text_cleaning():
    assert clean_text("Line one\r\nLine <b>two</b> &amp; more<script>alert(1)</script>") == \
        "Line one\nLine two & more"
    assert clean_text("a\x00b\x8f") == "ab"


def test_cpv_hierarchy_and_labels():
    cat = catalogue()
    assert len(cat) == 9454
    assert canonical_code("85311000-2") == "85311000"
    assert canonical_code("3000000") == "03000000"
    assert cat.parent("85311000") == "85310000"
    assert significant_digits("85000000") == 2 and level_name("85300000") == "group"
    known, unknown = cat.split(["85000000", "85311000-2", "60110000", "bogus"])
    assert known == ("85000000", "85311000")
    assert unknown == ("60110000", "bogus")


@given(st.text())
def test_clean_text_is_idempotent(text):
    once = clean_text(text)
    assert clean_text(once) == once


@given(st.text())
def test_match_key_is_idempotent(text):
    assert match_key(match_key(text)) == match_key(text)


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=0, max_value=10**13, places=2))
def test_money_is_never_negative_and_normalising_is_idempotent(amount):
    money = to_money(amount)
    assert money.pence is None or money.pence > 0
    if money.pence is not None:
        again = to_money(Decimal(money.pence) / 100)
        assert again.pence == money.pence


@given(st.datetimes(min_value=datetime(2002, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_dates_round_trip(moment):
    moment = moment.replace(microsecond=0)
    assert parse_datetime(iso_utc(moment)) == moment


@given(st.builds(OpportunityRecord, id=st.just("x"), source=st.just("private"),
                 title=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
                 buyer_name=st.just("b"), status=st.sampled_from(["open", "closed"]), raw_hash=st.just("h"),
                 value_min_pence=st.none() | st.integers(0, 10**12),
                 deadline_at=st.none() | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0))))
def test_record_json_round_trip_is_exact(record):
    assert OpportunityRecord.from_json(record.to_json()) == record
    assert OpportunityRecord.from_json(record.to_json()).content_hash == record.content_hash
