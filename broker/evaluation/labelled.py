"""Matching quality on the labelled sets: the matcher against a keyword alert and plain BM25.

Each set (see :mod:`broker.evaluation.sets` and the sets' READMEs) is real notices, fictional VCSE
profiles and graded (profile, notice) pairs. For each notice group of the set (one group, all its files, for a
set with one business date) the evaluation loads the group's notices and the profiles into a scratch SQLite
database with the normal commands' code (ingest, directory import), runs a full match as of the group's
business date, and ranks the group's live notices for every profile:

* ``matcher``: the profile's current matches, by rank;
* ``keyword_alert``: a Contracts-Finder-style saved search (:func:`broker.evaluation.baselines.keyword_alert`);
* ``bm25``: plain BM25 with no rules (:class:`broker.evaluation.baselines.Bm25Ranker`).

Each profile's lists are then merged across groups in each method's own order: the matcher's score
(ties as the matcher breaks them), BM25's score, the keyword alert's publication date. Merging the matcher's
and BM25's lists assumes their scores are comparable across runs over different notices. Every method sees
exactly the same notices in each group, so the comparison stays fair. With one group nothing is merged.

Figures are means over the profiles that have at least one relevant notice (nDCG and recall mean nothing
for the others); for profiles with nothing relevant the report says how many items they were shown.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broker.directory import import_directory
from broker.errors import InputError
from broker.evaluation.baselines import Bm25Ranker, Notice, Profile, keyword_alert
from broker.evaluation.metrics import Scores, mean_scores, score_ranking
from broker.evaluation.sets import SPLITS, LabelledSet, NoticeGroup
from broker.ingest import ingest
from broker.match.queries import list_matches, rank_key
from broker.match.service import LIVE_STATUSES, business_day_bounds, published_by, run_match
from broker.store.engine import make_engine, session_factory, upgrade
from broker.store.models import Opportunity, Vcse

METHODS = ("matcher", "keyword_alert", "bm25")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class MethodSummary:
    """One method on one split.

    Attributes:
        scores: means over the profiles with at least one relevant notice.
        left_empty: of those profiles, how many were shown nothing.
        shown_to_nothing_relevant: mean items in the top 10 shown to profiles with nothing relevant.
    """

    scores: Scores
    left_empty: int
    shown_to_nothing_relevant: float

    def as_dict(self) -> dict[str, float]:
        return {**self.scores.as_dict(), "left_empty": float(self.left_empty),
                "shown_to_nothing_relevant@10": self.shown_to_nothing_relevant}


@dataclass(frozen=True)
class SplitReport:
    set_name: str
    split: str
    profiles: int
    nothing_relevant: int
    methods: dict[str, MethodSummary]
    # {baseline: (profiles where the matcher's nDCG@10 is higher, equal, lower)}
    head_to_head: dict[str, tuple[int, int, int]]


@dataclass(frozen=True)
class GroupRun:
    """One notice group's run: its business date, notice files (names) and live notices ranked."""

    as_of: str
    files: tuple[str, ...]
    live_notices: int


@dataclass(frozen=True)
class SetEvaluation:
    """A set's figures; ``as_of`` lists the group dates (one for a one-date set), comma-separated."""

    set_name: str
    as_of: str
    rankings: dict[str, dict[str, list[str]]]
    splits: dict[str, SplitReport]
    per_profile: dict[str, dict[str, Scores]]
    groups: list[GroupRun] = field(default_factory=list)


@contextmanager
def scratch_store(workdir: Path | None = None) -> Iterator[sessionmaker[Session]]:
    """A fresh SQLite database at the current schema, deleted afterwards."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'eval.db'}")
        try:
            upgrade(engine)
            yield session_factory(engine)
        finally:
            engine.dispose()


def load_set_into(sessions: sessionmaker[Session], labelled: LabelledSet, *, notices: bool = True,
                  files: Sequence[Path] | None = None) -> None:
    """Ingest the set's notices (``files`` only if given; none if ``notices`` is False) and import its profiles."""
    if notices:
        ingest(sessions, [str(p) for p in (labelled.notice_files if files is None else files)])
    with sessions.begin() as session:
        for path in labelled.profile_files:
            report = import_directory(session, path)
            if report.errors:
                # A profile that does not import would silently score as "shown nothing".
                raise InputError(f"{len(report.errors)} profile(s) of the labelled set did not import; "
                                 f"first: {report.errors[0]}", file=str(path))


def live_notices(session: Session, as_of: date) -> list[Notice]:
    """The notices a match run as of ``as_of`` considers: open or planned, published by then, deadline not
    passed (the baselines must rank exactly these)."""
    start, _ = business_day_bounds(as_of)
    rows = session.execute(select(
        Opportunity.id, Opportunity.title, Opportunity.description, Opportunity.published_at,
        Opportunity.status, Opportunity.cpv_codes).where(
        Opportunity.status.in_(LIVE_STATUSES), published_by(as_of),
        (Opportunity.deadline_at.is_(None)) | (Opportunity.deadline_at >= start)).order_by(Opportunity.id)).all()
    return [Notice(r[0], r[1] or "", r[2] or "", _aware(r[3]), r[4], tuple(r[5] or ())) for r in rows]


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return EPOCH
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def profiles(session: Session) -> dict[str, Profile]:
    return {v.id: Profile(v.id, v.capabilities or "", tuple(v.keywords or ()), tuple(v.cpv_codes or ()))
            for v in session.scalars(select(Vcse).order_by(Vcse.id))}


# {method: {profile: [(sort key, opportunity id)]}}: one group's lists, with the keys that merge them
Keyed = dict[str, dict[str, list[tuple[tuple[Any, ...], str]]]]


def rank_group(session: Session, as_of: date, party_ids: Sequence[str]) -> tuple[Keyed, list[Notice]]:
    """The matcher's and the keyword alert's lists for every party over the live notices as of ``as_of``,
    and those notices (BM25 is ranked over every group at once, by :func:`rank_bm25`)."""
    notices = live_notices(session, as_of)
    published = {n.id: n.published for n in notices}
    deadlines = dict(session.execute(select(Opportunity.id, Opportunity.deadline_at)).all())
    known = profiles(session)
    out: Keyed = {m: {} for m in METHODS if m != "bm25"}
    for pid in party_ids:
        out["matcher"][pid] = [(rank_key(m["score"], _aware_or_none(deadlines.get(m["opportunity_id"])),
                                         m["opportunity_id"]), m["opportunity_id"])
                               for m in list_matches(session, party_id=pid)]
        profile = known.get(pid)
        alert = keyword_alert(profile.keywords, notices) if profile else []
        out["keyword_alert"][pid] = [((-published[o].timestamp(), o), o) for o in alert]
    return out, notices


def rank_bm25(groups: Sequence[list[Notice]], known: dict[str, Profile], party_ids: Sequence[str]) -> list[Keyed]:
    """Plain BM25's list for every party and group: only the group's notices, scored by one index over
    every group's notices, so that scores of different groups share document statistics and compare."""
    bm25 = Bm25Ranker([n for group in groups for n in group])
    scored = {pid: bm25.scored(known[pid]) if pid in known else [] for pid in party_ids}
    out = []
    for group in groups:
        ids = {n.id for n in group}
        out.append({"bm25": {pid: [((-score, o), o) for score, o in hits if o in ids]
                             for pid, hits in scored.items()}})
    return out


def _aware_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else _aware(moment)


def merge(parts: Sequence[Keyed]) -> dict[str, dict[str, list[str]]]:
    """{method: {profile: ids}}: each profile's lists of all groups in one order by their keys.

    The matcher's keys are its scores: merging assumes a score means the same in runs over other notices.

    The keys reproduce each method's own order, so one group's lists come out unchanged. A notice live in
    two groups is kept where it ranks first.
    """
    out: dict[str, dict[str, list[str]]] = {}
    for method in METHODS:
        for pid in sorted({p for part in parts for p in part[method]}):
            ranked: list[str] = []
            seen: set[str] = set()
            for _, oid in sorted(item for part in parts for item in part[method].get(pid, [])):
                if oid not in seen:
                    seen.add(oid)
                    ranked.append(oid)
            out.setdefault(method, {})[pid] = ranked
    return out


def rank_set(labelled: LabelledSet, *, rules_dir: Path, workdir: Path | None = None,
             party_ids: Sequence[str] | None = None) -> tuple[dict[str, dict[str, list[str]]], list[list[Notice]],
                                                               dict[str, Profile]]:
    """Run every group (scratch database, full match as of its date) and merge the lists.

    Returns the merged rankings of ``party_ids`` (default: every profile the set imports), each group's
    live notices (in the order of :meth:`LabelledSet.notice_groups`) and the imported profiles.
    """
    parts: list[Keyed] = []
    live: list[list[Notice]] = []
    known: dict[str, Profile] = {}
    for group in labelled.notice_groups():
        part, notices, known = _rank_one(labelled, group, rules_dir, workdir, party_ids)
        parts.append(part)
        live.append(notices)
    ids = sorted(known) if party_ids is None else list(party_ids)
    for part, bm25 in zip(parts, rank_bm25(live, known, ids), strict=True):
        part.update(bm25)
    return merge(parts), live, known


def _rank_one(labelled: LabelledSet, group: NoticeGroup, rules_dir: Path, workdir: Path | None,
              party_ids: Sequence[str] | None) -> tuple[Keyed, list[Notice], dict[str, Profile]]:
    with scratch_store(workdir) as sessions:
        load_set_into(sessions, labelled, files=group.files)
        run_match(sessions, as_of=group.as_of, rules_dir=rules_dir, full=True)
        with sessions() as session:
            known = profiles(session)
            missing = sorted(set(labelled.grades) - set(known))
            if missing:
                # a graded profile that is not in the profile files would score as "shown nothing"
                raise InputError(f"grades name profiles no profile file holds: {', '.join(missing[:5])}",
                                 file=str(labelled.folder))
            part, live = rank_group(session, group.as_of, sorted(known) if party_ids is None else party_ids)
    return part, live, known


def summarise(labelled: LabelledSet, rankings: dict[str, dict[str, list[str]]], split: str) -> SplitReport:
    """Each method's mean figures over ``split``'s profiles with relevant notices."""
    ids = labelled.profiles_in(split)
    relevant = [p for p in ids if labelled.has_relevant(p)]
    empty_handed = [p for p in ids if not labelled.has_relevant(p)]
    methods = {}
    ndcg = {m: {p: score_ranking(r.get(p, []), labelled.grades[p]).ndcg_at_10 for p in relevant}
            for m, r in rankings.items()}
    versus = {}
    for base in (m for m in METHODS if m != "matcher" and m in ndcg):
        diffs = [round(ndcg["matcher"][p] - ndcg[base][p], 9) for p in relevant]
        versus[base] = (sum(d > 0 for d in diffs), sum(d == 0 for d in diffs), sum(d < 0 for d in diffs))
    for method, ranked in rankings.items():
        scores = [score_ranking(ranked.get(p, []), labelled.grades[p]) for p in relevant]
        shown = [min(10, len(ranked.get(p, []))) for p in empty_handed]
        methods[method] = MethodSummary(
            mean_scores(scores), sum(1 for p in relevant if not ranked.get(p)),
            sum(shown) / len(shown) if shown else 0.0)
    return SplitReport(labelled.name, split, len(relevant), len(empty_handed), methods, versus)


def evaluate_set(labelled: LabelledSet, *, rules_dir: Path, splits: Sequence[str] = SPLITS,
                 workdir: Path | None = None) -> SetEvaluation:
    """Run the matcher and the baselines on one set; figures for each of ``splits`` and each profile."""
    rankings, live, _ = rank_set(labelled, rules_dir=rules_dir, workdir=workdir,
                                 party_ids=labelled.profiles_in("all"))
    groups = [GroupRun(g.as_of.isoformat(), tuple(f.name for f in g.files), len(notices))
              for g, notices in zip(labelled.notice_groups(), live, strict=True)]
    per_profile = {p: {m: score_ranking(rankings[m].get(p, []), labelled.grades[p]) for m in METHODS}
                   for p in labelled.profiles_in("all")}
    dates = ", ".join(g.as_of.isoformat() for g in labelled.notice_groups())
    return SetEvaluation(labelled.name, dates, rankings,
                         {s: summarise(labelled, rankings, s) for s in splits}, per_profile, groups)
