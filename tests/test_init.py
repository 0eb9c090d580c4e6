from sqlalchemy import inspect

from broker.store.engine import current_revision, head_revision, make_engine


def test_init_creates_schema_and_is_repeatable(tmp_path):
    from click.testing import CliRunner

    from broker.cli import cli

    url = f"sqlite:///{tmp_path / 'new.db'}"
    runner = CliRunner()
    first = runner.invoke(cli, ["--db", url, "init"])
    assert first.exit_code == 0, first.output
    assert "revision" in first.output
    second = runner.invoke(cli, ["--db", url, "init"])
    assert second.exit_code == 0
    engine = make_engine(url)
    assert current_revision(engine) == head_revision()
    assert {"opportunities", "vcses", "quarantine"} <= set(inspect(engine).get_table_names())


def test_fixture_database_is_migrated(engine):
    assert current_revision(engine) == head_revision()
    assert "opportunities" in inspect(engine).get_table_names()


def test_broker_db_env_var_is_used(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from broker.cli import cli

    monkeypatch.setenv("BROKER_DB", f"sqlite:///{tmp_path / 'env.db'}")
    result = CliRunner().invoke(cli, ["init"])
    assert result.exit_code == 0
    assert (tmp_path / "env.db").exists()


def test_version_and_help():
    from click.testing import CliRunner

    from broker.cli import cli

    assert CliRunner().invoke(cli, ["--version"]).output.startswith("broker, version")
    assert "Usage" in CliRunner().invoke(cli, ["-h"]).output


def test_migrations_match_the_models(engine):
    """Every model change has a migration: autogenerate finds nothing to add on a migrated database."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from broker.store.models import Base

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
