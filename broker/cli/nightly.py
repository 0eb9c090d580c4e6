"""``broker nightly``: the one command cron runs."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import click

from broker.audit.heads import HEADS_FILE
from broker.cli.common import AppContext, echo_json, handle_errors, json_option, pass_app, rules_option
from broker.cli.digest import smtp_options, smtp_settings
from broker.cli.match import business_date
from broker.cli.web import digest_links, link_options
from broker.digest import DigestSettings
from broker.match.rulesdir import RulesLocation
from broker.nightly import NightlyOptions, run_nightly
from broker.target.config import load_config

# Fault injection for the kill tests only: BROKER_TEST_KILL_AT=STEP[:N] kills this process with SIGKILL
# the Nth time the job reaches STEP. Never set in production; documented in tests/test_nightly.py.
_KILL_ENV = "BROKER_TEST_KILL_AT"


def _kill_hook():  # type: ignore[no-untyped-def]
    spec = os.environ.get(_KILL_ENV)
    if not spec:
        return None
    step, _, nth = spec.partition(":")
    seen = {"n": 0}

    def hook(name: str) -> None:
        if name == step:
            seen["n"] += 1
            if seen["n"] == int(nth or 1):
                os.kill(os.getpid(), signal.SIGKILL)

    return hook


@click.command("nightly")
@click.option("--inbox", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Folder of new files to ingest; read files move to archive/, unreadable to quarantine/.")
@click.option("--outbox", type=click.Path(file_okay=False, path_type=Path), default=Path("outbox"),
              show_default=True, help="Folder for digests (.eml), the report and the log.")
@click.option("--as-of", "as_of", metavar="DATE", help="Business date, YYYY-MM-DD or dd/mm/yyyy (default: today).")
@rules_option
@click.option("--target-config", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Target amount, counting stage and programme window (TOML/YAML).")
@click.option("--from", "sender", default="brokerage@example.org", envvar="BROKER_DIGEST_FROM", show_default=True,
              help="Digest sender address.")
@click.option("--wait", "wait_seconds", type=float, default=0.0, show_default=True,
              help="If another run holds the lock, wait this many seconds before giving up.")
@click.option("--log", "log_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append the log here (default: OUTBOX/nightly.log).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing when all went well (for cron: mail only on trouble).")
@smtp_options(required=False)
@link_options
@json_option
@pass_app
@handle_errors
def nightly_cmd(app: AppContext, inbox: Path | None, outbox: Path, as_of: str | None, rules_dir: RulesLocation,
                target_config: str | None, sender: str, wait_seconds: float, log_file: Path | None,
                smtp_server: str | None, smtp_user: str | None, password_env: str | None, starttls: bool,
                use_ssl: bool, budget: float, quiet: bool, base_url: str | None, link_days: int,
                as_json: bool) -> None:
    """Ingest the inbox, match, update the target ledger, write digests (and send them), write the report.

    Exit codes: 0 ok, 1 failed (or digests still pending delivery, or a chain head published on an
    earlier night is no longer in the audit chain), 4 done but some input was quarantined, 75 skipped:
    another run holds the lock (try again later). The chain head after the night is printed and appended
    to OUTBOX/audit-heads.txt: keep a copy elsewhere.

    \b
    Example (crontab, every night at 02:30):
        30 2 * * * cd /srv/broker && .venv/bin/broker nightly --inbox inbox --outbox outbox
    """
    day = business_date(as_of)
    outbox.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file or outbox / "nightly.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("broker").addHandler(handler)
    logging.getLogger("broker").setLevel(logging.INFO)
    try:
        options = NightlyOptions(
            as_of=day, inbox=inbox, outbox=outbox, rules_dir=rules_dir, report=outbox / "report.html",
            smtp=smtp_settings(smtp_server, smtp_user, password_env, starttls, use_ssl, budget) if smtp_server else None,
            digest=DigestSettings(sender_address=sender, links=digest_links(base_url, link_days)),
            target=load_config(target_config),
            wait_seconds=wait_seconds, heads=outbox / HEADS_FILE)
        summary = run_nightly(app.engine, app.sessions(), options, crash_hook=_kill_hook())
    finally:
        logging.getLogger("broker").removeHandler(handler)
        handler.close()
    if as_json:
        echo_json({**vars(summary), "exit_code": summary.exit_code})
    elif quiet and summary.exit_code == 0:
        pass
    else:
        click.echo(summary.line())
        for problem in summary.problems[:10]:
            click.echo(f"  quarantined: {problem}", err=True)
        for warning in summary.warnings[:10]:
            click.echo(f"  warning: {warning}", err=True)
        if summary.delivery_stopped:
            click.echo(f"  delivery stopped early: {summary.delivery_stopped}; the rest wait for the next run",
                       err=True)
        for problem in summary.audit_problems:
            click.echo(f"  audit: {problem}. Run `broker audit verify --head {outbox / HEADS_FILE}`.", err=True)
    sys.exit(summary.exit_code)


def register(cli: click.Group) -> None:
    cli.add_command(nightly_cmd)
