"""Bad paths, URLs, dates, ids and options fed to every command: one clean line, never a traceback.

Every command is walked from the click tree (a new command is fuzzed without touching this file). Each
example builds one command line from the command's own parameters: arguments always get a bad value,
options sometimes do, and sometimes the database URL or an unknown option is bad too. The assertions:
no exception escapes (only click's own exits), no "unexpected" bug exit (70), and when the example holds a
value that cannot be right (a bad database, a date that does not exist, an id nothing has, a missing file,
an unknown option) the exit is non-zero with an ``Error:`` line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.cli import cli
from broker.store.engine import make_engine, upgrade

DATE_OPTIONS = {"--as-of", "--date", "--since", "--until", "--before", "--open-on"}
BAD_DATES = ["31/02/2020", "2020-13-01", "2020-02-30", "yesterday", "0000-00-00", "20200416x", "-1", "",
             "9" * 30, "2020-04-16T25:00"]
BAD_IDS = ["nope", "wm-9999", "ocds-b5fd17-" + "0" * 300, "\x1b]0;pwned\x07\x1b[2J", "run-999999", "' OR 1=1 --",
           "%s%n", "\u202egnp.exe", "../../etc/passwd", " "]
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
# Commands that go to the network: pointed at a port nothing listens on, so a failure is immediate.
OFFLINE = {"fetch contracts-finder": ["--base-url", "http://127.0.0.1:9", "--retries", "0", "--max-wait", "0"],
           "fetch find-a-tender": ["--base-url", "http://127.0.0.1:9", "--retries", "0", "--max-wait", "0"],
           "digest send": ["--smtp", "127.0.0.1:9", "--max-attempts", "1"],
           "nightly": ["--smtp", "127.0.0.1:9"]}
# Commands that never open the --db database.
NO_DATABASE = {"rules check", "eval"}
# Commands that change nothing unless told which thing to change: a bad id or file is an error for them.
ID_TAKERS = {"audit explain", "audit export", "audit replay", "digest show", "directory show", "matches show",
             "opportunities show", "outcome record", "preferences set", "preferences show", "feedback"}


def _commands() -> list[tuple[str, click.Command]]:
    def walk(cmd: click.Command, prefix: list[str]):
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                yield from walk(sub, [*prefix, name])
        else:
            yield " ".join(prefix), cmd
    return list(walk(cli, []))


COMMANDS = _commands()
# Bounded for the suite (a few seconds a command); raise it for a longer hunt.
EXAMPLES = int(os.environ.get("BROKER_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty database, copied for each example (a command may change it)."""
    db = tmp_path_factory.mktemp("fuzz") / "broker.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    engine.dispose()
    return db


def _world(root: Path, template: Path) -> dict[str, Path]:
    """The database and the bad files one example runs against, made afresh in ``root``."""
    shutil.copyfile(template, root / "broker.db")
    (root / "garbage.csv").write_bytes(b"\xff\xfe\x00garbage,\x00\n\x1b[2J" * 20)
    (root / "empty.csv").write_bytes(b"")
    (root / "folder").mkdir()
    (root / "not_a_db.db").write_text("hello", encoding="utf-8")
    return {"root": root, "db": root / "broker.db"}


def _bad_paths(world: dict[str, Path]) -> list[str]:
    root = world["root"]
    return [str(root / "missing.csv"), str(root / "folder"), str(root / "garbage.csv"), str(root / "empty.csv"),
            str(root / "missing" / "deeper" / "x.csv"), "/dev/null/x", ""]


def _bad_dbs(world: dict[str, Path]) -> list[str]:
    root = world["root"]
    return ["sqlite:////missing/dir/x.db", "postgres://user:secret@127.0.0.1:9/x", "foo://bar",
            "postgresql+psycopg://postgres@127.0.0.1:9/x?connect_timeout=2", str(root / "folder"),
            str(root / "not_a_db.db"), "sqlite:///" + str(root / "never_made.db"), "http://::1]"]


def _value(draw, param: click.Parameter, world: dict[str, Path]) -> tuple[str, bool]:
    """A value for ``param`` and whether it is certainly wrong."""
    name = param.opts[0]
    if name in DATE_OPTIONS:
        return draw(st.sampled_from(BAD_DATES)), True
    kind = param.type
    if isinstance(kind, click.Path | click.File):
        path = draw(st.sampled_from(_bad_paths(world)))
        return path, isinstance(param, click.Argument) and path != str(world["root"] / "folder")
    if isinstance(kind, click.IntRange | click.FloatRange) or kind in (click.INT, click.FLOAT):
        return draw(st.sampled_from(["-1", "-99999999999999999999", "1e400", "nan", "abc", "", "0x10"])), False
    if isinstance(kind, click.Choice):
        return draw(st.sampled_from(["nope", "", "ALL", "Test"]) | TEXT), False
    return draw(st.sampled_from(BAD_IDS) | TEXT), False


@st.composite
def command_lines(draw, command: click.Command, path: str, world: dict[str, Path]) -> tuple[list[str], bool]:
    args: list[str] = []
    certain = False
    db = f"sqlite:///{world['db']}"
    if draw(st.integers(0, 3)) == 0:
        db = draw(st.sampled_from(_bad_dbs(world)))
        # Wrong for every command that opens the database, except a new file for `init` (which makes it).
        certain = path not in NO_DATABASE and not (path == "init" and db.endswith("never_made.db"))
    for param in command.params:
        if isinstance(param, click.Argument):
            if not param.required and draw(st.booleans()):
                continue
            value, wrong = _value(draw, param, world)
            args.append(value)
            certain = certain or wrong or path in ID_TAKERS
        elif getattr(param, "is_flag", False):
            if draw(st.integers(0, 3)) == 0:
                args.append(param.opts[0])
        elif param.name not in ("smtp_server", "base_url") and draw(st.integers(0, 2)) == 0:
            value, wrong = _value(draw, param, world)
            args += [param.opts[0], value]
            certain = certain or wrong
    if draw(st.integers(0, 7)) == 0:
        args.insert(draw(st.integers(0, len(args))), "--no-such-option")
        certain = True
    return ["--db", db, *path.split(), *OFFLINE.get(path, []), *args], certain


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_bad_input_is_one_clean_line(path, command, template, tmp_path, monkeypatch):
    for name in ("BROKER_DB", "BROKER_DEBUG", "BROKER_RULES"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    # Paths are drawn for a world under this fixed folder, made afresh (and emptied) for every example.
    world = {"root": tmp_path / "world", "db": tmp_path / "world" / "broker.db"}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(command_lines(command, path, world))
    def check(example: tuple[list[str], bool]) -> None:
        argv, certain = example
        shutil.rmtree(world["root"], ignore_errors=True)
        world["root"].mkdir()
        _world(world["root"], template)
        # A folder of its own: commands with relative defaults (outbox/, broker.db) write there.
        with tempfile.TemporaryDirectory(dir=tmp_path) as cwd, contextlib.chdir(cwd):
            result = runner.invoke(cli, argv)
        shown = f"broker {' '.join(map(repr, argv))}\n{result.output}"
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            shown + f"\n{type(result.exception).__name__}: {result.exception}")
        assert "Traceback" not in result.output, shown
        assert result.exit_code != 70, shown  # the "unexpected failure" exit: a case describe() misses
        if certain:
            assert result.exit_code != 0, shown
        if result.exit_code != 0:
            # Said in words: one error line, or the command's own report (an ingest's quarantine list).
            assert result.output.strip(), shown
            assert sum(line.startswith("Error:") for line in result.stderr.splitlines()) <= 1, shown

    check()
