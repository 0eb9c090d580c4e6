"""Windows, dates on the command line, the resume state, Retry-After and origin checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broker.errors import InputError
from broker.sources.harvest.http import parse_retry_after, same_origin
from broker.sources.harvest.windows import (
    FailedWindow,
    FetchState,
    Window,
    parse_duration,
    parse_since,
    parse_until,
    plan_windows,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def spans(windows: tuple[Window, ...]) -> list[tuple[datetime, datetime, bool]]:
    return [(w.start, w.end, w.retry) for w in windows]


def test_dates_are_uk_days() -> None:
    assert parse_since("2025-01-01") == utc(2025, 1, 1)
    assert parse_since("2025-07-01") == utc(2025, 6, 30, 23)  # midnight BST
    assert parse_since("2025-07-01T10:30:00Z") == utc(2025, 7, 1, 10, 30)
    assert parse_until("2025-01-15") == utc(2025, 1, 16)  # the end of the day, exclusive
    assert parse_until("2025-07-15") == utc(2025, 7, 15, 23)
    assert parse_until("2025-07-15T12:00:00+00:00") == utc(2025, 7, 15, 12)
    for bad in ("yesterday", "2025-13-01", "", "2001-01-01"):
        with pytest.raises(InputError):
            parse_since(bad)
    with pytest.raises(InputError):
        parse_until("2025-02-30")


def test_durations() -> None:
    assert parse_duration("15d") == timedelta(days=15)
    assert parse_duration(" 6h ") == timedelta(hours=6)
    for bad in ("0d", "15", "1w", "-1h"):
        with pytest.raises(InputError):
            parse_duration(bad)


def test_cut_into_windows_last_one_short() -> None:
    plan = plan_windows("fts", utc(2025, 1, 1), utc(2025, 1, 1, 13), timedelta(hours=6), None)
    assert spans(plan.windows) == [(utc(2025, 1, 1, 0), utc(2025, 1, 1, 6), False),
                                   (utc(2025, 1, 1, 6), utc(2025, 1, 1, 12), False),
                                   (utc(2025, 1, 1, 12), utc(2025, 1, 1, 13), False)]
    assert plan.windows[1].label == "20250101T060000"
    assert not plan.resumed


def test_resume_from_done_until_and_retry_failed_first() -> None:
    state = FetchState("cf", covered_from=utc(2025, 1, 1), done_until=utc(2025, 1, 31),
                       failed=(FailedWindow(utc(2025, 1, 1), utc(2025, 1, 16), "broken page"),))
    plan = plan_windows("cf", utc(2025, 1, 1), utc(2025, 2, 10), timedelta(days=15), state)
    assert plan.resumed
    assert spans(plan.windows) == [(utc(2025, 1, 1), utc(2025, 1, 16), True),
                                   (utc(2025, 1, 31), utc(2025, 2, 10), False)]
    after = plan.state.window_done(plan.windows[0])
    assert after.failed == () and after.done_until == utc(2025, 1, 31)
    after = after.window_done(plan.windows[1])
    assert after.done_until == utc(2025, 2, 10) and after.covered_from == utc(2025, 1, 1)


def test_up_to_date_state_plans_nothing() -> None:
    state = FetchState("cf", covered_from=utc(2025, 1, 1), done_until=utc(2025, 2, 1))
    plan = plan_windows("cf", utc(2025, 1, 10), utc(2025, 2, 1), timedelta(days=15), state)
    assert plan.windows == () and plan.resumed


def test_since_outside_the_covered_span_starts_afresh() -> None:
    state = FetchState("cf", covered_from=utc(2025, 1, 1), done_until=utc(2025, 2, 1),
                       failed=(FailedWindow(utc(2025, 1, 1), utc(2025, 1, 16), "x"),))
    later = plan_windows("cf", utc(2025, 3, 1), utc(2025, 3, 5), timedelta(days=15), state)
    assert not later.resumed
    assert spans(later.windows) == [(utc(2025, 3, 1), utc(2025, 3, 5), False)]
    assert later.state.failed == state.failed  # outside this span: still remembered
    earlier = plan_windows("cf", utc(2024, 12, 1), utc(2025, 1, 20), timedelta(days=30), state)
    assert not earlier.resumed and earlier.state.failed == ()  # re-fetched by this span's own windows
    assert earlier.windows[0].start == utc(2024, 12, 1)


def test_failed_window_moves_the_frontier_but_is_remembered() -> None:
    state = FetchState("cf", covered_from=utc(2025, 1, 1), done_until=utc(2025, 1, 1))
    state = state.window_failed(Window(utc(2025, 1, 1), utc(2025, 1, 16)), "bad")
    assert state.done_until == utc(2025, 1, 16)
    assert state.failed == (FailedWindow(utc(2025, 1, 1), utc(2025, 1, 16), "bad"),)
    again = FetchState.from_json(state.to_json(), file="state.json")
    assert again == state


def test_period_must_not_be_empty() -> None:
    with pytest.raises(InputError, match="nothing to fetch"):
        plan_windows("cf", utc(2025, 2, 1), utc(2025, 1, 1), timedelta(days=15), None)


@pytest.mark.parametrize("data", [{}, {"version": 2}, {"version": 1, "source": "cf"}, [],
                                  {"version": 1, "source": "cf", "covered_from": "2025-01-01T00:00:00",
                                   "done_until": "2025-01-02T00:00:00Z"}])
def test_damaged_state_is_an_input_error(data: object) -> None:
    with pytest.raises(InputError, match="--restart"):
        FetchState.from_json(data, file="s.json")


def test_retry_after() -> None:
    now = utc(2025, 2, 1, 12)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Sat, 01 Feb 2025 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Saturday, 01-Feb-25 12:01:00 GMT", now) == 60.0
    assert parse_retry_after("Sat, 01 Feb 2025 11:00:00 GMT", now) == 0.0
    for useless in (None, "", "soon", "-5", "1.5"):
        assert parse_retry_after(useless, now) is None


def test_same_origin() -> None:
    assert same_origin("https://www.contractsfinder.service.gov.uk/a?b", "https://www.contractsfinder.service.gov.uk")
    assert same_origin("https://host:443/x", "https://HOST")
    assert not same_origin("http://host/x", "https://host")
    assert not same_origin("https://evil.example/x", "https://host")
    assert not same_origin("http://127.0.0.1:8081/x", "http://127.0.0.1:8080")
    assert not same_origin("http://127.0.0.1:notaport/x", "http://127.0.0.1:8080")


def test_resume_with_overlap() -> None:
    state = FetchState("fts", covered_from=utc(2025, 1, 1), done_until=utc(2025, 1, 2, 3))
    plan = plan_windows("fts", utc(2025, 1, 1), utc(2025, 1, 2, 9), timedelta(hours=6), state, timedelta(hours=1))
    assert spans(plan.windows) == [(utc(2025, 1, 2, 2), utc(2025, 1, 2, 8), False),
                                   (utc(2025, 1, 2, 8), utc(2025, 1, 2, 9), False)]
    up_to_date = plan_windows("fts", utc(2025, 1, 1), utc(2025, 1, 2, 3), timedelta(hours=6), state,
                              timedelta(hours=1))
    assert up_to_date.windows == ()
    # never before --since
    near = plan_windows("fts", utc(2025, 1, 2, 2, 30), utc(2025, 1, 2, 9), timedelta(hours=6), state,
                        timedelta(hours=1))
    assert near.windows[0].start == utc(2025, 1, 2, 2, 30)
    assert parse_duration("0h", allow_zero=True) == timedelta(0)
