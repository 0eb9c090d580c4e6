"""Meta-tests: the code keeps its own conventions (ruff, including the click ban outside broker/cli)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed in this environment (it is in .[dev])")
    result = subprocess.run([ruff, "check", "broker", "tests", "bench"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _commands():
    import click

    from broker.cli import cli

    def walk(cmd, prefix):
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                yield from walk(sub, [*prefix, name])
        else:
            yield " ".join(prefix), cmd

    return list(walk(cli, []))


def test_every_command_has_help_and_appears_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = _commands()
    assert len(commands) >= 20
    for path, cmd in commands:
        assert (cmd.help or "").strip(), f"`broker {path}` has no help text"
        assert path in readme, f"`broker {path}` is not in README.md"


def test_readme_first_screen_gives_the_two_setup_commands():
    first_screen = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:25])
    assert "make demo" in first_screen and "make test" in first_screen
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
