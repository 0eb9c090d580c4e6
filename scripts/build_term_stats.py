"""Rebuild broker/data/term_stats.json (the relevance model's reference statistics) from real notices.

Usage: ``python scripts/build_term_stats.py [FILE_OR_FOLDER ...]`` (default: every notice file under
fixtures/opportunities and the labelled set's Contracts Finder export). The files are ingested into a
scratch SQLite database with the normal ingest code, so every source format the broker reads can feed it;
each distinct notice counts once. Run it again on a fresh snapshot of live notices (e.g. a month of
Contracts Finder and Find a Tender) to refresh the statistics; the new table's digest is recorded with the
next runs, which makes them full runs (other reference data).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from broker.ingest import ingest  # noqa: E402
from broker.match.termstats import STATS_FILE, NoticeText, build_term_stats  # noqa: E402
from broker.store.engine import make_engine, session_factory, upgrade  # noqa: E402
from broker.store.models import Opportunity  # noqa: E402

DEFAULT_SOURCES = [ROOT / "fixtures" / "opportunities", ROOT / "fixtures" / "labelled" / "cf_export_2020-04-16.csv"]


def main(argv: list[str]) -> int:
    sources = [Path(a) for a in argv] or DEFAULT_SOURCES
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'stats.db'}")
        upgrade(engine)
        sessions = session_factory(engine)
        ingest(sessions, [str(s) for s in sources])
        with sessions() as session:
            rows = session.execute(select(Opportunity.id, Opportunity.title, Opportunity.description,
                                          Opportunity.buyer_name, Opportunity.cpv_codes).order_by(Opportunity.id))
            notices = [NoticeText(t or "", d or "", b or "", tuple(c or ())) for _, t, d, b, c in rows]
        engine.dispose()
    names = ", ".join(sorted(s.name for s in sources))
    stats = build_term_stats(notices, source=f"{len(notices)} distinct notices from {names}")
    STATS_FILE.write_text(json.dumps(stats.to_json(), ensure_ascii=True, separators=(",", ":")) + "\n",
                          encoding="utf-8")
    sys.stderr.write(f"{STATS_FILE}: {stats.documents} notices, {len(stats.df)} terms, "
                     f"{len(stats.related)} with related terms, {len(stats.cpv)} with CPV groups\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
