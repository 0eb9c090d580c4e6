"""Reading publisher files whatever their encoding, as UTF-8, in bounded memory.

Contracts Finder has served ISO-8859-1 / Windows-1252 (research/ocds-sources.md §2.1: Kingfisher Collect
reads it as ``iso-8859-1``), officers save CSVs from Excel with a BOM, as "Unicode text" (UTF-16) or as
Windows-1252, and some files are UTF-8 with a stray Windows-1252 byte pasted in. So every reader opens
files through this module, which yields UTF-8 bytes whatever the file was:

* a UTF-8 byte-order mark is stripped; a UTF-16 BOM means the file is transcoded from UTF-16;
* a file that is valid UTF-8 passes through unchanged;
* a file that is not is scanned once, chunk by chunk: if its non-ASCII text is mostly *not* UTF-8 it is
  a Windows-1252 file and is read as such throughout (so ``Â£`` stays ``Â£``); if it is mostly UTF-8
  with a few bad bytes, only those bytes are read as Windows-1252.

Windows-1252 is used rather than ISO-8859-1 because it is what "Latin-1" files from Windows really are
(``£`` and ``é`` agree; ``€`` and curly quotes exist only in Windows-1252). Its five undefined bytes are
read as Latin-1. The encoding found is reported so the ingest summary can warn about it.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import BinaryIO, TextIO

UTF8 = "utf-8"
UTF8_BOM = "utf-8-sig"
UTF16 = "utf-16"
CP1252 = "windows-1252"
"""The file was not UTF-8: it was read as Windows-1252 throughout."""
MIXED = "utf-8+windows-1252"
"""The file was UTF-8 except for some bytes, which were read as Windows-1252."""
NOT_UTF8 = frozenset({CP1252, MIXED})

CHUNK = 1 << 20
_ERROR_HANDLER = "broker-cp1252-fallback"
# The codec error handler is process-wide; this says which stream's counter it should add to.
_COUNTER: ContextVar[list[int] | None] = ContextVar("broker_fallback_counter", default=None)


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: bytes that cannot be decoded are read as Windows-1252 (then Latin-1)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    counter = _COUNTER.get()
    if counter is not None:
        counter[0] += len(bad)
    return "".join(_cp1252_char(b) for b in bad), exc.end


def _cp1252_char(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        # 0x81, 0x8D, 0x8F, 0x90, 0x9D are undefined in Windows-1252; Latin-1 maps them to C1 controls.
        return bytes([byte]).decode("latin-1")


codecs.register_error(_ERROR_HANDLER, _cp1252_fallback)


class Utf8Stream(io.RawIOBase):
    """A readable binary stream of UTF-8 bytes over a file in UTF-8, UTF-16 or Windows-1252.

    Args:
        raw: the file, opened in binary mode (closed with this stream).
        encoding: what the file is, from :func:`scan_encoding`; ``None`` means "UTF-8 unless a BOM
            says otherwise, with any bad byte read as Windows-1252" (enough to sniff a file's start).
        on_read: called with ``bytes_read`` after each chunk read from the file.

    ``bytes_read`` counts bytes consumed from the file (for progress and error positions);
    ``fallback_bytes`` counts bytes that were not UTF-8 and were read as Windows-1252.
    """

    def __init__(self, raw: BinaryIO, encoding: str | None = None, *,
                 on_read: Callable[[int], None] | None = None) -> None:
        super().__init__()
        self._raw = raw
        self._on_read = on_read
        self._eof = False
        self._fallback = [0]
        self._non_ascii = 0
        head = raw.read(4)
        self.bytes_read = len(head)
        self.bom: str | None = None
        if head.startswith(codecs.BOM_UTF8):
            self.bom, head = UTF8_BOM, head[3:]
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self.bom = UTF16
        codec = UTF16 if self.bom == UTF16 else "cp1252" if encoding == CP1252 else UTF8
        # The UTF-16 decoder reads the BOM itself to learn the byte order.
        self._decoder = codecs.getincrementaldecoder(codec)(errors=_ERROR_HANDLER)
        self._ascii_compatible = codec != UTF16
        self._whole_cp1252 = codec == "cp1252"
        self._pending = self._transcode(head, final=False)

    @property
    def fallback_bytes(self) -> int:
        return self._fallback[0]

    @property
    def encoding(self) -> str:
        """What the file has turned out to be, as far as it has been read."""
        if self.bom == UTF16:
            return UTF16
        if self._whole_cp1252:
            return CP1252
        if self.fallback_bytes:
            # Mostly not UTF-8 (each bad byte is one character; valid UTF-8 characters are the rest).
            return CP1252 if self._non_ascii - self.fallback_bytes <= self.fallback_bytes else MIXED
        return self.bom or UTF8

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        while len(self._pending) < len(view) and not self._eof:
            chunk = self._raw.read(max(len(view), CHUNK))
            self.bytes_read += len(chunk)
            if self._on_read is not None:
                self._on_read(self.bytes_read)
            self._eof = not chunk
            self._pending += self._transcode(chunk, final=self._eof)
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _transcode(self, data: bytes, *, final: bool) -> bytes:
        if self._ascii_compatible and data.isascii() and not self._decoder.getstate()[0]:
            # ASCII with no half-read character before it: identical in UTF-8 and Windows-1252.
            return data
        token = _COUNTER.set(self._fallback)
        try:
            text = self._decoder.decode(data, final)
        finally:
            _COUNTER.reset(token)
        self._non_ascii += len(text) - len(text.encode("ascii", "ignore"))
        return text.encode(UTF8)

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def scan_encoding(path: str | Path) -> str:
    """The file's encoding, by reading it once to the end in chunks (bounded memory).

    Returns ``utf-8``, ``utf-8-sig`` (BOM), ``utf-16``, ``windows-1252`` (not UTF-8: read as Windows-1252
    throughout) or ``utf-8+windows-1252`` (UTF-8 with some bytes that are not).
    """
    with open(path, "rb") as fh:
        stream = Utf8Stream(fh)
        while stream.read(CHUNK):
            pass
        return stream.encoding


def open_utf8_binary(path: str | Path, *, prescan: bool = True, encoding: str | None = None,
                     on_read: Callable[[int], None] | None = None) -> tuple[io.BufferedReader, str]:
    """Open ``path`` as a buffered binary stream of UTF-8 bytes.

    Args:
        path: the file.
        prescan: scan the whole file first (:func:`scan_encoding`) so that a Windows-1252 file is read
            as one throughout and the returned name is final. Without it (for sniffing a file's start)
            the file is read as UTF-8 with bad bytes as Windows-1252, and the name reflects the start.
        encoding: the file's encoding if already known from :func:`scan_encoding` (skips the scan).
        on_read: called with the number of bytes read from the file so far, after each chunk.

    Returns:
        ``(stream, encoding)``; the caller closes the stream.
    """
    if encoding is None and prescan:
        encoding = scan_encoding(path)
    stream = Utf8Stream(open(path, "rb"), encoding, on_read=on_read)  # noqa: SIM115 - returned open
    return io.BufferedReader(stream, buffer_size=CHUNK), encoding or stream.encoding


def open_text(path: str | Path, *, prescan: bool = True, encoding: str | None = None) -> tuple[TextIO, str]:
    """Open ``path`` as text for :mod:`csv` (``newline=""``), with the encoding the file had.

    See :func:`open_utf8_binary` for the arguments.
    """
    binary, found = open_utf8_binary(path, prescan=prescan, encoding=encoding)
    return io.TextIOWrapper(binary, encoding=UTF8, newline=""), found
