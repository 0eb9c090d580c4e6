"""The canonical opportunity record that every source reader produces.

One record per (ocid, lot) for OCDS, per row for CSV exports and private opportunities. Money is integer
pence in GBP (a non-GBP amount is kept in ``value_original`` with its currency and counts as unknown),
dates are aware UTC datetimes. Records are immutable and serialise to a canonical JSON form whose sha256
is the record's ``content_hash``: an unchanged re-ingest produces the same hash and touches nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from broker.normalise.dates import iso_utc

STATUSES = ("planned", "open", "closed", "cancelled", "awarded")

_DATETIME_FIELDS = ("published_at", "deadline_at", "contract_start", "contract_end")
_TUPLE_FIELDS = ("source_ids", "cpv_codes", "cpv_unknown", "reserved_participation", "match_keys", "regions")


@dataclass(frozen=True)
class OpportunityRecord:
    """A normalised opportunity (or lot) as one source describes it."""

    id: str
    source: str
    title: str
    buyer_name: str
    status: str
    raw_hash: str
    description: str = ""
    source_ids: tuple[str, ...] = ()
    ocid: str | None = None
    lot_id: str | None = None
    buyer_id: str | None = None
    buyer_type: str | None = None
    notice_type: str | None = None
    published_at: datetime | None = None
    deadline_at: datetime | None = None
    contract_start: datetime | None = None
    contract_end: datetime | None = None
    value_min_pence: int | None = None
    value_max_pence: int | None = None
    value_currency: str | None = None
    value_original: str | None = None
    cpv_codes: tuple[str, ...] = ()
    cpv_unknown: tuple[str, ...] = ()
    postcode: str | None = None
    local_authority: str | None = None
    lad_code: str | None = None
    itl_code: str | None = None
    region: str | None = None
    # Every region a notice names (a multi-region notice is nationwide=False but not local either).
    regions: tuple[str, ...] = ()
    cluster: str | None = None
    nationwide: bool = False
    sme_suitable: bool | None = None
    vcse_suitable: bool | None = None
    reserved_participation: tuple[str, ...] = ()
    is_framework: bool = False
    is_dps: bool = False
    url: str | None = None
    # Keys under which the same notice may arrive from another source (see broker.ingest dedupe).
    match_keys: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")
        for name in ("value_min_pence", "value_max_pence"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ValueError(f"{name} must be a non-negative int of pence, got {v!r}")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            texts = v if isinstance(v, tuple) else (v,)
            for t in texts:
                if isinstance(t, str) and not _storable_text(t):
                    # Clean text never holds NUL or lone surrogates; databases cannot store them either.
                    raise ValueError(f"{f.name} contains a NUL character or an unpaired surrogate")
        for name in _DATETIME_FIELDS:
            v = getattr(self, name)
            if v is not None and (v.tzinfo is None or v.utcoffset() != UTC.utcoffset(None)):
                raise ValueError(f"{name} must be an aware UTC datetime, got {v!r}")

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON form (dates ISO 8601 UTC with ``Z``, tuples as lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, datetime):
                v = iso_utc(v)
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OpportunityRecord:
        kwargs = dict(data)
        for name in _DATETIME_FIELDS:
            if kwargs.get(name):
                kwargs[name] = datetime.fromisoformat(kwargs[name].replace("Z", "+00:00")).astimezone(UTC)
        for name in _TUPLE_FIELDS:
            kwargs[name] = tuple(kwargs.get(name) or ())
        return cls(**kwargs)

    @property
    def content_hash(self) -> str:
        return canonical_hash(self.to_json())


def _storable_text(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def canonical_json(data: Any) -> str:
    """Sorted keys, no spaces, UTF-8: the one serialisation every hash in broker is taken over."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def canonical_hash(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def decimal_json(value: Decimal) -> int | float | str:
    """A publisher number parsed as Decimal, as JSON: integers exact, others float, absurd ones as text."""
    if value.is_finite() and value == value.to_integral_value() and abs(value) < 10**18:
        return int(value)
    if value.is_finite() and abs(value) < 10**15:
        return float(value)
    return str(value)


def build_record(**fields: Any) -> OpportunityRecord:
    """The record, or an :class:`InputError` when it refuses a value (text a database cannot store)."""
    from broker.errors import InputError

    try:
        return OpportunityRecord(**fields)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_json(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")
