"""``broker fetch contracts-finder|find-a-tender``: harvest API pages into an inbox for ``broker ingest``."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from broker.cli.common import echo_json, handle_errors, json_option, show_progress
from broker.errors import InputError
from broker.normalise.dates import iso_utc
from broker.sources.harvest import (
    CONTRACTS_FINDER,
    FIND_A_TENDER,
    FetchEvent,
    FetchOptions,
    FetchSummary,
    ServiceSpec,
    harvest,
    parse_duration,
    parse_since,
    parse_until,
)


@click.group("fetch")
def fetch_group() -> None:
    """Harvest OCDS release packages from the Contracts Finder and Find a Tender APIs into an inbox.

    Pages are written as DIR/<source>-<window start>-p<page>.json; a state file in DIR lets the next
    run resume where this one stopped. Exit code 1 when any window failed (run again to retry it).
    """


def _print_event(event: FetchEvent) -> None:
    if event.kind != "error":  # errors are listed once, at the end
        click.echo(event.message, err=True)


def _print_wait(event: FetchEvent) -> None:
    """Off a terminal (cron, a pipe, --json) only the waits: a retry is never a silent minute."""
    if event.kind == "wait":
        click.echo(event.message.strip(), err=True)


def _summary_text(s: FetchSummary) -> str:
    if s.windows == 0:
        return f"{s.title}: up to date to {iso_utc(s.until)}; nothing fetched. Inbox: {s.inbox}"
    waited = f", waited {len(s.waits)} time(s) ({s.wait_seconds:g} s)" if s.waits else ""
    return (f"{s.title}: {s.windows_done} of {s.windows} window(s) done, {s.windows_failed} failed; "
            f"{s.pages_fetched} page(s) fetched, {s.pages_written} written, {s.pages_duplicate} already in "
            f"the inbox, {s.pages_empty} empty, {s.pages_quarantined} quarantined; {s.releases} release(s) "
            f"({s.releases_written} in new files); {s.requests} request(s), {s.retries} retried{waited}. "
            f"Inbox: {s.inbox}")


def _stages(spec: ServiceSpec, text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    stages = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [stage for stage in stages if stage not in spec.stages]
    if unknown:
        raise InputError(f"--stages: {', '.join(unknown)} not accepted by {spec.title} "
                         f"(use {','.join(spec.stages)})")
    return stages


def _run(spec: ServiceSpec, args: dict[str, Any]) -> None:
    politeness = replace(spec.politeness, min_interval=args["min_interval"],
                         rate_limit_wait=args["rate_limit_wait"], max_wait=args["max_wait"],
                         server_error_retries=args["retries"])
    options = FetchOptions(
        inbox=Path(args["inbox"]), since=parse_since(args["since"]),
        until=parse_until(args["until"]) if args["until"] else None,
        base_url=args["base_url"], stages=_stages(spec, args["stages"]),
        window=parse_duration(args["window"]), politeness=politeness, restart=args["restart"],
        overlap=parse_duration(args["overlap"], allow_zero=True))
    as_json = args["as_json"]
    summary = harvest(spec, options, on_event=_print_event if show_progress() and not as_json else _print_wait)
    if as_json:
        echo_json(summary.to_json())
    else:
        click.echo(_summary_text(summary))
    for error in summary.errors:
        click.echo(f"Error: {error}", err=True)
    if not summary.ok:
        click.echo(f"Run the same command again to retry; unusable pages are in {options.inbox / 'quarantine'}.",
                   err=True)
        sys.exit(1)


def _make_command(name: str, spec: ServiceSpec, example: str) -> click.Command:
    p = spec.politeness
    hours = int(spec.window.total_seconds() // 3600)
    window_default = f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"

    @click.command(name, short_help=f"Fetch {spec.title} pages into an inbox.", help=f"Fetch {spec.title} release packages published since DATE into DIR.\n\n"
                              f"\b\nExample:\n    {example}")
    @click.option("--since", required=True, metavar="DATE",
                  help="Start: YYYY-MM-DD (UK midnight) or an ISO datetime (zone-less = UK time).")
    @click.option("--until", default=None, metavar="DATE",
                  help="End: a date means the end of that UK day. Default: now (never later than now).")
    @click.option("--inbox", required=True, type=click.Path(file_okay=False), metavar="DIR",
                  help="Directory for the pages (created if missing).")
    @click.option("--base-url", default=spec.default_base_url, show_default=True, metavar="URL",
                  help="The API's address.")
    @click.option("--stages", default=None, metavar="LIST",
                  help=f"Comma-separated stages ({','.join(spec.stages)}). Default: all.")
    @click.option("--window", default=window_default, show_default=True, metavar="SIZE",
                  help="Time window per query, e.g. 15d or 6h.")
    @click.option("--overlap", default="1h", show_default=True, metavar="SIZE",
                  help="On resume, fetch again this much before where the last run stopped (0h for none).")
    @click.option("--min-interval", type=click.FloatRange(min=0), default=p.min_interval, show_default=True,
                  metavar="SECONDS", help="Minimum time between two requests.")
    @click.option("--rate-limit-wait", type=click.FloatRange(min=0), default=p.rate_limit_wait,
                  show_default=True, metavar="SECONDS",
                  help="Wait after 'too many requests' with no Retry-After"
                       + (" (and after a 403, which Contracts Finder uses for it)." if spec.forbidden_is_rate_limit
                          else "."))
    @click.option("--max-wait", type=click.FloatRange(min=0), default=p.max_wait, show_default=True,
                  metavar="SECONDS", help="Cap on any single wait, Retry-After included.")
    @click.option("--retries", type=click.IntRange(min=0), default=p.server_error_retries, show_default=True,
                  help="Retries after a server error (5xx) or a failed connection, with back-off.")
    @click.option("--restart", is_flag=True, help="Ignore the resume state and fetch the whole period.")
    @json_option
    @handle_errors
    def command(**args: Any) -> None:
        _run(spec, args)

    return command


fetch_group.add_command(_make_command(
    "contracts-finder", CONTRACTS_FINDER, "broker fetch contracts-finder --since 2025-01-01 --inbox inbox"))
fetch_group.add_command(_make_command(
    "find-a-tender", FIND_A_TENDER, "broker fetch find-a-tender --since 2025-06-01 --inbox inbox"))


def register(cli: click.Group) -> None:
    cli.add_command(fetch_group)
