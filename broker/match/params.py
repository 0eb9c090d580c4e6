"""Match parameters: every threshold a run uses, recorded in its manifest and read back for replay."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from broker.errors import ConfigError
from broker.match.candidates import DEFAULT_PARAMS, CandidateParams
from broker.match.levels import DEFAULT_LEVELS, Levels
from broker.match.relevance import DEFAULT_RELEVANCE, RelevanceParams


@dataclass(frozen=True)
class ConsortiumParams:
    """How new groupings are suggested when no single VCSE can take an opportunity on."""

    min_members: int = 2
    max_members: int = 4
    suggestions_per_opportunity: int = 3
    # A member must have some relevance to the opportunity on its own (capability_score, a probability in
    # percent: 5 is one chance in twenty; the weak level starts at 10).
    member_min_capability: int = 5
    # Members come from the same or a neighbouring cluster (BRIEF, Match).
    neighbouring_clusters_only: bool = True
    # A grouping is only suggested when its combined capacity reaches the opportunity's value within this
    # stretch (a £118m notice is not for three charities with £150,000 between them).
    max_value_to_capacity_pct: int = 150

    def __post_init__(self) -> None:
        if not 2 <= self.min_members <= self.max_members <= 4:
            raise ConfigError("consortium sizes must satisfy 2 <= min_members <= max_members <= 4")


@dataclass(frozen=True)
class MatchParams:
    # A pair that no rule rejects matches from this score (0-100): the calibrated floor. The capability
    # score is a probability in percent and the other rules add a few points, so 20 is about "one chance in
    # five or better that you would call it relevant". Chosen by leave-one-profile-out cross-validation on
    # the labelled tune split (bench/relevance_tune.py): the lowest floor whose held-out noise@10 is near
    # 0.45 while at most one profile in eighteen with relevant notices is left empty.
    min_score: int = 20
    # incremental runs re-check live matches whose deadline is this close (when a rule makes pair decisions
    # depend on the date: service.pairs_change_with_the_date)
    recheck_days: int = 7
    pair_batch: int = 20_000
    candidates: CandidateParams = DEFAULT_PARAMS
    levels: Levels = DEFAULT_LEVELS
    relevance: RelevanceParams = DEFAULT_RELEVANCE
    consortium: ConsortiumParams = field(default_factory=ConsortiumParams)

    def __post_init__(self) -> None:
        if not 0 <= self.min_score <= 100:
            raise ConfigError(f"min_score must be 0-100, got {self.min_score}")

    def to_json(self) -> dict[str, Any]:
        return {"min_score": self.min_score, "recheck_days": self.recheck_days, "pair_batch": self.pair_batch,
                "candidates": self.candidates.to_json(), "levels": self.levels.to_json(),
                "relevance": self.relevance.to_json(),
                "consortium": asdict(self.consortium)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MatchParams:
        try:
            return cls(min_score=int(data["min_score"]), recheck_days=int(data["recheck_days"]),
                       pair_batch=int(data["pair_batch"]), candidates=CandidateParams(**data["candidates"]),
                       levels=Levels.from_json(data["levels"]),
                       relevance=RelevanceParams.from_json(data.get("relevance")), consortium=ConsortiumParams(**data["consortium"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad match parameters: {exc}") from None
