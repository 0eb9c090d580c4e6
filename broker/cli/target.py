"""``broker target``, ``broker report`` and ``broker outcome record|import``: progress toward the £1m target."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

from broker.cli.common import AppContext, echo_json, handle_errors, json_option, pass_app
from broker.errors import BrokerError, InputError, NotFound
from broker.normalise.dates import LONDON, parse_business_date
from broker.normalise.money import gbp_to_pence
from broker.store.opportunities import find_opportunity
from broker.target.config import load_config
from broker.target.explain import EvidenceRow, evidence_csv, evidence_json, explain_progress
from broker.target.ledger import reconcile_values, record_outcome
from broker.target.outcomes import import_outcomes
from broker.target.progress import Progress, compute_progress, progress_json
from broker.target.report import render_report, where_in_window
from broker.target.stages import STAGES
from broker.target.values import format_gbp


def _as_of_option(help_text: str):  # type: ignore[no-untyped-def]
    return click.option("--as-of", "as_of", metavar="DATE", help=help_text)


config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), envvar="BROKER_TARGET_CONFIG",
    help="Counting configuration, TOML or YAML (target, counting stage, window, value basis). "
         "Env: BROKER_TARGET_CONFIG. Default: the BRIEF's policies.")


def _business_date(text: str | None, option: str = "--as-of") -> date:
    """The business date given, or today in the UK (the command line is the only place the clock is read)."""
    if text is None:
        return datetime.now(LONDON).date()
    try:
        return parse_business_date(text)
    except ValueError as exc:
        raise BrokerError(f"{option}: {exc}") from None


@click.command("target")
@_as_of_option("Count the ledger as it stood on this business date, YYYY-MM-DD (default: today).")
@click.option("--reconcile", is_flag=True,
              help="First record adjusting entries for changed values, cancellations and frameworks "
                   "(the nightly run does this).")
@click.option("--explain", is_flag=True,
              help="List every counted pound: opportunity, party, stage, value basis and the evidence "
                   "(delivery, officer entry, feedback, outcomes file).")
@click.option("--csv", "as_csv", is_flag=True, help="The --explain list as CSV on standard output.")
@config_option
@json_option
@pass_app
@handle_errors
def target_cmd(app: AppContext, as_of: str | None, reconcile: bool, explain: bool, as_csv: bool,
               config_path: Path | None, as_json: bool) -> None:
    """Show brokered value counted toward the target: total, share, clusters, stages, pace.

    An opportunity counts once at the counting stage (default: interested, the VCSE or an officer
    confirmed interest), however many VCSEs or clusters it went to; the pipeline (default: introduced,
    a digest was delivered or marked sent) is shown beside it. JSON money fields end in _pence.

    \b
    Example:
        broker target --as-of 2025-06-30 --json
    """
    day, config = _business_date(as_of), load_config(config_path)
    sessions = app.sessions()
    if reconcile:
        with sessions.begin() as session:
            reconcile_values(session, day, config=config)
    with sessions() as session:
        progress = compute_progress(session, day, config)
        evidence = explain_progress(session, progress) if explain or as_csv else None
    if as_csv:
        click.echo(evidence_csv(evidence or []), nl=False)
    elif as_json:
        doc = progress_json(progress)
        if evidence is not None:
            doc["evidence"] = evidence_json(evidence)
        echo_json(doc)
    else:
        _print_progress(progress)
        if evidence is not None:
            _print_evidence(progress, evidence)


def _safe(text: str) -> str:
    """Untrusted text for a terminal: control characters (escape sequences) shown as escapes, not run."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
                   for c in text)


def _print_evidence(p: Progress, rows: list[EvidenceRow]) -> None:
    click.echo(f"Every counted pound ({format_gbp(p.counted_pence)}, stage {p.config.counting_stage} or beyond):")
    for r in rows:
        if r.counted_pence is not None:
            click.echo(f"  {_safe(r.opportunity_id)}  {format_gbp(r.counted_pence)}  [{r.value_basis}] "
                       f"{_safe(r.title)[:60]}")
            if r.value_reason:
                click.echo(f"      value: {_safe(r.value_reason)}")
        click.echo(f"      {r.stage:10} {r.stage_date}  {_safe(r.party_id)} ({r.party_type}, "
                   f"{_safe(r.cluster) or 'no cluster'}): {_safe(r.evidence)}")
    if not rows:
        click.echo("  (nothing counted)")


def _print_progress(p: Progress) -> None:
    c, doc = p.config, progress_json(p)
    click.echo(f"Brokered value toward the target, as of {p.as_of} (counted at stage: {c.counting_stage})")
    click.echo(f"  {format_gbp(p.counted_pence)} of {format_gbp(c.target_pence)} ({p.share()}%) "
               f"from {len(p.counted)} opportunities")
    click.echo(f"  pipeline ({c.pipeline_stage}, not counted unless {c.counting_stage}): "
               f"{format_gbp(p.pipeline_pence)} from {len(p.pipeline)} opportunities")
    frameworks = doc["frameworks_excluded"]
    published = f" (published {format_gbp(frameworks['published_pence'])} not counted)" if frameworks["count"] else ""
    click.echo(f"  value unknown: {doc['value_unknown']['count']} (count £0); frameworks excluded: "
               f"{frameworks['count']}{published}; cancelled: {doc['cancelled']['count']}")
    prospects = doc["subcontracting_prospects"]
    if prospects["count"]:
        click.echo(f"  subcontracting prospects (beyond what the party can take on alone): {prospects['count']} "
                   f"(headline {format_gbp(prospects['published_pence'])} not counted)")
    click.echo("By cluster (an opportunity sent to several clusters shows in each; the total counts it once)")
    for row in p.by_cluster:
        click.echo(f"  {(row.key or '(no cluster)')[:32]:32} {row.opportunities:6}  {format_gbp(row.value_pence):>16}")
    if not p.by_cluster:
        click.echo("  (nothing counted yet)")
    click.echo("By stage (opportunities that reached it)")
    for row in p.by_stage:
        click.echo(f"  {row.key:32} {row.opportunities:6}  {format_gbp(row.value_pence):>16}")
    click.echo(_pace_line(p))
    click.echo(f"Configuration sha256 {c.sha256()[:12]}: value basis {c.value_basis}, frameworks count £0 "
               f"until a call-off: {'yes' if c.frameworks_count_zero else 'no'}; {p.ledger_entries} ledger entries.")


def _pace_line(p: Progress) -> str:
    pace, target = p.pace, format_gbp(p.config.target_pence)
    window = f"the window {pace.window_start} to {pace.window_end}"
    if pace.status == "reached":
        return f"Pace: target reached on {pace.reached_on}, {where_in_window(pace.reached_on, pace)} {window}."
    if pace.status == "no_progress":
        return f"Pace: nothing counted yet in {window}."
    return (f"Pace: {format_gbp(pace.per_day_pence)} a day since {pace.since}; at this pace {target} is "
            f"reached on {pace.projected_date}, {where_in_window(pace.projected_date, pace)} {window}.")


@click.command("report")
@click.option("--html", "html_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to this HTML file.")
@_as_of_option("Report the ledger as it stood on this business date, YYYY-MM-DD (default: today).")
@config_option
@pass_app
@handle_errors
def report_cmd(app: AppContext, html_path: Path, as_of: str | None, config_path: Path | None) -> None:
    """Write a self-contained HTML progress report to email to a funder.

    One page, no network resources and no JavaScript: progress toward the target over time, by cluster,
    the pipeline by stage, the largest opportunities brokered, recent outcomes and the configuration.

    \b
    Example:
        broker report --html progress.html --as-of 2025-06-30
    """
    day, config = _business_date(as_of), load_config(config_path)
    with app.sessions()() as session:
        html, progress = render_report(session, day, config)
    try:
        html_path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise BrokerError(f"cannot write {html_path}: {exc.strerror or exc}") from None
    click.echo(f"Wrote {html_path}: {format_gbp(progress.counted_pence)} of "
               f"{format_gbp(config.target_pence)} ({progress.share()}%) as of {day}.")


@click.group("outcome")
def outcome_group() -> None:
    """Record what happened after an introduction: interested, bid, won, lost, withdrawn."""


@outcome_group.command("record")
@click.argument("opportunity_id")
@click.argument("party_id")
@click.option("--stage", required=True, type=click.Choice(STAGES, case_sensitive=False), help="The stage reached.")
@click.option("--value", "value_gbp", metavar="GBP", help="With --stage won: the awarded (call-off) value in £.")
@click.option("--note", help="Free text kept with the entry.")
@click.option("--date", "when", metavar="DATE", help="When it happened, YYYY-MM-DD (default: today).")
@config_option
@json_option
@pass_app
@handle_errors
def record_cmd(app: AppContext, opportunity_id: str, party_id: str, stage: str, value_gbp: str | None,
               note: str | None, when: str | None, config_path: Path | None, as_json: bool) -> None:
    """Record an outcome for a VCSE or consortium on an opportunity (an id, ocid or notice id).

    A won outcome may record the awarded value: that is what a framework agreement or DPS counts.
    Recording the same thing twice adds nothing; a different value or outcome is a correcting entry.

    \b
    Example:
        broker outcome record ocds-b5fd17-1 vcse-042 --stage won --value 45000 --note "call-off 3"
    """
    day, config = _business_date(when, "--date"), load_config(config_path)
    value = _pence(value_gbp)
    with app.sessions().begin() as session:
        row = find_opportunity(session, opportunity_id)
        if row is None:
            raise NotFound(f"no opportunity {opportunity_id!r}. Try `broker opportunities list`.")
        added = record_outcome(session, row.id, party_id, stage, value_pence=value, note=note, as_of=day,
                               config=config)
    if as_json:
        echo_json({"opportunity_id": row.id, "party_id": party_id, "stage": stage, "value_pence": value,
                   "as_of": day.isoformat(), "entries": added})
    elif added:
        extra = f" (awarded {format_gbp(value)})" if value else ""
        click.echo(f"Recorded {stage}{extra} for {party_id} on {row.id} as of {day}.")
    else:
        click.echo(f"Already recorded: {party_id} {stage} on {row.id}; nothing changed.")


def _pence(value_gbp: str | None) -> int | None:
    try:
        return gbp_to_pence(value_gbp)
    except ValueError as exc:
        raise InputError(str(exc), field="--value") from None


@outcome_group.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@_as_of_option("Business date of the import, and of rows with a blank date (default: today).")
@config_option
@json_option
@pass_app
@handle_errors
def import_cmd(app: AppContext, csv_file: Path, as_of: str | None, config_path: Path | None,
               as_json: bool) -> None:
    """Import outcomes from an officer's spreadsheet saved as CSV (UTF-8).

    \b
    Columns: opportunity_id,party_id,stage,value_gbp,note,date
      opportunity_id, party_id, stage   required; stage is one of
                                        matched introduced interested bid won lost withdrawn
      value_gbp                         the awarded value, only with won
      note                              free text, stored as written (never evaluated)
      date                              YYYY-MM-DD or dd/mm/yyyy; blank = --as-of
    Bad rows are reported by row and field and quarantined; the good rows are still recorded,
    and the command exits 1 if any row was rejected. Importing the same sheet again records
    nothing new, so fix the bad rows and import the whole sheet again.

    \b
    Example:
        broker outcome import outcomes.csv --as-of 2025-06-30
    """
    day, config = _business_date(as_of), load_config(config_path)
    with app.sessions().begin() as session:
        result = import_outcomes(session, csv_file, as_of=day, config=config)
    if as_json:
        echo_json(result.as_json())
    else:
        for warning in result.warnings:
            click.echo(f"Warning: {warning}", err=True)
        for error in result.errors:
            click.echo(f"Error: {error}", err=True)
        click.echo(f"{_plural(result.rows, 'row')}: {result.recorded_rows} recorded "
                   f"({_plural(result.entries, 'ledger entry', 'ledger entries')}), "
                   f"{result.unchanged_rows} already recorded, {len(result.errors)} rejected.")
    if result.errors:
        if not as_json:
            click.echo("Fix the rows above and import the file again (recorded rows are not repeated). "
                       "See `broker quarantine list`.", err=True)
        raise SystemExit(1)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def register(cli: click.Group) -> None:
    cli.add_command(target_cmd)
    cli.add_command(report_cmd)
    cli.add_command(outcome_group)
