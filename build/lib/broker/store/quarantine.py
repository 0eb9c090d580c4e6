"""The quarantine: records that could not be ingested, with the reason and the raw text."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.errors import InputError
from broker.normalise.record import canonical_hash
from broker.store.models import QuarantineItem

MAX_RAW_CHARS = 200_000


def quarantine(session: Session, error: InputError, raw: str | None, *, file_sha256: str) -> bool:
    """File a bad record once (keyed by file content, place and reason). Returns True when new."""
    raw_text = _storable((raw or "")[:MAX_RAW_CHARS])
    fingerprint = canonical_hash([file_sha256, error.locator, error.field, error.reason, raw_text])
    exists = session.scalars(select(QuarantineItem.id).where(QuarantineItem.fingerprint == fingerprint)).first()
    if exists is not None:
        return False
    session.add(QuarantineItem(fingerprint=fingerprint, file=_storable(error.file or ""),
                               locator=_storable(error.locator), field=_storable(error.field),
                               reason=_storable(error.reason), raw=raw_text,
                               # Metadata only; no decision reads it.
                               created_at=datetime.now(UTC)))
    return True


def _storable(text: str | None) -> str | None:
    """Bad input may hold NUL bytes, which PostgreSQL text cannot store: keep them visible, escaped."""
    return None if text is None else text.replace("\x00", "\\x00")


def list_quarantine(session: Session, *, limit: int | None = None) -> list[QuarantineItem]:
    q = select(QuarantineItem).order_by(QuarantineItem.id)
    if limit:
        q = q.limit(limit)
    return list(session.scalars(q))
