"""Reading served pages: encodings, the known invalid-number quirks, what makes a page unusable."""

from __future__ import annotations

import json
import math

import pytest
from harvest_helpers import encode, load_real_cf_page

from broker.sources.harvest.pages import PageError, decode_body, parse_page, patch_numbers, strict_loads


def small_package(**extra: object) -> dict[str, object]:
    real = load_real_cf_page()
    doc = {k: v for k, v in real.items() if k not in ("releases", "links")}
    doc["releases"] = real["releases"][:2]
    doc.update(extra)
    return doc


def test_python_reads_1e9999_as_infinity_and_writes_invalid_json() -> None:
    # Why we patch a number that *is* JSON syntax: Python turns it into inf and writes it back as
    # "Infinity", which no JSON parser accepts; strict parsers reject the overflow outright.
    assert json.loads("1e9999") == math.inf
    assert json.dumps([json.loads("1e9999")]) == "[Infinity]"
    with pytest.raises(ValueError, match="overflows"):
        strict_loads('{"a": 1e9999}')
    with pytest.raises(ValueError):
        strict_loads('{"a": NaN}')


def test_utf8_page_is_kept_byte_for_byte() -> None:
    body = encode(small_package(links={"next": "https://x.test/next?cursor=abc"}))
    page = parse_page(body)
    assert page.content is body
    assert page.releases == 2
    assert page.next_url == "https://x.test/next?cursor=abc"
    assert page.notes == ()


def test_latin1_page_is_transcoded_to_utf8() -> None:
    doc = small_package()
    doc["releases"][0]["tender"]["description"] = "A maximum budget of £470,000 for the café"
    # A Latin-1 server turns characters it cannot encode (the real page has a "€") into "?".
    body = json.dumps(doc, ensure_ascii=False).encode("iso-8859-1", errors="replace")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    page = parse_page(body)
    assert page.notes == ("decoded as iso-8859-1, stored as UTF-8",)
    stored = json.loads(page.content.decode("utf-8"))
    assert stored["releases"][0]["tender"]["description"] == "A maximum budget of £470,000 for the café"


def test_bom_is_dropped() -> None:
    body = b"\xef\xbb\xbf" + encode(small_package())
    text, encoding = decode_body(body)
    assert encoding == "utf-8-sig" and text.startswith("{")
    page = parse_page(body)
    assert page.content == body[3:]


def test_overflowing_numbers_and_leading_zeros_are_patched_outside_strings() -> None:
    doc = small_package()
    doc["releases"][0]["tender"]["lotDetails"] = {"maximumLotsBidPerSupplier": 111111}
    doc["releases"][0]["tender"]["description"] = "bids for up to 1e9999 lots, price 000, done"
    doc["releases"][0]["tender"]["value"] = {"amount": 222222, "currency": "GBP"}
    doc["releases"][1]["tender"]["minValue"] = {"amount": -333333, "currency": "GBP"}
    text = json.dumps(doc, indent=1)
    text = text.replace("111111", "1e9999").replace("222222,", "000,").replace("-333333", "-1E+400")
    with pytest.raises(ValueError):
        json.loads(text)  # " 000," is not JSON at all
    page = parse_page(text.encode("utf-8"))
    stored = strict_loads(page.content.decode("utf-8"))
    tender = stored["releases"][0]["tender"]
    assert tender["lotDetails"]["maximumLotsBidPerSupplier"] == 9999999
    assert tender["value"]["amount"] == 0
    assert tender["description"] == "bids for up to 1e9999 lots, price 000, done"
    assert stored["releases"][1]["tender"]["minValue"]["amount"] == -9999999
    assert set(page.notes) == {"number 1e9999 -> 9999999 (1x)", "number 000 -> 0 (1x)", "number -1E+400 -> -9999999 (1x)"}


def test_patch_numbers_leaves_valid_text_alone() -> None:
    text = '{"a": [0, -0.5, 10, 1e10, 3.25E-7], "b": "1e9999 and 007", "c": "say \\"000\\""}'
    assert patch_numbers(text) == (text, ())


def test_leading_zero_fraction_is_patched() -> None:
    assert patch_numbers('{"a": 007.5, "b": -00}') == ('{"a": 7.5, "b": -0}', ("007.5 -> 7.5 (1x)", "-00 -> -0 (1x)"))


@pytest.mark.parametrize(("body", "message"), [
    (b'{"releases": [{"ocid": "x"', "not valid JSON"),
    (b"<html>Service Unavailable</html>", "not valid JSON"),
    (b'{"error": "bad cursor"}', "not an OCDS release package"),
    (b'{"releases": {}}', "not an OCDS release package"),
    (b'{"releases": [], "links": "next"}', "links.next cannot be read"),
    (b'{"releases": [], "links": {"next": 42}}', "links.next is not a string"),
    (b'{"releases": [], "x": NaN}', "not valid JSON"),
])
def test_unusable_pages(body: bytes, message: str) -> None:
    with pytest.raises(PageError, match=message):
        parse_page(body)


def test_digest_ignores_the_envelope() -> None:
    a = small_package(publishedDate="2025-01-01T00:00:00Z", links={"next": "https://x/1"})
    b = small_package(publishedDate="2025-02-02T00:00:00Z")
    b["uri"] = "https://elsewhere"
    assert parse_page(encode(a)).digest == parse_page(json.dumps(b).encode()).digest
    c = small_package()
    c["releases"][0]["id"] = "changed"
    assert parse_page(encode(c)).digest != parse_page(encode(a)).digest


def test_empty_page_and_missing_next() -> None:
    page = parse_page(b'{"releases": [], "links": {}}')
    assert page.releases == 0 and page.next_url is None
