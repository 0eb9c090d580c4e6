"""Fixtures for the web tests: a seeded database, digests with links, and a TestClient on the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient
from web_world import AS_OF, OFFICER, PASSWORD, Clock, build, make_client, seed

from broker.store.engine import session_factory
from broker.web.officers import add_officer


@pytest.fixture(autouse=True)
def _web_worlds_fabricate_matches(fabricated_matches: None) -> None:
    """The web worlds write matches citing runs that never ran: the suite's chain check skips those links."""


@pytest.fixture
def clock() -> Clock:
    return Clock(AS_OF)


@pytest.fixture
def seeded(engine: Engine, tmp_path: Path, fabricated_matches: None) -> Path:
    """The seeded world with tonight's digests built (with links); returns the outbox."""
    seed(engine)
    outbox = tmp_path / "outbox"
    build(engine, outbox)
    with session_factory(engine).begin() as s:
        add_officer(s, OFFICER, PASSWORD)
    return outbox


@pytest.fixture
def client(engine: Engine, clock: Clock, seeded: Path) -> Iterator[TestClient]:
    with make_client(engine, clock) as c:
        yield c
