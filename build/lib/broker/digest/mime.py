"""A digest's MIME message, assembled directly: headers, then two quoted-printable parts.

Why not ``email.message.EmailMessage``: its header registry parses every header it is given, and that
made up about two thirds of the cost of a digest. The structure here is fixed (one
``multipart/alternative``, text and HTML), so it is put together with the standard library's own
encoders: ``formataddr`` and ``Header`` for RFC 2047 words, ``binascii.b2a_qp`` for bodies. The tests
parse every message back with ``email.policy.default``.

Every value reaching a header here has already lost its CR, LF and other control characters
(``formatting.header_text``); this module adds no way for text to start a header line.
"""

from __future__ import annotations

import binascii
import hashlib
from email.header import Header
from email.utils import formataddr

CRLF = "\r\n"
BOUNDARY_PREFIX = "=_broker_"  # "=_" never occurs in quoted-printable output, so no part can hold it


def _unfolded(text: str) -> str:
    # email.header folds with "\n " by default; every line of the message ends CRLF.
    return text.replace("\n", CRLF)


def address(name: str, addr: str) -> str:
    """``Name <addr>``: a quoted string when it holds specials, RFC 2047 words when not ASCII."""
    if not name:
        return addr
    if "=?" in name:
        # Encoded as a whole, so a lookalike encoded word in the name reaches the reader as typed
        # (clients, Python's among them, decode such words even inside a quoted string).
        return f"{Header(name, 'utf-8').encode(linesep=CRLF)} <{addr}>"
    return _unfolded(formataddr((name, addr), charset="utf-8"))


def unstructured(header_name: str, value: str) -> str:
    """Free text for a header such as Subject: folded; RFC 2047 words when not plain ASCII."""
    plain = value.isascii() and "=?" not in value
    encoded = Header(value, "us-ascii" if plain else "utf-8", header_name=header_name).encode(linesep=CRLF)
    return str(encoded)


def quoted_printable(text: str) -> str:
    """A text body as quoted-printable UTF-8 with CRLF line ends and lines of at most 76 characters."""
    body = "\n".join(text.splitlines()) + "\n"
    return binascii.b2a_qp(body.encode("utf-8"), istext=True).decode("ascii").replace("\n", CRLF)


def _part(subtype: str, text: str) -> str:
    return (f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
            f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}{quoted_printable(text)}")


def message(headers: list[tuple[str, str]], text: str, html: str) -> bytes:
    """``multipart/alternative`` (text, then HTML) under ``headers``; the boundary derives from the content."""
    boundary = BOUNDARY_PREFIX + hashlib.sha256(f"{text}\0{html}".encode()).hexdigest()[:32]
    head = "".join(f"{name}: {value}{CRLF}" for name, value in headers)
    head += f'MIME-Version: 1.0{CRLF}Content-Type: multipart/alternative;{CRLF} boundary="{boundary}"{CRLF}'
    body = (f"{CRLF}--{boundary}{CRLF}{_part('plain', text)}"
            f"{CRLF}--{boundary}{CRLF}{_part('html', html)}"
            f"{CRLF}--{boundary}--{CRLF}")
    return (head + body).encode("ascii")
