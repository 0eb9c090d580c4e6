"""Build tonight's digests: select, compose, write the ``.eml`` file, then commit. Idempotent per night.

Crash safety: each digest's file is written (atomically) *before* the transaction that records the
digest and marks its items as included is committed; a transaction covers up to ``COMMIT_EVERY``
digests, all of whose files were written first. A run killed before a commit leaves files the database
does not know; the re-run selects the same items (nothing was marked), renders the same bytes, rewrites
the identical files and commits. A run killed
anywhere therefore ends, once re-run, in the state of a run never interrupted. A digest already
committed for ``(recipient, as_of)`` is returned as it is: re-running the night creates nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from broker.digest.compose import (
    DigestSettings,
    Via,
    digest_payload,
    item_payload,
    message_id,
    render_message,
)
from broker.digest.formatting import valid_email
from broker.digest.outbox import read_if_intact, relative_path, remove_orphans, sha256, write_atomic
from broker.digest.preferences import effective, load_preferences
from broker.digest.safe_names import digest_id as make_digest_id
from broker.digest.selection import Candidate, candidates, choose
from broker.errors import BrokerError
from broker.store.models import Consortium, ConsortiumMember, Digest, DigestItem, Vcse

COMMIT_EVERY = 200  # digests per transaction: fewer commits, same crash safety (files always first)


class BuiltCallback(Protocol):
    """Called with each new digest's id once it is recorded, before its commit (the nightly job's fault
    injection for kill tests). Nothing is counted here: a digest counts as introduced when delivered."""

    def __call__(self, digest_id: str) -> Any: ...


@dataclass(frozen=True)
class DigestInfo:
    """A digest for one recipient and night, as built now or earlier the same night."""

    digest_id: str
    recipient_id: str
    recipient_name: str
    to_address: str
    path: Path
    item_count: int
    opportunity_ids: tuple[str, ...]
    status: str  # pending | sending | delivered | unconfirmed | rejected | cancelled
    new: bool  # built by this call (False: committed by an earlier run for the same as_of)


@dataclass(frozen=True)
class Skipped:
    """A recipient with sendable matches that gets no digest, and why."""

    recipient_id: str
    reason: str  # no valid contact email | not in the directory
    candidates: int


class DigestBatch(list[DigestInfo]):
    """The digests of one night (a list of :class:`DigestInfo`) plus who was skipped and why."""

    def __init__(self, items: Iterable[DigestInfo] = (), skipped: Iterable[Skipped] = (),
                 removed: Iterable[str] = ()) -> None:
        super().__init__(items)
        self.skipped: list[Skipped] = list(skipped)
        self.removed_orphans: list[str] = list(removed)


@dataclass
class _Lookup:
    """Names of VCSEs and consortia, read once per build."""

    session: Session
    vcse_names: dict[str, str] = field(default_factory=dict)

    def vcse_name(self, vcse_id: str) -> str:
        if vcse_id not in self.vcse_names:
            row = self.session.get(Vcse, vcse_id)
            self.vcse_names[vcse_id] = row.name if row is not None else vcse_id
        return self.vcse_names[vcse_id]

    def via(self, cand: Candidate) -> Via | None:
        match = cand.match
        if match.party_type == "vcse":
            return None
        if match.party_type == "consortium":
            row = self.session.get(Consortium, match.party_id)
            member_ids = list(self.session.scalars(
                select(ConsortiumMember.vcse_id).where(ConsortiumMember.consortium_id == match.party_id)
                .order_by(ConsortiumMember.position, ConsortiumMember.vcse_id)))
            name = row.name if row is not None else match.party_id
        else:
            # A suggestion has only an internal id: the VCSE reads it as the names of its members.
            member_ids, name = [], ""
        member_ids = member_ids or [_member_id(m) for m in match.members or []]
        members = tuple(self.vcse_name(m) for m in member_ids if m)
        return Via(match.party_type, name or ", ".join(members), members)


def _member_id(member: Any) -> str:
    """A member entry on a match row: a VCSE id, or a mapping holding one."""
    if isinstance(member, dict):
        return str(member.get("id") or member.get("vcse_id") or "")
    return str(member)


def build_digests(session: Session, *, as_of: date, outbox: Path,
                  settings: DigestSettings | None = None, on_built: BuiltCallback | None = None) -> DigestBatch:
    """Build (or return the already-built) digests for the business date ``as_of``.

    Commits every ``COMMIT_EVERY`` new digests and at the end (files first: see the module docstring).
    A built digest is ``pending``: nothing reaches the target ledger until it is delivered (``deliver``
    or ``mark_sent``). Recipients skipped (no valid address, lead not
    in the directory) are listed on the result's ``skipped``; their matches, like those of recipients
    who opted out, stay unsent for a later night.

    Raises:
        ConfigError: bad settings (sender address, cap, ...).
        BrokerError: another build committed the same digest concurrently.
    """
    settings = settings or DigestSettings()
    settings.validate()
    outbox = Path(outbox)
    as_of_s = as_of.isoformat()
    existing = _existing(session, outbox, as_of_s)
    pending = candidates(session, as_of=as_of, min_days=settings.min_days)
    vcses = _vcses(session, list(pending))
    prefs = load_preferences(session, pending)
    lookup = _Lookup(session)
    built, skipped = [], []
    for rid, cands in pending.items():
        vcse = vcses.get(rid)
        eff = effective(vcse, prefs.get(rid), default_cap=settings.cap,
                        default_min_score=settings.min_score) if vcse is not None else None
        address = valid_email(vcse.contact_email) if vcse is not None else None
        # Selection already left out opted-out recipients; checked again here, next to the address.
        reason = ("not in the directory" if eff is None else "opted out" if not eff.opt_in
                  else "no valid contact email" if address is None else None)
        if reason is not None:
            skipped.append(Skipped(rid, reason, len(cands)))
            continue
        assert vcse is not None and eff is not None and address is not None
        chosen = choose(cands, cap=eff.cap, min_score=eff.min_score)
        if chosen:
            built.append(_build_one(session, outbox, as_of, vcse, address, chosen, settings, lookup))
            if on_built is not None:
                on_built(built[-1].digest_id)
            if len(built) % COMMIT_EVERY == 0:
                _commit(session)
    _commit(session)
    removed = remove_orphans(outbox, as_of_s, [i.path.name for i in existing + built])
    infos = sorted(existing + built, key=lambda i: i.recipient_id)
    return DigestBatch(infos, skipped, removed)


def _vcses(session: Session, ids: list[str]) -> dict[str, Vcse]:
    found: dict[str, Vcse] = {}
    for start in range(0, len(ids), 2000):  # far inside SQLite's and PostgreSQL's parameter limits
        found.update((v.id, v) for v in session.scalars(select(Vcse).where(Vcse.id.in_(ids[start:start + 2000]))))
    return found


def _build_one(session: Session, outbox: Path, as_of: date, vcse: Vcse, address: str,
               chosen: list[Candidate], settings: DigestSettings, lookup: _Lookup) -> DigestInfo:
    """Compose one digest, write its file, record it and its items (no commit)."""
    as_of_s = as_of.isoformat()
    did = make_digest_id(vcse.id, as_of_s)
    items = [item_payload(c, n, as_of, lookup.via(c), settings) for n, c in enumerate(chosen, start=1)]
    payload = digest_payload(did, as_of, vcse, address, items, settings)
    data = render_message(payload)
    rel = relative_path(as_of_s, vcse.id)
    path = write_atomic(outbox, rel, data)  # the file first: see the module docstring
    try:
        _record(session, did, vcse, address, rel, data, payload, chosen, items, settings)
    except IntegrityError as exc:
        session.rollback()
        raise _concurrent(exc) from exc
    return DigestInfo(did, vcse.id, payload["recipient"]["name"], address, path, len(items),
                      tuple(c.opportunity.id for c in chosen), "pending", True)


def _commit(session: Session) -> None:
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise _concurrent(exc) from exc


def _concurrent(exc: IntegrityError) -> BrokerError:
    return BrokerError("a digest was recorded by another run at the same time; run `broker digest build` "
                       f"again (it returns the digests already built). ({exc.orig})")


def _record(session: Session, did: str, vcse: Vcse, address: str, rel: str, data: bytes,
            payload: dict[str, Any], chosen: list[Candidate], items: list[dict[str, Any]],
            settings: DigestSettings) -> None:
    """Add the digest row and its items (the unique items make "never twice" structural)."""
    session.add(Digest(
        id=did, recipient_id=vcse.id, as_of=payload["as_of"], file_name=rel,
        message_id=message_id(did, settings.sender_address), to_address=address,
        subject=payload["subject"], item_count=len(items), content_sha256=sha256(data), payload=payload,
        status="pending", attempts=0, last_error=None, delivered_as_of=None, delivered_at=None))
    session.flush()  # the digest row before its items (foreign key)
    session.execute(insert(DigestItem), [
        {"digest_id": did, "recipient_id": vcse.id, "opportunity_id": c.opportunity.id,
         "party_id": c.match.party_id, "party_type": c.match.party_type, "position": item["position"],
         "score": c.match.score, "reference": item["reference"]} for c, item in zip(chosen, items, strict=True)])


def materialise(outbox: Path, digest: Digest) -> bytes:
    """The digest's message bytes, from its file when intact, else re-rendered from its stored payload.

    Re-rendering gives the same bytes while the templates are unchanged; the file is rewritten so the
    outbox again holds exactly what is (or was) sent.
    """
    data = read_if_intact(outbox, digest.file_name, digest.content_sha256)
    if data is None:
        data = render_message(digest.payload)
        write_atomic(outbox, digest.file_name, data)
    return data


def _existing(session: Session, outbox: Path, as_of: str) -> list[DigestInfo]:
    """The digests already committed for ``as_of``, their files checked (payloads read only if needed)."""
    opp_ids: dict[str, list[str]] = {}
    for did, oid in session.execute(select(DigestItem.digest_id, DigestItem.opportunity_id)
                                    .join(Digest, Digest.id == DigestItem.digest_id).where(Digest.as_of == as_of)
                                    .order_by(DigestItem.digest_id, DigestItem.position)):
        opp_ids.setdefault(did, []).append(oid)
    infos = []
    stmt = (select(Digest, Digest.payload["recipient"]["name"].as_string()).options(defer(Digest.payload))
            .where(Digest.as_of == as_of).order_by(Digest.recipient_id))
    for digest, name in session.execute(stmt):
        materialise(outbox, digest)
        infos.append(DigestInfo(digest.id, digest.recipient_id, name, digest.to_address,
                                outbox.resolve() / digest.file_name, digest.item_count,
                                tuple(opp_ids.get(digest.id, ())), digest.status, False))
    return infos
