"""Digests with signed links: every item, the footer and the RFC 8058 headers; same bytes on re-render."""

from __future__ import annotations

import re

from sqlalchemy import select
from web_world import BASE_URL, build, digest_of, html_part, parsed, seed, text_part

from broker.digest.build import materialise
from broker.digest.compose import render_message
from broker.store.engine import session_factory
from broker.store.models import Digest


def test_every_item_carries_interested_and_not_relevant_links_and_the_email_one_click_unsubscribe(engine,
                                                                                                  tmp_path):
    seed(engine)
    infos = {i.recipient_id: i for i in build(engine, tmp_path / "outbox")}
    message = parsed(infos["V1"].path)
    html, text = html_part(infos["V1"].path), text_part(infos["V1"].path)
    assert html.count(">Interested</a>") == 2 and html.count(">Not relevant</a>") == 2
    assert len(re.findall(rf"Interested: +{BASE_URL}/f/\S+", text)) == 2
    assert len(re.findall(rf"Not relevant: {BASE_URL}/f/\S+", text)) == 2
    stop = re.search(rf"Stop these emails: ({BASE_URL}/stop/\S+)", text)[1]
    assert f'href="{stop}"' in html
    assert message["List-Unsubscribe"].startswith(f"<{stop}>, <mailto:brokerage@wardend.example?")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Untrusted notice text stays text in the HTML part.
    assert "<script>" not in html and "&lt;script&gt;" in html and "<img" not in html


def test_digests_with_links_are_rebuilt_and_re_rendered_byte_for_byte(engine, tmp_path):
    seed(engine)
    outbox = tmp_path / "outbox"
    first = {i.recipient_id: i.path.read_bytes() for i in build(engine, outbox)}
    for info in build(engine, outbox):  # the same night again: the same digests, the same files
        assert not info.new and info.path.read_bytes() == first[info.recipient_id]
    with session_factory(engine)() as s:
        for digest in s.scalars(select(Digest)):
            assert render_message(digest.payload) == first[digest.recipient_id]
            (outbox / digest.file_name).unlink()
            assert materialise(outbox, digest) == first[digest.recipient_id]


def test_without_links_configured_the_digest_asks_for_a_reply_and_has_no_web_links(engine, tmp_path):
    seed(engine)
    info = {i.recipient_id: i for i in build(engine, tmp_path / "outbox", links=None)}["V1"]
    text, message = text_part(info.path), parsed(info.path)
    assert "/f/" not in text and "/stop/" not in text and BASE_URL not in text
    assert "Reply to this email to tell us what you think" in text and "\"not relevant\"" in text
    assert message["List-Unsubscribe"].startswith("<mailto:") and message["List-Unsubscribe-Post"] is None
    payload = digest_of(engine, "V1").payload
    assert "stop_url" not in payload and all("actions" not in i for i in payload["items"])
