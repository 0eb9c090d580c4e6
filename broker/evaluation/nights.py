"""The feedback experiment: does feedback on earlier nights improve what a VCSE is shown later?

The set's notices are split by publication date into nights. Two scratch databases replay the nights in
order, each night ingesting only that night's notices and running the matcher, the way the nightly job
would. A night's business date is its last publication day: a run as of D sees only notices published by D,
so an earlier date would hide the night's later notices. A night that spans months or years (the second
set's notices span 2019 to 2026) can hold notices whose deadline passed before that day: no run on that
day could show them, so they are left out of that night's scoring in both arms (``Night.open`` counts the
notices still open on the night's date). In the "with feedback" arm, after each night every
profile's top ``shown`` new items (what a digest would send it, in digest order) are given the set's label
through the feedback store (:func:`broker.digest.feedback.record_feedback`): grade 0 as ``not_relevant``,
grade 1 or 2 as ``interested``; items the set never graded get no feedback. Quality is measured on each
later night's new notices only, in both arms, so the figure says whether feedback generalises to notices
nobody has judged yet rather than only hiding the very items that were rejected.

Whatever the matcher does with feedback (today: the digest suppresses a rejected pair, which cannot change
new notices; later: per-party relevance learnt from it) is measured the same way, because both the shown
lists and the rankings come from the digest selection of the stored matches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.digest.feedback import record_feedback
from broker.digest.selection import Candidate, candidates
from broker.errors import InputError
from broker.evaluation.labelled import MethodSummary, load_set_into, scratch_store
from broker.evaluation.metrics import Scores, mean_scores, score_ranking
from broker.evaluation.sets import LabelledSet
from broker.ingest import ingest, ingest_items
from broker.match.service import business_day_bounds, run_match
from broker.normalise.dates import LONDON
from broker.sources import registry
from broker.sources.base import SourceItem
from broker.store.models import Opportunity

SHOWN = 10  # items a digest shows a VCSE (its cap)


@dataclass(frozen=True)
class Night:
    number: int
    first: str
    last: str
    notices: int
    profiles: int
    feedback: int
    open: int = 0  # of ``notices``, how many were still open (or undated) on the night's business date
    as_of: str = ""  # the night's business date

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class FeedbackExperiment:
    """Both arms' figures over nights 2..N; ``changed_rankings`` counts (profile, night) lists that differ."""

    set_name: str
    shown: int
    nights: list[Night]
    without: MethodSummary
    with_feedback: MethodSummary
    changed_rankings: int
    evaluated_pairs: int
    per_night: dict[int, dict[str, Scores]]
    # {arm ("without"/"with"): {night: {profile: ranked new notices}}}; not in as_dict (large)
    lists: dict[str, dict[int, dict[str, list[str]]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"set": self.set_name, "shown": self.shown, "nights": [n.as_dict() for n in self.nights],
                "without_feedback": self.without.as_dict(), "with_feedback": self.with_feedback.as_dict(),
                "changed_rankings": self.changed_rankings, "evaluated_pairs": self.evaluated_pairs,
                "per_night": {str(k): {a: s.as_dict() for a, s in v.items()} for k, v in self.per_night.items()}}


def _day(moment: datetime | None) -> date | None:
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(LONDON).date()


def assign_nights(published: dict[str, date | None], nights: int) -> dict[str, int]:
    """Night of each key: runs of consecutive publication days holding about equal numbers of notices.

    A day is never split between nights, so a day holding many notices can leave a requested night
    empty; nights are numbered 1, 2, ... without gaps, so there may be fewer than ``nights``. Undated
    notices go to the first night.
    """
    days = sorted({d for d in published.values() if d is not None})
    per_day = {d: sum(1 for v in published.values() if v == d) for d in days}
    total = sum(per_day.values()) or 1
    slot_of_day, before = {}, 0
    for d in days:
        # the day goes where its middle notice falls
        slot_of_day[d] = min(nights - 1, ((2 * before + per_day[d]) * nights) // (2 * total))
        before += per_day[d]
    number = {slot: i + 1 for i, slot in enumerate(sorted(set(slot_of_day.values())))}
    return {k: (number[slot_of_day[v]] if v is not None else 1) for k, v in sorted(published.items())}


@dataclass(frozen=True)
class _Probe:
    published: dict[str, date | None]  # {grouping key: first publication day}
    key_of: dict[str, str]  # {opportunity id: grouping key}
    day_of: dict[str, date | None]  # {opportunity id: publication day}
    deadline_of: dict[str, datetime | None]  # {opportunity id: deadline}


def _probe(labelled: LabelledSet, workdir: Path | None) -> _Probe:
    """Publication day and deadline of every opportunity the set's files give, and each one's grouping key.

    The key is the ocid for OCDS (all lots and releases of a procurement arrive together) and the
    opportunity id otherwise.
    """
    with scratch_store(workdir) as sessions:
        ingest(sessions, [str(p) for p in labelled.notice_files])
        with sessions() as session:
            rows = session.execute(select(Opportunity.id, Opportunity.ocid, Opportunity.published_at,
                                          Opportunity.deadline_at).order_by(Opportunity.id)).all()
    key_of = {oid: (ocid or oid) for oid, ocid, _, _ in rows}
    by_key: dict[str, date | None] = {}
    for oid, _, published, _ in rows:
        day = _day(published)
        key = key_of[oid]
        if key not in by_key or (day is not None and (by_key[key] is None or day < by_key[key])):  # type: ignore[operator]
            by_key[key] = day
    deadlines = {oid: (d if d is None or d.tzinfo else d.replace(tzinfo=UTC)) for oid, _, _, d in rows}
    return _Probe(by_key, key_of, {oid: _day(p) for oid, _, p, _ in rows}, deadlines)


def _item_key(item: SourceItem) -> str | None:
    if item.kind == "release" and item.release is not None:
        return str(item.release.get("ocid"))
    if item.kind == "record" and item.record is not None:
        return item.record.id
    return None


def _items_by_night(labelled: LabelledSet, night_of_key: dict[str, int]) -> list[tuple[str, str, dict[int, list[SourceItem]]]]:
    """For each notice file: its path, sha256 and items grouped by night (unknown keys on night 1)."""
    out = []
    for path in labelled.notice_files:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        grouped: dict[int, list[SourceItem]] = {}
        for item in registry.read(str(path), registry.detect(str(path))):
            key = _item_key(item)
            grouped.setdefault(night_of_key.get(key, 1) if key else 1, []).append(item)
        out.append((str(path), sha, grouped))
    return out


def _shown_lists(session: Session, as_of: date, parties: Iterable[str], new: set[str]) -> dict[str, list[str]]:
    """Each party's sendable new notices, in digest order."""
    sendable = candidates(session, as_of=as_of, min_days=0)
    out = {}
    for pid in parties:
        ranked = sorted(sendable.get(pid, []), key=Candidate.rank_key)
        out[pid] = [c.opportunity.id for c in ranked if c.opportunity.id in new]
    return out


def _run_arm(labelled: LabelledSet, files: list[tuple[str, str, dict[int, list[SourceItem]]]],
             notices_of: dict[int, set[str]], dates: dict[int, date], *, feedback: bool, shown: int,
             rules_dir: Path, workdir: Path | None) -> tuple[dict[int, dict[str, list[str]]], dict[int, int]]:
    """Replay the nights; returns {night: {profile: ranked new notices}} and feedback counts before each night."""
    rankings: dict[int, dict[str, list[str]]] = {}
    given: dict[int, int] = {}
    count = 0
    with scratch_store(workdir) as sessions:
        load_set_into(sessions, labelled, notices=False)
        for night in sorted(dates):
            given[night] = count
            for path, sha, grouped in files:
                if grouped.get(night):
                    ingest_items(sessions, grouped[night], path=path, file_sha=sha)
            run_match(sessions, as_of=dates[night], rules_dir=rules_dir, full=True)
            with sessions.begin() as session:
                rankings[night] = _shown_lists(session, dates[night], sorted(labelled.grades), notices_of[night])
                if feedback:
                    count += _give_feedback(session, labelled, rankings[night], shown, dates[night])
    return rankings, given


def _give_feedback(session: Session, labelled: LabelledSet, lists: dict[str, list[str]], shown: int,
                   as_of: date) -> int:
    count = 0
    for pid, ranked in lists.items():
        for oid in ranked[:shown]:
            grade = labelled.grades[pid].get(oid)
            if grade is None:
                continue
            record_feedback(session, pid, oid, "interested" if grade >= 1 else "not_relevant", as_of=as_of)
            count += 1
    return count


def run_feedback_experiment(labelled: LabelledSet, *, nights: int, rules_dir: Path, shown: int = SHOWN,
                            workdir: Path | None = None) -> FeedbackExperiment:
    """Replay ``nights`` nights with and without feedback; figures over nights 2..``nights``."""
    probe = _probe(labelled, workdir)
    published, key_of = probe.published, probe.key_of
    night_of_key = assign_nights(published, nights)
    nights = max(night_of_key.values(), default=1)
    if nights < 2:
        raise InputError("the notices' publication dates give fewer than two nights; nothing to feed back.",
                         file=str(labelled.folder))
    notices_of: dict[int, set[str]] = {n: set() for n in range(1, nights + 1)}
    for oid, key in key_of.items():
        notices_of[night_of_key[key]].add(oid)
    days_of: dict[int, list[date]] = {}
    for key, night in night_of_key.items():
        if published[key] is not None:
            days_of.setdefault(night, []).append(published[key])  # type: ignore[arg-type]
    # the night's last publication day (of any of its opportunities, lots and later releases included)
    last_day: dict[int, date] = {}
    for oid, key in key_of.items():
        day = probe.day_of[oid]
        if day is not None and (night_of_key[key] not in last_day or day > last_day[night_of_key[key]]):
            last_day[night_of_key[key]] = day
    dates = {n: last_day.get(n, labelled.as_of) for n in range(1, nights + 1)}
    open_of = {n: {o for o in notices_of[n] if _open_on(probe.deadline_of[o], dates[n])} for n in notices_of}
    files = _items_by_night(labelled, night_of_key)
    plain, _ = _run_arm(labelled, files, notices_of, dates, feedback=False, shown=shown, rules_dir=rules_dir,
                        workdir=workdir)
    fed, given = _run_arm(labelled, files, notices_of, dates, feedback=True, shown=shown, rules_dir=rules_dir,
                          workdir=workdir)
    return _summarise(labelled, nights, shown, notices_of, dates, days_of, plain, fed, given, open_of)


def _open_on(deadline: datetime | None, as_of: date) -> bool:
    """Whether a run as of ``as_of`` still sees a notice with this deadline (the matcher's own rule)."""
    return deadline is None or deadline >= business_day_bounds(as_of)[0]


def _summarise(labelled: LabelledSet, nights: int, shown: int, notices_of: dict[int, set[str]],
               dates: dict[int, date], days_of: dict[int, list[date]], plain: dict[int, dict[str, list[str]]],
               fed: dict[int, dict[str, list[str]]], given: dict[int, int],
               open_of: dict[int, set[str]] | None = None) -> FeedbackExperiment:
    arms: dict[str, list[Scores]] = {"without": [], "with": []}
    empty = {"without": 0, "with": 0}
    none_shown: dict[str, list[int]] = {"without": [], "with": []}
    changed = pairs = 0
    per_night: dict[int, dict[str, Scores]] = {}
    night_rows = []
    for night in range(1, nights + 1):
        # only notices a run on the night's date could show are scored (all of them unless told otherwise)
        scorable = notices_of[night] if open_of is None else open_of[night]
        judged = {p: {o: g for o, g in labelled.grades[p].items() if o in scorable} for p in labelled.grades}
        relevant = [p for p in sorted(judged) if any(g >= 1 for g in judged[p].values())]
        days = days_of.get(night, [dates[night]])
        night_rows.append(Night(night, min(days).isoformat(), max(days).isoformat(), len(notices_of[night]),
                                len(relevant), given.get(night, 0), len(scorable), dates[night].isoformat()))
        if night == 1:
            continue
        scored: dict[str, list[Scores]] = {"without": [], "with": []}
        for arm, lists in (("without", plain[night]), ("with", fed[night])):
            for p in relevant:
                scored[arm].append(score_ranking(lists.get(p, []), judged[p]))
                empty[arm] += 0 if lists.get(p) else 1
            none_shown[arm] += [min(shown, len(lists.get(p, []))) for p in sorted(judged) if p not in relevant]
            arms[arm] += scored[arm]
        per_night[night] = {a: mean_scores(s) for a, s in scored.items()}
        pairs += len(relevant)
        changed += sum(1 for p in relevant if plain[night].get(p, []) != fed[night].get(p, []))

    def summary(arm: str) -> MethodSummary:
        shown_none = none_shown[arm]
        return MethodSummary(mean_scores(arms[arm]), empty[arm], sum(shown_none) / len(shown_none) if shown_none else 0.0)

    return FeedbackExperiment(labelled.name, shown, night_rows, summary("without"), summary("with"), changed, pairs,
                              per_night, {"without": plain, "with": fed})
