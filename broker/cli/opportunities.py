"""``broker opportunities list|show``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any

import click

from broker.cli.common import AppContext, echo_json, handle_errors, json_option, pass_app
from broker.cli.output import emit, output_options, safe, table
from broker.digest.formatting import long_date
from broker.errors import BrokerError, NotFound
from broker.normalise.dates import LONDON, parse_business_date
from broker.store.opportunities import as_json as opportunity_json
from broker.store.opportunities import find_opportunity, list_opportunities


@click.group("opportunities")
def opportunities_group() -> None:
    """Read the stored opportunities."""


LIST_COLUMNS = ("id", "status", "deadline", "value_min_pence", "value_max_pence", "cluster", "local_authority",
                "buyer", "title", "vcse_suitable", "cpv", "source_ids")


@opportunities_group.command("list")
@click.option("--open-on", "open_on", metavar="DATE", help="Only those open on this date (YYYY-MM-DD or dd/mm/yyyy).")
@click.option("--status", type=click.Choice(["planned", "open", "closed", "cancelled", "awarded"],
                                            case_sensitive=False))
@click.option("--cluster", help="Only those located in this cluster.")
@click.option("--limit", type=click.IntRange(1, 10**9), default=None, help="Show at most N.")
@output_options
@pass_app
@handle_errors
def list_cmd(app: AppContext, open_on: str | None, status: str | None, cluster: str | None,
             limit: int | None, output: str) -> None:
    """List opportunities, soonest deadline first (full ids: `opportunities show` takes them, or a start).

    \b
    Example:
        broker opportunities list --open-on 2020-04-16 --csv > open.csv
    """
    window = _day_window(open_on) if open_on is not None else None
    with app.sessions()() as session:
        rows = list_opportunities(session, open_on=window, status=status.lower() if status else None,
                                  cluster=cluster, limit=limit)
        data = [opportunity_json(r, full=False) for r in rows]
    emit(data, output, LIST_COLUMNS, _print_list)


def _print_list(data: Sequence[Mapping[str, Any]]) -> None:
    if not data:
        click.echo("No opportunities.")
        return
    table(["id", "status", "deadline", "value", "where", "title"],
          [[o["id"], o["status"], (o["deadline"] or "none")[:10], _money(o["value_min_pence"], o["value_max_pence"]),
            o["cluster"] or o["local_authority"] or "-", o["title"]] for o in data])
    click.echo(f"{len(data)} opportunities.")


@opportunities_group.command("show")
@click.argument("ident")
@json_option
@pass_app
@handle_errors
def show_cmd(app: AppContext, ident: str, as_json: bool) -> None:
    """Show one opportunity in full: by id (or its start), ocid, or the publisher's notice identifier.

    \b
    Example:
        broker opportunities show tender_237003/846062
    """
    with app.sessions()() as session:
        row = find_opportunity(session, ident)
        if row is None:
            raise NotFound(f"no opportunity {safe(ident)!r}. Try `broker opportunities list`.")
        data = opportunity_json(row)
    if as_json:
        echo_json(data)
        return
    for label, value in _human_fields(data):
        click.echo(f"{label:18} {safe(value)}")
    click.echo("")
    click.echo(safe(data["description"], one_line=False))


def _human_fields(o: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """An opportunity in the units people read: pounds, UK dates, CPV codes with their labels."""
    labels = o.get("cpv_labels") or {}
    cpv = "; ".join(f"{c} {labels.get(c) or '(not in CPV 2008)'}" for c in o["cpv"]) or "-"
    where = ", ".join(p for p in (o.get("local_authority"), o.get("postcode"), o.get("region")) if p) or "-"
    return [
        ("id", o["id"]), ("title", o["title"]), ("buyer", o["buyer"] or "-"), ("status", o["status"]),
        ("notice type", o.get("notice_type") or "-"),
        ("value", _money(o["value_min_pence"], o["value_max_pence"]) + (
            f" (as published: {o['value_original']})" if o.get("value_original") else "")),
        ("deadline", _uk_time(o["deadline"])), ("published", _uk_time(o["published"])),
        ("contract", f"{_uk_day(o.get('contract_start'))} to {_uk_day(o.get('contract_end'))}"),
        ("where", where + (" (anywhere in the UK)" if o.get("nationwide") else "")),
        ("cluster", o["cluster"] or "-"), ("CPV", cpv),
        ("VCSE suitable", _yes_no(o["vcse_suitable"])), ("SME suitable", _yes_no(o.get("sme_suitable"))),
        ("framework / DPS", f"{_yes_no(o.get('is_framework'))} / {_yes_no(o.get('is_dps'))}"),
        ("reserved for", "; ".join(o.get("reserved_participation") or []) or "-"),
        ("notice", o.get("url") or "-"), ("ocid", o.get("ocid") or "-"),
        ("publisher ids", "; ".join(o["source_ids"]) or "-"), ("source", o["source"]),
    ]


def _uk_time(iso: str | None) -> str:
    if not iso:
        return "-"
    local = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(LONDON)
    return f"{long_date(local.date())}, {local:%H:%M}"


def _uk_day(iso: str | None) -> str:
    return long_date(datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(LONDON).date()) if iso else "?"


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


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
