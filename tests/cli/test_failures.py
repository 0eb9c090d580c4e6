"""The set-up mistakes a newcomer makes first: one line naming the thing and the next step, no traceback."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from broker.cli import cli
from broker.store.engine import database_url


def _broker(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("BROKER_DB", "BROKER_DEBUG", "BROKER_RULES"):
        monkeypatch.delenv(name, raising=False)


def test_a_sqlite_file_in_a_missing_folder(tmp_path):
    result = _broker("--db", f"sqlite:///{tmp_path}/missing/dir/x.db", "init")
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"Error: database {tmp_path}/missing/dir/x.db: its folder does not exist: "
                                     f"create {tmp_path}/missing/dir (or give another --db) and try again")


def test_a_refused_postgresql_connection_hides_the_password():
    url = f"postgresql+psycopg://broker:s3cret@127.0.0.1:{_free_port()}/broker?connect_timeout=3"
    result = _broker("--db", url, "init")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert line.startswith("Error: database postgresql+psycopg://broker:***@127.0.0.1:")
    assert "cannot connect" in line and "start the server or check --db / BROKER_DB" in line
    assert "s3cret" not in result.output and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("url", ["postgres://u@h/db", "foo://bar", "http://::1]"])
def test_urls_that_are_not_database_urls(url):
    result = _broker("--db", url, "opportunities", "list")
    assert result.exit_code == 1
    assert "Error: database" in result.stderr and "give a file path (--db broker.db)" in result.stderr


def test_a_plain_file_path_is_a_sqlite_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert database_url("broker.db") == "sqlite:///broker.db"
    assert database_url("/srv/b.db") == "sqlite:////srv/b.db"
    assert _broker("--db", "broker.db", "init").exit_code == 0
    assert (tmp_path / "broker.db").is_file()
    listed = _broker("--db", "broker.db", "opportunities", "list")
    assert listed.exit_code == 0, listed.output


def test_a_missing_database_is_not_created_by_reading_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _broker("--db", "foo", "opportunities", "list")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: database foo: no such file (check --db / BROKER_DB). "
                                     "Run `broker init` first.")
    assert not (tmp_path / "foo").exists()


def test_a_file_that_is_not_a_database(tmp_path):
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    result = _broker("--db", str(tmp_path / "notes.txt"), "opportunities", "list")
    assert result.exit_code == 1
    assert "this file is not a SQLite database" in result.stderr


def test_nightly_with_a_missing_inbox(tmp_path):
    assert _broker("--db", str(tmp_path / "b.db"), "init").exit_code == 0
    result = _broker("--db", str(tmp_path / "b.db"), "nightly", "--inbox", str(tmp_path / "nope"),
                     "--outbox", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "'--inbox'" in result.stderr and "does not exist" in result.stderr


def test_an_unexpected_failure_is_one_line_and_debug_shows_it(tmp_path, monkeypatch):
    import broker.cli.db as db_cmd

    def boom(engine):
        raise KeyError("surprise")

    monkeypatch.setattr(db_cmd, "upgrade", boom)
    result = _broker("--db", str(tmp_path / "b.db"), "init")
    assert result.exit_code == 70
    assert result.stderr.startswith("Error: unexpected KeyError: 'surprise' (a bug in broker")
    monkeypatch.setenv("BROKER_DEBUG", "1")
    debug = CliRunner().invoke(cli, ["--db", str(tmp_path / "b.db"), "init"])
    assert isinstance(debug.exception, KeyError)
