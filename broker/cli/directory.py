"""``broker directory``: import the officers' VCSE and consortium spreadsheets; list and show entries."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from broker.cli.common import AppContext, echo_json, handle_errors, json_option, pass_app
from broker.cli.output import emit, output_options, safe, table
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


DIRECTORY_COLUMNS = ("kind", "id", "name", "legal_form", "cluster", "local_authority", "lead_id", "member_ids",
                     "max_contract_value_pence", "digest_opt_in")


@directory_group.command("list")
@click.option("--cluster", default=None, help="Only this cluster's VCSEs (and consortia with a member in it).")
@click.option("--limit", type=click.IntRange(1, 10**9), default=None, help="Show at most N of each.")
@output_options
@pass_app
@handle_errors
def list_cmd(app: AppContext, cluster: str | None, limit: int | None, output: str) -> None:
    """List VCSEs and consortia, by id (``--json`` gives both lists and their totals in one document).

    \b
    Example:
        broker directory list --cluster "Ward End" --limit 10
    """
    with app.sessions()() as session:
        data = list_directory(session, cluster=cluster, limit=limit)
    if output == "json":
        echo_json(data)
        return
    rows = ([{"kind": "vcse", **v} for v in data["vcses"]] +
            [{"kind": "consortium", **c} for c in data["consortia"]])
    emit(rows, output, DIRECTORY_COLUMNS, lambda _: _print_directory(data))


def _print_directory(data: dict[str, Any]) -> None:
    click.echo(f"VCSEs: {len(data['vcses'])} of {data['total_vcses']}")
    table(["id", "name", "form", "cluster", "authority", "max value", "digest"],
          [[v["id"], v["name"], v["legal_form"] or "", v["cluster"] or "", v["local_authority"],
            _money(v["max_contract_value_pence"]), "yes" if v["digest_opt_in"] else "no"] for v in data["vcses"]],
          cut=36)
    click.echo(f"\nConsortia: {len(data['consortia'])} of {data['total_consortia']}")
    table(["id", "name", "lead id", "members", "max value"],
          [[c["id"], c["name"], c["lead_id"], str(len(c["member_ids"])), _money(c["max_contract_value_pence"])]
           for c in data["consortia"]], cut=36)


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
            click.echo(f"{key:26} {safe(_display(key, value))}")
    click.echo(f"capabilities{' (derived)' if data.get('capabilities_derived') else ''}:")
    click.echo("  " + safe(data["capabilities"], one_line=False).replace("\n", "\n  "))
    if data["kind"] == "consortium":
        click.echo("members:")
        table(["id", "name", "cluster", "max value"],
              [[m["id"], m["name"], m["cluster"] or "", _money(m["max_contract_value_pence"])]
               for m in data["members"]], cut=36)


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


def register(cli: click.Group) -> None:
    cli.add_command(directory_group)
