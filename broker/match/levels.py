"""Named threshold levels for the fuzzy and numeric comparisons, with the labels decisions show.

Following splink's ``JaroWinklerAtThresholds`` (CONVENTIONS, Rules and scoring), a score is never shown or
tested raw: it falls into a named level ("strong capability match" >= 75, ...) and the levels in force are
recorded with every run (``Levels.to_json``). The defaults are module constants; pass a different
``Levels`` to change them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker.errors import ConfigError

# Capability score thresholds (0-100). The score is the relevance model's calibrated probability (percent)
# that the VCSE would call the notice relevant, so the levels read as odds: "strong" is an even chance or
# better, "good" one in four, "weak" one in ten. Record them with each run.
CAPABILITY_STRONG = 50
CAPABILITY_GOOD = 25
CAPABILITY_WEAK = 10
# value_fit: "stretch" when the opportunity's minimum is up to this share of the party's maximum.
VALUE_STRETCH_PCT = 150
# Typos are tolerated on words of at least this many letters, at this many edits (optimal string
# alignment: a swap of neighbouring letters is one edit), and only when the first letter agrees (people
# rarely mistype the first letter; it also keeps "rental" from matching "mental").
TYPO_MIN_LENGTH = 6
TYPO_MAX_EDITS = 1


@dataclass(frozen=True)
class Level:
    """One named level: scores at or above ``minimum`` (and below the next level up) get ``name``."""

    name: str
    minimum: int
    label: str


def _default_capability() -> tuple[Level, ...]:
    return (
        Level("strong", CAPABILITY_STRONG, "strong capability match"),
        Level("good", CAPABILITY_GOOD, "good capability match"),
        Level("weak", CAPABILITY_WEAK, "weak capability match"),
    )


@dataclass(frozen=True)
class Levels:
    """Thresholds and labels for pair features. Immutable; record ``to_json()`` in the run manifest."""

    capability: tuple[Level, ...] = field(default_factory=_default_capability)
    value_stretch_pct: int = VALUE_STRETCH_PCT
    typo_min_length: int = TYPO_MIN_LENGTH
    typo_max_edits: int = TYPO_MAX_EDITS

    def __post_init__(self) -> None:
        names = [lv.name for lv in self.capability]
        if names != ["strong", "good", "weak"]:
            raise ConfigError(f"capability levels must be strong, good, weak in that order, got {names}")
        minimums = [lv.minimum for lv in self.capability]
        if not all(0 < b < a <= 100 for a, b in zip(minimums, minimums[1:], strict=False)) or minimums[-1] < 1:
            raise ConfigError(f"capability thresholds must fall strictly within 1-100, got {minimums}")
        if self.value_stretch_pct < 100:
            raise ConfigError(f"value_stretch_pct must be at least 100, got {self.value_stretch_pct}")
        if self.typo_max_edits < 0 or self.typo_min_length < 3:
            raise ConfigError("typo_max_edits must be >= 0 and typo_min_length >= 3")

    def capability_level(self, score: int) -> str:
        """The level name for a capability score: ``strong``, ``good``, ``weak`` or ``none``."""
        strong, good, weak = self.capability
        if score >= weak.minimum:
            return "strong" if score >= strong.minimum else ("good" if score >= good.minimum else "weak")
        return "none"

    def capability_label(self, level: str) -> str:
        """Words for a level, e.g. ``"strong capability match"``; ``"no capability match"`` for none."""
        for lv in self.capability:
            if lv.name == level:
                return lv.label
        return "no capability match"

    def to_json(self) -> dict[str, Any]:
        """A plain document of every threshold and label, for the run manifest and decisions."""
        return {
            "capability": [{"name": lv.name, "minimum": lv.minimum, "label": lv.label} for lv in self.capability],
            "value_stretch_pct": self.value_stretch_pct,
            "typo_min_length": self.typo_min_length,
            "typo_max_edits": self.typo_max_edits,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Levels:
        """Inverse of ``to_json`` (configuration files, replaying a recorded run)."""
        try:
            capability = tuple(Level(str(d["name"]), int(d["minimum"]), str(d["label"]))
                               for d in data.get("capability", ()))
            return cls(
                capability=capability or _default_capability(),
                value_stretch_pct=int(data.get("value_stretch_pct", VALUE_STRETCH_PCT)),
                typo_min_length=int(data.get("typo_min_length", TYPO_MIN_LENGTH)),
                typo_max_edits=int(data.get("typo_max_edits", TYPO_MAX_EDITS)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad levels configuration: {exc}") from None


DEFAULT_LEVELS = Levels()
