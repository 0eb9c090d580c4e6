"""The outcome stages of a brokered opportunity and what each implies.

matched -> introduced -> interested -> bid -> won | lost | withdrawn. The first four are a ladder: a
later rung implies the earlier ones (a bid was necessarily introduced). The last three are outcomes; a
pair's outcome is its latest one, so an officer can correct "won" to "lost" with a new entry.
"""

from __future__ import annotations

LADDER = ("matched", "introduced", "interested", "bid")
OUTCOMES = ("won", "lost", "withdrawn")
STAGES = LADDER + OUTCOMES
# Stages an opportunity can be counted at (default: interested, with introduced as the pipeline). lost/withdrawn are not brokerage
# milestones of their own: they imply the rung below them, which is counted.
COUNTING_STAGES = LADDER + ("won",)
# Stages an officer records by hand (matched comes from a run; introduced may also come from a digest).
OFFICER_STAGES = STAGES
# The rung each outcome implies: a won or lost bid was a bid; a party withdrawing had been introduced.
_IMPLIED_RUNG = {"won": "bid", "lost": "bid", "withdrawn": "introduced"}


def rung(stage: str) -> int:
    """The ladder position a stage implies (0 = matched ... 3 = bid)."""
    return LADDER.index(_IMPLIED_RUNG.get(stage, stage))


def is_outcome(stage: str) -> bool:
    return stage in OUTCOMES
