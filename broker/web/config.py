"""Configuration of the web front and of the links in digests: base URL, signing secret, link lifetime.

The secret comes from the environment, never from a command-line argument (which other users of the
machine can read in the process list): ``BROKER_SECRET`` holds it, or ``BROKER_SECRET_FILE`` names a file
that does (systemd's ``LoadCredential=`` puts one in ``$CREDENTIALS_DIRECTORY``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from broker.errors import ConfigError
from broker.web.tokens import LinkSettings

SECRET_ENV, SECRET_FILE_ENV = "BROKER_SECRET", "BROKER_SECRET_FILE"
DEFAULT_LINK_DAYS = 30


def load_secret(env: Mapping[str, str] | None = None) -> str | None:
    """The signing secret from ``BROKER_SECRET`` or the file ``BROKER_SECRET_FILE`` names; ``None`` if neither.

    Raises:
        ConfigError: the file cannot be read or is empty.
    """
    env = os.environ if env is None else env
    if env.get(SECRET_ENV):
        return env[SECRET_ENV].strip()
    path = env.get(SECRET_FILE_ENV)
    if not path:
        return None
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{SECRET_FILE_ENV}={path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{SECRET_FILE_ENV}={path}: not UTF-8 text") from None
    if not secret:
        raise ConfigError(f"{SECRET_FILE_ENV}={path}: the file is empty")
    return secret


def link_settings(base_url: str | None, days: int = DEFAULT_LINK_DAYS,
                  env: Mapping[str, str] | None = None) -> LinkSettings | None:
    """Link settings when both a base URL and a secret are configured, else ``None`` (digests then carry
    no links and tell the VCSE to reply instead). Half a configuration is an error, not a silent default.

    Raises:
        ConfigError: only one of the two is configured, or either is malformed.
    """
    secret = load_secret(env)
    if base_url is None and secret is None:
        return None
    if base_url is None:
        raise ConfigError("a signing secret is set but no base URL: give --base-url (or BROKER_BASE_URL) "
                          "so digests can carry links, or unset BROKER_SECRET")
    if secret is None:
        raise ConfigError(f"--base-url is set but no signing secret: set {SECRET_ENV} or {SECRET_FILE_ENV}")
    settings = LinkSettings(base_url=base_url, secret=secret, days=days)
    settings.validate()
    return settings
