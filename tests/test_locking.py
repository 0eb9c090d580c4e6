"""The nightly lock belongs to the database, not to the name it was opened by: a hard link, a symlink or
another spelling of the path to the same SQLite file shares it; PostgreSQL's lock is inside the server."""

from __future__ import annotations

import os

import pytest

from broker.locking import LockBusy, exclusive, lock_paths
from broker.store.engine import make_engine


def _engine(url: str):  # type: ignore[no-untyped-def]
    return make_engine(url)


def test_a_hard_link_to_the_same_database_shares_the_lock(db_url, tmp_path):
    if not db_url.startswith("sqlite"):
        pytest.skip("a file-identity lock is for SQLite; PostgreSQL is tested below")
    original = db_url.removeprefix("sqlite:///")
    other_dir = tmp_path / "elsewhere"
    other_dir.mkdir()
    linked = other_dir / "same.db"
    os.link(original, linked)
    symlinked = tmp_path / "sym.db"
    symlinked.symlink_to(original)
    first = _engine(db_url)
    try:
        with exclusive(first):
            for alias in (f"sqlite:///{linked}", f"sqlite:///{symlinked}",
                          f"sqlite:///{os.path.relpath(original)}"):
                engine = _engine(alias)
                try:
                    with pytest.raises(LockBusy, match="holds the lock"), exclusive(engine):
                        pass
                finally:
                    engine.dispose()
        # Released: the hard link can take it now.
        engine = _engine(f"sqlite:///{linked}")
        try:
            with exclusive(engine):
                pass
        finally:
            engine.dispose()
    finally:
        first.dispose()


def test_the_hard_link_and_the_original_have_one_identity_lock_file(db_url, tmp_path):
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite only")
    original = db_url.removeprefix("sqlite:///")
    linked = tmp_path / "linked.db"
    os.link(original, linked)
    a, b = _engine(db_url), _engine(f"sqlite:///{linked}")
    try:
        assert lock_paths(a, "nightly")[0] == lock_paths(b, "nightly")[0]  # keyed by device and inode
        assert lock_paths(a, "nightly")[1] != lock_paths(b, "nightly")[1]  # beside each path
    finally:
        a.dispose()
        b.dispose()


def test_another_database_is_not_blocked(db_url, tmp_path, sqlite_template):
    other_path = tmp_path / "other.db"
    other_path.write_bytes(sqlite_template.read_bytes())
    first, other = _engine(db_url), _engine(f"sqlite:///{other_path}")
    try:
        with exclusive(first), exclusive(other):
            pass
    finally:
        first.dispose()
        other.dispose()


def test_two_engines_on_one_database_exclude_each_other(db_url):
    first, second = _engine(db_url), _engine(db_url)
    try:
        with exclusive(first):
            with pytest.raises(LockBusy), exclusive(second):
                pass
        with exclusive(second):
            pass
    finally:
        first.dispose()
        second.dispose()
