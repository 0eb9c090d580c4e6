"""The target ledger: append-only entries that record brokered value (BRIEF, Policies / Ledger).

Two kinds of entry. A *stage* entry says a party reached a stage on an opportunity (matched by a run,
introduced by a digest, an outcome recorded by an officer), with the party's cluster and the value it was
counted at. A *value* entry records the notice facts an opportunity is counted from: the opening value
the first time it enters the ledger, then an adjusting entry with its reason whenever the value, the
cancellation or the framework flag changes. Nothing is ever updated or deleted (the database refuses).

Every writer here is idempotent: calling it again with the same cause adds nothing. Dates come from
``as_of``, never from the clock; entries are ordered by ``(as_of, id)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import exists, func, insert, or_, select
from sqlalchemy.orm import Session

from broker import __version__
from broker.audit.ledger import entry_hash, seal_batch
from broker.errors import InputError, NotFound
from broker.store.models import Match, MatchRun, Opportunity, TargetBatch, TargetEntry
from broker.target.config import DEFAULT_CONFIG, TargetConfig
from broker.target.parties import Party, PartyResolver, chunks
from broker.target.stages import STAGES, is_outcome
from broker.target.values import (
    NoticeFacts,
    Valuation,
    change_reason,
    describe,
    for_pair,
    format_gbp,
    value_notice,
)


def business_day(as_of: date) -> str:
    """``as_of`` as ``YYYY-MM-DD``. A datetime is refused: the ledger counts business days, not instants."""
    if isinstance(as_of, datetime) or not isinstance(as_of, date):
        raise TypeError(f"as_of must be a date, got {as_of!r}")
    return as_of.isoformat()


class LedgerWriter:
    """Appends entries for one cause; opens its batch (with the configuration) on the first entry."""

    def __init__(self, session: Session, *, cause: str, as_of: date, config: TargetConfig | None) -> None:
        self.session = session
        self.cause = cause
        self.as_of = business_day(as_of)
        self.config = config or DEFAULT_CONFIG
        self.batch: TargetBatch | None = None
        self.added = 0
        self._levels: dict[str, NoticeFacts | None] = {}
        self._stages: dict[str, set[tuple[str, str]]] = {}
        self._pending: list[dict[str, object]] = []

    def preload(self, opportunity_ids: Sequence[str], *, stages: bool = True) -> None:
        """Read the current value level (and the pairs' stages) of many opportunities at once."""
        self.flush()
        todo = [i for i in opportunity_ids if i not in self._levels]
        for part in chunks(todo):
            for oid in part:
                self._levels[oid] = None
                if stages:
                    self._stages[oid] = set()
            latest = (select(func.max(TargetEntry.id)).where(
                TargetEntry.kind == "value", TargetEntry.opportunity_id.in_(part))
                .group_by(TargetEntry.opportunity_id))
            for entry in self.session.scalars(select(TargetEntry).where(TargetEntry.id.in_(latest))):
                self._levels[entry.opportunity_id] = facts_of(entry)
            if stages:
                self._load_stages(part)

    def _load_stages(self, part: Sequence[str]) -> None:
        query = select(TargetEntry.opportunity_id, TargetEntry.party_id, TargetEntry.stage).where(
            TargetEntry.kind == "stage", TargetEntry.opportunity_id.in_(part))
        for oid, party_id, stage in self.session.execute(query):
            self._stages.setdefault(oid, set()).add((party_id, stage))

    def has_stage(self, opportunity_id: str, party_id: str, stage: str) -> bool:
        """Whether the ledger already holds this pair at this stage (from any cause)."""
        if opportunity_id not in self._stages:
            self._levels.pop(opportunity_id, None)
            self.preload([opportunity_id])
        return (party_id, stage) in self._stages[opportunity_id]

    def ensure_level(self, row: Opportunity, *, as_of: str | None = None) -> Valuation:
        """Bring the ledger's value for ``row`` up to date (opening or adjusting entry); return it.

        An opening entry takes the event's date (``as_of``, e.g. a back-dated outcome); an adjustment
        takes the writer's, the day the change was noticed.
        """
        if row.id not in self._levels:
            self.preload([row.id], stages=False)
        facts, old = NoticeFacts.of(row), self._levels[row.id]
        valuation = value_notice(facts, self.config)
        if old is None:
            reason = f"opening value: {describe(facts, valuation)}"
        elif old.key() != facts.key():
            reason = change_reason(old, facts, value_notice(old, self.config), valuation)
        else:
            return valuation
        day = (as_of or self.as_of) if old is None else self.as_of
        self._append(as_of=day, kind="value", opportunity_id=row.id, basis=valuation.basis,
                     amount_pence=valuation.amount_pence, value_min_pence=facts.value_min_pence,
                     value_max_pence=facts.value_max_pence, framework=facts.framework,
                     notice_status=facts.status, reason=reason)
        self._levels[row.id] = facts
        return valuation

    def add_stage(self, opportunity_id: str, party: Party, stage: str, valuation: Valuation, reason: str, *,
                  as_of: str | None = None, cause: str | None = None, note: str | None = None) -> None:
        """Append a stage entry for a pair."""
        self._append(as_of=as_of or self.as_of, kind="stage", opportunity_id=opportunity_id, party_id=party.id,
                     party_type=party.type, cluster=party.cluster, stage=stage, basis=valuation.basis,
                     amount_pence=valuation.amount_pence, reason=reason, cause=cause or self.cause, note=note)
        self._stages.setdefault(opportunity_id, set()).add((party.id, stage))

    def _open_batch(self) -> TargetBatch:
        """A new batch for this write: each batch is sealed into the audit chain once, when the write ends."""
        batch = TargetBatch(cause=self.cause[:255], as_of=self.as_of, config=self.config.as_dict(),
                            config_sha256=self.config.sha256(), software=__version__)
        self.session.add(batch)
        self.session.flush()
        return batch

    def _append(self, **values: object) -> None:
        if self.batch is None:
            self.batch = self._open_batch()
        row = dict.fromkeys(_ENTRY_COLUMNS)
        row.update(values, batch_id=self.batch.id, cause=str(values.get("cause") or self.cause)[:255])
        row["entry_hash"] = entry_hash(row)
        self._pending.append(row)
        self.added += 1
        if len(self._pending) >= 5000:
            self.flush()

    def flush(self) -> None:
        """Write the pending entries (one multi-row INSERT: a night's matches are many thousands)."""
        if self._pending:
            self.session.connection().execute(insert(TargetEntry.__table__), self._pending)
            self._pending = []

    def seal(self) -> None:
        """End the write: flush, and seal the batch (if anything was written) into the audit chain."""
        self.flush()
        if self.batch is not None:
            seal_batch(self.session, self.batch)
            self.batch = None


_ENTRY_COLUMNS = tuple(c.key for c in TargetEntry.__table__.columns if c.key != "id")


def facts_of(entry: TargetEntry) -> NoticeFacts:
    """The notice facts a value entry recorded."""
    return NoticeFacts(entry.value_min_pence, entry.value_max_pence, bool(entry.framework), entry.notice_status)


def _opportunities(session: Session, ids: Sequence[str]) -> dict[str, Opportunity]:
    found: dict[str, Opportunity] = {}
    for part in chunks(list(ids)):
        for row in session.scalars(select(Opportunity).where(Opportunity.id.in_(part))):
            found[row.id] = row
    return found


def record_matches(session: Session, run_id: str, as_of: date, *, config: TargetConfig | None = None) -> int:
    """Append a ``matched`` entry for each active match of a run whose pair is not yet matched in the ledger.

    Reads the ``matches`` rows with ``first_run_id`` or ``last_run_id`` equal to ``run_id``, and any active
    match not yet counted as matched. Each entry names the run that first matched the pair (its
    ``first_run_id``) and takes that run's business date: a nightly run killed between matching and
    counting leaves its matches to the next night, which credits them to the run that really matched them,
    not to itself. One batch (one chain link) per crediting run. Idempotent.

    Returns:
        The number of entries appended (opening/adjusting value entries included).
    """
    business_day(as_of)  # refuse a datetime before reading anything
    uncounted = ~exists().where(TargetEntry.opportunity_id == Match.opportunity_id,
                                TargetEntry.party_id == Match.party_id, TargetEntry.stage == "matched")
    matches = list(session.scalars(select(Match).where(
        Match.status == "active", or_(Match.first_run_id == run_id, Match.last_run_id == run_id, uncounted))
        .order_by(Match.opportunity_id, Match.party_id)))
    by_run: dict[str, list[Match]] = {}
    for m in matches:
        by_run.setdefault(m.first_run_id, []).append(m)
    dates = dict(session.execute(select(MatchRun.id, MatchRun.as_of).where(MatchRun.id.in_(sorted(by_run)))).all()) \
        if by_run else {}
    added = 0
    # One crediting run after another: each writer reads the ledger as the previous one left it.
    for credited in sorted(by_run):
        day = date.fromisoformat(dates[credited]) if credited in dates else as_of
        added += _record_run_matches(session, credited, by_run[credited], day, config)
    return added


def _record_run_matches(session: Session, run_id: str, matches: list[Match], as_of: date,
                        config: TargetConfig | None) -> int:
    writer = LedgerWriter(session, cause=f"run:{run_id}", as_of=as_of, config=config)
    ids = sorted({m.opportunity_id for m in matches})
    writer.preload(ids)
    rows = _opportunities(session, ids)
    resolver = PartyResolver(session)
    resolver.preload(sorted({m.party_id for m in matches if m.party_type == "vcse"}
                            | {m.lead_id for m in matches if m.lead_id}),
                     sorted({m.party_id for m in matches if m.party_type == "consortium"}))
    for match in matches:
        row = rows.get(match.opportunity_id)
        if row is None or writer.has_stage(match.opportunity_id, match.party_id, "matched"):
            continue
        valuation = for_pair(writer.ensure_level(row), match.flags)
        writer.add_stage(row.id, resolver.from_match(match), "matched", valuation,
                         f"matched by run {run_id}; {describe(NoticeFacts.of(row), valuation)}")
    writer.seal()
    return writer.added


def record_introduced(session: Session, opportunity_id: str, party_id: str, *, cause: str, as_of: date,
                      config: TargetConfig | None = None) -> int:
    """Append an ``introduced`` entry: the match went out in a digest (cause ``digest:<id>``) or an
    officer introduced it by hand. Nothing is added when the pair was already introduced.

    Raises:
        NotFound: the opportunity does not exist, or the party is neither in the directory nor matched.
    """
    return record_introduced_many(session, [(opportunity_id, party_id)], cause=cause, as_of=as_of,
                                  config=config)


def record_introduced_many(session: Session, pairs: Iterable[tuple[str, str]], *, cause: str, as_of: date,
                           config: TargetConfig | None = None) -> int:
    """:func:`record_introduced` for many ``(opportunity_id, party_id)`` pairs in one batch (a digest run)."""
    todo = sorted(set(pairs))
    writer = LedgerWriter(session, cause=cause, as_of=as_of, config=config)
    ids = sorted({o for o, _ in todo})
    writer.preload(ids)
    rows, matches = _opportunities(session, ids), _matches(session, ids)
    resolver = PartyResolver(session)
    for opportunity_id, party_id in todo:
        if writer.has_stage(opportunity_id, party_id, "introduced"):
            continue
        row = rows.get(opportunity_id)
        if row is None:
            raise NotFound(f"no opportunity {opportunity_id!r} to record as introduced")
        match = matches.get((opportunity_id, party_id))
        party = resolver.from_match(match) if match else resolver.find(opportunity_id, party_id)
        if party is None:
            raise NotFound(f"no VCSE, consortium or match {party_id!r} for opportunity {opportunity_id!r}")
        valuation = for_pair(writer.ensure_level(row), match.flags if match else None)
        writer.add_stage(opportunity_id, party, "introduced", valuation, f"introduced ({cause})")
    writer.seal()
    return writer.added


def _matches(session: Session, ids: Sequence[str]) -> dict[tuple[str, str], Match]:
    found: dict[tuple[str, str], Match] = {}
    for part in chunks(list(ids)):
        for m in session.scalars(select(Match).where(Match.opportunity_id.in_(part))):
            found[(m.opportunity_id, m.party_id)] = m
    return found


def record_outcome(session: Session, opportunity_id: str, party_id: str, stage: str, *,
                   value_pence: int | None = None, note: str | None = None, cause: str = "officer",
                   as_of: date, config: TargetConfig | None = None, writer: LedgerWriter | None = None) -> int:
    """Record an outcome (any stage) for a pair; a ``won`` outcome may carry the awarded value.

    Recording what the ledger already says for the pair (same stage, value and note) adds nothing; a
    different value or outcome is a new, correcting entry with its reason.

    Raises:
        InputError: unknown stage, or a value on a stage other than won, or a value that is not positive.
        NotFound: the opportunity or the party does not exist.
    """
    _check_outcome(stage, value_pence)
    note = (note or "").strip() or None
    row = session.get(Opportunity, opportunity_id)
    if row is None:
        raise NotFound(f"no opportunity {opportunity_id!r}. Try `broker opportunities list`.")
    party = PartyResolver(session).find(opportunity_id, party_id)
    if party is None:
        raise NotFound(f"no VCSE, consortium or match {party_id!r} for opportunity {opportunity_id!r}. "
                       "Try `broker directory list`.")
    own = writer is None
    writer = writer or LedgerWriter(session, cause=cause, as_of=as_of, config=config)
    added_before = writer.added
    writer.flush()  # the previous entry may be one this writer has not written yet
    previous = _previous(session, opportunity_id, party_id, stage)
    if previous is not None and _same(previous, stage, value_pence, note):
        return 0
    day = business_day(as_of)
    match = session.scalars(select(Match).where(Match.opportunity_id == opportunity_id,
                                                Match.party_id == party_id)).first()
    valuation = for_pair(writer.ensure_level(row, as_of=day), match.flags if match else None)
    if value_pence is not None:
        valuation = Valuation("award", value_pence, value_pence)
    writer.add_stage(opportunity_id, party, stage, valuation, _outcome_reason(session, previous, row.id,
                     party_id, stage, value_pence), as_of=day, cause=cause, note=note)
    if own:
        writer.seal()
        return writer.added
    writer.flush()
    return writer.added - added_before


def _check_outcome(stage: str, value_pence: int | None) -> None:
    if stage not in STAGES:
        raise InputError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}", field="stage")
    if value_pence is None:
        return
    if stage != "won":
        raise InputError("a value is recorded only with a won outcome (the awarded value)", field="value")
    if value_pence <= 0:
        raise InputError("the awarded value must be more than £0", field="value")


def _previous(session: Session, opportunity_id: str, party_id: str, stage: str) -> TargetEntry | None:
    """The entry a new one would repeat or correct: the pair's latest outcome, or its latest at this rung."""
    wanted = ["won", "lost", "withdrawn"] if is_outcome(stage) else [stage]
    return session.scalars(select(TargetEntry).where(
        TargetEntry.kind == "stage", TargetEntry.opportunity_id == opportunity_id,
        TargetEntry.party_id == party_id, TargetEntry.stage.in_(wanted))
        .order_by(TargetEntry.as_of.desc(), TargetEntry.id.desc()).limit(1)).first()


def _same(previous: TargetEntry, stage: str, value_pence: int | None, note: str | None) -> bool:
    award = previous.amount_pence if previous.basis == "award" else None
    return previous.stage == stage and award == value_pence and previous.note == note


def _outcome_reason(session: Session, previous: TargetEntry | None, opportunity_id: str, party_id: str,
                    stage: str, value_pence: int | None) -> str:
    if previous is not None and previous.stage != stage:
        head = f"outcome changed from {previous.stage} to {stage}"
    else:
        head = f"{stage} recorded"
    if value_pence is None:
        return head
    award = _last_award(session, opportunity_id, party_id)
    if award is not None and award != value_pence:
        return f"{head}: award value corrected from {format_gbp(award)} to {format_gbp(value_pence)}"
    return f"{head}: awarded value {format_gbp(value_pence)}"


def _last_award(session: Session, opportunity_id: str, party_id: str) -> int | None:
    return session.scalars(select(TargetEntry.amount_pence).where(
        TargetEntry.kind == "stage", TargetEntry.opportunity_id == opportunity_id,
        TargetEntry.party_id == party_id, TargetEntry.stage == "won", TargetEntry.basis == "award")
        .order_by(TargetEntry.as_of.desc(), TargetEntry.id.desc()).limit(1)).first()


def reconcile_values(session: Session, as_of: date, *, config: TargetConfig | None = None,
                     cause: str = "reconcile") -> int:
    """Append an adjusting entry for every ledger opportunity whose value, cancellation or framework flag
    changed since the ledger last recorded it ("value amended from £X to £Y", "notice cancelled", ...).

    Idempotent: a second call finds nothing changed. Opportunities no longer stored are left as recorded.

    Returns:
        The number of adjusting entries appended.
    """
    writer = LedgerWriter(session, cause=cause, as_of=as_of, config=config)
    ids = list(session.scalars(select(TargetEntry.opportunity_id).where(TargetEntry.kind == "value")
                               .distinct().order_by(TargetEntry.opportunity_id)))
    for part in chunks(ids):
        writer.preload(part, stages=False)
        rows = _opportunities(session, part)
        for oid in part:
            if oid in rows:
                writer.ensure_level(rows[oid])
    writer.seal()
    return writer.added
