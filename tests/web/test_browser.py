"""The pages as people use them, in headless Debian chromium against a live ``broker serve``.

* A VCSE opens the digest it was sent, clicks Not relevant, gives a reason and confirms; the next
  night's digest holds the new opportunity and not that one.
* An officer logs in, records ``won`` with a value, and the report's total changes.
* A tampered link, an expired link and a form without its CSRF token are refused in the browser.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from browser import Page, browser, chromium_or_skip, free_port, live_server
from sqlalchemy import select
from web_world import (
    AS_OF,
    AT_INTRODUCED,
    OFFICER,
    PASSWORD,
    SECRET,
    Clock,
    build,
    html_part,
    match,
    opportunity,
    seed,
)

from broker.store.engine import session_factory
from broker.store.models import Digest, DigestFeedback, DigestItem, TargetEntry
from broker.web.app import WebConfig, create_app
from broker.web.officers import add_officer
from broker.web.tokens import LinkSettings

pytestmark = pytest.mark.slow


@pytest.fixture
def site(engine, tmp_path):
    """Seeded database, tonight's digests with links to a live server on a free port, the server itself."""
    executable = chromium_or_skip()
    port = free_port()
    links = LinkSettings(base_url=f"http://127.0.0.1:{port}", secret=SECRET, days=30)
    seed(engine)
    outbox = tmp_path / "outbox"
    build(engine, outbox, links=links)
    with session_factory(engine).begin() as s:
        add_officer(s, OFFICER, PASSWORD)
    clock = Clock(AS_OF)
    app = create_app(engine, WebConfig(secret=SECRET, secure_cookies=False, clock=clock, target=AT_INTRODUCED))
    shots = tmp_path / "shots"
    shots.mkdir()
    with live_server(app, port) as base, browser(executable) as b:
        yield {"base": base, "outbox": outbox, "links": links, "clock": clock, "browser": b, "shots": shots}


def digest_file(outbox, recipient, day):
    return next((outbox / day.isoformat()).glob(f"{recipient.lower()}-*.eml"))


def test_vcse_clicks_not_relevant_in_its_digest_and_the_next_night_leaves_it_out(engine, site):
    shown = site["shots"] / "digest.html"
    shown.write_text(html_part(digest_file(site["outbox"], "V1", AS_OF)), encoding="utf-8")
    tab = Page(site["browser"], site["shots"])
    tab.page.goto(shown.as_uri())
    assert tab.page.locator("h2").first.inner_text().startswith('1. Meals <script>alert("x")</script>')
    tab.shot("vcse-1-digest")
    tab.page.get_by_role("link", name="Not relevant").first.click()
    tab.page.wait_for_url(f"{site['base']}/f/**")
    assert "Tell us this opportunity is not relevant to Ward End Food Bank?" in tab.page.inner_text("main")
    tab.page.fill("#reason", "We do not run kitchens")
    tab.shot("vcse-2-confirm")
    with session_factory(engine)() as s:
        assert s.scalars(select(DigestFeedback)).first() is None  # opening the link changed nothing
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Confirm: Not relevant").click()
    assert tab.page.inner_text("#result") == "Recorded: not relevant."
    tab.shot("vcse-3-done")
    assert tab.errors == []  # no CSP violation, no script error
    with session_factory(engine).begin() as s:
        row = s.scalars(select(DigestFeedback)).one()
        assert (row.party_id, row.opportunity_id, row.kind, row.reason, row.cause) == (
            "V1", "O1", "not_relevant", "We do not run kitchens", "feedback:web")
        opportunity(s, "O3", title="Community transport for appointments")  # new tomorrow
        match(s, "O3", "V1", 95, run_id="run-2")
    tomorrow = AS_OF + timedelta(days=1)
    build(engine, site["outbox"], as_of=tomorrow, links=site["links"])
    with session_factory(engine)() as s:
        held = list(s.scalars(select(DigestItem.opportunity_id).join(Digest, Digest.id == DigestItem.digest_id)
                              .where(Digest.recipient_id == "V1", Digest.as_of == tomorrow.isoformat())))
    assert held == ["O3"]
    assert "Meals" not in html_part(digest_file(site["outbox"], "V1", tomorrow))


def _login(tab, base):
    tab.page.goto(f"{base}/login")
    tab.page.fill("#email", OFFICER)
    tab.page.fill("#password", PASSWORD)
    tab.shot("officer-1-login")
    tab.page.get_by_role("button", name="Log in").click()
    tab.page.wait_for_url(f"{base}/")


def test_officer_logs_in_records_won_with_a_value_and_the_report_total_changes(site):
    base, tab = site["base"], Page(site["browser"], site["shots"])
    _login(tab, base)
    tab.page.goto(f"{base}/?all=1")
    tab.shot("officer-2-tonight")
    tab.page.goto(f"{base}/report")
    before = tab.page.inner_text("#total")
    assert before == "£73,000"
    tab.page.goto(f"{base}/?all=1&by=vcse")
    tab.page.locator("a", has_text="Befriending service").first.click()
    tab.page.wait_for_url(f"{base}/opportunity?id=O2")
    tab.page.select_option("#party_id", "V1")
    tab.page.select_option("#stage", "won")
    tab.page.fill("#value", "£40,000")
    tab.page.fill("#note", "Awarded after the interview")
    tab.shot("officer-3-outcome-form")
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Record outcome").click()
    assert tab.page.inner_text("#recorded") == "Recorded in the target ledger."
    assert "won" in tab.page.inner_text("#ledger") and "£40,000" in tab.page.inner_text("#ledger")
    tab.shot("officer-4-recorded")
    tab.page.goto(f"{base}/report")
    assert tab.page.inner_text("#total") == "£88,000"  # O2 counted at its award, £40,000, not £25,000
    tab.shot("officer-5-report")
    assert tab.errors == []


def test_tampered_and_expired_links_and_a_form_without_csrf_are_refused_in_the_browser(engine, site):
    base, tab = site["base"], Page(site["browser"], site["shots"])
    with session_factory(engine)() as s:
        ref = s.scalars(select(DigestItem.reference).where(DigestItem.recipient_id == "V1")
                        .order_by(DigestItem.position)).first()
    good = site["links"].item_links(ref, "V1", AS_OF)["interested"]
    body, sig = good.rsplit(".", 1)
    response = tab.page.goto(f"{body}.{sig[::-1]}")
    assert response.status == 404 and "not one of ours" in tab.page.inner_text("main")
    tab.shot("refused-1-tampered")
    site["clock"].day = AS_OF + timedelta(days=31)
    response = tab.page.goto(good)
    assert response.status == 410 and "expired" in tab.page.inner_text("h1")
    tab.shot("refused-2-expired")
    site["clock"].day = AS_OF
    _login(tab, base)
    tab.page.goto(f"{base}/opportunity?id=O1")
    # The outcome form without its token, as a form forged on another site would arrive.
    tab.page.locator("form.outcome input[name=csrf]").evaluate("e => e.remove()")
    tab.page.fill("#value", "1000")
    with tab.page.expect_navigation() as sent:
        tab.page.get_by_role("button", name="Record outcome").click()
    assert sent.value.status == 403 and tab.page.inner_text("h1") == "Refused"
    tab.shot("refused-3-no-csrf")
    with session_factory(engine)() as s:
        assert s.scalars(select(DigestFeedback)).first() is None
        assert s.scalars(select(TargetEntry).where(TargetEntry.stage == "won")).first() is None
    assert all("Failed to load resource" in e for e in tab.errors)  # only the 404/410/403 statuses themselves


def test_vcse_stops_the_emails_from_its_digest_and_gets_none_the_next_night(engine, site):
    shown = site["shots"] / "digest-v2.html"
    shown.write_text(html_part(digest_file(site["outbox"], "V2", AS_OF)), encoding="utf-8")
    tab = Page(site["browser"], site["shots"])
    tab.page.goto(shown.as_uri())
    tab.page.get_by_role("link", name="Stop these emails").click()
    tab.page.wait_for_url(f"{site['base']}/stop/**")
    assert "Stop sending opportunity digests to Small Heath Youth Club?" in tab.page.inner_text("main")
    tab.shot("vcse-4-stop-confirm")
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Confirm: Stop these emails").click()
    assert tab.page.inner_text("#result") == "Done: we will send no more digests to Small Heath Youth Club."
    tab.shot("vcse-5-stopped")
    assert tab.errors == []
    with session_factory(engine).begin() as s:
        opportunity(s, "O4", title="Youth mentoring")
        match(s, "O4", "V2", 95, run_id="run-2")
    tomorrow = AS_OF + timedelta(days=1)
    build(engine, site["outbox"], as_of=tomorrow, links=site["links"])
    with session_factory(engine)() as s:
        assert s.scalars(select(Digest).where(Digest.recipient_id == "V2", Digest.as_of == tomorrow.isoformat())
                         ).first() is None
