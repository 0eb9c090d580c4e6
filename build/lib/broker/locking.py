"""One lock per database, so two nightly runs never overlap.

PostgreSQL: a session-level advisory lock on a dedicated connection (released by the server if the process
dies). Other databases (SQLite): an exclusive ``flock`` on a lock file beside the database file (released by
the kernel if the process dies). Either way a ``kill -9`` never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from broker.errors import BrokerError

ADVISORY_KEY = 0x62726F6B  # "brok"


class LockBusy(BrokerError):
    """Another nightly run holds the lock."""


@contextmanager
def exclusive(engine: Engine, *, wait_seconds: float = 0.0, name: str = "nightly") -> Iterator[None]:
    """Hold the database's ``name`` lock for the block; wait up to ``wait_seconds`` for it, else LockBusy."""
    if engine.dialect.name == "postgresql":
        with _advisory(engine, wait_seconds, name):
            yield
    else:
        with _flock(_lock_path(engine, name), wait_seconds):
            yield


@contextmanager
def _advisory(engine: Engine, wait_seconds: float, name: str) -> Iterator[None]:
    with engine.connect() as conn:
        # One lock per database *schema*: two brokers may share a PostgreSQL database in separate schemas.
        schema = conn.execute(text("SELECT current_schema()")).scalar() or ""
        key = ADVISORY_KEY ^ int(hashlib.sha256(f"{name}/{schema}".encode()).hexdigest()[:7], 16)
        deadline = time.monotonic() + wait_seconds
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            conn.rollback()
            if time.monotonic() >= deadline:
                raise LockBusy(_busy(name))
            time.sleep(1.0)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


@contextmanager
def _flock(path: Path, wait_seconds: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(_busy(path.name)) from None
                time.sleep(1.0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _lock_path(engine: Engine, name: str) -> Path:
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        return Path(database).resolve().with_name(Path(database).name + f".{name}.lock")
    digest = hashlib.sha256(engine.url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"broker-{digest}.{name}.lock"


def _busy(what: str) -> str:
    return (f"another broker {what} run holds the lock; it is still running. Wait for it to finish, or run "
            "again with --wait SECONDS.")
