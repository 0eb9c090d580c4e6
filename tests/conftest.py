"""Shared fixtures. Every test that takes ``db_url`` runs on SQLite and, when
``BROKER_TEST_POSTGRES_URL`` is set, again on PostgreSQL in a schema made fresh for this test run."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pgschema import fresh_schema
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from testpaths import FIXTURES, ROOT, refuse_outside_data  # noqa: F401  (re-exported for tests)

from broker.cli import cli
from broker.store.engine import make_engine, session_factory, upgrade
from broker.store.models import Base

PG_URL = os.environ.get("BROKER_TEST_POSTGRES_URL")

# The repository stands alone: every file open and directory listing in the test process is checked by an
# audit hook (testpaths.refuse_outside_data), so a path built at run time is caught too.
sys.addaudithook(refuse_outside_data)

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A fresh schema for this test run (this xdist worker), migrated once, dropped at the end."""
    assert PG_URL is not None
    with fresh_schema(PG_URL, "broker_test") as url:
        yield url


def _truncate_all(url: str) -> None:
    engine = make_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a SQLite file in tmp_path, or the run's PostgreSQL schema."""
    if request.param == "sqlite":
        path = tmp_path / "broker.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_schema_url")
    _truncate_all(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_factory(engine)() as s:
        yield s


class Cli:
    """Runs ``broker --db URL ...`` in-process and returns click's Result."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(cli, ["--db", self.db_url, *args], input=input, catch_exceptions=False)


@pytest.fixture
def run(db_url: str) -> Cli:
    return Cli(db_url)


@pytest.fixture
def fabricated_matches() -> None:
    """Marks a test whose helpers write ``matches`` rows citing runs that never ran (target and digest
    worlds): the suite-wide chain check then skips its run cross-references, and checks all the rest."""


@pytest.fixture(autouse=True)
def _every_run_replays(request: pytest.FixtureRequest) -> Iterator[None]:
    """Issue 4: every match run made anywhere in the suite replays identically and the chain verifies.

    Modules that tamper with audit records on purpose set ``TAMPERS_WITH_AUDIT_RECORDS = True``.
    """
    url = request.getfixturevalue("db_url") if "db_url" in request.fixturenames else None
    yield
    if url is None or getattr(request.module, "TAMPERS_WITH_AUDIT_RECORDS", False):
        return
    from sqlalchemy import select

    from broker.audit.replay import replay_run
    from broker.audit.verify import verify_chain
    from broker.store.models import MatchRun

    eng = make_engine(url)
    try:
        with session_factory(eng)() as s:
            for run_id in s.scalars(select(MatchRun.id).where(MatchRun.status == "complete")):
                report = replay_run(s, run_id)
                assert report.identical, report.to_json()
            report = verify_chain(s, cross_references="fabricated_matches" not in request.fixturenames)
            assert report.ok, [str(p) for p in report.problems]
    finally:
        eng.dispose()
