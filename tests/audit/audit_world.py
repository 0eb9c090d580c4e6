"""Helpers for the audit tests: load the fixtures, run matches through the CLI, touch the store directly.

A module of its own (not conftest) so test files can import it by name; see tests/testpaths.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from click.testing import Result
from sqlalchemy import text
from sqlalchemy.orm import Session
from testpaths import FIXTURES, ROOT

from broker.store.engine import make_engine, session_factory

OCDS = str(FIXTURES / "opportunities" / "cf_ocds_releases_2025_part1.json")
MORE_OCDS = str(FIXTURES / "opportunities" / "sell2wales_ocds_releases_2025_part1.json")
VCSES = str(FIXTURES / "directory" / "vcses.csv")
CONSORTIA = str(FIXTURES / "directory" / "consortia.csv")
RULES = ROOT / "rules"
AS_OF = "2025-01-23"  # the CF fixture's notices are live on this business day


def load(run: Any) -> None:
    """Ingest the Contracts Finder fixture and import the fixture directory."""
    assert run("ingest", OCDS).exit_code == 0
    result = run("directory", "import", VCSES, "--consortia", CONSORTIA)
    assert result.exit_code == 0, result.output


def match(run: Any, *args: str, rules: Any = RULES, as_of: str = AS_OF) -> dict[str, Any]:
    result = run("match", "--as-of", as_of, "--rules", str(rules), "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def replay(run: Any, run_id: str, *args: str) -> Result:
    return run("audit", "replay", run_id, *args)


def assert_identical(run: Any, run_id: str) -> int:
    """Replay ``run_id`` and check it is identical; returns the number of decisions."""
    result = run("audit", "replay", run_id, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["identical"] and data["decisions"] == data["stored"] > 0
    assert data["problems"] == [] and data["differences"] == []
    return int(data["decisions"])


@contextmanager
def session_on(db_url: str) -> Iterator[Session]:
    engine = make_engine(db_url)
    try:
        with session_factory(engine).begin() as session:
            yield session
    finally:
        engine.dispose()


def sql(db_url: str, statement: str, **params: Any) -> list[Any]:
    """Run raw SQL (a tamperer's edit), committed; returns the rows of a SELECT."""
    with session_on(db_url) as session:
        result = session.execute(text(statement), params)
        return list(result) if result.returns_rows else []


def scalar(db_url: str, statement: str, **params: Any) -> Any:
    rows = sql(db_url, statement, **params)
    return rows[0][0] if rows else None


def add_notice(db_url: str, notice_id: str, title: str, description: str, *, days: int = 30,
               local_authority: str | None = "Birmingham", value_pence: int | None = 5_000_000,
               cpv: tuple[str, ...] = (), status: str = "open", as_of: str = AS_OF) -> None:
    """Store one private notice through the ingest path (``upsert_record``), live on ``as_of``."""
    from datetime import UTC, date, datetime, time, timedelta

    from broker.normalise.record import OpportunityRecord, canonical_hash
    from broker.store.opportunities import upsert_record

    deadline = datetime.combine(date.fromisoformat(as_of) + timedelta(days=days), time(12), tzinfo=UTC)
    record = OpportunityRecord(
        id=notice_id, source="private", title=title, buyer_name="Test Council", status=status,
        raw_hash=canonical_hash([notice_id, title, description]), description=description,
        deadline_at=deadline, local_authority=local_authority,
        region="West Midlands" if local_authority else None, value_min_pence=value_pence,
        value_max_pence=value_pence, cpv_codes=cpv, vcse_suitable=True)
    with session_on(db_url) as session:
        upsert_record(session, record)
