"""Value basis: what one opportunity counts toward the target, and why, in words.

BRIEF, Policies / Value basis: a range counts at its lower bound; a single figure at that figure;
unknown, zero or placeholder values count £0 and are listed as "value unknown"; framework agreements and
dynamic purchasing systems count £0 until a call-off or award value is recorded (their ceilings are not
brokerage). A cancelled notice counts £0 from the day it is cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from broker.normalise.money import MAX_PLAUSIBLE
from broker.store.models import Opportunity
from broker.target.config import TargetConfig

# Pence figures outside (1p, MAX_PLAUSIBLE) are placeholders (0, 0.01, 1e9999), never values.
_MAX_PENCE = int(MAX_PLAUSIBLE * 100)


@dataclass(frozen=True)
class NoticeFacts:
    """The facts of a notice that its counted value depends on, as stored on ledger value entries."""

    value_min_pence: int | None
    value_max_pence: int | None
    framework: bool
    status: str | None

    @classmethod
    def of(cls, row: Opportunity) -> NoticeFacts:
        """The facts of an opportunity's current canonical state (a framework or a DPS alike)."""
        return cls(row.value_min_pence, row.value_max_pence, bool(row.is_framework or row.is_dps), row.status)

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"

    def key(self) -> tuple[int | None, int | None, bool, bool]:
        """What a change must touch to need an adjusting entry (open -> closed changes no value)."""
        return (self.value_min_pence, self.value_max_pence, self.framework, self.cancelled)


@dataclass(frozen=True)
class Valuation:
    """A counted value: the basis it was counted on, the amount, and the notice's own figure."""

    basis: str  # lower_bound | upper_bound | midpoint | single_figure | unknown | framework | cancelled | award
    amount_pence: int
    published_pence: int | None = None  # the figure the basis picks before framework/cancel rules


def value_notice(facts: NoticeFacts, config: TargetConfig) -> Valuation:
    """What a notice counts under ``config``'s value basis (no award value considered)."""
    lo, hi = _plausible(facts.value_min_pence), _plausible(facts.value_max_pence)
    lo, hi = (lo if lo is not None else hi), (hi if hi is not None else lo)
    published, basis = _pick(lo, hi, config.value_basis)
    if facts.cancelled:
        return Valuation("cancelled", 0, published)
    if facts.framework and config.frameworks_count_zero:
        return Valuation("framework", 0, published)
    if published is None:
        return Valuation("unknown", 0, None)
    return Valuation(basis, published, published)


def _plausible(pence: int | None) -> int | None:
    return pence if pence is not None and 1 < pence < _MAX_PENCE else None


def _pick(lo: int | None, hi: int | None, basis: str) -> tuple[int | None, str]:
    if lo is None or hi is None:
        return None, "unknown"
    lo, hi = min(lo, hi), max(lo, hi)
    if lo == hi:
        return lo, "single_figure"
    if basis == "upper_bound":
        return hi, basis
    if basis == "midpoint":
        return (lo + hi) // 2, basis
    return lo, "lower_bound"


def describe(facts: NoticeFacts, valuation: Valuation) -> str:
    """The valuation in words, for a ledger reason: "range £50,000-£80,000 counts at lower bound £50,000"."""
    figure = _figure(facts)
    if valuation.basis == "cancelled":
        return f"notice cancelled: counts £0 (was {figure})"
    if valuation.basis == "framework":
        return (f"framework agreement or DPS ({figure}): counts £0 until a call-off or award value "
                "is recorded")
    if valuation.basis == "unknown":
        return "value unknown: counts £0"
    if valuation.basis == "single_figure":
        return f"single figure {format_gbp(valuation.amount_pence)} counts in full"
    return f"range {figure} counts at {valuation.basis.replace('_', ' ')} {format_gbp(valuation.amount_pence)}"


def change_reason(old: NoticeFacts, new: NoticeFacts, old_value: Valuation, new_value: Valuation) -> str:
    """Why an adjusting entry was needed, e.g. "value amended from £50,000 to £40,000"."""
    if new.cancelled and not old.cancelled:
        return f"notice cancelled: counts £0 (was {format_gbp(old_value.amount_pence)})"
    if old.cancelled and not new.cancelled:
        return f"notice reinstated after cancellation: {describe(new, new_value)}"
    if new.framework and not old.framework:
        return f"now a framework agreement or DPS: {describe(new, new_value)}"
    if old.framework and not new.framework:
        return f"no longer a framework agreement or DPS: {describe(new, new_value)}"
    return f"value amended from {_figure(old)} to {_figure(new)}: {describe(new, new_value)}"


def _figure(facts: NoticeFacts) -> str:
    lo, hi = _plausible(facts.value_min_pence), _plausible(facts.value_max_pence)
    if lo is None and hi is None:
        return "value unknown"
    if lo is None or hi is None or lo == hi:
        return format_gbp(lo if lo is not None else hi)
    return f"{format_gbp(min(lo, hi))}-{format_gbp(max(lo, hi))}"


def format_gbp(pence: int | None) -> str:
    """Whole pounds with separators (half-up), or pounds and pence when under £10: "£1,234,568"."""
    if pence is None:
        return "value unknown"
    sign = "-" if pence < 0 else ""
    amount = Decimal(abs(pence)) / 100
    if amount < 10 and amount != amount.to_integral_value():
        return f"{sign}£{amount:.2f}"
    pounds = int(amount.quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    return f"{sign}£{pounds:,}"
