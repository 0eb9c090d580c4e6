"""Matching quality on the labelled set, against a Contracts-Finder-style keyword alert.

The set (fixtures/labelled, see its README) is real Contracts Finder notices, fictional VCSE profiles and
graded (profile, notice) pairs. The evaluation loads both into a scratch SQLite database with the normal
commands' code (ingest, directory import), runs a full match at the export's date, and ranks:

* the matcher: the profile's current matches, by rank;
* the keyword alert: every notice open on that date whose title or description contains one of the
  profile's keywords (whole words, any case), newest first, as a Contracts Finder saved search sends them.
"""

from __future__ import annotations

import csv
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from sqlalchemy import select

from broker.directory import import_directory
from broker.evaluation.metrics import Scores, mean_scores, score_ranking
from broker.ingest import ingest
from broker.match.queries import list_matches
from broker.match.service import run_match
from broker.normalise.cf_csv import cf_record_id
from broker.normalise.dates import LONDON
from broker.store.engine import make_engine, session_factory, upgrade
from broker.store.models import Opportunity, Vcse

AS_OF = date(2020, 4, 16)  # the day the export was recorded
NOTICES = "cf_export_2020-04-16.csv"


@dataclass(frozen=True)
class Evaluation:
    split: str
    profiles: int
    matcher: Scores
    keyword_alert: Scores
    per_profile: dict[str, dict[str, Scores]]


def load_grades(folder: Path, split: str) -> dict[str, dict[str, int]]:
    """{profile id: {opportunity id: grade}} for the profiles in ``split`` (``all`` for every split)."""
    with open(folder / "splits.csv", encoding="utf-8") as fh:
        splits = {r["profile_id"]: r["split"] for r in csv.DictReader(fh)}
    grades: dict[str, dict[str, int]] = {}
    with open(folder / "grades.csv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if split != "all" and splits.get(r["profile_id"]) != split:
                continue
            grades.setdefault(r["profile_id"], {})[cf_record_id(r["buyer"], r["notice_identifier"])] = int(r["grade"])
    return grades


def evaluate(folder: Path, *, rules_dir: Path, split: str = "test", workdir: Path | None = None) -> Evaluation:
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'eval.db'}")
        upgrade(engine)
        sessions = session_factory(engine)
        ingest(sessions, [str(folder / NOTICES)])
        with sessions.begin() as session:
            import_directory(session, folder / "profiles.csv")
        run_match(sessions, as_of=AS_OF, rules_dir=rules_dir, full=True)
        grades = load_grades(folder, split)
        with sessions() as session:
            keywords = {v.id: list(v.keywords) for v in session.scalars(select(Vcse))}
            open_notices = _open_notices(session)
            per: dict[str, dict[str, Scores]] = {}
            for profile in sorted(grades):
                matched = [m["opportunity_id"] for m in list_matches(session, party_id=profile)]
                alert = keyword_alert(keywords.get(profile, []), open_notices)
                per[profile] = {"matcher": score_ranking(matched, grades[profile]),
                                "keyword_alert": score_ranking(alert, grades[profile])}
        engine.dispose()
    return Evaluation(split, len(per), mean_scores([p["matcher"] for p in per.values()]),
                      mean_scores([p["keyword_alert"] for p in per.values()]), per)


def _open_notices(session: object) -> list[tuple[str, str, datetime]]:
    start = datetime.combine(AS_OF, time(0), tzinfo=LONDON).astimezone(UTC)
    rows = session.execute(select(Opportunity.id, Opportunity.title, Opportunity.description,  # type: ignore[attr-defined]
                                  Opportunity.published_at).where(
        Opportunity.status == "open",
        (Opportunity.deadline_at.is_(None)) | (Opportunity.deadline_at >= start))).all()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return [(r[0], f"{r[1]}\n{r[2]}", r[3] or epoch) for r in rows]


def keyword_alert(keywords: Sequence[str], notices: Sequence[tuple[str, str, datetime]]) -> list[str]:
    """Notices containing any keyword as whole words, newest first (ties by id)."""
    patterns = [re.compile(r"\b" + re.escape(k.strip()) + r"\b", re.IGNORECASE) for k in keywords if k.strip()]
    if not patterns:
        return []
    hits = [(published, oid) for oid, text, published in notices if any(p.search(text) for p in patterns)]
    hits.sort(key=lambda h: (-h[0].timestamp(), h[1]))
    return [oid for _, oid in hits]
