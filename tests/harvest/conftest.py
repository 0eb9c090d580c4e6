"""Fixtures for the harvest tests: a real local HTTP server (stopped at test end), a fake clock, real pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from harvest_helpers import FakeClock, LocalApi, load_real_cf_page, local_api


@pytest.fixture
def api() -> Iterator[LocalApi]:
    with local_api() as state:
        yield state


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def cf_real_page() -> dict[str, Any]:
    return load_real_cf_page()
