"""``broker audit``: runs, replay, verify, explain, export, import and prune."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from sqlalchemy import select

from broker.audit.explain import explain_pair
from broker.audit.export import companion_path, export_csv, export_jsonl
from broker.audit.heads import read_heads
from broker.audit.importer import import_run
from broker.audit.prune import prune_before
from broker.audit.replay import ReplayDiffers, describe, replay_run
from broker.audit.verify import ChainBroken, verify_chain
from broker.cli.common import AppContext, echo_json, handle_errors, json_option, pass_app, show_progress
from broker.errors import BrokerError
from broker.normalise.dates import parse_business_date
from broker.store.known import require_known_pair
from broker.store.models import MatchRun


@click.group("audit")
def audit_group() -> None:
    """Audit match runs: replay a run, verify the tamper-evident chain, explain a decision, export."""


@audit_group.command("runs")
@json_option
@pass_app
@handle_errors
def runs_cmd(app: AppContext, as_json: bool) -> None:
    """List the stored runs: id, business date, mode, status and decision digest."""
    with app.sessions()() as session:
        rows = [{"run_id": r.id, "as_of": r.as_of, "mode": r.mode, "status": r.status,
                 "decisions": sum((r.counts or {}).get(k, 0) for k in ("opportunities", "parties",
                                                                       "pairs_through_rules")),
                 "matched": (r.counts or {}).get("matched", 0), "decision_digest": r.decision_digest}
                for r in session.scalars(select(MatchRun).order_by(MatchRun.seq))]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['run_id']}  {r['as_of']}  {r['mode']:11} {r['status']:9} {r['decisions']:>9} decisions "
                   f"{r['matched']:>7} matched  {(r['decision_digest'] or '')[:16]}")
    click.echo(f"{len(rows)} runs.")


@audit_group.command("replay")
@click.argument("run_id")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many differing decisions to show in full.")
@json_option
@pass_app
@handle_errors
def replay_cmd(app: AppContext, run_id: str, limit: int, as_json: bool) -> None:
    """Re-execute RUN_ID from its stored snapshot and rules and compare decision by decision.

    Reads nothing live: the run's own inputs, rule texts, parameters and business date. Exits 0 with
    `identical: N decisions`, or 3 with the first differing decisions and every hash mismatch.

    \b
    Example:
        broker audit replay run-000001
    """
    with app.sessions()() as session:
        report = replay_run(session, run_id, limit=limit, progress=_progress("replaying pairs", as_json))
    if as_json:
        echo_json(report.to_json())
    else:
        for line in describe(report):
            click.echo(line)
    if not report.identical:
        raise ReplayDiffers(f"replay of {run_id} differs from the stored run (see above)")


@audit_group.command("verify")
@click.option("--quick", is_flag=True, help="Check links, manifests and rule texts only (not every decision).")
@click.option("--head", "heads", multiple=True, metavar="HASH|FILE",
              help="A chain head published earlier (a hash, or a heads file such as OUTBOX/audit-heads.txt "
                   "that `broker nightly` appends to): it must still be in the chain. Repeatable.")
@json_option
@pass_app
@handle_errors
def verify_cmd(app: AppContext, quick: bool, heads: tuple[str, ...], as_json: bool) -> None:
    """Recompute the tamper-evident chain and everything it vouches for; name the first broken link.

    Exits 1 if any link, manifest, rule text, snapshot record, decision or ledger entry no longer
    matches its hash, if a match or ledger entry cites a run the chain does not record, or if a head
    given with --head is no longer in the chain (its end was deleted, or it was rewritten). Keep the
    printed head somewhere else: `broker nightly` appends it to OUTBOX/audit-heads.txt.

    \b
    Example:
        broker audit verify --head outbox/audit-heads.txt
    """
    published = [h for value in heads for h in read_heads(value)]
    with app.sessions()() as session:
        report = verify_chain(session, quick=quick, heads=published)
    if as_json:
        echo_json(report.to_json())
    elif report.ok:
        against = f"; {len(published)} published heads found in it" if published else ""
        click.echo(f"chain ok: {report.links} links, {report.runs} runs and {report.decisions} decisions, "
                   f"{report.ledger_batches} ledger batches and {report.ledger_entries} ledger entries checked"
                   f"{' (quick)' if quick else ''}{against}; head #{report.head_seq} {report.head}"
                   if report.head else "chain ok: the chain is empty")
    else:
        for p in report.problems:
            click.echo(f"broken: {p}")
    if not report.ok:
        raise ChainBroken(f"the audit chain is broken at {report.problems[0]}")


@audit_group.command("explain")
@click.option("--run", "run_id", help="The run (default: the latest complete run).")
@click.argument("opportunity_id")
@click.argument("party_id")
@json_option
@pass_app
@handle_errors
def explain_cmd(app: AppContext, run_id: str | None, opportunity_id: str, party_id: str, as_json: bool) -> None:
    """Why the run decided OPPORTUNITY_ID with PARTY_ID as it did, or why it never considered the pair.

    \b
    Example:
        broker audit explain --run run-000001 ocds-b5fd17-0123 wm-0003
    """
    with app.sessions()() as session:
        require_known_pair(session, opportunity_id, party_id)
        data = explain_pair(session, run_id, opportunity_id, party_id)
    if as_json:
        echo_json(data)
        return
    click.echo(f"{opportunity_id} / {party_id} in {data['run_id']} (as of {data['as_of']}, {data['mode']})")
    if data["decided"]:
        click.echo(f"  {data['verdict']}")
        for label in data["levels"].values():
            click.echo(f"  {label}")
        if data["proposed"]:
            click.echo("  proposed because it " + "; ".join(data["proposed"]))
        grouping = data["grouping"]
        if grouping.get("members"):
            click.echo(f"  a grouping of {', '.join(grouping['members'])} (lead {grouping.get('lead')})"
                       + ("; " + "; ".join(grouping["suggestion"]) if grouping.get("suggestion") else ""))
    else:
        click.echo(f"  no decision: {data['why_not']}")
    if data["firings"]:
        click.echo("  rules that fired:")
    for f in data["firings"]:
        click.echo(f"    [{f['stage']}] {f['rule_id']} {f['in_words']}: {f['reason']}")
        if f["saw"]:
            click.echo("      saw " + ", ".join(f"{k}={_value(v)}" for k, v in f["saw"].items()))


@audit_group.command("export")
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"], case_sensitive=False), default="jsonl", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (required for csv, which also writes NAME.manifest.json beside it); "
                   "jsonl goes to standard output without it.")
@pass_app
@handle_errors
def export_cmd(app: AppContext, run_id: str, fmt: str, output: Path | None) -> None:
    """Export RUN_ID's manifest, input snapshot and decisions (for auditors, or `broker audit import`).

    CSV cells a spreadsheet would run as formulas are prefixed with a quote.

    \b
    Example:
        broker audit export run-000001 --format csv --output run-000001.csv
    """
    with app.sessions()() as session:
        if fmt == "csv":
            if output is None:
                raise BrokerError("--format csv needs --output FILE.csv (the manifest goes beside it)")
            counts = export_csv(session, run_id, output)
            click.echo(f"{output}: {counts['decisions']} decisions; manifest and {counts['inputs']} input "
                       f"records in {companion_path(output)}", err=True)
        elif output is None:
            export_jsonl(session, run_id, sys.stdout)
        else:
            with open(output, "w", encoding="utf-8", newline="\n") as fh:
                counts = export_jsonl(session, run_id, fh)
            click.echo(f"{output}: {counts['inputs']} input records, {counts['decisions']} decisions", err=True)


@audit_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@pass_app
@handle_errors
def import_cmd(app: AppContext, file: Path, as_json: bool) -> None:
    """Import an exported run (FILE.jsonl, or FILE.csv with FILE.manifest.json) so it replays here.

    Every hash is checked first; nothing is kept unless all match. Importing the same run twice changes
    nothing; a different run with the same id is refused.

    \b
    Example:
        broker audit import run-000001.jsonl && broker audit replay run-000001
    """
    with app.sessions().begin() as session:
        report = import_run(session, file)
    if as_json:
        echo_json(report.to_json())
    elif report.already_present:
        click.echo(f"{report.run_id} is already here, identical: nothing imported.")
    else:
        click.echo(f"imported {report.run_id}: {report.inputs} input records, {report.decisions} decisions "
                   f"(chain link #{report.link_seq}). Next: broker audit replay {report.run_id}")


@audit_group.command("prune")
@click.option("--before", "before", required=True, metavar="DATE",
              help="Delete runs whose business date is before DATE (YYYY-MM-DD).")
@json_option
@pass_app
@handle_errors
def prune_cmd(app: AppContext, before: str, as_json: bool) -> None:
    """Delete old runs and their records (the only deletion); the prune is recorded in the chain.

    \b
    Example:
        broker audit prune --before 2022-04-01
    """
    try:
        day = parse_business_date(before)
    except ValueError as exc:
        raise BrokerError(f"--before: {exc}") from None
    with app.sessions().begin() as session:
        report = prune_before(session, day)
    if as_json:
        echo_json(report.to_json())
    elif not report.runs:
        click.echo(f"No runs before {report.before}: nothing pruned.")
    else:
        click.echo(f"Pruned {len(report.runs)} runs before {report.before} ({report.decisions} decisions, "
                   f"{report.snapshots} snapshot records); recorded as chain link #{report.link_seq}.")


def _value(value: object) -> str:
    """A fact value as the rule files write it (true/false, numbers, text as is)."""
    return value if isinstance(value, str) else json.dumps(value)


def _progress(label: str, quiet: bool):  # type: ignore[no-untyped-def]
    if quiet or not show_progress():
        return None
    bar = click.progressbar(length=0, label=label, file=sys.stderr, show_pos=True)

    def update(done: int) -> None:
        bar.length = max(bar.length or 0, done)
        bar.update(done - bar.pos)

    return update


def register(cli: click.Group) -> None:
    cli.add_command(audit_group)
