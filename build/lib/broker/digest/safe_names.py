"""File names and references built from untrusted ids.

Party ids come from the officers' spreadsheet and opportunity ids from publishers: either may hold
``../``, ``\\``, a Windows device name (``CON``), control characters or thousands of characters. A name built
here is a short ASCII slug (for people reading the outbox) plus a hash of the *exact* id (for uniqueness),
so it can never leave the directory it is joined to, and two ids that slug alike still get different names.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from pathlib import Path

from broker.errors import BrokerError

SLUG_MAX = 40
HASH_HEX = 12  # 48 bits: among 20,000 parties a collision has odds of about 1 in 1.4 million
_NON_SLUG = re.compile(r"[^a-z0-9]+")
# Names this module produces, and only those: the outbox clean-up never touches anything else.
SAFE_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*-[0-9a-f]{12}$|^[0-9a-f]{12}$")


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def slug(text: str, max_len: int = SLUG_MAX) -> str:
    """Lower-case ASCII letters and digits joined by single hyphens (may be empty)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return _NON_SLUG.sub("-", folded).strip("-")[:max_len].strip("-")


def safe_name(ident: str) -> str:
    """A file-name stem for ``ident``: ``<slug>-<12 hex of sha256(ident)>``, or just the hash.

    The result matches ``[a-z0-9-]+``, is at most 53 characters, never starts with a dot or hyphen,
    never equals a Windows device name (the hash suffix is always there), and differs for any two
    different ids (up to a 48-bit hash collision, which the digests table's unique ``file_name`` turns
    into an error rather than an overwrite).
    """
    h = _digest(ident).hex()[:HASH_HEX]
    s = slug(ident)
    return f"{s}-{h}" if s else h


def path_within(base: Path, *parts: str) -> Path:
    """``base/parts...``, refusing any result outside ``base`` (defence in depth over ``safe_name``)."""
    root = base.resolve()
    candidate = root.joinpath(*parts).resolve()
    if candidate == root or not candidate.is_relative_to(root):
        raise BrokerError(f"refusing to write outside the outbox: {'/'.join(parts)!r}")
    return candidate


def digest_id(recipient_id: str, as_of: str) -> str:
    """The digest id for one recipient on one business date: ``YYYY-MM-DD-<16 hex>``. Deterministic."""
    return f"{as_of}-{_digest(recipient_id + chr(31) + as_of).hex()[:16]}"


def reference_code(recipient_id: str, opportunity_id: str) -> str:
    """The code a VCSE quotes in a reply about one item: 12 base32 letters as ``XXXX-XXXX-XXXX``.

    60 bits, so a national brokerage sending tens of millions of items is unlikely to see a collision;
    the unique ``reference`` column turns one into an error, never a mix-up.
    """
    raw = base64.b32encode(_digest(recipient_id + chr(31) + opportunity_id)[:8]).decode("ascii")[:12]
    return f"{raw[0:4]}-{raw[4:8]}-{raw[8:12]}"


def normalise_reference(text: str) -> str:
    """A reference as typed by a person (any case, spaces or hyphens) in its canonical form."""
    raw = re.sub(r"[^A-Za-z0-9]", "", text).upper()
    return f"{raw[0:4]}-{raw[4:8]}-{raw[8:12]}" if len(raw) == 12 else raw
