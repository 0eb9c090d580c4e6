"""Officers who log in to the workspace: created from the command line, passwords hashed with Argon2id.

Only the hash is stored (argon2-cffi's PHC string, which carries its own salt and parameters, so the
parameters can be raised later and old hashes still verify and are re-hashed on the next login).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.digest.formatting import valid_email
from broker.errors import InputError, NotFound
from broker.store.models import Officer

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024  # hashing is deliberately slow; refuse megabyte "passwords" before hashing
_HASHER = PasswordHasher()
# Verified against when the email is unknown, so a wrong email takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("not a real password, only for timing")


def check_password(password: str) -> None:
    """Raise ``InputError`` for a password too short or too long to accept."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise InputError(f"the password must be at least {MIN_PASSWORD_CHARS} characters", field="password")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InputError(f"the password must be at most {MAX_PASSWORD_CHARS} characters", field="password")


def add_officer(session: Session, email: str, password: str, *, replace: bool = False) -> Officer:
    """Create an officer (or, with ``replace``, set a new password for an existing one). Does not commit.

    Raises:
        InputError: not a plain email address, a weak password, or the officer exists (without ``replace``).
    """
    address = valid_email(email.strip())
    if address is None:
        raise InputError(f"{email!r} is not a plain email address", field="email")
    address = address.lower()
    check_password(password)
    row = session.scalars(select(Officer).where(Officer.email == address)).first()
    if row is not None and not replace:
        raise InputError(f"an officer {address} already exists (use --replace to set a new password)",
                         field="email")
    if row is None:
        row = Officer(email=address, password_hash="", active=True, created_at=datetime.now(UTC))
        session.add(row)
    row.password_hash = _HASHER.hash(password)
    row.active = True
    session.flush()
    return row


def disable_officer(session: Session, email: str) -> bool:
    """Stop an officer logging in (their open sessions end on their next request). True if it changed."""
    row = session.scalars(select(Officer).where(Officer.email == email.strip().lower())).first()
    if row is None:
        raise NotFound(f"no officer {email!r}. Try `broker officer list`.")
    changed = row.active
    row.active = False
    session.flush()
    return changed


def session_tag(officer: Officer) -> str:
    """Stored in the officer's session cookie: a new password (or a re-hash) ends every older session."""
    return hashlib.sha256(officer.password_hash.encode()).hexdigest()[:16]


def list_officers(session: Session) -> list[dict[str, object]]:
    return [{"email": o.email, "active": o.active, "created_at": o.created_at.isoformat()}
            for o in session.scalars(select(Officer).order_by(Officer.email))]


def authenticate(session: Session, email: str, password: str) -> Officer | None:
    """The active officer with this email and password, else ``None`` (same work either way). May flush a
    re-hash when the stored hash uses older parameters."""
    if len(password) > MAX_PASSWORD_CHARS:
        return None
    row = session.scalars(select(Officer).where(Officer.email == email.strip().lower())).first()
    try:
        _HASHER.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or not row.active:
        return None
    if _HASHER.check_needs_rehash(row.password_hash):
        row.password_hash = _HASHER.hash(password)
        session.flush()
    return row
