"""Fixtures for the web tests: a seeded database, digests with links, and a TestClient on the app."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient
from web_world import AS_OF, OFFICER, PASSWORD, SECRET, build, seed

from broker.store.engine import session_factory
from broker.web.app import WebConfig, create_app
from broker.web.officers import add_officer


class Clock:
    """The business date the app sees; tests move it on."""

    def __init__(self, day: date) -> None:
        self.day = day

    def __call__(self) -> date:
        return self.day


@pytest.fixture
def clock() -> Clock:
    return Clock(AS_OF)


@pytest.fixture
def seeded(engine: Engine, tmp_path: Path) -> Path:
    """The seeded world with tonight's digests built (with links); returns the outbox."""
    seed(engine)
    outbox = tmp_path / "outbox"
    build(engine, outbox)
    with session_factory(engine).begin() as s:
        add_officer(s, OFFICER, PASSWORD)
    return outbox


def make_client(engine: Engine, clock: Clock, **overrides: object) -> TestClient:
    config = WebConfig(secret=SECRET, secure_cookies=False, clock=clock, **overrides)  # type: ignore[arg-type]
    return TestClient(create_app(engine, config), base_url="http://127.0.0.1:8080", follow_redirects=False)


@pytest.fixture
def client(engine: Engine, clock: Clock, seeded: Path) -> Iterator[TestClient]:
    with make_client(engine, clock) as c:
        yield c
