"""Per-VCSE digest preferences: opt-in override, digest cap and minimum score.

Kept in their own table keyed by party id, not on the directory row, so re-importing the officers'
spreadsheet never erases what a VCSE asked for. ``None`` means "use the default".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.errors import InputError, NotFound
from broker.store.models import DigestPreference, Vcse

DEFAULT_CAP = 10  # BRIEF, Policies / Digests: at most N per digest (default 10)
MAX_CAP = 100
UNSET: Any = object()  # "leave as it is" (``None`` means "back to the default")


@dataclass(frozen=True)
class Effective:
    """The settings a digest for one VCSE uses, and where each came from."""

    party_id: str
    opt_in: bool
    opt_in_source: str  # preference | directory
    cap: int
    min_score: int
    contact_email: str | None


def effective(vcse: Vcse, pref: DigestPreference | None, *, default_cap: int = DEFAULT_CAP,
              default_min_score: int = 0) -> Effective:
    """Combine the directory row, the VCSE's preference (if any) and the run's defaults."""
    override = pref.opt_in if pref is not None else None
    return Effective(
        party_id=vcse.id,
        opt_in=vcse.digest_opt_in if override is None else override,
        opt_in_source="directory" if override is None else "preference",
        cap=pref.digest_cap if pref is not None and pref.digest_cap is not None else default_cap,
        min_score=(pref.min_score if pref is not None and pref.min_score is not None
                   else default_min_score),
        contact_email=vcse.contact_email,
    )


def load_preferences(session: Session, party_ids: Iterable[str]) -> dict[str, DigestPreference]:
    """Preferences for these parties, by id (those without one are absent)."""
    ids = sorted(set(party_ids))
    found: dict[str, DigestPreference] = {}
    for start in range(0, len(ids), 2000):
        rows = session.scalars(select(DigestPreference).where(
            DigestPreference.party_id.in_(ids[start:start + 2000])))
        found.update({p.party_id: p for p in rows})
    return found


def set_preferences(session: Session, party_id: str, *, opt_in: bool | None = UNSET,
                    cap: int | None = UNSET, min_score: int | None = UNSET) -> DigestPreference:
    """Create or change a VCSE's preferences. Pass ``None`` to return a setting to its default.

    Raises:
        NotFound: no VCSE has this id.
        InputError: the cap is not 1..100 or the minimum score not 0..100.
    """
    if session.get(Vcse, party_id) is None:
        raise NotFound(f"no VCSE {party_id!r}. Preferences are kept for VCSEs in the directory.")
    if cap is not UNSET and cap is not None and not 1 <= cap <= MAX_CAP:
        raise InputError(f"the digest cap must be 1..{MAX_CAP}, got {cap}", field="cap")
    if min_score is not UNSET and min_score is not None and not 0 <= min_score <= 100:
        raise InputError(f"the minimum score must be 0..100, got {min_score}", field="min_score")
    pref = session.get(DigestPreference, party_id)
    if pref is None:
        pref = DigestPreference(party_id=party_id, opt_in=None, digest_cap=None, min_score=None)
        session.add(pref)
    if opt_in is not UNSET:
        pref.opt_in = opt_in
    if cap is not UNSET:
        pref.digest_cap = cap
    if min_score is not UNSET:
        pref.min_score = min_score
    session.flush()
    return pref


def clear_preferences(session: Session, party_id: str) -> bool:
    """Remove a VCSE's preferences (back to the directory and defaults). True if there were any."""
    pref = session.get(DigestPreference, party_id)
    if pref is None:
        return False
    session.delete(pref)
    session.flush()
    return True


def show_preferences(session: Session, party_id: str) -> dict[str, Any]:
    """The stored preference and the effective settings for one VCSE, as JSON-ready data."""
    vcse = session.get(Vcse, party_id)
    if vcse is None:
        raise NotFound(f"no VCSE {party_id!r}. Try `broker preferences show` to list preferences.")
    pref = session.get(DigestPreference, party_id)
    eff = effective(vcse, pref)
    return {
        "party_id": party_id,
        "name": vcse.name,
        "directory_opt_in": vcse.digest_opt_in,
        "stored": None if pref is None else
        {"opt_in": pref.opt_in, "digest_cap": pref.digest_cap, "min_score": pref.min_score},
        "effective": {"opt_in": eff.opt_in, "opt_in_source": eff.opt_in_source,
                      "digest_cap": eff.cap, "min_score": eff.min_score},
    }


def list_preferences(session: Session) -> list[dict[str, Any]]:
    """Every stored preference, by party id."""
    rows = session.scalars(select(DigestPreference).order_by(DigestPreference.party_id))
    return [{"party_id": p.party_id, "opt_in": p.opt_in, "digest_cap": p.digest_cap,
             "min_score": p.min_score} for p in rows]
