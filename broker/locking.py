"""One lock per database, so two nightly runs never overlap.

PostgreSQL: a session-level advisory lock on a dedicated connection (released by the server if the process
dies). Other databases (SQLite): an exclusive ``flock`` on two lock files, one keyed by the database file's
identity (device and inode, in the temporary directory) and one beside the file's resolved path. The
first makes a hard link, a symlink or another spelling of the path share the lock (they are the same
file); the second still holds where processes do not share a temporary directory. Both are released by
the kernel if the process dies, so a ``kill -9`` never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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
        # Always in the same order (identity, then path), so two processes never each hold one of the two.
        with ExitStack() as stack:
            for path in lock_paths(engine, name):
                stack.enter_context(_flock(path, wait_seconds))
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


def lock_paths(engine: Engine, name: str) -> list[Path]:
    """The lock files of a database: by file identity (when the file exists) and by resolved path."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).resolve()
        out = []
        try:
            st = os.stat(path)
        except OSError:
            st = None  # not created yet: the path alone
        if st is not None:
            out.append(Path(tempfile.gettempdir()) / f"broker-dev{st.st_dev:x}-ino{st.st_ino}.{name}.lock")
        return [*out, path.with_name(path.name + f".{name}.lock")]
    digest = hashlib.sha256(engine.url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    return [Path(tempfile.gettempdir()) / f"broker-{digest}.{name}.lock"]


def _busy(what: str) -> str:
    return (f"another broker {what} run holds the lock; it is still running. Wait for it to finish, or run "
            "again with --wait SECONDS.")
