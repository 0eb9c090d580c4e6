"""Property: for any small directory and set of notices, a match run replays to identical decisions
(and so does the incremental run after more notices arrive)."""

from __future__ import annotations

import csv
import shutil
import tempfile
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from audit_world import RULES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from broker.audit.replay import replay_run
from broker.audit.verify import verify_chain
from broker.directory import import_directory
from broker.directory.parse import VCSE_COLUMNS
from broker.match.service import run_match
from broker.normalise.record import OpportunityRecord, canonical_hash
from broker.store.engine import make_engine, session_factory
from broker.store.models import Decision
from broker.store.opportunities import upsert_record

AS_OF = date(2025, 3, 20)
WORDS = ["youth work", "mentoring", "domestic abuse", "refuge", "school meals", "catering", "digital skills",
         "counselling", "employment support", "supported housing", "advocacy", "gardening", "cleaning",
         "training", "dementia", "carers", "befriending", "recycling", "transport", "translation"]
NOISE = ["provision of", "services", "framework", "lot 1", "contract", "for the council", "borough-wide"]
PLACES = ["Birmingham", "Coventry", "Sandwell", "Dudley", "Walsall", "Wolverhampton", "Solihull", "Leeds"]

phrases = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4, unique=True)
vcse = st.fixed_dictionaries({
    "capabilities": phrases.map(lambda ws: "We offer " + ", ".join(ws) + "."),
    "keywords": st.lists(st.sampled_from(WORDS), min_size=1, max_size=3, unique=True).map(";".join),
    "local_authority": st.sampled_from(PLACES[:-1]),
    "service_areas": st.sampled_from(["", "West Midlands", "West Midlands", "National", "Birmingham;Solihull"]),
    "max_contract_value_gbp": st.sampled_from(["", "20000", "100000", "2000000"]),
})
notice = st.fixed_dictionaries({
    "title": st.tuples(st.sampled_from(NOISE), phrases).map(lambda t: f"{t[0]} {' and '.join(t[1])}"),
    "description": st.lists(st.sampled_from(WORDS + NOISE), min_size=2, max_size=10).map(" ".join),
    # Mostly live notices in the region (so pairs reach the rules), some past, close, ended or far away.
    "days": st.integers(6, 90) | st.integers(-3, 5),
    "status": st.sampled_from(["open"] * 6 + ["planned", "closed"]),
    "local_authority": st.sampled_from([None, *PLACES[:3], *PLACES]),
    "pounds": st.sampled_from([None, 5_000, 80_000, 1_500_000, 40_000_000]),
    "vcse_suitable": st.sampled_from([None, True, False]),
})


def _write_directory(folder: Path, vcses: list[dict]) -> Path:
    path = folder / "vcses.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(VCSE_COLUMNS))
        writer.writeheader()
        for i, v in enumerate(vcses):
            writer.writerow({**{c: "" for c in VCSE_COLUMNS}, **v, "id": f"v-{i:02d}", "name": f"VCSE {i}",
                             "digest_opt_in": "yes"})
    return path


def _record(i: int, n: dict) -> OpportunityRecord:
    deadline = datetime.combine(AS_OF + timedelta(days=n["days"]), time(12), tzinfo=UTC)
    pence = n["pounds"] * 100 if n["pounds"] else None
    return OpportunityRecord(
        id=f"n-{i:02d}", source="private", title=n["title"], buyer_name="A Council", status=n["status"],
        raw_hash=canonical_hash([i, n]), description=n["description"], deadline_at=deadline,
        local_authority=n["local_authority"], value_min_pence=pence, value_max_pence=pence,
        vcse_suitable=n["vcse_suitable"])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(vcses=st.lists(vcse, min_size=1, max_size=6), notices=st.lists(notice, min_size=2, max_size=6),
       later=st.lists(notice, max_size=3))
def test_any_small_world_replays_identically(sqlite_template, vcses, notices, later):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / f"{uuid.uuid4().hex}.db"
        shutil.copyfile(sqlite_template, db)
        engine = make_engine(f"sqlite:///{db}")
        sessions = session_factory(engine)
        try:
            with sessions.begin() as session:
                report = import_directory(session, _write_directory(folder, vcses))
                assert not report.failed
                for i, n in enumerate(notices):
                    upsert_record(session, _record(i, n))
            runs = [run_match(sessions, as_of=AS_OF, rules_dir=RULES).run_id]
            if later:
                with sessions.begin() as session:
                    for i, n in enumerate(later, len(notices)):
                        upsert_record(session, _record(i, n))
                runs.append(run_match(sessions, as_of=AS_OF + timedelta(days=1), rules_dir=RULES).run_id)
            with sessions() as session:
                for run_id in runs:
                    stored = session.scalar(select(func.count()).select_from(Decision)
                                            .where(Decision.run_id == run_id))
                    replayed = replay_run(session, run_id)
                    assert replayed.identical, replayed.to_json()
                    assert replayed.decisions == stored == replayed.stored
                assert verify_chain(session).ok
        finally:
            engine.dispose()
