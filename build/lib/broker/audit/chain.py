"""The tamper-evident chain: each completed run (and each prune) is a link holding its digest and the
hash of the link before it. Links are only ever appended."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broker.audit.digests import link_hash
from broker.store.models import AuditLink


def append_link(session: Session, kind: str, ref: str, digest: str, payload: dict[str, Any]) -> AuditLink:
    last = session.scalars(select(AuditLink).order_by(AuditLink.seq.desc()).limit(1)).first()
    seq = (session.scalar(select(func.max(AuditLink.seq))) or 0) + 1
    prev = last.hash if last is not None else None
    link = AuditLink(seq=seq, kind=kind, ref=ref, digest=digest, payload=payload, prev_hash=prev,
                     hash=link_hash(prev, kind, ref, digest))
    session.add(link)
    session.flush()
    return link
