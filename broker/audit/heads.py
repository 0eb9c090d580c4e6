"""Published chain heads: the hash of the last link, kept outside the database after every nightly run.

A chain is consistent in itself after its last links are deleted (or after it is rewritten from some
link on); only a head kept elsewhere shows it. The nightly job appends ``AS_OF #SEQ HASH`` to a heads
file beside its report, and ``broker audit verify --head FILE`` (or ``--head HASH``) checks that every
published head is still the link at its position.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.errors import BrokerError
from broker.store.models import AuditLink

HEADS_FILE = "audit-heads.txt"
_HASH = re.compile(r"^[0-9a-f]{64}$")
_LINE = re.compile(r"^\s*(?P<as_of>\S+)\s+#(?P<seq>\d+)\s+(?P<hash>[0-9a-f]{64})\s*$")


@dataclass(frozen=True)
class Head:
    """A published head: the link's hash, and its position when known."""

    hash: str
    seq: int | None = None
    as_of: str | None = None
    where: str = "--head"

    def line(self) -> str:
        return f"{self.as_of or '-'} #{self.seq} {self.hash}"


def current_head(session: Session) -> Head | None:
    """The chain's last link as a head (None for an empty chain)."""
    link = session.scalars(select(AuditLink).order_by(AuditLink.seq.desc()).limit(1)).first()
    return None if link is None else Head(link.hash, link.seq)


def publish_head(path: Path, head: Head, as_of: str) -> None:
    """Append the head to the heads file (one line per night; a repeated line is not written twice)."""
    line = Head(head.hash, head.seq, as_of).line()
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    if lines and lines[-1] == line:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def read_heads(value: str) -> list[Head]:
    """``--head``: a 64-hex hash, or a heads file (every line ``AS_OF #SEQ HASH``, or a bare hash).

    Raises:
        BrokerError: neither a hash nor a readable heads file, or a line that is neither.
    """
    text = value.strip().lower()
    if _HASH.match(text):
        return [Head(text)]
    path = Path(value)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BrokerError(f"--head {value}: neither a 64-character chain hash nor a readable heads file "
                          f"({exc})") from None
    heads = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        m = _LINE.match(line.lower())
        if m:
            heads.append(Head(m["hash"], int(m["seq"]), m["as_of"], f"{path}, line {number}"))
        elif _HASH.match(line.strip().lower()):
            heads.append(Head(line.strip().lower(), None, None, f"{path}, line {number}"))
        else:
            raise BrokerError(f"{path}, line {number}: not a published head (expected `AS_OF #SEQ HASH`)")
    return heads


def head_problems(links: Sequence[AuditLink], heads: Sequence[Head]) -> list[tuple[str, str]]:
    """``(ref, message)`` for each published head the chain no longer holds at its position."""
    by_seq = {link.seq: link for link in links}
    hashes = {link.hash for link in links}
    last = links[-1].seq if links else 0
    out = []
    for head in heads:
        ref = f"#{head.seq} {head.hash[:12]}" if head.seq else head.hash[:12]
        said = f"the head published in {head.where}" + (f" for {head.as_of}" if head.as_of else "")
        if head.seq is None:
            if head.hash not in hashes:
                out.append((ref, f"{said} ({head.hash[:12]}) is not in the chain: links were deleted from its "
                                 "end, or the chain was rewritten"))
        elif head.seq > last:
            out.append((ref, f"{said} is link #{head.seq}, but the chain now ends at link #{last}: "
                             f"{head.seq - last} or more links were deleted from its end"))
        elif by_seq.get(head.seq) is None or by_seq[head.seq].hash != head.hash:
            out.append((ref, f"{said} was {head.hash[:12]} at link #{head.seq}; the chain holds another "
                             "link there: it was rewritten from there on"))
    return out
