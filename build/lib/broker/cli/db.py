"""``broker init``: create or upgrade the database schema."""

from __future__ import annotations

import click

from broker.cli.common import AppContext, handle_errors, pass_app
from broker.store.engine import upgrade


@click.command("init")
@pass_app
@handle_errors
def init_cmd(app: AppContext) -> None:
    """Create the database, or upgrade it to the current schema (Alembic migrations).

    \b
    Example:
        broker --db sqlite:///broker.db init
    """
    head = upgrade(app.engine)
    url = app.engine.url.render_as_string(hide_password=True)
    click.echo(f"Database {url} is at schema revision {head}.")


def register(cli: click.Group) -> None:
    cli.add_command(init_cmd)
