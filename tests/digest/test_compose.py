"""What a digest says, and that untrusted text in it stays inert (HTML escaping, header injection)."""

from __future__ import annotations

import re
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage

from digest_world import AS_OF, World, deadline

from broker.digest import DigestSettings, build_digests, mime
from broker.digest.compose import render_message
from broker.store.models import Digest

XSS = "<script>alert(1)</script>"


def parse(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def built(world: World, **kw) -> EmailMessage:  # type: ignore[no-untyped-def]
    world.commit()
    batch = build_digests(world.session, as_of=kw.pop("as_of", AS_OF), outbox=world.outbox, **kw)
    assert len(batch) == 1, (list(batch), batch.skipped)
    return parse(batch[0].path.read_bytes())


def test_a_digest_shows_each_item_with_its_reasons_and_link(world: World) -> None:
    world.vcse("V1", name="Ward End Community Trust")
    world.opportunity("O1", title="Youth work in Ward End", buyer_name="Birmingham City Council")
    world.opportunity("O2", title="Lunch club", value_min_pence=None, value_max_pence=None,
                      deadline_at=deadline(24), url=None)
    world.match("O1", "V1", 70)
    world.match("O2", "V1", 90, reasons=["capability: lunch clubs (strong)"])
    msg = built(world)
    assert msg["Subject"] == "2 new opportunities for Ward End Community Trust"
    assert msg["To"] == "Ward End Community Trust <v1@example.net>"
    assert msg["From"] == "Procurement brokerage <brokerage@example.org>"
    assert msg["Date"] == "Thu, 16 Jan 2025 06:00:00 +0000"
    assert re.fullmatch(r"<2025-01-16-[0-9a-f]{16}@example\.org>", msg["Message-ID"])
    assert msg["List-Unsubscribe"].startswith("<mailto:brokerage@example.org?subject=unsubscribe%20")
    assert msg.get_content_type() == "multipart/alternative"
    text, html = parts(msg)
    # Best first: O2 (90) before O1 (70).
    assert text.index("1. Lunch club") < text.index("2. Youth work in Ward End")
    assert "Value:     £48,000–£60,000" in text and "Value:     value unknown" in text
    assert "Deadline:  Friday 31 January 2025, 12:00 (15 days left)" in text
    assert "Deadline:  Friday 24 January 2025, 12:00 (8 days left)" in text
    assert "Location:  Birmingham, B8 1AA" in text
    assert "- capability: lunch clubs (strong)" in text
    # The top three reasons only.
    assert "reason three" in text and "reason four" not in text
    assert "Notice:    https://www.contractsfinder.service.gov.uk/Notice/O1" in text
    assert "no web link was published" in text
    assert re.search(r"Reference: [A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}", text)
    # The email is for the VCSE: a reply in plain words, no officer's commands and no internal ids.
    assert 'with the word "unsubscribe"' in text and "unsubscribe" in html
    for officer_only in ("broker ", "For the brokerage officer", "--not-relevant", "--opt-out", "V1", "O1 "):
        assert officer_only not in text and officer_only not in html, officer_only
    assert '<a href="https://www.contractsfinder.service.gov.uk/Notice/O1">' in html
    assert "£48,000–£60,000" in html


def test_one_item_subject_and_summer_time_date(world: World) -> None:
    world.vcse("V1", name="Ward End Community Trust")
    world.opportunity("O1", deadline_at=deadline(30, month=6))
    world.match("O1", "V1", 70)
    msg = built(world, as_of=date(2025, 6, 2))
    assert msg["Subject"] == "1 new opportunity for Ward End Community Trust"
    assert msg["Date"] == "Mon, 02 Jun 2025 06:00:00 +0100"


def test_script_in_a_notice_arrives_as_text(world: World) -> None:
    world.vcse("V1", name=f'Trust "><img src=x onerror=alert(2)> {XSS}')
    world.opportunity("O1", title=f"Youth work {XSS}", description=f"We need {XSS} <b>bold</b> help",
                      buyer_name=f"Council {XSS}", url="javascript:alert(1)", local_authority=XSS)
    world.match("O1", "V1", 70, reasons=[f"keyword {XSS}", "<img src=x onerror=alert(3)>"])
    msg = built(world)
    text, html = parts(msg)
    # Plain text: verbatim, and inert because it is text/plain.
    assert f"1. Youth work {XSS}" in text
    assert f"Buyer:     Council {XSS}" in text
    assert f"We need {XSS} <b>bold</b> help" in text
    assert "javascript:" not in text
    # HTML: every piece of untrusted text escaped; no script, no handler, no javascript: link.
    assert re.search(r"<\s*script", html, re.IGNORECASE) is None
    assert "<img" not in html and "<b>bold" not in html
    assert "javascript:" not in html
    assert "Youth work &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Council &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(3)&gt;" in html
    assert "Trust &#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in html


def test_names_and_titles_cannot_inject_headers(world: World) -> None:
    inject = "\r\nBcc: evil@example.com\r\nX-Evil: 1"
    world.vcse("V1", name=f"Ward End{inject}")
    world.consortium("C1", "V1", ["V1"], name=f"Group{inject}")
    world.opportunity("O1", title=f"Title{inject}", buyer_name=f"Buyer{inject}")
    world.match("O1", "C1", 70, party_type="consortium", lead="V1", reasons=[f"reason{inject}"])
    settings = DigestSettings(sender_name=f"Brokerage{inject}")
    world.commit()
    batch = build_digests(world.session, as_of=AS_OF, outbox=world.outbox, settings=settings)
    data = batch[0].path.read_bytes()
    head = data.split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":", 1)[0] for line in head.split(b"\r\n") if not line.startswith((b" ", b"\t"))]
    assert names == [b"From", b"To", b"Subject", b"Date", b"Message-ID", b"List-Unsubscribe", b"Auto-Submitted",
                     b"X-Broker-Digest", b"MIME-Version", b"Content-Type"]
    msg = parse(data)
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert msg["To"].addresses[0].addr_spec == "v1@example.net"
    assert msg["Subject"] == "1 new opportunity for Ward End Bcc: evil@example.com X-Evil: 1"
    assert msg["From"].addresses[0].addr_spec == "brokerage@example.org"
    # Every line ends CRLF; no bare CR or LF anywhere in the message.
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    text, _ = parts(msg)
    assert "\r" not in text.replace("\r\n", "\n")


def test_an_injected_contact_address_is_skipped_and_reported(world: World) -> None:
    world.vcse("V1", email="v1@example.net\r\nBcc: evil@example.com")
    world.vcse("V2", email=None)
    world.opportunity("O1")
    world.match("O1", "V1", 70)
    world.match("O1", "V2", 70)
    world.commit()
    batch = build_digests(world.session, as_of=AS_OF, outbox=world.outbox)
    assert list(batch) == []
    assert [(s.recipient_id, s.reason) for s in batch.skipped] == [
        ("V1", "no valid contact email"), ("V2", "no valid contact email")]
    assert not world.outbox.exists() or not any(world.outbox.rglob("*.eml"))


def test_consortium_items_go_to_the_lead_and_name_the_grouping(world: World) -> None:
    world.vcse("LEAD", name="Lead Trust")
    world.vcse("M2", name="Member Two CIC")
    world.vcse("M3", name="Member Three")
    world.consortium("C1", "LEAD", ["LEAD", "M2"], name="Ward End Care Partnership")
    world.opportunity("O1", title="Care contract")
    world.opportunity("O2", title="Big grounds contract")
    world.match("O1", "C1", 80, party_type="consortium", lead="LEAD")
    world.match("O2", "sugg-1", 75, party_type="suggested_consortium", lead="LEAD", members=["LEAD", "M3"])
    msg = built(world)
    assert msg["To"].addresses[0].addr_spec == "lead@example.net"
    text, html = parts(msg)
    assert "Matched as the lead of the consortium Ward End Care Partnership" in text
    assert "Members:   Lead Trust, Member Two CIC" in text
    assert "Matched as the lead of a suggested grouping" in text
    assert "Members:   Lead Trust, Member Three" in text
    assert "Matched as the lead of a suggested grouping (not yet a consortium" in text
    for internal in ("sugg-1", "C1", "broker feedback", "LEAD"):
        assert internal not in text and internal not in html, internal
    # Members' contact details are never shown to the lead.
    assert "m2@example.net" not in text and "m3@example.net" not in html


def test_rendering_the_stored_payload_gives_the_same_bytes(world: World) -> None:
    world.vcse("V1", name="Ünïcode Trust")
    world.opportunity("O1", title="Café — services “quoted” " + "long " * 40)
    world.match("O1", "V1", 70)
    world.commit()
    batch = build_digests(world.session, as_of=AS_OF, outbox=world.outbox)
    digest = world.session.get(Digest, batch[0].digest_id)
    assert digest is not None
    data = batch[0].path.read_bytes()
    assert render_message(digest.payload) == data
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert data.isascii()
    assert parse(data)["Subject"] == "1 new opportunity for Ünïcode Trust"


NAMES = ["Plain Name", "O'Brien & Sons, Ltd.", 'Quote " and \\ backslash', "Ünïcode Trust — Ward End",
         "Ā" * 120, "x <evil@example.com>", "=?utf-8?q?spoof?=", "Name; with: specials @ here", "(comment)"]
SUBJECTS = ["10 new opportunities for " + "Ward End Community Trust " * 7, "Ünïcode " * 25,
            "=?utf-8?b?c3Bvb2Y=?= subject", "1 new opportunity for O'Brien & Sons, Ltd."]


def test_display_names_and_subjects_survive_encoding() -> None:
    for name, subject in zip(NAMES, SUBJECTS * 3, strict=False):
        raw = (f"To: {mime.address(name, 'a@example.org')}\r\n"
               f"Subject: {mime.unstructured('Subject', subject)}\r\n\r\n").encode("ascii")
        msg = parse(raw)
        assert msg["To"].addresses[0].display_name == name
        assert msg["To"].addresses[0].addr_spec == "a@example.org"
        assert msg["Subject"] == subject
        assert msg.defects == [] and msg["To"].defects == () and len(msg["To"].addresses) == 1
        lines = raw.split(b"\r\n")
        assert all(len(line) <= 998 for line in lines)
        assert all(len(line) <= 78 for line in lines if not line.startswith(b"To:"))


def test_quoted_printable_bodies_are_short_ascii_lines() -> None:
    text = "Café " * 100 + "\n" + "=_broker_ looks like a boundary\n" + "trailing space \n"
    encoded = mime.quoted_printable(text)
    assert encoded.isascii() and "=_" not in encoded
    assert all(len(line) <= 76 for line in encoded.split("\r\n"))
    assert "\n" not in encoded.replace("\r\n", "")
