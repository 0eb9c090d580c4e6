"""Money: publisher amounts become integer pence in GBP, or unknown.

Policy (BRIEF, Policies / Value basis): zero, 0.01 and absurd placeholders such as ``1e9999`` are "value
unknown", never numbers. A non-GBP amount is kept with its currency but counts as unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

# Amounts publishers use to mean "not given". Contracts Finder uses 0, Sell2Wales 0.01.
SENTINEL_AMOUNTS = frozenset({Decimal("0"), Decimal("0.01")})
# Nothing a VCSE brokerage sees is worth a trillion pounds: larger numbers are placeholders (1e9999).
MAX_PLAUSIBLE = Decimal("1e12")
_STRIP = re.compile(r"[£,\s]|GBP", re.IGNORECASE)


@dataclass(frozen=True)
class Money:
    """An amount as pence GBP (``None`` when unknown), with the currency and original text when not GBP."""

    pence: int | None
    currency: str | None = None
    original: str | None = None


UNKNOWN = Money(None)


def to_decimal(value: Any) -> Decimal | None:
    """Parse a publisher amount. Blank means ``None``; unparseable text raises ``ValueError``."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    text = _STRIP.sub("", str(value))
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not an amount: {str(value)[:60]!r}") from None


def to_money(value: Any, currency: str | None = "GBP") -> Money:
    """Normalise one amount. Raises ``ValueError`` for text that is not a number or a negative amount."""
    amount = to_decimal(value)
    if amount is None or not amount.is_finite() or amount in SENTINEL_AMOUNTS or amount >= MAX_PLAUSIBLE:
        return UNKNOWN
    if amount < 0:
        raise ValueError(f"negative amount {amount}")
    cur = (currency or "GBP").strip().upper() or "GBP"
    if cur != "GBP":
        return Money(None, cur, format(amount, "f"))
    pence = int((amount * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    return Money(pence, "GBP") if pence > 1 else UNKNOWN


def gbp_to_pence(value: Any) -> int | None:
    """An officer-entered GBP figure (directory, private opportunities) as pence; blank is ``None``."""
    amount = to_decimal(value)
    if amount is None:
        return None
    if not amount.is_finite() or amount < 0 or amount >= MAX_PLAUSIBLE:
        raise ValueError(f"amount must be a non-negative number below £1 trillion, got {value!r}")
    return int((amount * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def value_range(low: Money, high: Money) -> tuple[int | None, int | None]:
    """Order a (low, high) pair; a single known figure is both bounds."""
    lo, hi = low.pence, high.pence
    if lo is None:
        lo = hi
    if hi is None:
        hi = lo
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    return lo, hi
