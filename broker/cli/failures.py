"""Every failure a command can meet, as one line that names the thing and the next step.

The core raises ``BrokerError`` for what it refuses on purpose; this module covers the rest: the database
(a URL that does not parse, a SQLite folder that does not exist, a server that refuses the connection),
the file system and the network. Anything else is a bug, reported in one line too; ``BROKER_DEBUG=1``
lets the traceback through for whoever is fixing it.
"""

from __future__ import annotations

import os

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from broker.errors import BrokerError
from broker.locking import LockBusy
from broker.store.engine import DB_HINT

EXIT_LOCKED = 75  # sysexits.h EX_TEMPFAIL: try again later


def debugging() -> bool:
    return os.environ.get("BROKER_DEBUG", "") not in ("", "0")


def shown_url(url: str | None) -> str:
    """The database URL without its password."""
    if not url:
        return "the database"
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 (an unparseable URL is shown as given, minus anything after '@')
        return url.rsplit("@", 1)[-1]


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _database(exc: BaseException, url: str | None) -> str | None:
    where = shown_url(url)
    if isinstance(exc, sa_exc.NoSuchModuleError):
        return f"database {where}: unknown kind of database: {DB_HINT}"
    if isinstance(exc, sa_exc.ArgumentError):
        return f"database {where!r}: not a database URL: {DB_HINT}"
    if not isinstance(exc, sa_exc.DBAPIError | sa_exc.OperationalError):
        return None
    detail = _first_line(exc)
    if where.startswith("sqlite"):
        path = _database_path(url)
        if "unable to open database file" in detail:
            folder = os.path.dirname(os.path.abspath(path or "."))
            why = "its folder does not exist" if not os.path.isdir(folder) else "it cannot be opened for writing"
            return f"database {path}: {why}: create {folder} (or give another --db) and try again"
        if "locked" in detail or "busy" in detail:
            return f"database {path}: busy (another broker command is writing): try again when it has finished"
        if "not a database" in detail:
            return f"database {path}: this file is not a SQLite database: {DB_HINT}"
        return f"database {path}: {detail}: check the file, or run `broker init` to create it"
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return f"database {where}: cannot connect ({detail}): start the server or check --db / BROKER_DB"
    return f"database {where}: {detail}: check the database, then try again"


def _database_path(url: str | None) -> str | None:
    try:
        return make_url(url).database if url else None
    except Exception:  # noqa: BLE001
        return url


def _file(exc: OSError) -> str:
    name = exc.filename if exc.filename is not None else "file"
    reason = (exc.strerror or str(exc)).lower()
    if isinstance(exc, FileNotFoundError):
        step = "check the path"
    elif isinstance(exc, PermissionError):
        step = "check who may read and write it"
    elif isinstance(exc, IsADirectoryError | NotADirectoryError):
        step = "give a file where a file is wanted and a folder where a folder is"
    else:
        step = "check the disk and the path"
    return f"{name}: {reason}: {step}"


def _network(exc: BaseException) -> str | None:
    try:
        import httpx
    except ImportError:  # pragma: no cover (a dependency)
        return None
    if not isinstance(exc, httpx.HTTPError):
        return None
    request = getattr(exc, "_request", None)
    where = str(request.url) if request is not None else "the server"
    return f"network: {where}: {_first_line(exc)}: check the address and the connection, then try again"


def describe(exc: BaseException, db_url: str | None) -> tuple[str, int]:
    """One line (without the ``Error:`` prefix) and the exit code for ``exc``."""
    if isinstance(exc, LockBusy):
        # Its own exit code (EX_TEMPFAIL), so cron can tell "skipped" from "failed".
        return (f"skipped: another broker run holds the lock on {shown_url(db_url)} and is still running; "
                "wait for it to finish, or run again with --wait SECONDS", EXIT_LOCKED)
    if isinstance(exc, BrokerError):
        return str(exc), exc.exit_code
    message = _database(exc, db_url) or _network(exc)
    if message is None and isinstance(exc, OSError):
        message = _file(exc)
    if message is not None:
        return message, 1
    if isinstance(exc, RecursionError | MemoryError):
        return f"input too large or too deeply nested to process ({type(exc).__name__})", 1
    return (f"unexpected {type(exc).__name__}: {_first_line(exc)} (a bug in broker: please report it with the "
            "command you ran; BROKER_DEBUG=1 shows the details)", 70)
