"""How values are shown, and how untrusted text is made inert for headers, links and shell commands."""

from __future__ import annotations

import shlex
from datetime import UTC, date, datetime

import pytest

from broker.digest.formatting import (
    days_left,
    deadline_cutoff,
    excerpt,
    feedback_command,
    format_deadline,
    format_location,
    format_value,
    header_text,
    safe_link,
    valid_email,
)


@pytest.mark.parametrize(("low", "high", "expected"), [
    (4_800_000, 6_000_000, "£48,000–£60,000"),
    (4_800_000, 4_800_000, "£48,000"),
    (4_800_000, None, "£48,000"),
    (None, 6_000_000, "£60,000"),
    (6_000_000, 4_800_000, "£48,000–£60,000"),
    (123_456_789, None, "£1,234,567.89"),
    (50, None, "£0.50"),
    (None, None, "value unknown"),
])
def test_money(low: int | None, high: int | None, expected: str) -> None:
    assert format_value(low, high) == expected


def test_money_in_another_currency_is_labelled_not_converted() -> None:
    assert format_value(None, None, "EUR", "50000") == "50000 EUR (not in pounds)"


def test_deadline_and_days_left_are_relative_to_as_of_in_uk_time() -> None:
    as_of = date(2025, 6, 2)
    # 23:30 UTC on 6 June is 00:30 on 7 June in London (BST): five UK days after 2 June.
    late = datetime(2025, 6, 6, 23, 30, tzinfo=UTC)
    assert days_left(late, as_of) == 5
    assert format_deadline(late, as_of) == ("Saturday 7 June 2025, 00:30", "5 days left")
    assert format_deadline(datetime(2025, 6, 3, 11, tzinfo=UTC), as_of)[1] == "1 day left"
    assert format_deadline(None, as_of) == ("no deadline given", "check the notice")
    # The cut-off for 5 days is midnight UK time starting 7 June.
    assert deadline_cutoff(as_of, 5) == datetime(2025, 6, 6, 23, 0, tzinfo=UTC)
    # With no minimum, a deadline earlier than the digest's own send time (06:00 UK) is still excluded.
    assert deadline_cutoff(as_of, 0) == datetime(2025, 6, 2, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<script>",
                                 "vbscript:x", "ftp://example.org/x", "//evil.example/x", "https://",
                                 "https://exa mple.org", "https://example.org/\r\nBcc: x", "file:///etc/passwd"])
def test_only_http_links_survive(url: str) -> None:
    assert safe_link(url) is None


def test_http_links_are_kept_verbatim() -> None:
    url = "https://www.contractsfinder.service.gov.uk/Notice/abc?x=1&y=\"2\""
    assert safe_link(url) == url
    assert safe_link("http://example.org") == "http://example.org"


def test_header_text_removes_every_line_break_and_control() -> None:
    evil = "Name\r\nBcc: evil@example.com\u2028X: y\x85\x00\x1b[31m\u200e"
    cleaned = header_text(evil)
    assert not any(ch in cleaned for ch in "\r\n\u2028\x85\x00\x1b\u200e")
    assert cleaned == "Name Bcc: evil@example.com X: y [31m"
    assert len(header_text("x" * 1000, 50)) == 50


@pytest.mark.parametrize(("value", "ok"), [
    ("info@wardend.org.uk", True), ("a.b+digest@example.co.uk", True), ("  info@example.org ", True),
    ("info@example.org\r\nBcc: evil@example.com", False), ("Name <info@example.org>", False),
    ("info@localhost", False), ("info@@example.org", False), ("", False), (None, False),
    ("a,b@example.org", False), ("info@exa_mple.org", False), ("ïnfo@example.org", False),
    ("x" * 65 + "@example.org", False),
])
def test_email_validation(value: str | None, ok: bool) -> None:
    assert (valid_email(value) is not None) is ok


def test_location() -> None:
    assert format_location("Birmingham", None, "B8 1AA", False) == "Birmingham, B8 1AA"
    assert format_location(None, "West Midlands", None, False) == "West Midlands"
    assert format_location(None, None, None, True) == "Nationwide"
    assert format_location(None, None, None, False) == "location not given"


def test_excerpt_cuts_at_a_word() -> None:
    assert excerpt("one two three four", 9) == "one two…"
    assert excerpt("short", 9) == "short"
    assert excerpt("a\x00b\n\nc", 20) == "ab c"


def test_feedback_command_is_one_shell_word_per_id() -> None:
    cmd = feedback_command("V1; rm -rf ~", "$(reboot)`x`")
    assert shlex.split(cmd) == ["broker", "feedback", "V1; rm -rf ~", "$(reboot)`x`", "--not-relevant"]
