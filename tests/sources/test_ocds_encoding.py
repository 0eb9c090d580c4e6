"""Reading files in UTF-8 (with or without BOM), UTF-16, Windows-1252/Latin-1 and mixtures, as UTF-8."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import broker.sources.encoding as enc
from broker.sources.encoding import open_text, open_utf8_binary, scan_encoding

TEXT = "Budget £470,000 – café “quoted” naïve €5\n" * 50


@pytest.fixture(params=[1 << 20, 7, 1], ids=["1MiB", "7B", "1B"])
def chunk(request, monkeypatch):
    """Every case runs with the normal chunk size and with chunks that split characters."""
    monkeypatch.setattr(enc, "CHUNK", request.param)
    return request.param


@pytest.mark.parametrize(("data", "encoding"), [
    (TEXT.encode("utf-8"), "utf-8"),
    (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "utf-8-sig"),
    (TEXT.encode("utf-16"), "utf-16"),
    (TEXT.encode("utf-16-be").join([b"\xfe\xff", b""]), "utf-16"),
    (TEXT.encode("cp1252"), "windows-1252"),
], ids=["utf8", "bom", "utf16le", "utf16be", "cp1252"])
def test_whole_file_encodings(tmp_path, chunk, data, encoding):
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    fh, found = open_text(path)
    with fh:
        assert fh.read() == TEXT
    assert found == encoding
    assert scan_encoding(path) == encoding


def test_latin1_reads_as_windows_1252(tmp_path, chunk):
    path = tmp_path / "l1.csv"
    path.write_bytes("Title,Value\nCafé,£5\n".encode("latin-1"))
    fh, found = open_text(path)
    with fh:
        assert list(csv.reader(fh)) == [["Title", "Value"], ["Café", "£5"]]
    assert found == "windows-1252"


def test_windows_1252_mojibake_is_kept_as_written(tmp_path, chunk):
    # "Â£" written in Windows-1252 is the byte pair C2 A3, which is also UTF-8 for "£". In a file that is
    # otherwise not UTF-8 it must stay "Â£": the file is read as Windows-1252 throughout.
    text = "Â£ and £ and é\n"
    path = tmp_path / "m.txt"
    path.write_bytes(text.encode("cp1252"))
    fh, found = open_text(path)
    with fh:
        assert fh.read() == text
    assert found == "windows-1252"


def test_utf8_with_a_stray_byte_keeps_its_utf8(tmp_path, chunk):
    path = tmp_path / "mixed.txt"
    path.write_bytes(("ok £ é – " * 20).encode("utf-8") + b"bad \xa3 and \x81 end")
    fh, found = open_text(path)
    with fh:
        assert fh.read() == "ok £ é – " * 20 + "bad £ and \x81 end"
    assert found == "utf-8+windows-1252"


def test_binary_stream_counts_bytes_and_calls_back(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"\xef\xbb\xbf" + b"x" * 3_000_000)
    seen: list[int] = []
    stream, found = open_utf8_binary(path, on_read=seen.append)
    with stream:
        assert stream.read() == b"x" * 3_000_000
        assert stream.raw.bytes_read == 3_000_003
        assert stream.raw.fallback_bytes == 0
    assert found == "utf-8-sig"
    assert seen[-1] == 3_000_003 and seen == sorted(seen)


def test_sniffing_without_a_scan(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"plain ascii then \xe9")
    stream, found = open_utf8_binary(path, prescan=False)
    with stream:
        assert found == "utf-8"  # only the start was looked at
        assert stream.read().decode("utf-8") == "plain ascii then é"
        assert stream.raw.encoding == "windows-1252"


def test_known_encoding_skips_the_scan(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    path.write_bytes("é".encode("cp1252"))
    monkeypatch.setattr(enc, "scan_encoding", lambda p: pytest.fail("scanned"))
    fh, found = open_text(path, encoding="windows-1252")
    with fh:
        assert fh.read() == "é"
    assert found == "windows-1252"


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=300), size=st.integers(min_value=1, max_value=9))
def test_any_utf8_round_trips(tmp_path_factory, text, size):
    path = tmp_path_factory.mktemp("rt") / "f.txt"
    path.write_bytes(text.encode("utf-8"))
    original = enc.CHUNK
    enc.CHUNK = size
    try:
        stream, found = open_utf8_binary(path)
        with stream:
            # A leading U+FEFF is a byte-order mark, which is dropped.
            assert stream.read() == text.removeprefix("\ufeff").encode("utf-8")
    finally:
        enc.CHUNK = original
    assert found in ("utf-8", "utf-8-sig")
