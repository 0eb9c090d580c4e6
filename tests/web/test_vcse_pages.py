"""The pages behind a digest's links: GET confirms, POST changes; refusals; the CLI's tables and ledger."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import select
from web_world import AS_OF, BASE_URL, LINKS, build, digest_of, make_client, match, opportunity, text_part

from broker.store.engine import session_factory
from broker.store.models import DigestFeedback, DigestItem, DigestPreference, TargetEntry
from broker.web.tokens import LinkSettings


def links_of(outbox, recipient="V1") -> dict[str, list[str]]:
    """The link paths in a built digest's text part, by kind."""
    digest = next(p for p in (outbox / AS_OF.isoformat()).glob(f"{recipient.lower()}-*.eml"))
    text = text_part(digest)
    strip = lambda urls: [u.replace(BASE_URL, "") for u in urls]  # noqa: E731
    return {"interested": strip(re.findall(rf"Interested: +({BASE_URL}\S+)", text)),
            "not_relevant": strip(re.findall(rf"Not relevant: ({BASE_URL}\S+)", text)),
            "stop": strip(re.findall(rf"Stop these emails: ({BASE_URL}\S+)", text))}


def form_token(page: str) -> str:
    return re.search(r'name="form_token" value="([0-9a-f]+)"', page)[1]


def feedback(engine) -> list[tuple]:
    with session_factory(engine)() as s:
        return list(s.execute(select(DigestFeedback.party_id, DigestFeedback.opportunity_id, DigestFeedback.kind,
                                     DigestFeedback.reason, DigestFeedback.cause, DigestFeedback.as_of)
                              .order_by(DigestFeedback.id)))


def test_a_get_shows_a_confirmation_and_changes_nothing_the_post_records_not_relevant_once(engine, client,
                                                                                          seeded):
    url = links_of(seeded)["not_relevant"][0]
    for _ in range(3):  # a mail scanner prefetching the link
        page = client.get(url)
        assert page.status_code == 200 and "Confirm: Not relevant" in page.text
    assert feedback(engine) == []
    assert "&lt;script&gt;" in page.text and "<script" not in page.text  # the notice title is text
    assert "@example.net" not in page.text  # no contact details on VCSE pages
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "script-src" not in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    token = form_token(page.text)
    done = client.post(url, data={"form_token": token, "reason": "We do not cook <b>meals</b>"})
    assert done.status_code == 200 and "Recorded: not relevant." in done.text
    again = client.post(url, data={"form_token": token, "reason": "twice"})
    assert again.status_code == 200 and "Already recorded" in again.text
    assert feedback(engine) == [("V1", "O1", "not_relevant", "We do not cook <b>meals</b>", "feedback:web",
                                 AS_OF.isoformat())]
    assert "Already recorded" in client.get(url).text


def test_interested_reaches_the_target_ledger_with_cause_feedback_web(engine, client, seeded):
    url = links_of(seeded)["interested"][1]
    token = form_token(client.get(url).text)
    assert "Recorded: interested." in client.post(url, data={"form_token": token}).text
    assert "Already recorded" in client.post(url, data={"form_token": token}).text
    assert feedback(engine) == [("V1", "O2", "interested", None, "feedback:web", AS_OF.isoformat())]
    with session_factory(engine)() as s:
        entries = list(s.execute(select(TargetEntry.party_id, TargetEntry.stage, TargetEntry.cause).where(
            TargetEntry.opportunity_id == "O2", TargetEntry.kind == "stage").order_by(TargetEntry.id)))
    assert ("V1", "interested", "feedback:web") in entries
    assert sum(1 for e in entries if e[1] == "interested") == 1


def test_stop_these_emails_and_rfc_8058_one_click(engine, clock, client, seeded, tmp_path):
    url = links_of(seeded)["stop"][0]
    assert "Stop sending opportunity digests to <strong>Ward End Food Bank</strong>" in client.get(url).text
    # RFC 8058: the mail client POSTs this body to the List-Unsubscribe URL, with no page and no cookie.
    done = client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "we will send no more digests" in done.text
    with session_factory(engine)() as s:
        pref = s.get(DigestPreference, "V1")
        assert (pref.opt_in, pref.cause) == (False, "feedback:web")
        opportunity(s, "O3")  # a new opportunity for both VCSEs the next night
        match(s, "O3", "V1", 75)
        match(s, "O3", "V2", 75)
        s.commit()
    assert "already stopped" in client.post(url, data={"List-Unsubscribe": "One-Click"}).text
    # The next night V1 gets no digest at all; V2 gets its own.
    build(engine, seeded, as_of=AS_OF + timedelta(days=1))
    assert digest_of(engine, "V1", AS_OF + timedelta(days=1)) is None
    assert digest_of(engine, "V2", AS_OF + timedelta(days=1)).item_count == 1


def test_tampered_expired_foreign_and_formless_requests_are_refused(engine, clock, client, seeded):
    links = links_of(seeded)
    url = links["not_relevant"][0]
    body, sig = url.rsplit(".", 1)
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    assert client.get(f"{body}.{flipped}").status_code == 404
    assert client.post(f"{body}.{flipped}", data={"form_token": "0" * 64}).status_code == 404
    assert client.get("/f/not-a-token").status_code == 404
    # A genuine signature over another party's item: V2's reference with V1's party tag.
    with session_factory(engine)() as s:
        v2_ref = s.scalars(select(DigestItem.reference).where(DigestItem.recipient_id == "V2")).one()
    foreign = LINKS.item_links(v2_ref, "V1", AS_OF)["not_relevant"].replace(BASE_URL, "")
    assert client.get(foreign).status_code == 404
    # An item link used as a stop link, and the other way round.
    assert client.get(url.replace("/f/", "/stop/")).status_code == 404
    assert client.get(links["stop"][0].replace("/stop/", "/f/")).status_code == 404
    # Missing or wrong form token: 403, nothing recorded.
    assert client.post(url, data={}).status_code == 403
    assert client.post(url, data={"form_token": "0" * 64}).status_code == 403
    assert client.post(links["stop"][0], data={}).status_code == 403
    assert feedback(engine) == []
    # Past its date the link is Gone (and records nothing even with a good form token).
    token = form_token(client.get(url).text)
    clock.day = AS_OF + timedelta(days=LINKS.days + 1)
    expired = client.post(url, data={"form_token": token})
    assert expired.status_code == 410 and "expired" in expired.text
    assert feedback(engine) == []


def test_links_signed_with_another_secret_are_404(engine, client, seeded):
    with session_factory(engine)() as s:
        ref = s.scalars(select(DigestItem.reference).where(DigestItem.recipient_id == "V1")).first()
    other = LinkSettings(BASE_URL, "o" * 40).item_links(ref, "V1", AS_OF)["interested"]
    assert client.get(other.replace(BASE_URL, "")).status_code == 404


def test_token_endpoints_are_rate_limited_per_client(engine, clock, seeded):
    url = links_of(seeded)["interested"][0]
    with make_client(engine, clock, rate_limit=5) as limited:
        codes = [limited.get(url).status_code for _ in range(7)]
    assert codes == [200] * 5 + [429] * 2


def test_the_business_date_of_a_click_is_the_server_day(engine, clock, client, seeded):
    clock.day = date(2025, 1, 20)
    url = links_of(seeded)["not_relevant"][1]
    client.post(url, data={"form_token": form_token(client.get(url).text)})
    assert feedback(engine)[0][-1] == "2025-01-20"


def test_the_same_click_sent_many_times_at_once_is_recorded_once(engine, clock, seeded):
    """Concurrent duplicates (a double click, a client retrying) through a live server on both databases:
    the unique row wins once, the others find it; Interested reaches the ledger once."""
    import threading

    import httpx
    from browser import free_port, live_server

    from broker.web.app import WebConfig, create_app

    links = links_of(seeded)
    port = free_port()
    app = create_app(engine, WebConfig(secret=LINKS.secret, secure_cookies=False, clock=clock))
    with live_server(app, port) as base, httpx.Client(base_url=base) as client:
        forms = [(u, form_token(client.get(u).text)) for u in (links["interested"][0], links["not_relevant"][1])]
        codes: list[int] = []
        start = threading.Barrier(16)

        def click(path: str, token: str) -> None:
            with httpx.Client(base_url=base, timeout=60) as own:
                start.wait()
                codes.append(own.post(path, data={"form_token": token}).status_code)

        threads = [threading.Thread(target=click, args=form) for form in forms for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert codes == [200] * 16
    assert sorted((f[1], f[2]) for f in feedback(engine)) == [("O1", "interested"), ("O2", "not_relevant")]
    with session_factory(engine)() as s:
        assert s.scalars(select(TargetEntry.id).where(TargetEntry.stage == "interested",
                                                      TargetEntry.cause == "feedback:web")).all() != []
        assert len(s.scalars(select(TargetEntry.id).where(TargetEntry.stage == "interested")).all()) == 1
