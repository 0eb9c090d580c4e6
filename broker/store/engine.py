"""Engine and session creation, and schema migration through Alembic.

The engine is created once per command and passed down; core functions take a ``Session``.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from broker.errors import ConfigError, SchemaNotReady
from broker.store import jsoncodec

DEFAULT_DB_URL = "sqlite:///broker.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def database_url(explicit: str | None = None) -> str:
    """The URL to use: an explicit one, else ``BROKER_DB``, else ``broker.db`` in the working directory.

    A value without ``://`` is a SQLite file path (``broker.db``, ``/srv/broker/broker.db``), as other
    SQLite tools take it.
    """
    value = explicit or os.environ.get("BROKER_DB") or DEFAULT_DB_URL
    if "://" not in value and not value.startswith("sqlite:"):
        return f"sqlite:///{value}"
    return value


DB_HINT = "give a file path (--db broker.db) or a URL (sqlite:///broker.db, postgresql+psycopg://user@host/db)"


def parse_url(url: str) -> URL:
    """``url`` parsed, or a ConfigError saying what a database URL looks like."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"database {url.rsplit('@', 1)[-1]!r}: not a database URL: {DB_HINT}") from None


def require_existing_file(url: str) -> None:
    """Refuse a SQLite URL whose file does not exist (every command but ``init`` reads an existing one).

    Raises:
        SchemaNotReady: naming the file and the command that creates it.
    """
    if not url.startswith("sqlite"):
        return
    path = parse_url(url).database
    if path and path != ":memory:" and not path.startswith("file:") and not os.path.exists(path):
        raise SchemaNotReady(f"database {path}: no such file (check --db / BROKER_DB). "
                             "Run `broker init` first.")


def make_engine(url: str | None = None) -> Engine:
    url = database_url(url)
    parse_url(url)
    json = {"json_serializer": jsoncodec.dumps, "json_deserializer": jsoncodec.loads}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60}, **json)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, **json)
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    # With WAL, NORMAL still never corrupts the database; a power cut may lose the last commits only.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> str:
    """Apply every pending migration; returns the head revision."""
    cfg = _alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return head_revision()


def head_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def require_schema(engine: Engine) -> None:
    """Fail with a clear next step when the database is missing migrations."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        state = "is not initialised" if current is None else f"is at revision {current}, code needs {head}"
        raise SchemaNotReady(f"the database {engine.url.render_as_string(hide_password=True)} {state}. "
                             "Run `broker init` first.")
