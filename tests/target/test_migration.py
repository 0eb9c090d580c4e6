"""Migration 0003 creates exactly the ledger tables the models describe, and can be undone."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from broker.store.engine import _alembic_config, current_revision, make_engine, upgrade
from broker.store.models import Base

LEDGER = {"target_batches", "target_entries"}


def _table_of(diff) -> str | None:
    for part in diff if isinstance(diff, tuple) else diff[0]:
        for attr in ("table", "name"):
            obj = getattr(part, attr, None)
            name = getattr(obj, "name", obj) if obj is not None else None
            if name in LEDGER:
                return name
        if isinstance(part, str) and part in LEDGER:
            return part
    return None


def test_models_and_migration_agree(engine):
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if _table_of(d)] == []


def test_downgrade_and_upgrade_again(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    cfg = _alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    assert LEDGER.isdisjoint(inspect(engine).get_table_names())
    assert current_revision(engine) == "0002"
    upgrade(engine)
    assert LEDGER <= set(inspect(engine).get_table_names())
    engine.dispose()
