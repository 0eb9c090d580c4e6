"""``broker fetch ...`` through click's CliRunner, against the local API (real clock, zero intervals)."""

from __future__ import annotations

import json

from harvest_helpers import CF_PATH, FTS_PATH, Reply, cf_query, encode, fts_query, serve_chain, split_pages

W1 = cf_query("2025-01-01T00:00:00", "2025-01-16T00:00:00")
FAST = ("--min-interval", "0", "--rate-limit-wait", "0")


def cf(run, api, inbox, *extra: str):
    return run("fetch", "contracts-finder", "--since", "2025-01-01", "--until", "2025-01-15",
               "--inbox", str(inbox), "--base-url", api.base, *FAST, *extra)


def test_fetch_contracts_finder(run, api, cf_real_page, tmp_path):
    bodies = [encode(p) for p in split_pages(cf_real_page, api)]
    serve_chain(api, W1, bodies)
    inbox = tmp_path / "inbox"
    result = cf(run, api, inbox)
    assert result.exit_code == 0, result.output
    assert "Contracts Finder: 1 of 1 window(s) done, 0 failed; 3 page(s) fetched, 3 written" in result.stdout
    assert "100 release(s) (100 in new files)" in result.stdout
    assert api.seen[0].params == W1  # 2025-01-01 and the end of 2025-01-15, UK time (GMT in January)
    assert sorted(p.read_bytes() for p in inbox.glob("cf-*.json")) == sorted(bodies)
    again = cf(run, api, inbox)
    assert again.exit_code == 0 and len(api.seen) == 3
    assert "Contracts Finder: up to date to 2025-01-16T00:00:00Z; nothing fetched" in again.stdout
    # Later: resume one hour (--overlap) before where the last run stopped.
    api.route(CF_PATH, cf_query("2025-01-15T23:00:00", "2025-01-21T00:00:00"), Reply(body=b'{"releases": []}'))
    later = run("fetch", "contracts-finder", "--since", "2025-01-01", "--until", "2025-01-20", "--inbox", str(inbox),
                "--base-url", api.base, *FAST)
    assert later.exit_code == 0, later.output
    assert api.seen[-1].params == cf_query("2025-01-15T23:00:00", "2025-01-21T00:00:00")


def test_fetch_json_summary(run, api, cf_real_page, tmp_path):
    serve_chain(api, W1, [encode(p) for p in split_pages(cf_real_page, api)])
    api.route(CF_PATH, {"limit": "100", "cursor": "c2"}, Reply(403, b"Too many requests"),
              Reply(body=encode(split_pages(cf_real_page, api)[1])))
    result = cf(run, api, tmp_path, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["pages"]["written"] == 3 and doc["retries"] == 1
    assert doc["waits"]["count"] == 1 and "HTTP 403" in doc["waits"]["reasons"][0]


def test_fetch_find_a_tender_with_stages(run, api, tmp_path):
    query = fts_query("2025-01-01T00:00:00", "2025-01-01T06:00:00") | {"stages": "tender"}
    api.route(FTS_PATH, query, Reply(body=b'{"releases": [], "links": {}}'))
    result = run("fetch", "find-a-tender", "--since", "2025-01-01T00:00:00Z", "--until", "2025-01-01T06:00:00Z",
                 "--inbox", str(tmp_path), "--base-url", api.base, "--stages", "tender", *FAST)
    assert result.exit_code == 0, result.output
    assert "Find a Tender: 1 of 1 window(s) done" in result.stdout and "1 empty" in result.stdout


def test_server_error_exits_1_naming_url_and_status(run, api, tmp_path):
    api.route(CF_PATH, W1, Reply(500, b"boom"))
    result = cf(run, api, tmp_path, "--retries", "0")
    assert result.exit_code == 1
    assert f"Error: window 2025-01-01T00:00:00Z to 2025-01-16T00:00:00Z: HTTP 500 from {api.base}{CF_PATH}?" in result.stderr
    assert "gave up after 0 retries" in result.stderr and "Run the same command again" in result.stderr


def test_broken_page_exits_1_and_is_quarantined(run, api, cf_real_page, tmp_path):
    bodies = [encode(p) for p in split_pages(cf_real_page, api)]
    serve_chain(api, W1, [bodies[0], bodies[1][:1000], bodies[2]])
    result = cf(run, api, tmp_path)
    assert result.exit_code == 1
    assert "1 failed" in result.stdout and "1 quarantined" in result.stdout
    assert "not valid JSON" in result.stderr
    assert (tmp_path / "quarantine" / "cf-20250101T000000-p0002.reason.txt").exists()


def test_bad_arguments(run, api, tmp_path):
    result = cf(run, api, tmp_path, "--stages", "tender,bogus")
    assert result.exit_code == 1 and "bogus not accepted by Contracts Finder" in result.stderr
    result = run("fetch", "contracts-finder", "--since", "last week", "--inbox", str(tmp_path))
    assert result.exit_code == 1 and "--since: not a date" in result.stderr
    result = cf(run, api, tmp_path, "--window", "2w")
    assert result.exit_code == 1 and "not a window size" in result.stderr
    result = run("fetch", "contracts-finder", "--inbox", str(tmp_path))
    assert result.exit_code == 2 and "--since" in result.stderr
    assert api.seen == []


def test_help(run):
    result = run("fetch", "--help")
    assert result.exit_code == 0
    assert "contracts-finder" in result.stdout and "find-a-tender" in result.stdout
    for name, interval in (("contracts-finder", "2.0"), ("find-a-tender", "10.0")):
        sub = run("fetch", name, "--help")
        assert sub.exit_code == 0 and "--since" in sub.stdout and f"default: {interval}" in sub.stdout
