"""End to end against a real HTTP server on 127.0.0.1: pagination, files, resume, retries and waits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from harvest_helpers import (
    CF_PATH,
    FTS_PATH,
    NOW,
    FakeClock,
    LocalApi,
    Reply,
    cf_query,
    encode,
    fts_query,
    local_api,
    serve_chain,
    split_pages,
)

from broker.errors import InputError
from broker.sources.harvest import (
    CONTRACTS_FINDER,
    FIND_A_TENDER,
    FetchEvent,
    FetchOptions,
    FetchSummary,
    harvest,
)
from broker.sources.harvest.inbox import write_atomic
from broker.sources.harvest.pages import strict_loads
from broker.sources.harvest.services import Politeness, ServiceSpec

JAN1, JAN16, JAN31 = (datetime(2025, 1, d, tzinfo=UTC) for d in (1, 16, 31))
W1 = cf_query("2025-01-01T00:00:00", "2025-01-16T00:00:00")
W2 = cf_query("2025-01-16T00:00:00", "2025-01-31T00:00:00")
EMPTY = Reply(body=b'{"uri": "x", "releases": [], "links": {}}')


def fetch(api: LocalApi, clock: FakeClock, inbox: Path, *, spec: ServiceSpec = CONTRACTS_FINDER,
          since: datetime = JAN1, until: datetime | None = JAN16, events: list[FetchEvent] | None = None,
          **kw: Any) -> FetchSummary:
    options = FetchOptions(inbox=inbox, since=since, until=until, base_url=api.base, **kw)
    return harvest(spec, options, clock=clock, on_event=events.append if events is not None else None)


def inbox_pages(inbox: Path) -> list[str]:
    return sorted(p.name for p in inbox.glob("*.json") if not p.name.startswith("."))


def state(inbox: Path, source: str = "cf") -> dict[str, Any]:
    return json.loads((inbox / f".fetch-state-{source}.json").read_text())


def three_pages(api: LocalApi, real: dict[str, Any], query: dict[str, str] = W1) -> list[bytes]:
    bodies = [encode(p) for p in split_pages(real, api)]
    serve_chain(api, query, bodies)
    return bodies


def test_follows_links_next_in_order_and_writes_pages_as_served(api, clock, cf_real_page, tmp_path):
    bodies = three_pages(api, cf_real_page)
    events: list[FetchEvent] = []
    summary = fetch(api, clock, tmp_path, events=events)
    assert summary.ok, summary.errors
    assert [(s.path, s.params) for s in api.seen] == [
        (CF_PATH, W1), (CF_PATH, {"limit": "100", "cursor": "c2"}), (CF_PATH, {"limit": "100", "cursor": "c3"})]
    assert all(s.headers["user-agent"].startswith("broker/") for s in api.seen)
    names = ["cf-20250101T000000-p0001.json", "cf-20250101T000000-p0002.json", "cf-20250101T000000-p0003.json"]
    assert inbox_pages(tmp_path) == names
    assert [(tmp_path / n).read_bytes() for n in names] == bodies
    ids = [r["id"] for n in names for r in json.loads((tmp_path / n).read_text())["releases"]]
    assert ids == [r["id"] for r in cf_real_page["releases"]]
    assert (summary.pages_fetched, summary.pages_written, summary.releases, summary.releases_written) == (3, 3, 100, 100)
    assert summary.files == names
    assert clock.sleeps == [2.0, 2.0]  # the minimum interval, between the three requests only
    assert state(tmp_path)["done_until"] == "2025-01-16T00:00:00Z"
    assert state(tmp_path)["failed_windows"] == []
    assert [e.kind for e in events] == ["plan", "window", "page", "page", "page"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_windows_and_resume_without_refetching(api, clock, cf_real_page, tmp_path):
    three_pages(api, cf_real_page)
    api.route(CF_PATH, W2, EMPTY)
    first = fetch(api, clock, tmp_path)
    assert first.windows == 1 and len(api.seen) == 3
    api.seen.clear()
    second = fetch(api, clock, tmp_path, until=JAN31)  # same --since: resumes after 2025-01-16
    assert second.resumed and second.ok
    assert [s.params for s in api.seen] == [W2]
    assert second.pages_empty == 1 and second.pages_written == 0
    assert state(tmp_path)["done_until"] == "2025-01-31T00:00:00Z"
    assert state(tmp_path)["covered_from"] == "2025-01-01T00:00:00Z"
    api.seen.clear()
    third = fetch(api, clock, tmp_path, until=JAN31)
    assert third.windows == 0 and api.seen == [] and third.ok


def test_restart_refetches_but_writes_no_duplicate_files(api, clock, cf_real_page, tmp_path):
    three_pages(api, cf_real_page)
    fetch(api, clock, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    # The live API stamps each answer afresh; the releases are what make a page the same page.
    restamped = [json.loads(b) | {"publishedDate": "2025-02-01T09:00:00Z"} for b in three_pages(api, cf_real_page)]
    serve_chain(api, W1, [encode(p) for p in restamped])
    api.seen.clear()
    again = fetch(api, clock, tmp_path, restart=True)
    assert len(api.seen) == 3
    assert (again.pages_fetched, again.pages_duplicate, again.pages_written) == (3, 3, 0)
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.json")} == before


def test_changed_page_in_a_refetched_window_gets_its_own_file(api, clock, cf_real_page, tmp_path):
    three_pages(api, cf_real_page)
    fetch(api, clock, tmp_path)
    pages = split_pages(cf_real_page, api)
    pages[2]["releases"][0]["tender"]["title"] = "Amended title"
    serve_chain(api, W1, [encode(p) for p in pages])
    again = fetch(api, clock, tmp_path, restart=True)
    assert again.pages_written == 1 and again.pages_duplicate == 2
    assert len(again.files) == 1 and again.files[0].startswith("cf-20250101T000000-p0003-")
    assert len(inbox_pages(tmp_path)) == 4
    assert json.loads((tmp_path / again.files[0]).read_text())["releases"][0]["tender"]["title"] == "Amended title"


def test_duplicates_recognised_without_the_index(api, clock, cf_real_page, tmp_path):
    three_pages(api, cf_real_page)
    fetch(api, clock, tmp_path)
    (tmp_path / ".fetch-seen-cf.txt").unlink()  # e.g. lost; the page files themselves are hashed
    again = fetch(api, clock, tmp_path, restart=True)
    assert again.pages_duplicate == 3 and again.pages_written == 0


def test_find_a_tender_six_hour_windows_and_ten_second_interval(api, clock, cf_real_page, tmp_path):
    real = cf_real_page  # no real FTS page exists (data/README.md); the package shape is the same
    for start, end in (("00", "06"), ("06", "12")):
        api.route(FTS_PATH, fts_query(f"2025-01-01T{start}:00:00", f"2025-01-01T{end}:00:00"), EMPTY)
    bodies = [encode(p) for p in split_pages(real, api, parts=2, path=FTS_PATH, tag="f")]
    serve_chain(api, fts_query("2025-01-01T12:00:00", "2025-01-01T13:30:00"), bodies, path=FTS_PATH, tag="f")
    summary = fetch(api, clock, tmp_path, spec=FIND_A_TENDER, until=JAN1 + timedelta(hours=13, minutes=30))
    assert summary.ok and summary.windows == 3
    assert [s.params.get("updatedFrom") for s in api.seen] == [
        "2025-01-01T00:00:00", "2025-01-01T06:00:00", "2025-01-01T12:00:00", None]
    assert inbox_pages(tmp_path) == ["fts-20250101T120000-p0001.json", "fts-20250101T120000-p0002.json"]
    assert clock.sleeps == [10.0, 10.0, 10.0]
    assert state(tmp_path, "fts")["done_until"] == "2025-01-01T13:30:00Z"


def test_until_is_never_later_than_now(api, clock, tmp_path):
    api.route(CF_PATH, cf_query("2025-01-31T00:00:00", "2025-02-01T12:00:00"), EMPTY)
    summary = fetch(api, clock, tmp_path, since=JAN31, until=datetime(2025, 3, 1, tzinfo=UTC))
    assert summary.until == NOW and summary.ok
    assert state(tmp_path)["done_until"] == "2025-02-01T12:00:00Z"
    with pytest.raises(InputError, match="future"):
        fetch(api, clock, tmp_path, since=NOW + timedelta(days=1), until=None)


def test_stages_are_sent(api, clock, tmp_path):
    api.route(CF_PATH, W1 | {"stages": "tender,award"}, EMPTY)
    summary = fetch(api, clock, tmp_path, stages=("tender", "award"))
    assert summary.ok and api.seen[0].params["stages"] == "tender,award"


# -- rate limits and failures ----------------------------------------------------------------------


def test_429_with_retry_after_seconds_then_success(api, clock, cf_real_page, tmp_path):
    bodies = three_pages(api, cf_real_page)
    api.route(CF_PATH, {"limit": "100", "cursor": "c2"},
              Reply(429, b"slow down", (("Retry-After", "7"),)), Reply(body=bodies[1]))
    summary = fetch(api, clock, tmp_path)
    assert summary.ok and summary.pages_written == 3 and summary.retries == 1
    # interval before page 2, the Retry-After, then the interval is already over; interval before page 3
    assert clock.sleeps == [2.0, 7.0, 2.0]
    assert summary.waits[0].seconds == 7.0 and "HTTP 429 (Retry-After)" in summary.waits[0].reason


def test_retry_after_http_date_and_cap(api, clock, tmp_path):
    when = format_datetime(NOW + timedelta(seconds=45), usegmt=True)
    api.route(CF_PATH, W1, Reply(429, b"", (("Retry-After", when),)), Reply(429, b"", (("Retry-After", "5000"),)), EMPTY)
    politeness = Politeness(min_interval=0.0, rate_limit_wait=60.0, max_wait=900.0)
    summary = fetch(api, clock, tmp_path, politeness=politeness)
    assert summary.ok
    assert clock.sleeps == [45.0, 900.0]


def test_503_without_retry_after_backs_off_as_a_server_error(api, clock, tmp_path):
    api.route(CF_PATH, W1, Reply(503, b"maintenance"), Reply(503, b"", (("Retry-After", "3"),)), EMPTY)
    summary = fetch(api, clock, tmp_path)
    assert summary.ok and summary.retries == 2
    assert clock.sleeps == [10.0, 3.0]  # back-off base, then what Retry-After asked


def test_contracts_finder_403_means_wait(api, clock, tmp_path):
    api.route(CF_PATH, W1, Reply(403, b"Too many requests"), EMPTY)
    summary = fetch(api, clock, tmp_path)
    assert summary.ok and clock.sleeps == [300.0]
    assert "HTTP 403 (rate limited)" in summary.waits[0].reason


def test_rate_limited_too_long_gives_up(api, clock, tmp_path):
    api.route(CF_PATH, W1, Reply(403, b"Forbidden"))
    summary = fetch(api, clock, tmp_path)
    assert not summary.ok and summary.aborted
    assert clock.sleeps == [300.0] * 5 and len(api.seen) == 6
    assert "HTTP 403" in summary.errors[0] and "still rate limited after 5 waits" in summary.errors[0]


def test_find_a_tender_403_is_an_error(api, clock, tmp_path):
    api.route(FTS_PATH, fts_query("2025-01-01T00:00:00", "2025-01-01T06:00:00"), Reply(403, b"Forbidden"))
    summary = fetch(api, clock, tmp_path, spec=FIND_A_TENDER, until=JAN1 + timedelta(hours=12))
    assert summary.aborted and len(api.seen) == 1 and clock.sleeps == []
    assert f"HTTP 403 from {api.base}{FTS_PATH}?" in summary.errors[0]
    assert not (tmp_path / ".fetch-state-fts.json").exists()  # nothing done: the next run starts over


def test_500_that_never_recovers_stops_the_harvest(api, clock, cf_real_page, tmp_path):
    three_pages(api, cf_real_page)  # window 1 is fine
    api.route(CF_PATH, W2, Reply(500, b"<h1>Internal Server Error</h1>"))
    summary = fetch(api, clock, tmp_path, until=datetime(2025, 2, 1, tzinfo=UTC))
    assert summary.aborted and not summary.ok and summary.windows == 3 and summary.windows_done == 1
    assert clock.sleeps == [2.0, 2.0, 2.0, 10.0, 20.0, 40.0]  # intervals, then the back-off
    assert len(api.seen) == 3 + 4  # window 3 never asked for
    error = summary.errors[0]
    assert "HTTP 500 from " + api.base + CF_PATH in error and "gave up after 3 retries" in error
    assert "Internal Server Error" in error
    assert state(tmp_path)["done_until"] == "2025-01-16T00:00:00Z"


def test_redirect_is_not_followed(api, clock, tmp_path):
    api.route(CF_PATH, W1, Reply(301, b"", (("Location", "https://elsewhere.example/"),)))
    summary = fetch(api, clock, tmp_path)
    assert summary.aborted and len(api.seen) == 1
    assert "redirected to 'https://elsewhere.example/'" in summary.errors[0]


def test_connection_refused_is_retried_then_fails(clock, tmp_path):
    with local_api() as gone:
        base = gone.base  # the port is closed when the block ends
    options = FetchOptions(inbox=tmp_path, since=JAN1, until=JAN16, base_url=base)
    summary = harvest(CONTRACTS_FINDER, options, clock=clock)
    assert summary.aborted and clock.sleeps == [10.0, 20.0, 40.0]
    assert "connection failed" in summary.errors[0] and base in summary.errors[0]


# -- unusable pages --------------------------------------------------------------------------------


def test_truncated_page_is_quarantined_window_fails_others_go_on_and_rerun_retries(api, clock, cf_real_page,
                                                                                    tmp_path):
    bodies = three_pages(api, cf_real_page)
    broken = bodies[1][: len(bodies[1]) // 2]
    api.route(CF_PATH, {"limit": "100", "cursor": "c2"}, Reply(body=broken))
    api.route(CF_PATH, W2, EMPTY)
    summary = fetch(api, clock, tmp_path, until=JAN31)
    assert not summary.ok and not summary.aborted
    assert (summary.windows_done, summary.windows_failed, summary.pages_quarantined) == (1, 1, 1)
    assert inbox_pages(tmp_path) == ["cf-20250101T000000-p0001.json"]
    quarantined = tmp_path / "quarantine" / "cf-20250101T000000-p0002.body"
    assert quarantined.read_bytes() == broken
    reason = (tmp_path / "quarantine" / "cf-20250101T000000-p0002.reason.txt").read_text()
    assert "not valid JSON" in reason and "cursor=c2" in reason and "page: 2" in reason
    assert "quarantined as" in summary.errors[0] and "2025-01-01T00:00:00Z to 2025-01-16T00:00:00Z" in summary.errors[0]
    saved = state(tmp_path)
    assert saved["done_until"] == "2025-01-31T00:00:00Z"
    assert [(f["start"], f["end"]) for f in saved["failed_windows"]] == [("2025-01-01T00:00:00Z", "2025-01-16T00:00:00Z")]

    api.route(CF_PATH, {"limit": "100", "cursor": "c2"}, Reply(body=bodies[1]))  # fixed upstream
    api.seen.clear()
    rerun = fetch(api, clock, tmp_path, until=JAN31)
    assert rerun.ok and rerun.windows == 1 and [s.params for s in api.seen][0] == W1
    assert (rerun.pages_duplicate, rerun.pages_written) == (1, 2)
    assert len(inbox_pages(tmp_path)) == 3 and state(tmp_path)["failed_windows"] == []


def test_latin1_page_is_stored_as_utf8(api, clock, cf_real_page, tmp_path):
    page = split_pages(cf_real_page, api, parts=1)[0]
    page["releases"] = page["releases"][:5]
    page["releases"][0]["tender"]["description"] = "Budget £470,000 for the café"
    body = json.dumps(page, ensure_ascii=False).encode("iso-8859-1", errors="replace")
    api.route(CF_PATH, W1, Reply(body=body))
    summary = fetch(api, clock, tmp_path)
    assert summary.ok and summary.pages_written == 1
    stored = json.loads((tmp_path / summary.files[0]).read_bytes().decode("utf-8"))
    assert stored["releases"][0]["tender"]["description"] == "Budget £470,000 for the café"


def test_page_with_1e9999_is_patched_and_kept(api, clock, cf_real_page, tmp_path):
    page = split_pages(cf_real_page, api, parts=1)[0]
    page["releases"] = page["releases"][:3]
    page["releases"][1]["tender"]["lotDetails"] = {"maximumLotsBidPerSupplier": 424242}
    body = json.dumps(page, indent=1).replace("424242", "1e9999").encode("utf-8")
    api.route(CF_PATH, W1, Reply(body=body))
    events: list[FetchEvent] = []
    summary = fetch(api, clock, tmp_path, events=events)
    assert summary.ok and summary.pages_written == 1
    stored = strict_loads((tmp_path / summary.files[0]).read_text(encoding="utf-8"))
    assert stored["releases"][1]["tender"]["lotDetails"]["maximumLotsBidPerSupplier"] == 9999999
    assert stored["releases"][0] == cf_real_page["releases"][0]
    assert any("repaired: number 1e9999 -> 9999999" in e.message for e in events)


def test_links_next_off_the_api_stops_the_window(api, clock, cf_real_page, tmp_path):
    pages = split_pages(cf_real_page, api, parts=2)
    pages[0]["links"]["next"] = "https://evil.example/Published/Notices/OCDS/Search?cursor=c2"
    api.route(CF_PATH, W1, Reply(body=encode(pages[0])))
    summary = fetch(api, clock, tmp_path)
    assert summary.windows_failed == 1 and len(api.seen) == 1
    assert "links.next leaves the API" in summary.errors[0]
    assert inbox_pages(tmp_path) == ["cf-20250101T000000-p0001.json"]


def test_links_next_loop_stops_the_window(api, clock, cf_real_page, tmp_path):
    pages = split_pages(cf_real_page, api, parts=2)
    pages[1]["links"] = {"next": api.next_link(CF_PATH, "c2")}  # page 2 points at itself
    serve_chain(api, W1, [encode(p) for p in pages])
    summary = fetch(api, clock, tmp_path)
    assert summary.windows_failed == 1 and len(api.seen) == 2
    assert "loops back" in summary.errors[0]


def test_relative_links_next_is_resolved(api, clock, cf_real_page, tmp_path):
    pages = split_pages(cf_real_page, api, parts=2)
    pages[0]["links"]["next"] = f"{CF_PATH}?limit=100&cursor=c2"
    serve_chain(api, W1, [encode(p) for p in pages])
    summary = fetch(api, clock, tmp_path)
    assert summary.ok and summary.pages_written == 2


def test_damaged_state_file_is_an_input_error(api, clock, tmp_path):
    (tmp_path / ".fetch-state-cf.json").write_text("{not json")
    with pytest.raises(InputError, match="restart"):
        fetch(api, clock, tmp_path)
    api.route(CF_PATH, W1, EMPTY)
    assert fetch(api, clock, tmp_path, restart=True).ok


def test_bad_base_url(clock, tmp_path):
    with pytest.raises(InputError, match="base-url"):
        harvest(CONTRACTS_FINDER, FetchOptions(inbox=tmp_path, since=JAN1, base_url="ftp://x"), clock=clock)


def test_summary_json(api, clock, cf_real_page, tmp_path):
    three_pages(api, cf_real_page)
    doc = fetch(api, clock, tmp_path).to_json()
    assert doc["ok"] and doc["pages"] == {"fetched": 3, "written": 3, "duplicate": 0, "empty": 0, "quarantined": 0}
    assert doc["releases"] == {"fetched": 100, "written": 100}
    assert doc["since"] == "2025-01-01T00:00:00Z" and doc["until"] == "2025-01-16T00:00:00Z"
    assert json.loads(json.dumps(doc)) == doc


def test_inbox_that_cannot_be_used_is_an_input_error(api, clock, tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(InputError, match="cannot create the inbox"):
        fetch(api, clock, not_a_dir)
    with pytest.raises(InputError, match="cannot write"):
        write_atomic(tmp_path / "missing" / "page.json", b"{}")
    assert api.seen == []


def test_written_files_follow_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "page.json", b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "page.json").stat().st_mode & 0o777 == 0o644
