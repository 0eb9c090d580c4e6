"""``broker digest build|send|show``, ``broker feedback`` and ``broker preferences set|show``."""

from __future__ import annotations

import importlib
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from broker.cli.common import AppContext, echo_json, handle_errors, json_option, pass_app
from broker.cli.web import digest_links, link_options
from broker.digest import (
    DigestSettings,
    SmtpSettings,
    build_digests,
    clear_preferences,
    deliver,
    parse_host_port,
    record_feedback,
    resolve_reference,
    set_preferences,
    show_preferences,
)
from broker.digest.deliver import delivery_log, mark_sent
from broker.digest.preferences import UNSET, list_preferences
from broker.errors import BrokerError, ConfigError
from broker.normalise.dates import LONDON, parse_business_date
from broker.store.models import Digest, DigestItem


def _as_of(text: str | None) -> date:
    """The business date: ``--as-of``, else today in the UK (the only wall-clock read, and it is shown)."""
    if text is None:
        return datetime.now(LONDON).date()
    try:
        return parse_business_date(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--as-of") from None


def _ledger_hook(name: str) -> Any:
    """``broker.target.ledger.<name>`` once the target ledger is installed, else ``None``."""
    try:
        module = importlib.import_module("broker.target.ledger")
    except ModuleNotFoundError as exc:
        if exc.name in ("broker.target", "broker.target.ledger"):
            return None
        raise
    return getattr(module, name)


as_of_option = click.option("--as-of", "as_of", metavar="DATE",
                            help="Business date YYYY-MM-DD (default: today, UK time).")
outbox_option = click.option("--outbox", type=click.Path(file_okay=False, path_type=Path), default=Path("outbox"),
                             envvar="BROKER_OUTBOX", show_default=True,
                             help="Folder for the .eml files (one sub-folder per night). Env: BROKER_OUTBOX.")


@click.group("digest")
def digest_group() -> None:
    """Build VCSE digests of new matches and deliver them over SMTP."""


@digest_group.command("build")
@as_of_option
@outbox_option
@click.option("--from", "sender", default="brokerage@example.org", envvar="BROKER_DIGEST_FROM", show_default=True,
              help="Sender address (From, envelope sender, replies and opt-outs). Env: BROKER_DIGEST_FROM.")
@click.option("--from-name", "sender_name", default="Procurement brokerage", show_default=True,
              help="Sender display name.")
@click.option("--cap", type=click.IntRange(1, 100), default=10, show_default=True,
              help="Most items per digest, unless a VCSE's preference says otherwise.")
@click.option("--min-days", type=click.IntRange(0, 365), default=5, show_default=True,
              help="Leave out opportunities with fewer days than this to the deadline.")
@click.option("--min-score", type=click.IntRange(0, 100), default=0, show_default=True,
              help="Lowest match score sent, unless a VCSE's preference says otherwise.")
@link_options
@json_option
@pass_app
@handle_errors
def build_cmd(app: AppContext, as_of: str | None, outbox: Path, sender: str, sender_name: str, cap: int,
              min_days: int, min_score: int, base_url: str | None, link_days: int, as_json: bool) -> None:
    """Write one digest per opted-in VCSE with new matches to OUTBOX/DATE/*.eml.

    Re-running the same night returns the digests already built and creates nothing new. A built
    digest is pending: its matches count as introduced only once it is delivered (`broker digest send`)
    or an officer marks it sent (`broker digest mark-sent`).

    \b
    Example:
        broker digest build --as-of 2025-01-16 --outbox outbox --from brokerage@wardend.example
    """
    day = _as_of(as_of)
    settings = DigestSettings(sender_address=sender, sender_name=sender_name, cap=cap, min_days=min_days,
                              min_score=min_score, links=digest_links(base_url, link_days))
    with app.sessions()() as session:
        batch = build_digests(session, as_of=day, outbox=outbox, settings=settings)
    data = {
        "as_of": day.isoformat(),
        "digests": [{"id": d.digest_id, "recipient_id": d.recipient_id, "to": d.to_address, "path": str(d.path),
                     "items": d.item_count, "opportunity_ids": list(d.opportunity_ids), "status": d.status,
                     "new": d.new} for d in batch],
        "skipped": [{"recipient_id": s.recipient_id, "reason": s.reason, "candidates": s.candidates}
                    for s in batch.skipped],
        "removed_orphans": batch.removed_orphans,
    }
    if as_json:
        echo_json(data)
        return
    for d in batch:
        click.echo(f"{d.digest_id}  {'new' if d.new else 'existing':8} {d.item_count:3} items  "
                   f"{d.recipient_id[:30]:30}  {d.path}")
    for s in batch.skipped:
        click.echo(f"skipped {s.recipient_id[:40]}: {s.reason} ({s.candidates} matches wait)")
    new = sum(1 for d in batch if d.new)
    click.echo(f"{len(batch)} digests for {day.isoformat()} ({new} new), {len(batch.skipped)} recipients skipped.")


def smtp_options(*, required: bool) -> Any:
    """The SMTP connection options, shared by `digest send` and `nightly`."""
    def decorate(fn: Any) -> Any:
        for option in reversed((
            click.option("--smtp", "smtp_server", required=required, metavar="HOST:PORT", envvar="BROKER_SMTP",
                         help="SMTP server to deliver through. Env: BROKER_SMTP."),
            click.option("--smtp-user", default=None, help="Log in as this user (needs --smtp-password-env)."),
            click.option("--smtp-password-env", "password_env", default=None, metavar="VAR",
                         help="Name of the environment variable holding the SMTP password (never the password "
                              "itself)."),
            click.option("--starttls", is_flag=True, help="Upgrade the connection with STARTTLS."),
            click.option("--ssl", "use_ssl", is_flag=True, help="Connect with implicit TLS (SMTPS, port 465)."),
            click.option("--smtp-budget", "budget", type=click.FloatRange(min=1), default=300.0, show_default=True,
                         metavar="SECONDS", help="Stop trying after this long; what is left waits for the next run."),
        )):
            fn = option(fn)
        return fn
    return decorate


def smtp_settings(smtp_server: str, smtp_user: str | None, password_env: str | None, starttls: bool,
                  use_ssl: bool, budget: float = 300.0) -> SmtpSettings:
    host, port = parse_host_port(smtp_server, default_port=465 if use_ssl else 25)
    password = None
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise ConfigError(f"--smtp-password-env {password_env}: that environment variable is not set")
    return SmtpSettings(host=host, port=port, user=smtp_user, password=password, starttls=starttls,
                        implicit_tls=use_ssl, budget_seconds=budget)


@digest_group.command("send")
@as_of_option
@outbox_option
@smtp_options(required=True)
@click.option("--max-attempts", type=click.IntRange(1, 10), default=3, show_default=True,
              help="Tries per digest this run before leaving it for the next.")
@click.option("--retry-rejected", is_flag=True, help="Also retry digests the server refused permanently (5xx).")
@click.option("--resend", "resend", multiple=True, metavar="DIGEST_ID",
              help="Send this unconfirmed digest again (the server may already have it; same Message-ID). "
                   "Repeatable.")
@json_option
@pass_app
@handle_errors
def send_cmd(app: AppContext, as_of: str | None, outbox: Path, smtp_server: str, smtp_user: str | None,
             password_env: str | None, starttls: bool, use_ssl: bool, budget: float, max_attempts: int,
             retry_rejected: bool, resend: tuple[str, ...], as_json: bool) -> None:
    """Send every digest not yet delivered (tonight's and earlier nights' failures).

    A digest the server accepted counts as introduced. One that went out without a reply after DATA is
    `unconfirmed`: never sent again automatically (use --resend ID, or `broker digest mark-sent ID` if
    the VCSE has it). Exits 1 when any digest is still pending, refused or unconfirmed.

    \b
    Example:
        SMTP_PASSWORD=... broker digest send --smtp mail.example.org:587 --starttls \\
            --smtp-user brokerage --smtp-password-env SMTP_PASSWORD
    """
    day = _as_of(as_of)
    settings = smtp_settings(smtp_server, smtp_user, password_env, starttls, use_ssl, budget)
    with app.sessions()() as session:
        report = deliver(session, outbox, settings, as_of=day, max_attempts=max_attempts,
                         retry_rejected=retry_rejected, resend=resend,
                         delivered=_ledger_hook("record_introduced_many"))
    if as_json:
        echo_json({"as_of": day.isoformat(), "delivered": report.delivered,
                   "pending": [{"id": i, "error": e} for i, e in report.pending],
                   "rejected": [{"id": i, "error": e} for i, e in report.rejected],
                   "unconfirmed": [{"id": i, "error": e} for i, e in report.unconfirmed],
                   "cancelled": report.cancelled, "attempts": report.attempts, "stopped": report.stopped})
    else:
        for digest_id, error in report.pending:
            click.echo(f"pending  {digest_id}: {error}")
        for digest_id, error in report.rejected:
            click.echo(f"rejected {digest_id}: {error}")
        for digest_id, error in report.unconfirmed:
            click.echo(f"unconfirmed {digest_id}: {error}; not resent (see `broker digest show {digest_id}`)")
        if report.stopped:
            click.echo(f"stopped early: {report.stopped}")
        click.echo(f"{len(report.delivered)} delivered, {len(report.pending)} pending, {len(report.rejected)} "
                   f"rejected, {len(report.unconfirmed)} unconfirmed, {len(report.cancelled)} cancelled "
                   f"(opted out) in {report.attempts} attempts.")
    if report.pending or report.rejected or report.unconfirmed:
        raise BrokerError(f"{len(report.pending)} digests still pending (retried by the next "
                          f"`broker digest send`), {len(report.rejected)} refused by the server, "
                          f"{len(report.unconfirmed)} unconfirmed (not resent).")


@digest_group.command("mark-sent")
@click.argument("digest_ids", nargs=-1)
@click.option("--all-pending", is_flag=True, help="Every pending digest of --as-of or earlier.")
@as_of_option
@click.option("--note", help="How it was sent (kept in the delivery log).")
@json_option
@pass_app
@handle_errors
def mark_sent_cmd(app: AppContext, digest_ids: tuple[str, ...], all_pending: bool, as_of: str | None,
                  note: str | None, as_json: bool) -> None:
    """Record that digests were sent by hand (outbox only), or that an unconfirmed one arrived.

    Marks each DIGEST_ID delivered as of --as-of and records its matches as introduced: only delivered
    digests count toward the target.

    \b
    Example:
        broker digest mark-sent --all-pending --as-of 2025-01-16 --note "sent from the office mailbox"
    """
    day = _as_of(as_of)
    with app.sessions().begin() as session:
        ids = list(digest_ids)
        if all_pending:
            ids += list(session.scalars(select(Digest.id).where(Digest.status == "pending",
                                                                Digest.as_of <= day.isoformat())))
        if not ids:
            raise click.UsageError("give DIGEST_ID... or --all-pending")
        marked = mark_sent(session, ids, as_of=day, note=note, delivered=_ledger_hook("record_introduced_many"))
    if as_json:
        echo_json({"as_of": day.isoformat(), "marked": marked})
        return
    for digest_id in marked:
        click.echo(f"marked sent  {digest_id}")
    click.echo(f"{len(marked)} digests marked sent as of {day.isoformat()}; their matches count as introduced.")


@digest_group.command("show")
@click.argument("ident")
@outbox_option
@click.option("--text", "show_text", is_flag=True, help="Also print the message's plain-text part.")
@json_option
@pass_app
@handle_errors
def show_cmd(app: AppContext, ident: str, outbox: Path, show_text: bool, as_json: bool) -> None:
    """Show a digest, its items and its delivery log, by digest id or an item's reference code."""
    with app.sessions()() as session:
        digest = session.get(Digest, ident)
        if digest is None:
            digest = session.get(Digest, resolve_reference(session, ident).digest_id)
        assert digest is not None
        items = session.scalars(select(DigestItem).where(DigestItem.digest_id == digest.id)
                                .order_by(DigestItem.position))
        data: dict[str, Any] = {"id": digest.id, "recipient_id": digest.recipient_id, "as_of": digest.as_of, "to": digest.to_address,
                "subject": digest.subject, "file": digest.file_name, "status": digest.status,
                "attempts": digest.attempts, "last_error": digest.last_error,
                "items": [{"position": i.position, "reference": i.reference, "opportunity_id": i.opportunity_id,
                           "party_id": i.party_id, "party_type": i.party_type, "score": i.score} for i in items],
                "deliveries": delivery_log(session, digest.id)}
    if as_json:
        echo_json(data)
        return
    for key in ("id", "recipient_id", "as_of", "to", "subject", "file", "status", "attempts", "last_error"):
        click.echo(f"{key:14} {data[key]}")
    for i in data["items"]:
        click.echo(f"  {i['position']:2}. {i['reference']}  {i['score']:3}  {i['opportunity_id']}  "
                   f"({i['party_type']} {i['party_id']})")
    for d in data["deliveries"]:
        click.echo(f"  attempt {d['attempt']} {d['as_of']} {d['status']}: {d['error'] or ''}")
    if show_text:
        click.echo("")
        click.echo(_plain_text(outbox / data["file"]))


def _plain_text(path: Path) -> str:
    """The text/plain part of a written digest, as a VCSE's mail client shows it."""
    from email import policy
    from email.parser import BytesParser

    try:
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    except OSError as exc:
        raise BrokerError(f"cannot read {path}: {exc.strerror}. Is --outbox the folder the digest was built in?") from None
    header = "".join(f"{name}: {message[name]}\n" for name in ("From", "To", "Subject", "Date"))
    body = message.get_body(preferencelist=("plain",))
    return header + "\n" + (body.get_content() if body is not None else "")


@click.command("feedback")
@click.argument("party_id", required=False)
@click.argument("opportunity_id", required=False)
@click.option("--ref", "reference", metavar="CODE", help="The item's reference code quoted by the VCSE "
              "(instead of PARTY_ID OPPORTUNITY_ID).")
@click.option("--not-relevant", "kind", flag_value="not_relevant", help="Never send this opportunity to the party.")
@click.option("--interested", "kind", flag_value="interested", help="Record the interested stage.")
@click.option("--reason", default=None, help="Why (kept for tuning the rules).")
@as_of_option
@json_option
@pass_app
@handle_errors
def feedback_cmd(app: AppContext, party_id: str | None, opportunity_id: str | None, reference: str | None,
                 kind: str | None, reason: str | None, as_of: str | None, as_json: bool) -> None:
    """Record a party's feedback on an opportunity: --not-relevant or --interested.

    \b
    Examples:
        broker feedback V001 ocds-b5fd17-1234 --not-relevant --reason "we do not do catering"
        broker feedback --ref ABCD-EFGH-JKLM --interested
    """
    if kind is None:
        raise click.UsageError("say --not-relevant or --interested")
    if reference is None and (party_id is None or opportunity_id is None):
        raise click.UsageError("give PARTY_ID and OPPORTUNITY_ID, or --ref CODE")
    day = _as_of(as_of)
    with app.sessions().begin() as session:
        if reference is not None:
            item = resolve_reference(session, reference)
            if (party_id, opportunity_id) not in ((None, None), (item.party_id, item.opportunity_id)):
                raise click.UsageError(f"--ref {reference} is about {item.party_id} / {item.opportunity_id}")
            party_id, opportunity_id = item.party_id, item.opportunity_id
        assert party_id is not None and opportunity_id is not None
        result = record_feedback(session, party_id, opportunity_id, kind, as_of=day, reason=reason,
                                 reference=reference, outcome_callback=_ledger_hook("record_outcome"))
    if as_json:
        echo_json(result.__dict__)
        return
    what = "not relevant" if kind == "not_relevant" else "interested"
    state = "recorded" if result.new else "already recorded"
    click.echo(f"{party_id} / {opportunity_id}: {what} {state}.")


@click.group("preferences")
def preferences_group() -> None:
    """Per-VCSE digest preferences (kept when the directory is re-imported)."""


def _int_or_default(value: str | None, name: str) -> Any:
    if value is None:
        return UNSET
    if value.strip().lower() == "default":
        return None
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number or 'default'", param_hint=name) from None


@preferences_group.command("set")
@click.argument("party_id")
@click.option("--opt-in/--opt-out", "opt_in", default=None, help="Override the directory's digest_opt_in.")
@click.option("--directory-opt-in", is_flag=True, help="Drop the opt-in override (the directory decides).")
@click.option("--cap", metavar="N|default", help="Most items per digest for this VCSE.")
@click.option("--min-score", metavar="N|default", help="Lowest match score sent to this VCSE.")
@click.option("--reset", is_flag=True, help="Remove every preference of this VCSE.")
@json_option
@pass_app
@handle_errors
def set_cmd(app: AppContext, party_id: str, opt_in: bool | None, directory_opt_in: bool, cap: str | None,
            min_score: str | None, reset: bool, as_json: bool) -> None:
    """Set a VCSE's digest preferences.

    \b
    Examples:
        broker preferences set V001 --opt-out
        broker preferences set V001 --cap 5 --min-score 60
        broker preferences set V001 --cap default
    """
    if opt_in is not None and directory_opt_in:
        raise click.UsageError("--opt-in/--opt-out and --directory-opt-in contradict each other")
    changes = opt_in is not None or directory_opt_in or cap is not None or min_score is not None
    if not changes and not reset:
        raise click.UsageError("nothing to set: give --opt-in/--opt-out, --cap, --min-score or --reset")
    new_opt_in = None if directory_opt_in else UNSET if opt_in is None else opt_in
    with app.sessions().begin() as session:
        if reset:
            clear_preferences(session, party_id)
        if changes:
            set_preferences(session, party_id, opt_in=new_opt_in, cap=_int_or_default(cap, "--cap"),
                            min_score=_int_or_default(min_score, "--min-score"))
        data = show_preferences(session, party_id)
    _print_preferences(data, as_json)


@preferences_group.command("show")
@click.argument("party_id", required=False)
@json_option
@pass_app
@handle_errors
def show_prefs_cmd(app: AppContext, party_id: str | None, as_json: bool) -> None:
    """Show one VCSE's effective digest settings, or list every stored preference."""
    with app.sessions()() as session:
        if party_id is None:
            rows = list_preferences(session)
            if as_json:
                echo_json(rows)
                return
            for r in rows:
                click.echo(f"{r['party_id'][:40]:40}  opt_in={r['opt_in']}  cap={r['digest_cap']}  "
                           f"min_score={r['min_score']}")
            click.echo(f"{len(rows)} VCSEs have preferences.")
            return
        data = show_preferences(session, party_id)
    _print_preferences(data, as_json)


def _print_preferences(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(data)
        return
    eff = data["effective"]
    click.echo(f"{data['party_id']} ({data['name']}): digests {'on' if eff['opt_in'] else 'off'} "
               f"(from the {eff['opt_in_source']}), at most {eff['digest_cap']} items, "
               f"minimum score {eff['min_score']}.")


def register(cli: click.Group) -> None:
    for command in (digest_group, feedback_cmd, preferences_group):
        cli.add_command(command)

