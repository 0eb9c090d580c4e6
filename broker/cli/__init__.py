"""The ``broker`` command line: a thin layer over the core. Only this package imports click.

Every command opens the database given by ``--db`` (or ``BROKER_DB``), calls the core, and turns
``BrokerError`` into a message and an exit code (0 ok, 1 domain error, 2 usage, 3 replay differs). Database,
file and network failures are one line too (broker/cli/failures.py); never a traceback.
"""

from __future__ import annotations

import logging
import sys

import click

from broker import __version__
from broker.cli.common import AppContext, BrokerGroup, register_commands


@click.group(cls=BrokerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="broker")
@click.option("--db", "db_url", envvar="BROKER_DB", default=None, metavar="URL",
              help="SQLite file path or SQLAlchemy URL (default: broker.db). Env: BROKER_DB.")
@click.pass_context
def cli(ctx: click.Context, db_url: str | None) -> None:
    """Procurement brokerage matcher: ingest opportunities, match them to VCSEs, count brokered value.

    \b
    Start with:
        broker init
        broker ingest fixtures/opportunities
        broker directory import fixtures/directory/vcses.csv
    """
    ctx.obj = AppContext(db_url)
    ctx.call_on_close(ctx.obj.close)


register_commands(cli)


def main() -> None:
    _log_warnings_to_stderr()
    cli(prog_name="broker")


def _log_warnings_to_stderr() -> None:
    """Warnings from the core (unknown columns, re-encoded files) reach the officer on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("Warning: %(message)s"))
    logger = logging.getLogger("broker")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)


if __name__ == "__main__":  # pragma: no cover
    main()
