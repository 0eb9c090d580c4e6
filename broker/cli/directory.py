"""``broker directory``: import the officers' VCSE and consortium spreadsheets; list and show entries."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from broker.cli.common import AppContext, echo_json, handle_errors, json_option, pass_app
from broker.directory import import_directory, list_directory, show_entry
from broker.directory.importer import FileSummary

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("directory")
def directory_group() -> None:
    """VCSEs and consortia: import the officers' spreadsheets, list and show entries."""


@directory_group.command("import")
@click.argument("vcses", type=_FILE)
@click.option("--consortia", type=_FILE, default=None, help="consortia.csv to import after the VCSEs.")
@json_option
@pass_app
@handle_errors
def import_cmd(app: AppContext, vcses: Path, consortia: Path | None, as_json: bool) -> None:
    """Import VCSES (vcses.csv) and optionally consortia.csv, row by row.

    Good rows are imported even when others fail; each bad row is reported with its file, row number and
    field, and the command then exits 1. Re-importing an unchanged file changes nothing.

    \b
    Example:
        broker directory import fixtures/directory/vcses.csv --consortia fixtures/directory/consortia.csv
    """
    with app.sessions().begin() as session:
        report = import_directory(session, vcses, consortia)
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    for error in report.errors:
        click.echo(f"Error: {error}", err=True)
    if as_json:
        echo_json(report.to_json())
    else:
        for summary in (report.vcses, report.consortia):
            if summary is not None:
                click.echo(_summary_line(summary))
    if report.failed:
        click.echo("Rows with errors were not imported; fix them and run the import again.", err=True)
        sys.exit(1)


def _summary_line(s: FileSummary) -> str:
    return (f"{s.file}: {s.rows} rows: {s.new} new, {s.updated} updated, {s.unchanged} unchanged, "
            f"{s.errors} errors")


@directory_group.command("list")
@click.option("--cluster", default=None, help="Only this cluster's VCSEs (and consortia with a member in it).")
@click.option("--limit", type=click.IntRange(1, 10**9), default=None, help="Show at most N of each.")
@json_option
@pass_app
@handle_errors
def list_cmd(app: AppContext, cluster: str | None, limit: int | None, as_json: bool) -> None:
    """List VCSEs and consortia, by id.

    \b
    Example:
        broker directory list --cluster "Ward End" --limit 10
    """
    with app.sessions()() as session:
        data = list_directory(session, cluster=cluster, limit=limit)
    if as_json:
        echo_json(data)
        return
    click.echo(f"VCSEs: {len(data['vcses'])} of {data['total_vcses']}")
    _table(["id", "name", "form", "cluster", "authority", "max value", "digest"],
           [[v["id"], v["name"], v["legal_form"] or "", v["cluster"] or "", v["local_authority"],
             _money(v["max_contract_value_pence"]), "yes" if v["digest_opt_in"] else "no"] for v in data["vcses"]])
    click.echo(f"\nConsortia: {len(data['consortia'])} of {data['total_consortia']}")
    _table(["id", "name", "lead", "members", "max value"],
           [[c["id"], c["name"], c["lead_id"], str(len(c["member_ids"])), _money(c["max_contract_value_pence"])]
            for c in data["consortia"]])


@directory_group.command("show")
@click.argument("entry_id", metavar="ID")
@json_option
@pass_app
@handle_errors
def show_cmd(app: AppContext, entry_id: str, as_json: bool) -> None:
    """Show one VCSE or consortium (with its members) by ID.

    \b
    Example:
        broker directory show wm-0001
    """
    with app.sessions()() as session:
        data = show_entry(session, entry_id)
    if as_json:
        echo_json(data)
        return
    skip = {"members", "capabilities", "kind"}
    for key, value in data.items():
        if key not in skip:
            click.echo(f"{key:26} {_display(key, value)}")
    click.echo(f"capabilities{' (derived)' if data.get('capabilities_derived') else ''}:")
    click.echo("  " + str(data["capabilities"]).replace("\n", "\n  "))
    if data["kind"] == "consortium":
        click.echo("members:")
        _table(["id", "name", "cluster", "max value"],
               [[m["id"], m["name"], m["cluster"] or "", _money(m["max_contract_value_pence"])]
                for m in data["members"]])


def _display(key: str, value: Any) -> str:
    if key.endswith("_pence"):
        return _money(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value) or "-"
    return "-" if value is None else str(value)


def _money(pence: int | None) -> str:
    return "-" if pence is None else f"£{pence // 100:,}" + (f".{pence % 100:02d}" if pence % 100 else "")


def _table(header: list[str], rows: list[list[str]], width: int = 36) -> None:
    """A compact left-aligned table; long cells are cut with an ellipsis."""
    cells = [[c if len(c) <= width else c[: width - 1] + "…" for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def register(cli: click.Group) -> None:
    cli.add_command(directory_group)
