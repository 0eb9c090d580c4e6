"""Fixtures for the digest tests (the helpers themselves live in digest_world.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from digest_world import World
from sqlalchemy.orm import Session


@pytest.fixture
def world(session: Session, tmp_path: Path, fabricated_matches: None) -> World:
    return World(session, tmp_path / "outbox")


@pytest.fixture
def calls() -> tuple[list[tuple[Any, ...]], Callable[..., None]]:
    """A recording stand-in for the target ledger's hooks (the real one lives in broker.target)."""
    seen: list[tuple[Any, ...]] = []

    def hook(session: Session, opportunity_id: str, party_id: str, **kw: Any) -> None:
        seen.append((opportunity_id, party_id, tuple(sorted(kw.items()))))

    return seen, hook
