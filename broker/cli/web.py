"""``broker serve`` (the web front) and ``broker officer add|list``; the link options of digest builds."""

from __future__ import annotations

import sys
from datetime import date
from typing import Any

import click

from broker.cli.common import AppContext, echo_json, handle_errors, json_option, pass_app
from broker.errors import ConfigError
from broker.normalise.dates import parse_business_date
from broker.target.config import load_config
from broker.web.config import DEFAULT_LINK_DAYS, SECRET_ENV, SECRET_FILE_ENV, link_settings, load_secret
from broker.web.tokens import LinkSettings


def link_options(fn: Any) -> Any:
    """``--base-url`` and ``--link-days``: where digest links point and how long they work."""
    fn = click.option("--link-days", type=click.IntRange(1, 366), default=DEFAULT_LINK_DAYS, show_default=True,
                      envvar="BROKER_LINK_DAYS",
                      help="Digest links work until the digest's date plus this many days. Env: BROKER_LINK_DAYS.")(fn)
    return click.option("--base-url", default=None, envvar="BROKER_BASE_URL", metavar="URL",
                        help="Public address of `broker serve` (e.g. https://broker.example.org). With a "
                             f"signing secret ({SECRET_ENV} or {SECRET_FILE_ENV}) digests carry one-click "
                             "links; without both they ask for a reply. Env: BROKER_BASE_URL.")(fn)


def digest_links(base_url: str | None, link_days: int) -> LinkSettings | None:
    return link_settings(base_url, link_days)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port to listen on.")
@click.option("--base-url", default=None, envvar="BROKER_BASE_URL", metavar="URL",
              help="Public address (https://... behind a TLS proxy makes cookies Secure). Env: BROKER_BASE_URL.")
@click.option("--cookie-secure/--cookie-insecure", "secure", default=None,
              help="Force the Secure cookie flag on or off (default: on when --base-url is https).")
@click.option("--rate-limit", type=click.IntRange(1, 100_000), default=60, show_default=True,
              help="Requests per minute per client address on link and login pages.")
@click.option("--proxy-headers", is_flag=True,
              help="Trust X-Forwarded-For from a proxy on 127.0.0.1 (for the rate limit's client address).")
@click.option("--target-config", type=click.Path(dir_okay=False, exists=True), default=None,
              envvar="BROKER_TARGET_CONFIG", help="Counting configuration for the report and outcomes.")
@click.option("--as-of", "as_of", metavar="DATE", default=None,
              help="Pin the business date (demos and tests; default: today, UK time, on every request).")
@pass_app
@handle_errors
def serve_cmd(app: AppContext, host: str, port: int, base_url: str | None, secure: bool | None, rate_limit: int,
              proxy_headers: bool, target_config: str | None, as_of: str | None) -> None:
    """Serve the VCSE link pages and the officer workspace on the --db database.

    Needs the signing secret in BROKER_SECRET or a file named by BROKER_SECRET_FILE (the same secret
    that signs the digest links). Officers log in at /login (create them with `broker officer add`).

    \b
    Example:
        BROKER_SECRET_FILE=/etc/broker/secret broker --db postgresql+psycopg://broker@/broker \\
            serve --host 127.0.0.1 --port 8080 --base-url https://broker.example.org
    """
    import uvicorn

    from broker.web.app import WebConfig, create_app

    secret = load_secret()
    if secret is None:
        raise ConfigError(f"no signing secret: set {SECRET_ENV} or {SECRET_FILE_ENV} (a file holding at least "
                          "32 random characters, e.g. from `python -c 'import secrets; "
                          "print(secrets.token_urlsafe(32))'`)")
    if base_url is not None:
        LinkSettings(base_url, secret).validate()
    elif len(secret) < 32:
        raise ConfigError("the signing secret must be at least 32 characters")
    pinned: date | None = None
    if as_of is not None:
        try:
            pinned = parse_business_date(as_of)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--as-of") from None
    config = WebConfig(secret=secret, rate_limit=rate_limit, target=load_config(target_config),
                       secure_cookies=secure if secure is not None else bool(base_url and base_url.startswith("https")))
    if pinned is not None:
        config.clock = lambda: pinned  # type: ignore[assignment,return-value]
    app.sessions()  # a clear error now when the schema is not current
    click.echo(f"broker serve: http://{host}:{port}/ (officers: /login); Ctrl-C stops it.", err=True)
    uvicorn.run(create_app(app.engine, config), host=host, port=port, proxy_headers=proxy_headers,
                forwarded_allow_ips="127.0.0.1" if proxy_headers else None, server_header=False,
                log_level="info")


@click.group("officer")
def officer_group() -> None:
    """Officers who may log in to the workspace (`broker serve`)."""


@officer_group.command("add")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option("--replace", is_flag=True, help="Set a new password for an existing officer.")
@pass_app
@handle_errors
def officer_add_cmd(app: AppContext, email: str, password_stdin: bool, replace: bool) -> None:
    """Create an officer (asks for the password twice, or reads it from --password-stdin).

    \b
    Examples:
        broker officer add alex@brokerage.example
        printf '%s\\n' "$PASSWORD" | broker officer add alex@brokerage.example --password-stdin
    """
    from broker.web.officers import add_officer

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with app.sessions().begin() as session:
        row = add_officer(session, email, password, replace=replace)
        address = row.email
    click.echo(f"officer {address} {'updated' if replace else 'added'}.")


@officer_group.command("disable")
@click.argument("email")
@pass_app
@handle_errors
def officer_disable_cmd(app: AppContext, email: str) -> None:
    """Stop an officer logging in; their open sessions end at once (`officer add --replace` re-enables)."""
    from broker.web.officers import disable_officer

    with app.sessions().begin() as session:
        changed = disable_officer(session, email)
    click.echo(f"officer {email.strip().lower()} {'disabled' if changed else 'was already disabled'}.")


@officer_group.command("list")
@json_option
@pass_app
@handle_errors
def officer_list_cmd(app: AppContext, as_json: bool) -> None:
    """List the officers (never their password hashes)."""
    from broker.web.officers import list_officers

    with app.sessions()() as session:
        rows = list_officers(session)
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['email']}  {'active' if r['active'] else 'disabled'}  since {r['created_at'][:10]}")
    click.echo(f"{len(rows)} officers.")


def register(cli: click.Group) -> None:
    cli.add_command(serve_cmd)
    cli.add_command(officer_group)
