"""Shared CLI plumbing: the app context (engine, sessions), JSON output, error handling."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from broker.cli.failures import debugging, describe
from broker.errors import BrokerError
from broker.match.rulesdir import RulesLocation, rules_location
from broker.store.engine import (
    database_url,
    make_engine,
    require_existing_file,
    require_schema,
    session_factory,
)

F = TypeVar("F", bound=Callable[..., Any])


class AppContext:
    """Holds the engine for one command; created lazily so ``--help`` never touches the database."""

    def __init__(self, db_url: str | None) -> None:
        self.db_url = db_url
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.db_url)
        return self._engine

    def sessions(self) -> sessionmaker[Session]:
        """Session factory for a database whose schema is current (else a clear error)."""
        require_existing_file(database_url(self.db_url))  # before SQLite would create an empty one
        require_schema(self.engine)
        return session_factory(self.engine)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


pass_app = click.make_pass_decorator(AppContext)


# click's own ways of ending a command: they carry their message and exit code already.
_CLICK_ENDINGS = (click.ClickException, click.exceptions.Exit, click.Abort)


def fail(exc: Exception) -> None:
    """Print ``exc`` as one ``Error: ...`` line on stderr and exit with its code (never a traceback)."""
    if isinstance(exc, _CLICK_ENDINGS) or (debugging() and not isinstance(exc, BrokerError)):
        raise exc
    if isinstance(exc, BrokenPipeError):  # `broker ... | head`: the reader has all it wanted
        if _has_fd(sys.stdout):  # so the interpreter's final flush does not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)  # 128 + SIGPIPE, as a shell reports it
    ctx = click.get_current_context(silent=True)
    app = ctx.find_object(AppContext) if ctx is not None else None
    message, code = describe(exc, database_url(app.db_url) if app is not None else None)
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _has_fd(stream: Any) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def handle_errors(fn: F) -> F:
    """Turn core errors, and database, file and network failures, into ``Error: ...`` and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 (each kind gets its own message in describe)
            fail(exc)

    return wrapper  # type: ignore[return-value]


class BrokerGroup(click.Group):
    """The command group: a failure anywhere under it (not only inside a command) is one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:  # noqa: BLE001
            fail(exc)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False, default=str))


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Output one JSON document.")(fn)  # type: ignore[return-value]


def _rules_location(ctx: click.Context, param: click.Parameter, value: str | None) -> RulesLocation:
    from_env = ctx.get_parameter_source(param.name or "") == click.core.ParameterSource.ENVIRONMENT
    try:
        return rules_location(value, "BROKER_RULES" if from_env else "--rules")
    except BrokerError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def rules_option(fn: F) -> F:
    """``--rules DIR`` (or ``BROKER_RULES``); the command gets a RulesLocation (the shipped rules by default)."""
    return click.option("--rules", "rules_dir", envvar="BROKER_RULES", default=None, metavar="DIR",
                        type=click.Path(file_okay=False), callback=_rules_location,
                        help="Folder of rule files (default: the rules shipped with broker). Env: BROKER_RULES.",
                        )(fn)  # type: ignore[return-value]


def show_progress() -> bool:
    """Progress bars only on an interactive terminal (silent under cron, pipes and --json)."""
    return sys.stderr.isatty()


def register_commands(cli: click.Group) -> None:
    from broker.cli import audit as audit_cmds
    from broker.cli import db as db_cmds
    from broker.cli import digest as digest_cmds
    from broker.cli import directory as directory_cmds
    from broker.cli import evaluation as evaluation_cmds
    from broker.cli import fetch as fetch_cmds
    from broker.cli import ingest as ingest_cmds
    from broker.cli import match as match_cmds
    from broker.cli import nightly as nightly_cmds
    from broker.cli import opportunities as opportunities_cmds
    from broker.cli import rules as rules_cmds
    from broker.cli import target as target_cmds
    from broker.cli import web as web_cmds

    for module in (db_cmds, ingest_cmds, opportunities_cmds, fetch_cmds, directory_cmds, rules_cmds,
                   match_cmds, digest_cmds, target_cmds, nightly_cmds, audit_cmds, evaluation_cmds, web_cmds):
        module.register(cli)
