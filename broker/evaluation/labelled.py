"""Matching quality on the labelled sets: the matcher against a keyword alert and plain BM25.

Each set (see :mod:`broker.evaluation.sets` and the sets' READMEs) is real notices, fictional VCSE
profiles and graded (profile, notice) pairs. The evaluation loads both into a scratch SQLite database with
the normal commands' code (ingest, directory import), runs a full match on the set's business date, and
ranks for every profile:

* ``matcher``: the profile's current matches, by rank;
* ``keyword_alert``: a Contracts-Finder-style saved search (:func:`broker.evaluation.baselines.keyword_alert`);
* ``bm25``: plain BM25 with no rules (:class:`broker.evaluation.baselines.Bm25Ranker`).

Figures are means over the profiles that have at least one relevant notice (nDCG and recall mean nothing
for the others); for profiles with nothing relevant the report says how many items they were shown.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broker.directory import import_directory
from broker.errors import InputError
from broker.evaluation.baselines import Bm25Ranker, Notice, Profile, keyword_alert
from broker.evaluation.metrics import Scores, mean_scores, score_ranking
from broker.evaluation.sets import SPLITS, LabelledSet
from broker.ingest import ingest
from broker.match.queries import list_matches
from broker.match.service import LIVE_STATUSES, run_match
from broker.normalise.dates import LONDON
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
class SetEvaluation:
    set_name: str
    as_of: str
    rankings: dict[str, dict[str, list[str]]]
    splits: dict[str, SplitReport]
    per_profile: dict[str, dict[str, Scores]]


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


def load_set_into(sessions: sessionmaker[Session], labelled: LabelledSet, *, notices: bool = True) -> None:
    """Ingest the set's notices (unless ``notices`` is False) and import its profiles."""
    if notices:
        ingest(sessions, [str(p) for p in labelled.notice_files])
    with sessions.begin() as session:
        for path in labelled.profile_files:
            report = import_directory(session, path)
            if report.errors:
                # A profile that does not import would silently score as "shown nothing".
                raise InputError(f"{len(report.errors)} profile(s) of the labelled set did not import; "
                                 f"first: {report.errors[0]}", file=str(path))


def live_notices(session: Session, labelled: LabelledSet) -> list[Notice]:
    """The notices a match run on the set's date considers: open or planned, deadline not passed."""
    start = datetime.combine(labelled.as_of, time(0), tzinfo=LONDON).astimezone(UTC)
    rows = session.execute(select(
        Opportunity.id, Opportunity.title, Opportunity.description, Opportunity.published_at,
        Opportunity.status, Opportunity.cpv_codes).where(
        Opportunity.status.in_(LIVE_STATUSES),
        (Opportunity.deadline_at.is_(None)) | (Opportunity.deadline_at >= start)).order_by(Opportunity.id)).all()
    return [Notice(r[0], r[1] or "", r[2] or "", _aware(r[3]), r[4], tuple(r[5] or ())) for r in rows]


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return EPOCH
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def profiles(session: Session) -> dict[str, Profile]:
    return {v.id: Profile(v.id, v.capabilities or "", tuple(v.keywords or ()), tuple(v.cpv_codes or ()))
            for v in session.scalars(select(Vcse).order_by(Vcse.id))}


def rank_all(session: Session, labelled: LabelledSet, party_ids: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """{method: {profile: ranked opportunity ids}} for the current matches and both baselines."""
    notices = live_notices(session, labelled)
    known = profiles(session)
    bm25 = Bm25Ranker(notices)
    out: dict[str, dict[str, list[str]]] = {m: {} for m in METHODS}
    for pid in party_ids:
        out["matcher"][pid] = [m["opportunity_id"] for m in list_matches(session, party_id=pid)]
        profile = known.get(pid)
        out["keyword_alert"][pid] = keyword_alert(profile.keywords, notices) if profile else []
        out["bm25"][pid] = bm25.rank(profile) if profile else []
    return out


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
    with scratch_store(workdir) as sessions:
        load_set_into(sessions, labelled)
        run_match(sessions, as_of=labelled.as_of, rules_dir=rules_dir, full=True)
        with sessions() as session:
            missing = sorted(set(labelled.grades) - set(profiles(session)))
            if missing:
                # a graded profile that is not in the profile files would score as "shown nothing"
                raise InputError(f"grades name profiles no profile file holds: {', '.join(missing[:5])}",
                                 file=str(labelled.folder))
            rankings = rank_all(session, labelled, labelled.profiles_in("all"))
    per_profile = {p: {m: score_ranking(rankings[m][p], labelled.grades[p]) for m in METHODS}
                   for p in labelled.profiles_in("all")}
    return SetEvaluation(labelled.name, labelled.as_of.isoformat(), rankings,
                         {s: summarise(labelled, rankings, s) for s in splits}, per_profile)
