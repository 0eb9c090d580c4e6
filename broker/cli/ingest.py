"""``broker ingest`` and ``broker quarantine``."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from broker.cli.common import AppContext, echo_json, handle_errors, json_option, pass_app, show_progress
from broker.cli.output import emit, output_options, table
from broker.ingest import IngestReport, ingest
from broker.nightly import EXIT_QUARANTINED
from broker.normalise.dates import iso_utc
from broker.store.quarantine import list_quarantine


class _Bars:
    """One click progress bar per file, on a terminal only."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.bar: object = None
        self.done = 0

    def __call__(self, path: str, done: int, total: int) -> None:
        if path != self.path:
            self.close()
            self.path, self.done = path, 0
            self.bar = click.progressbar(length=max(total, 1), label=path[-40:], file=sys.stderr)
            self.bar.__enter__()  # type: ignore[attr-defined]
        self.bar.update(done - self.done)  # type: ignore[attr-defined]
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)  # type: ignore[attr-defined]
            self.bar = None


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@json_option
@pass_app
@handle_errors
def ingest_cmd(app: AppContext, paths: tuple[str, ...], as_json: bool) -> None:
    """Ingest opportunity files or folders (OCDS, Contracts Finder CSV, private opportunities).

    The format of each file is detected from its content. Prints new, updated, unchanged and
    quarantined counts; exits 4 when anything was quarantined (see `broker quarantine list`), as
    `broker nightly` does.

    \b
    Example:
        broker ingest fixtures/opportunities inbox/cf-2025-01-23.json
    """
    sessions = app.sessions()
    bars = _Bars() if show_progress() and not as_json else None
    try:
        report = ingest(sessions, paths, progress=bars)
    finally:
        if bars:
            bars.close()
    if as_json:
        echo_json({"summary": report.summary(),
                   "files": [vars(f) for f in report.files]})
    else:
        _print_report(report)
    sys.exit(0 if report.clean else EXIT_QUARANTINED)  # the same code as `broker nightly`


def _print_report(report: IngestReport) -> None:
    for f in report.files:
        click.echo(f"{f.path} [{f.format or 'unreadable'}]: {f.new} new, {f.updated} updated, "
                   f"{f.unchanged} unchanged, {f.quarantined} quarantined")
        for problem in f.problems[:20]:
            click.echo(f"  quarantined: {problem}", err=True)
        if len(f.problems) > 20:
            click.echo(f"  ... and {len(f.problems) - 20} more (broker quarantine list)", err=True)
        for warning in f.warnings[:20]:
            click.echo(f"  warning: {warning}", err=True)
    s = report.summary()
    click.echo(f"Total: {s['files']} files, {s['new']} new, {s['updated']} updated, {s['unchanged']} unchanged, "
               f"{s['quarantined']} quarantined ({s['releases_new']} new OCDS releases stored).")
    if s["quarantined"]:
        click.echo("Some records were quarantined: see `broker quarantine list`.", err=True)


@click.group("quarantine")
def quarantine_group() -> None:
    """Records that could not be ingested, with the reason and the raw record."""


@quarantine_group.command("list")
@click.option("--limit", type=click.IntRange(1, 10**9), default=None, help="Show at most N items.")
@output_options
@pass_app
@handle_errors
def quarantine_list(app: AppContext, limit: int | None, output: str) -> None:
    """List quarantined records (file, record or row, field, reason)."""
    with app.sessions()() as session:
        items = list_quarantine(session, limit=limit)
        rows = [{"id": q.id, "file": q.file, "locator": q.locator, "field": q.field, "reason": q.reason,
                 "raw": q.raw, "created_at": iso_utc(q.created_at)} for q in items]
    emit(rows, output, ("id", "file", "locator", "field", "reason", "created_at", "raw"), _print_quarantine)


def _print_quarantine(rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        click.echo("The quarantine is empty.")
        return
    table(["id", "file", "record", "field", "reason"],
          [[r["id"], r["file"], r["locator"] or "-", r["field"] or "-", r["reason"]] for r in rows], cut=None)


def register(cli: click.Group) -> None:
    cli.add_command(ingest_cmd)
    cli.add_command(quarantine_group)
