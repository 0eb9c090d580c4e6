"""The officer workspace: officers from the CLI, login, CSRF on every form, pages, outcomes, the report."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from web_world import AS_OF, AT_INTRODUCED, OFFICER, PASSWORD, csrf, login

from broker.store.engine import session_factory
from broker.store.models import Officer, QuarantineItem, TargetEntry
from broker.target.progress import compute_progress
from broker.web.officers import authenticate


def test_officer_add_from_the_cli_stores_only_an_argon2_hash(run, engine):
    out = run("officer", "add", "Alex@Brokerage.Example", "--password-stdin", input="a long enough password\n")
    assert out.exit_code == 0, out.output
    assert "officer alex@brokerage.example added" in out.output
    short = run("officer", "add", "b@brokerage.example", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    again = run("officer", "add", "alex@brokerage.example", "--password-stdin", input="another long password\n")
    assert again.exit_code == 1 and "already exists" in again.output
    prompted = run("officer", "add", "c@brokerage.example", input="a long enough password\na long enough password\n")
    assert prompted.exit_code == 0, prompted.output
    listed = run("officer", "list", "--json")
    assert "alex@brokerage.example" in listed.output and "argon2" not in listed.output
    with session_factory(engine)() as s:
        row = s.scalars(select(Officer).where(Officer.email == "alex@brokerage.example")).one()
        assert row.password_hash.startswith("$argon2id$") and "long enough" not in row.password_hash
        assert authenticate(s, "ALEX@brokerage.example", "a long enough password") is not None
        assert authenticate(s, "alex@brokerage.example", "a long enough passwore") is None
        assert authenticate(s, "nobody@brokerage.example", "a long enough password") is None


def test_pages_need_a_login_and_a_wrong_password_is_refused(client):
    for path in ("/", "/directory", "/quarantine", "/report", "/opportunity?id=O1"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/login", path
    refused = login(client, password="wrong password here")
    assert refused.status_code == 401 and "Wrong email or password" in refused.text
    assert login(client, email="nobody@brokerage.example").status_code == 401
    ok = login(client)
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_login_without_its_csrf_token_is_refused(client):
    client.get("/login")
    assert client.post("/login", data={"email": OFFICER, "password": PASSWORD}).status_code == 403
    assert client.get("/").status_code == 303  # still logged out


def test_every_officer_form_needs_the_session_csrf_token(engine, client):
    login(client)
    page = client.get("/opportunity?id=O1")
    form = {"opportunity_id": "O1", "party_id": "V1", "stage": "won", "value": "75000", "note": ""}
    assert client.post("/outcome", data=form).status_code == 403
    assert client.post("/outcome", data={**form, "csrf": "forged"}).status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    with session_factory(engine)() as s:
        assert not s.scalars(select(TargetEntry).where(TargetEntry.stage == "won")).first()
    assert client.post("/outcome", data={**form, "csrf": csrf(page.text)}).status_code == 303


def test_recording_won_with_a_value_changes_the_report_total(engine, client):
    login(client)
    with session_factory(engine)() as s:
        before = compute_progress(s, AS_OF, AT_INTRODUCED).counted_pence
    report = client.get("/report")
    assert report.status_code == 200 and "£73,000" in report.text  # O1 £48,000 + O2 £25,000, introduced
    assert "script-src" not in report.headers["content-security-policy"]
    page = client.get("/opportunity?id=O1")
    assert "v1@example.net" in page.text and "v2@example.net" in page.text  # everyone it went to
    done = client.post("/outcome", data={"csrf": csrf(page.text), "opportunity_id": "O1", "party_id": "V1",
                                         "stage": "won", "value": "£90,000", "note": "<b>awarded</b>"})
    assert done.status_code == 303
    shown = client.get(done.headers["location"])
    assert "Recorded in the target ledger" in shown.text and "&lt;b&gt;awarded&lt;/b&gt;" in shown.text
    with session_factory(engine)() as s:
        after = compute_progress(s, AS_OF, AT_INTRODUCED).counted_pence
        won = s.scalars(select(TargetEntry).where(TargetEntry.stage == "won")).one()
    assert (won.amount_pence, won.cause, won.note) == (9_000_000, f"officer:web:{OFFICER}", "<b>awarded</b>")
    assert after == before + 9_000_000 - 4_800_000
    assert "£115,000" in client.get("/report").text
    # The same outcome again adds nothing; a bad value is a message, not a traceback.
    again = client.post("/outcome", data={"csrf": csrf(page.text), "opportunity_id": "O1", "party_id": "V1",
                                          "stage": "won", "value": "£90,000", "note": "<b>awarded</b>"})
    assert "Nothing new" in client.get(again.headers["location"]).text
    bad = client.post("/outcome", data={"csrf": csrf(page.text), "opportunity_id": "O1", "party_id": "V1",
                                        "stage": "lost", "value": "lots"})
    assert bad.status_code == 400 and 'class="error"' in bad.text


@pytest.mark.parametrize("path", ["/?all=1", "/?all=1&by=vcse", "/directory", "/quarantine"])
def test_officer_pages_show_untrusted_text_as_text(engine, client, path):
    with session_factory(engine).begin() as s:
        s.add(QuarantineItem(fingerprint="f" * 64, file="<b>evil.csv</b>", locator="row 2", field="title",
                             reason="<script>alert(1)</script>", raw="=HYPERLINK(\"x\")<img src=x>",
                             created_at=datetime(2025, 1, 16, tzinfo=UTC)))
    login(client)
    page = client.get(path)
    assert page.status_code == 200
    assert "<script" not in page.text and "<img" not in page.text and "<b>" not in page.text.replace("<body>", "")


def test_tonight_groups_matches_by_cluster_and_by_vcse_with_reasons(client):
    login(client)
    by_cluster = client.get("/?all=1").text
    assert "Health and wellbeing" in by_cluster and "capability: strong fit for O1" in by_cluster
    by_vcse = client.get("/?all=1&by=vcse").text
    assert "Ward End Food Bank" in by_vcse and "Small Heath Youth Club" in by_vcse
    assert by_vcse.index("Small Heath Youth Club") < by_vcse.index("Ward End Food Bank")


def test_contact_details_are_for_officers_only(client, seeded):
    assert "v1@example.net" not in client.get("/directory").text  # a redirect to the login
    login(client)
    assert "v1@example.net" in client.get("/directory").text


def test_logout_ends_the_session(client):
    login(client)
    page = client.get("/")
    assert client.post("/logout", data={"csrf": csrf(page.text)}).status_code == 303
    assert client.get("/").status_code == 303


def test_a_new_password_or_disabling_ends_open_sessions(run, client):
    login(client)
    assert client.get("/").status_code == 200
    out = run("officer", "add", OFFICER, "--replace", "--password-stdin", input="a brand new password\n")
    assert out.exit_code == 0, out.output
    assert client.get("/").status_code == 303  # the old session ended with the old password
    assert login(client, password="a brand new password").status_code == 303
    assert client.get("/").status_code == 200
    assert run("officer", "disable", OFFICER).exit_code == 0
    assert client.get("/").status_code == 303
    assert login(client, password="a brand new password").status_code == 401
    assert "no officer" in run("officer", "disable", "nobody@x.example").output
