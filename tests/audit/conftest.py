"""Fixtures for the audit tests (helpers live in audit_world.py)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from audit_world import RULES, load
from sqlalchemy import text

from broker.store.engine import make_engine, upgrade

Factory = Callable[[str], str]


@pytest.fixture
def loaded(run: Any) -> Any:
    """The CLI on a database holding the CF fixture notices and the fixture directory."""
    load(run)
    return run


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    """A copy of rules/ the test may edit (the repository's rules are never touched)."""
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


@pytest.fixture
def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """Makes another empty, migrated database: ``fresh_db("sqlite")`` or ``fresh_db("postgresql")``."""
    cleanups: list[Callable[[], None]] = []

    def make(kind: str) -> str:
        if kind == "sqlite":
            path = tmp_path / f"other-{uuid.uuid4().hex[:8]}.db"
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
            return f"sqlite:///{path}"
        pg_url = os.environ.get("BROKER_TEST_POSTGRES_URL")
        if not pg_url:
            pytest.skip("needs BROKER_TEST_POSTGRES_URL")
        schema = f"broker_audit_{uuid.uuid4().hex[:12]}"
        admin = make_engine(pg_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in pg_url else "?"
        url = f"{pg_url}{sep}options=-csearch_path%3D{schema}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()

        def drop() -> None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

        cleanups.append(drop)
        return url

    yield make
    for cleanup in cleanups:
        cleanup()
