"""``broker match``, ``broker matches list|show``."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import click

from broker.cli.common import (
    AppContext,
    echo_json,
    handle_errors,
    json_option,
    pass_app,
    rules_option,
    show_progress,
)
from broker.cli.output import emit, output_options, safe
from broker.errors import BrokerError
from broker.match.queries import list_matches, show_match
from broker.match.rulesdir import RulesLocation
from broker.match.service import run_match
from broker.normalise.dates import parse_business_date


def business_date(text: str | None) -> date:
    """``--as-of`` or today's date (the one place the CLI reads the calendar, never inside a run)."""
    if text is None:
        return date.today()
    try:
        return parse_business_date(text)
    except ValueError as exc:
        raise BrokerError(f"--as-of: {exc}") from None


@click.command("match")
@click.option("--as-of", "as_of", metavar="DATE", help="Business date, YYYY-MM-DD or dd/mm/yyyy (default: today).")
@rules_option
@click.option("--full", is_flag=True, help="Re-match everything, not only what changed since the last run "
              "(a run with other rules or parameters than the last one is always full).")
@json_option
@pass_app
@handle_errors
def match_cmd(app: AppContext, as_of: str | None, rules_dir: RulesLocation, full: bool, as_json: bool) -> None:
    """Match opportunities with VCSEs and consortia; store the run and every decision.

    A run that would repeat the last one exactly (the same business date, inputs, rules, parameters and
    software) records nothing and says so; --full runs anyway.

    \b
    Example:
        broker match --as-of 2020-04-16 --full
    """
    day = business_date(as_of)
    bar = None
    if show_progress() and not as_json:
        bar = click.progressbar(length=0, label="matching pairs", file=sys.stderr, show_pos=True)

    def progress(done: int) -> None:
        if bar is not None:
            bar.length = max(bar.length or 0, done)
            bar.update(done - bar.pos)

    summary = run_match(app.sessions(), as_of=day, rules_dir=rules_dir, full=full, progress=progress)
    if bar is not None:
        bar.render_finish()
    if as_json:
        echo_json({"run_id": summary.run_id, "as_of": summary.as_of, "mode": summary.mode,
                   "counts": summary.counts, "decision_digest": summary.decision_digest, "noop": summary.noop})
        return
    if summary.noop:
        click.echo(f"Nothing new since {summary.run_id} (as of {summary.as_of}: the same inputs, rules, "
                   "parameters and software): no run recorded. Use --full to run again anyway.")
        return
    c = summary.counts
    click.echo(f"Run {summary.run_id} ({summary.mode}, as of {summary.as_of}): {c['pairs_considered']} pairs "
               f"considered, {c['pairs_through_rules']} through the rules; {c['matched']} matched, "
               f"{c['rejected']} rejected, {c['below_threshold']} below threshold; "
               f"{c['suggested_consortia']} suggested consortia.")


@click.group("matches")
def matches_group() -> None:
    """Read matches: ranked, with reasons."""


MATCH_COLUMNS = ("party_id", "party_type", "rank", "score", "opportunity_id", "title", "run_id", "reasons")


@matches_group.command("list")
@click.option("--run", "run_id", help="Matches decided in this run (default: the current matches).")
@click.option("--party", "party_id", help="Only this VCSE or consortium.")
@click.option("--opportunity", "opportunity_id", help="Only this opportunity.")
@click.option("--limit", type=click.IntRange(1, 10**9), default=None)
@output_options
@pass_app
@handle_errors
def list_cmd(app: AppContext, run_id: str | None, party_id: str | None, opportunity_id: str | None,
             limit: int | None, output: str) -> None:
    """List matches, ranked within each party, with their top reasons (ids in full, as `matches show` takes them)."""
    with app.sessions()() as session:
        rows = list_matches(session, run_id=run_id, party_id=party_id, opportunity_id=opportunity_id, limit=limit)
    emit(rows, output, MATCH_COLUMNS, _print_matches)


def _print_matches(rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        click.echo("No matches.")
        return
    click.echo(f"{'party id':30} {'rank':4} {'score':>5}  opportunity id / title / reasons")
    for r in rows:
        click.echo(f"{safe(r['party_id']):30} #{r['rank']:<3} {r['score']:5}  {safe(r['opportunity_id'])}")
        click.echo(f"{'':43}{safe(r['title'])[:80]}")
        for reason in r["reasons"]:
            click.echo(f"{'':43}- {safe(reason)}")
    click.echo(f"{len(rows)} matches.")


@matches_group.command("show")
@click.argument("opportunity_id")
@click.argument("party_id")
@click.option("--run", "run_id", help="The decision in this run (default: the latest).")
@json_option
@pass_app
@handle_errors
def show_cmd(app: AppContext, opportunity_id: str, party_id: str, run_id: str | None, as_json: bool) -> None:
    """Show one match in full: score, levels, every rule that fired and the features it saw."""
    with app.sessions()() as session:
        data = show_match(session, opportunity_id, party_id, run_id)
    if as_json:
        echo_json(data)
        return
    click.echo(f"{safe(data['title'])}\n{safe(data['opportunity_id'])} -> {safe(data['party_id'])} "
               f"({data['party_type']})")
    click.echo(f"run {data['run_id']}: {data['outcome']}, score {data['score']}, rank {data['rank']}")
    for label in data["levels"].values():
        click.echo(f"  {safe(label)}")
    click.echo("Rules that fired:")
    for f in data["firings"]:
        points = f" ({f['points']:+d})" if f["effect"] == "score" else f" [{f['effect']}]"
        click.echo(f"  {safe(f['rule_id'])}{points}: {safe(f['reason'])}")
    click.echo("Features: " + ", ".join(f"{k}={safe(v)}" for k, v in data["features"].items()))


def register(cli: click.Group) -> None:
    cli.add_command(match_cmd)
    cli.add_command(matches_group)
