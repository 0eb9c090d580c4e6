"""``broker opportunities list|show``."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import click

from broker.cli.common import AppContext, echo_json, handle_errors, json_option, pass_app
from broker.errors import BrokerError, NotFound
from broker.normalise.dates import LONDON, parse_business_date
from broker.store.opportunities import as_json as opportunity_json
from broker.store.opportunities import find_opportunity, list_opportunities


@click.group("opportunities")
def opportunities_group() -> None:
    """Read the stored opportunities."""


@opportunities_group.command("list")
@click.option("--open-on", "open_on", metavar="DATE", help="Only those open on this date (YYYY-MM-DD or dd/mm/yyyy).")
@click.option("--status", type=click.Choice(["planned", "open", "closed", "cancelled", "awarded"]))
@click.option("--cluster", help="Only those located in this cluster.")
@click.option("--limit", type=click.IntRange(1, 10**9), default=None, help="Show at most N.")
@json_option
@pass_app
@handle_errors
def list_cmd(app: AppContext, open_on: str | None, status: str | None, cluster: str | None,
             limit: int | None, as_json: bool) -> None:
    """List opportunities, soonest deadline first.

    \b
    Example:
        broker opportunities list --open-on 2020-04-16 --json
    """
    window = _day_window(open_on) if open_on is not None else None
    with app.sessions()() as session:
        rows = list_opportunities(session, open_on=window, status=status, cluster=cluster, limit=limit)
        data = [opportunity_json(r, full=False) for r in rows]
    if as_json:
        echo_json(data)
        return
    if not data:
        click.echo("No opportunities.")
    for o in data:
        value = _money(o["value_min_pence"], o["value_max_pence"])
        deadline = (o["deadline"] or "no deadline")[:10]
        click.echo(f"{o['id'][:48]:48}  {o['status']:9} {deadline:11} {value:>21}  "
                   f"{(o['cluster'] or o['local_authority'] or '-')[:18]:18}  {o['title'][:60]}")
    click.echo(f"{len(data)} opportunities.")


@opportunities_group.command("show")
@click.argument("ident")
@json_option
@pass_app
@handle_errors
def show_cmd(app: AppContext, ident: str, as_json: bool) -> None:
    """Show one opportunity in full (by id, ocid or publisher identifier)."""
    with app.sessions()() as session:
        row = find_opportunity(session, ident)
        if row is None:
            raise NotFound(f"no opportunity {ident!r}. Try `broker opportunities list`.")
        data = opportunity_json(row)
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        if key == "description":
            continue
        click.echo(f"{key:24} {value}")
    click.echo("")
    click.echo(data["description"])


def _day_window(text: str) -> tuple[datetime, datetime]:
    try:
        day = parse_business_date(text)
    except ValueError as exc:
        raise BrokerError(f"--open-on: {exc}") from None
    start = datetime.combine(day, time(0), tzinfo=LONDON)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=LONDON) - timedelta(seconds=1)
    return start.astimezone(UTC), end.astimezone(UTC)


def _money(lo: int | None, hi: int | None) -> str:
    if lo is None and hi is None:
        return "value unknown"
    if lo == hi or hi is None:
        return f"£{(lo or 0) / 100:,.0f}"
    return f"£{(lo or 0) / 100:,.0f}-£{hi / 100:,.0f}"


def register(cli: click.Group) -> None:
    cli.add_command(opportunities_group)
