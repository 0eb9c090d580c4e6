"""Verify the tamper-evident chain: every link, and everything each run link vouches for.

For each link in order: its sequence number, its ``prev_hash`` (the hash of the link before) and its own
hash. For a ``run`` (or ``import``) link, the run it names must still hash to the link's digest: the
manifest recomputed from the stored row and rule files, each rule text against its sha256, the input list
against the input digest and each snapshot record against its content hash, and every decision row
recomputed from its content and digested against the run's decision digest. A ``prune`` link must hash
to its payload; a run link whose run is gone is accepted only when a later prune link lists it.

The chain proves the stored records have not changed since they were linked. An attacker who rewrites the
whole chain from some link on can only be caught by comparing the head hash with one kept elsewhere, so
``verify`` reports the head (publish it, e.g. with each nightly report).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.audit.digests import decision_digest, decision_hash, link_hash
from broker.audit.heads import Head, head_problems
from broker.audit.ledger import LINK_KIND as LEDGER
from broker.audit.ledger import LedgerCheck, ledger_link_messages, unsealed_messages
from broker.audit.references import reference_problems
from broker.audit.stored import (
    decision_key,
    input_problems,
    iter_inputs,
    iter_stored_decisions,
    manifest_problems,
    rule_files,
    rule_problems,
    snapshot_problem,
)
from broker.errors import BrokerError
from broker.normalise.record import canonical_hash
from broker.store.models import AuditLink, MatchRun

RUN_KINDS = ("run", "import")
MAX_PER_LINK = 5  # problems named per link (the first ones; the count says how many more)


class ChainBroken(BrokerError):
    """``broker audit verify`` found a broken link (exit 1)."""


@dataclass
class LinkProblem:
    seq: int | None  # None: a record that is in no link at all (a run, a ledger batch or entry, a head)
    kind: str
    ref: str
    message: str

    def __str__(self) -> str:
        where = f"link #{self.seq} ({self.kind} {self.ref})" if self.seq is not None else f"{self.kind} {self.ref}"
        return f"{where}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "ref": self.ref, "message": self.message}


@dataclass
class VerifyReport:
    links: int = 0
    runs: int = 0  # run links whose run content was checked
    decisions: int = 0
    ledger_batches: int = 0
    ledger_entries: int = 0
    head: str | None = None  # hash of the last link
    head_seq: int | None = None
    problems: list[LinkProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        first = self.problems[0] if self.problems else None
        return {"ok": self.ok, "links": self.links, "runs": self.runs, "decisions": self.decisions,
                "ledger_batches": self.ledger_batches, "ledger_entries": self.ledger_entries,
                "head": self.head, "head_seq": self.head_seq, "first_broken": first.to_json() if first else None,
                "problems": [p.to_json() for p in self.problems]}


def verify_chain(session: Session, *, quick: bool = False,
                 progress: Callable[[AuditLink], None] | None = None, heads: Sequence[Head] = (),
                 cross_references: bool = True) -> VerifyReport:
    """Recompute the whole chain; problems are listed in chain order (the first is the first broken link).

    Args:
        session: a session on the database (only read).
        quick: check the links, each run's manifest and rule texts and each ledger batch's header, but not
            every snapshot record, decision row and ledger entry (those are the slow part of a national
            database).
        progress: called with each link before it is checked.
        heads: chain heads published earlier (``broker audit verify --head``): each must still be in the
            chain at its position, else the chain was cut back (a deleted tail) or rewritten.
        cross_references: also check that every match and ledger batch cites a run the chain records.
    """
    links = list(session.scalars(select(AuditLink).order_by(AuditLink.seq)))
    report = VerifyReport(links=len(links), head=links[-1].hash if links else None,
                          head_seq=links[-1].seq if links else None)
    pruned = _pruned(links)
    checker = _RunChecker(session, quick)
    ledger = LedgerCheck()
    sealed: set[int] = set()
    prev: str | None = None
    linked: dict[str, int] = {}
    for expected, link in enumerate(links, 1):
        if progress is not None:
            progress(link)
        messages = _link_messages(link, prev, expected)
        if link.kind in RUN_KINDS:
            messages += _run_link_messages(session, link, linked, pruned, checker, report)
        elif link.kind == "prune":
            messages += _prune_messages(link, linked)
        elif link.kind == LEDGER:
            messages += _ledger_messages(session, link, quick, ledger, sealed)
        else:
            messages.append(f"unknown link kind {link.kind!r}")
        _add(report, link, messages)
        prev = link.hash
    for run_id in session.scalars(select(MatchRun.id).where(MatchRun.status == "complete").order_by(MatchRun.seq)):
        if run_id not in linked:
            report.problems.append(LinkProblem(None, "run", run_id, "a complete run that no chain link records "
                                                                      "(added outside `broker match`?)"))
    _add_unowned(report, "ledger", unsealed_messages(session, sealed))
    if cross_references:
        _add_unowned(report, "reference", reference_problems(session, linked, pruned))
    _add_unowned(report, "head", head_problems(links, heads))
    report.ledger_batches, report.ledger_entries = ledger.batches, ledger.entries
    return report


def _ledger_messages(session: Session, link: AuditLink, quick: bool, check: LedgerCheck,
                     sealed: set[int]) -> list[str]:
    batch_id = (link.payload or {}).get("batch_id")
    out = []
    if isinstance(batch_id, int):
        if batch_id in sealed:
            out.append(f"ledger batch {batch_id} is already sealed by an earlier link")
        sealed.add(batch_id)
    return out + ledger_link_messages(session, link, quick, check)


def _add_unowned(report: VerifyReport, kind: str, found: list[tuple[str, str]]) -> None:
    """Problems with records no link owns; at most ``MAX_PER_LINK`` per ref, then a count."""
    per_ref: dict[str, int] = {}
    for ref, message in found:
        per_ref[ref] = per_ref.get(ref, 0) + 1
        if per_ref[ref] <= MAX_PER_LINK:
            report.problems.append(LinkProblem(None, kind, ref, message))
    for ref, n in per_ref.items():
        if n > MAX_PER_LINK:
            report.problems.append(LinkProblem(None, kind, ref, f"... and {n - MAX_PER_LINK} more problems"))


def _add(report: VerifyReport, link: AuditLink, messages: list[str]) -> None:
    shown = messages[:MAX_PER_LINK]
    if len(messages) > MAX_PER_LINK:
        shown.append(f"... and {len(messages) - MAX_PER_LINK} more problems in this link")
    report.problems += [LinkProblem(link.seq, link.kind, link.ref, m) for m in shown]


def _link_messages(link: AuditLink, prev: str | None, expected: int) -> list[str]:
    out = []
    if link.seq != expected:
        out.append(f"expected link #{expected} here: links are missing or renumbered")
    if link.prev_hash != prev:
        out.append(f"its prev_hash {str(link.prev_hash)[:12]} is not the hash of the link before "
                   f"({str(prev)[:12]}): a link was removed, inserted or rewritten")
    now = link_hash(link.prev_hash, link.kind, link.ref, link.digest)
    if now != link.hash:
        out.append(f"the link's hash {link.hash[:12]} does not match its content (recomputed {now[:12]})")
    return out


def _pruned(links: list[AuditLink]) -> dict[str, list[tuple[int, str]]]:
    """run id -> [(prune link seq, the run's link hash as the prune recorded it)]."""
    out: dict[str, list[tuple[int, str]]] = {}
    for link in links:
        if link.kind == "prune":
            for r in (link.payload or {}).get("runs", []):
                if r.get("link_hash"):
                    out.setdefault(str(r.get("run_id")), []).append((link.seq, str(r["link_hash"])))
    return out


def _run_link_messages(session: Session, link: AuditLink, linked: dict[str, int],
                       pruned: dict[str, list[tuple[int, str]]], checker: _RunChecker,
                       report: VerifyReport) -> list[str]:
    out = []
    if link.kind == "import" and (link.payload or {}).get("manifest_digest") != link.digest:
        out.append("the import link's digest is not the original manifest digest it carries")
    if link.ref in linked and link.kind == "run":
        out.append(f"run {link.ref} is already recorded by link #{linked[link.ref]}")
    linked[link.ref] = link.seq
    run = session.get(MatchRun, link.ref)
    if run is None:
        if any(seq > link.seq and h == link.hash for seq, h in pruned.get(link.ref, [])):
            return out
        return out + [f"run {link.ref} is missing, and no later prune link lists it (deleted outside "
                      "`broker audit prune`)"]
    if run.status != "complete":
        out.append(f"the run's status is now {run.status!r}; it was linked when complete")
    out += checker.check(run, link)
    report.runs += 1
    report.decisions += checker.decisions
    return out


def _prune_messages(link: AuditLink, linked: dict[str, int]) -> list[str]:
    out = []
    now = canonical_hash(link.payload)
    if now != link.digest:
        out.append(f"the prune record no longer matches its digest (recorded {link.digest[:12]}, now {now[:12]})")
    for r in (link.payload or {}).get("runs", []):
        if r.get("link_hash") and r.get("run_id") not in linked:
            out.append(f"it lists run {r.get('run_id')} as removed, but no earlier link records that run")
    return out


class _RunChecker:
    """Checks one run's stored content against its digests; snapshots shared by runs are checked once."""

    def __init__(self, session: Session, quick: bool) -> None:
        self.session, self.quick = session, quick
        self.good_snapshots: set[str] = set()
        self.decisions = 0

    def check(self, run: MatchRun, link: AuditLink) -> list[str]:
        self.decisions = 0
        out = manifest_problems(self.session, run, link)
        out += rule_problems(run, rule_files(self.session, run.id))
        if self.quick:
            return out
        return out + self._inputs(run) + self._decisions(run)

    def _inputs(self, run: MatchRun) -> list[str]:
        out, listed = [], []
        for item in iter_inputs(self.session, run.id):
            listed.append((item.kind, item.entity_id, item.content_hash))
            if item.content_hash in self.good_snapshots:
                continue
            problem = snapshot_problem(item)
            if problem is None:
                self.good_snapshots.add(item.content_hash)
            else:
                out.append(problem)
        return out + input_problems(run, listed)

    def _decisions(self, run: MatchRun) -> list[str]:
        out, hashes = [], []
        for d in iter_stored_decisions(self.session, run.id):
            self.decisions += 1
            now = decision_hash(d)
            hashes.append(bytes.fromhex(now))
            if now != d["decision_hash"]:
                stage, opp, party = decision_key(d)
                out.append(f"decision #{d['seq']} ({stage} {opp} {party}".rstrip() + ") was edited: its content "
                           f"hashes to {now[:12]}, its recorded hash is {d['decision_hash'][:12]}")
        digest = decision_digest(hashes)
        if digest != run.decision_digest:
            out.append(f"the stored decisions ({len(hashes)} rows) hash to {digest[:12]}, the run recorded "
                       f"{str(run.decision_digest)[:12]}")
        return out
