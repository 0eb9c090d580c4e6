"""Progress toward the target, folded from the ledger as it stood on a business date.

BRIEF, Policies / Counting: an opportunity (or lot) counts once toward the overall total, however many
parties, clusters or runs it went to, at the counting stage (default: interested); the pipeline stage
(default: introduced) is shown beside it. Per-cluster rows may
each show it; the total never double counts. The counting policy is applied here, when reading, from the
notice facts the ledger recorded, so the figure under any configuration can be recomputed from the ledger
alone, and the configuration used is part of every result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from broker.store.models import TargetEntry
from broker.target.config import DEFAULT_CONFIG, TargetConfig
from broker.target.ledger import business_day
from broker.target.stages import LADDER, OUTCOMES, rung
from broker.target.values import NoticeFacts, Valuation, value_notice

SUBCONTRACTING = "subcontracting"  # the basis of a subcontracting prospect's stage entries (values.for_pair)
# Rows of the "by stage" table: the ladder, then the outcomes (issue 5 names matched, introduced, bid, won).
STAGE_ROWS = LADDER + OUTCOMES


@dataclass
class _Outcome:
    as_of: str
    party_id: str
    cluster: str | None
    stage: str
    award: int | None


@dataclass
class OpportunityLedger:
    """Everything the ledger says about one opportunity up to the business date."""

    id: str
    values: list[tuple[str, NoticeFacts]] = field(default_factory=list)  # (as_of, facts) in ledger order
    rungs: dict[str | None, dict[int, str]] = field(default_factory=dict)  # cluster -> rung -> first date
    outcomes: list[_Outcome] = field(default_factory=list)  # won/lost/withdrawn in ledger order
    prospect: bool = False  # went to some party only as a subcontracting prospect (never counts for that)
    _first: dict[Any, list[str | None]] | None = field(default=None, repr=False)

    def facts_at(self, day: str) -> NoticeFacts:
        """The notice facts in force on ``day`` (before the opening entry: the opening facts)."""
        current = self.values[0][1]
        for when, facts in self.values:
            if when > day:
                break
            current = facts
        return current

    def outcomes_at(self, day: str) -> dict[str, tuple[str, int | None, str | None]]:
        """Each party's latest outcome on ``day``, with its latest awarded value and cluster."""
        state: dict[str, tuple[str, int | None, str | None]] = {}
        for o in self.outcomes:
            if o.as_of > day:
                break
            award = o.award if o.award is not None else (state.get(o.party_id, ("", None, None))[1])
            state[o.party_id] = (o.stage, award, o.cluster)
        return state

    def value_at(self, day: str, config: TargetConfig) -> Valuation:
        """What the opportunity counts on ``day``: the largest award value recorded with a current ``won``
        outcome (one contract won by a consortium and its member is one award, so the largest, not the
        sum), else the notice's value under the configured basis."""
        facts = self.facts_at(day)
        awards = sorted(a for stage, a, _ in self.outcomes_at(day).values() if stage == "won" and a is not None)
        if awards and not facts.cancelled and (facts.framework or config.award_value_counts):
            return Valuation("award", awards[-1], awards[-1])
        return value_notice(facts, config)

    def reached(self, stage: str, day: str, cluster: Any = ...) -> bool:
        """Whether some party (in ``cluster``, when given) had reached ``stage`` by ``day``."""
        if stage in OUTCOMES:
            return any(s == stage and (cluster is ... or c == cluster)
                       for s, _, c in self.outcomes_at(day).values())
        first = self._first_reached(cluster)[rung(stage)]
        return first is not None and first <= day

    def _first_reached(self, cluster: Any) -> list[str | None]:
        """The first date each rung was reached (by reaching it or any later rung), per cluster or overall."""
        if self._first is None:
            self._first = {}
            for c, rungs in self.rungs.items():
                self._first[c] = [min((d for r, d in rungs.items() if r >= wanted), default=None)
                                  for wanted in range(len(LADDER))]
            self._first[...] = [min((f[i] for f in self._first.values() if f[i] is not None), default=None)
                                for i in range(len(LADDER))]
        return self._first.get(cluster, [None] * len(LADDER))

    def dates(self, day: str) -> list[str]:
        """Every date on or before ``day`` on which something about this opportunity changed."""
        seen = {d for d, _ in self.values} | {o.as_of for o in self.outcomes}
        seen |= {when for rungs in self.rungs.values() for when in rungs.values()}
        return sorted(d for d in seen if d <= day)

    def furthest(self, day: str) -> str:
        """The furthest stage any party reached: an outcome if one is current, else the highest rung."""
        current = {s for s, _, _ in self.outcomes_at(day).values()}
        for stage in OUTCOMES:
            if stage in current:
                return stage
        return next(s for s in reversed(LADDER) if self.reached(s, day))

    def clusters(self) -> list[str | None]:
        return sorted(self.rungs, key=_cluster_key)


def _cluster_key(cluster: str | None) -> tuple[int, str]:
    return (1, "") if cluster is None else (0, cluster.casefold())


def load_ledger(session: Session, as_of: date) -> dict[str, OpportunityLedger]:
    """Read the ledger up to ``as_of`` into one :class:`OpportunityLedger` per opportunity (sorted by id).

    Stage entries are read aggregated (first date per opportunity, cluster and stage), so the many
    ``matched`` and ``introduced`` entries of a national brokerage cost one row per cluster, not per pair.
    """
    day = business_day(as_of)
    found: dict[str, OpportunityLedger] = {}
    # A subcontracting prospect's entries (basis "subcontracting") never move an opportunity up the ladder:
    # the party could not take the work on alone, so it is listed apart instead.
    counts = or_(TargetEntry.basis.is_(None), TargetEntry.basis != SUBCONTRACTING)
    stage_rows = session.execute(
        select(TargetEntry.opportunity_id, TargetEntry.cluster, TargetEntry.stage, func.min(TargetEntry.as_of))
        .where(TargetEntry.kind == "stage", TargetEntry.as_of <= day, counts)
        .group_by(TargetEntry.opportunity_id, TargetEntry.cluster, TargetEntry.stage)
        .order_by(TargetEntry.opportunity_id, TargetEntry.cluster, TargetEntry.stage))
    for oid, cluster, stage, first in stage_rows:
        rungs = found.setdefault(oid, OpportunityLedger(oid)).rungs.setdefault(cluster, {})
        r = rung(stage)
        rungs[r] = min(first, rungs.get(r, first))
    for (oid,) in session.execute(select(TargetEntry.opportunity_id).where(
            TargetEntry.kind == "stage", TargetEntry.as_of <= day, TargetEntry.basis == SUBCONTRACTING)
            .distinct().order_by(TargetEntry.opportunity_id)):
        found.setdefault(oid, OpportunityLedger(oid)).prospect = True
    value_rows = session.execute(
        select(TargetEntry.opportunity_id, TargetEntry.as_of, TargetEntry.value_min_pence,
               TargetEntry.value_max_pence, TargetEntry.framework, TargetEntry.notice_status)
        .where(TargetEntry.kind == "value").order_by(TargetEntry.as_of, TargetEntry.id))
    for oid, when, lo, hi, framework, status in value_rows:
        if oid in found:
            found[oid].values.append((when, NoticeFacts(lo, hi, bool(framework), status)))
    for entry in session.scalars(select(TargetEntry).where(
            TargetEntry.kind == "stage", TargetEntry.stage.in_(OUTCOMES), TargetEntry.as_of <= day, counts)
            .order_by(TargetEntry.as_of, TargetEntry.id)):
        award = entry.amount_pence if entry.basis == "award" else None
        found[entry.opportunity_id].outcomes.append(
            _Outcome(entry.as_of, entry.party_id or "", entry.cluster, entry.stage or "", award))
    return dict(sorted((k, v) for k, v in found.items() if v.values))


@dataclass(frozen=True)
class Row:
    """One row of a breakdown: distinct opportunities and their counted value."""

    key: str | None
    opportunities: int
    value_pence: int


@dataclass(frozen=True)
class CountedOpportunity:
    id: str
    value: Valuation
    clusters: tuple[str | None, ...]
    furthest: str
    counted_on: str


@dataclass(frozen=True)
class Pace:
    """How fast the total is growing and when it reaches the target at that pace."""

    window_start: date
    window_end: date
    since: date | None
    days_elapsed: int
    per_day_pence: int
    reached_on: date | None
    projected_date: date | None
    status: str  # reached | on_track | behind | window_ended | no_progress
    within_window: bool | None


@dataclass(frozen=True)
class Progress:
    """The figure toward the target on a business date, its breakdowns, and the configuration used."""

    as_of: date
    config: TargetConfig
    counted_pence: int
    counted: tuple[CountedOpportunity, ...]  # largest first
    by_cluster: tuple[Row, ...]
    by_stage: tuple[Row, ...]
    series: tuple[tuple[date, int], ...]  # the total after each day it changed
    pace: Pace
    ledger_entries: int
    # Opportunities that went only to parties that cannot take them on alone: listed, never counted.
    prospects: tuple[CountedOpportunity, ...] = ()
    pipeline: tuple[CountedOpportunity, ...] = ()  # what reached the pipeline stage, largest first

    @property
    def pipeline_pence(self) -> int:
        """The pipeline's value: every opportunity at the pipeline stage or beyond, each once."""
        return sum(c.value.amount_pence for c in self.pipeline)

    def share(self) -> Decimal:
        """The total as a percentage of the target, to two places."""
        return (Decimal(self.counted_pence * 100) / self.config.target_pence).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP)

    def with_basis(self, basis: str) -> list[CountedOpportunity]:
        return [c for c in self.counted if c.value.basis == basis]


def compute_progress(session: Session, as_of: date, config: TargetConfig | None = None) -> Progress:
    """Fold the ledger up to ``as_of`` into the figure toward the target under ``config``."""
    config = config or DEFAULT_CONFIG
    day = business_day(as_of)
    opps = list(load_ledger(session, as_of).values())
    # On the ladder, only opportunities counting on ``day`` can have counted on an earlier day (an outcome,
    # by contrast, can be corrected away: "won" then "lost").
    ladder = config.counting_stage not in OUTCOMES
    counting = [o for o in opps if _counts(o, day, config)] if ladder else opps
    counted = _counted(counting, day, config)
    series = _series(counting, day, config)
    total = sum(c.value.amount_pence for c in counted)
    entries = session.scalar(select(func.count()).select_from(TargetEntry).where(TargetEntry.as_of <= day))
    # Listed apart: opportunities that reached parties only as subcontracting prospects.
    prospects = tuple(_prospect(o, day, config) for o in opps if o.prospect and not o.rungs and not o.outcomes)
    at_pipeline = replace(config, counting_stage=config.pipeline_stage)
    pipeline = _counted([o for o in opps if _counts(o, day, at_pipeline)], day, at_pipeline)
    return Progress(as_of=as_of, config=config, counted_pence=total, prospects=prospects,
                    counted=tuple(sorted(counted, key=lambda c: (-c.value.amount_pence, c.id))),
                    by_cluster=_by_cluster(counting, day, config), by_stage=_by_stage(opps, day, config),
                    series=series, pace=_pace(series, total, as_of, config), ledger_entries=entries or 0,
                    pipeline=tuple(sorted(pipeline, key=lambda c: (-c.value.amount_pence, c.id))))


def _prospect(opp: OpportunityLedger, day: str, config: TargetConfig) -> CountedOpportunity:
    headline = value_notice(opp.facts_at(day), config)
    first = opp.dates(day)[0] if opp.dates(day) else day
    return CountedOpportunity(opp.id, Valuation(SUBCONTRACTING, 0, headline.published_pence), (),
                              "subcontracting prospect", first)


def _counts(opp: OpportunityLedger, day: str, config: TargetConfig, cluster: Any = ...) -> bool:
    return opp.reached(config.counting_stage, day, cluster)


def _counted(opps: Iterable[OpportunityLedger], day: str, config: TargetConfig) -> list[CountedOpportunity]:
    out = []
    for opp in opps:
        if not _counts(opp, day, config):
            continue
        first = next(d for d in opp.dates(day) if _counts(opp, d, config))
        clusters = tuple(c for c in opp.clusters() if _counts(opp, day, config, c))
        out.append(CountedOpportunity(opp.id, opp.value_at(day, config), clusters, opp.furthest(day), first))
    return out


def _by_cluster(opps: Iterable[OpportunityLedger], day: str, config: TargetConfig) -> tuple[Row, ...]:
    rows: dict[str | None, list[int]] = {}
    for opp in opps:
        value = opp.value_at(day, config).amount_pence
        for cluster in opp.clusters():
            if _counts(opp, day, config, cluster):
                row = rows.setdefault(cluster, [0, 0])
                row[0] += 1
                row[1] += value
    return tuple(Row(k, n, v) for k, (n, v) in sorted(rows.items(), key=lambda kv: _cluster_key(kv[0])))


def _by_stage(opps: Iterable[OpportunityLedger], day: str, config: TargetConfig) -> tuple[Row, ...]:
    listed = list(opps)
    rows = []
    for stage in STAGE_ROWS:
        values = [o.value_at(day, config).amount_pence for o in listed if o.reached(stage, day)]
        rows.append(Row(stage, len(values), sum(values)))
    return tuple(rows)


def _series(opps: Iterable[OpportunityLedger], day: str, config: TargetConfig) -> tuple[tuple[date, int], ...]:
    """The total after each day it changed: each opportunity adds its change in contribution that day."""
    deltas: dict[str, int] = {}
    for opp in opps:
        before = 0
        for d in opp.dates(day):
            now = opp.value_at(d, config).amount_pence if _counts(opp, d, config) else 0
            if now != before:
                deltas[d] = deltas.get(d, 0) + now - before
                before = now
    out, running = [], 0
    for d in sorted(deltas):
        running += deltas[d]
        out.append((date.fromisoformat(d), running))
    return tuple(out)


def _pace(series: tuple[tuple[date, int], ...], total: int, as_of: date, config: TargetConfig) -> Pace:
    start, end, target = config.window_start, config.window_end, config.target_pence
    first = next((d for d, v in series if v > 0), None)
    since = min(start, first) if first else None
    days = (as_of - since).days + 1 if since else 0
    base = dict(window_start=start, window_end=end, since=since, days_elapsed=days,
                per_day_pence=total // days if days > 0 else 0)
    if total >= target:
        reached = _reached_on(series, target)
        return Pace(**base, reached_on=reached, projected_date=None, status="reached",
                    within_window=start <= reached <= end)
    if total <= 0 or days <= 0:
        return Pace(**base, reached_on=None, projected_date=None, status="no_progress", within_window=None)
    # Days still needed at the average pace so far, rounded up (integer arithmetic: no float drift).
    more = -(-(target - total) * days // total)
    projected = as_of + timedelta(days=more)
    status = "window_ended" if as_of > end else ("on_track" if projected <= end else "behind")
    return Pace(**base, reached_on=None, projected_date=projected, status=status,
                within_window=start <= projected <= end)


def _reached_on(series: tuple[tuple[date, int], ...], target: int) -> date:
    """The first day of the last unbroken stretch at or above the target."""
    reached = series[-1][0]
    for d, v in reversed(series):
        if v < target:
            break
        reached = d
    return reached


def progress_json(progress: Progress) -> dict[str, Any]:
    """The ``broker target --json`` document. Money fields end in ``_pence`` (integers)."""
    p, pace = progress, progress.pace
    unknown, frameworks = p.with_basis("unknown"), p.with_basis("framework")
    return {
        "as_of": p.as_of.isoformat(),
        "target_pence": p.config.target_pence,
        "counted_pence": p.counted_pence,
        "share_percent": float(p.share()),
        "counting_stage": p.config.counting_stage,
        "counted_opportunities": len(p.counted),
        "pipeline": {"stage": p.config.pipeline_stage, "value_pence": p.pipeline_pence,
                     "opportunities": len(p.pipeline)},
        "value_unknown": {"count": len(unknown), "opportunity_ids": [c.id for c in unknown]},
        "frameworks_excluded": {"count": len(frameworks), "opportunity_ids": [c.id for c in frameworks],
                                "published_pence": sum(c.value.published_pence or 0 for c in frameworks)},
        "subcontracting_prospects": {"count": len(p.prospects), "opportunity_ids": [c.id for c in p.prospects],
                                     "published_pence": sum(c.value.published_pence or 0 for c in p.prospects)},
        "cancelled": {"count": len(p.with_basis("cancelled")),
                      "opportunity_ids": [c.id for c in p.with_basis("cancelled")]},
        "by_cluster": [{"cluster": r.key, "opportunities": r.opportunities, "value_pence": r.value_pence}
                       for r in p.by_cluster],
        "by_stage": [{"stage": r.key, "opportunities": r.opportunities, "value_pence": r.value_pence}
                     for r in p.by_stage],
        "pace": {"window_start": pace.window_start.isoformat(), "window_end": pace.window_end.isoformat(),
                 "since": _iso(pace.since), "days_elapsed": pace.days_elapsed,
                 "per_day_pence": pace.per_day_pence, "reached_on": _iso(pace.reached_on),
                 "projected_date": _iso(pace.projected_date), "within_window": pace.within_window,
                 "status": pace.status},
        "progress_over_time": [{"date": d.isoformat(), "counted_pence": v} for d, v in p.series],
        "opportunities": [{"id": c.id, "value_pence": c.value.amount_pence, "basis": c.value.basis,
                           "published_pence": c.value.published_pence, "clusters": list(c.clusters),
                           "furthest_stage": c.furthest, "counted_on": c.counted_on} for c in p.counted],
        "ledger_entries": p.ledger_entries,
        "config": p.config.as_dict(),
        "config_sha256": p.config.sha256(),
    }


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()
