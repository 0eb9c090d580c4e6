"""Ranking metrics over graded relevance (0 not relevant, 1 partly, 2 relevant).

Items the labelled set does not grade count as grade 0: the pool was built from several retrieval
methods, so an unpooled item is assumed irrelevant (the usual pooling assumption; see
fixtures/labelled/README.md for its limits).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Scores:
    ndcg_at_10: float
    p_at_5: float
    recall_at_20: float
    noise_at_10: float
    returned: int

    def as_dict(self) -> dict[str, float]:
        return {"ndcg@10": self.ndcg_at_10, "p@5": self.p_at_5, "recall@20": self.recall_at_20,
                "noise@10": self.noise_at_10, "returned": float(self.returned)}


def _gain(grade: int) -> float:
    return float(2 ** grade - 1)


def dcg(grades: Sequence[int], k: int) -> float:
    return sum(_gain(g) / math.log2(i + 2) for i, g in enumerate(grades[:k]))


def ndcg_at(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """nDCG@k; the ideal ranking is the best ordering of every judged item."""
    ideal = dcg(sorted(judged.values(), reverse=True), k)
    if ideal == 0:
        return 0.0
    return dcg([judged.get(item, 0) for item in ranking], k) / ideal


def precision_at(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """Share of the top k positions holding a relevant item (grade ≥ 1); empty positions count as misses."""
    return sum(1 for item in ranking[:k] if judged.get(item, 0) >= 1) / k


def recall_at(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    relevant = {item for item, g in judged.items() if g >= 1}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def noise_at(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """Share of grade-0 items among those shown in the top k (0 when nothing is shown)."""
    shown = ranking[:k]
    if not shown:
        return 0.0
    return sum(1 for item in shown if judged.get(item, 0) == 0) / len(shown)


def score_ranking(ranking: Sequence[str], judged: Mapping[str, int]) -> Scores:
    return Scores(ndcg_at(ranking, judged, 10), precision_at(ranking, judged, 5), recall_at(ranking, judged, 20),
                  noise_at(ranking, judged, 10), len(ranking))


def mean_scores(per_profile: Sequence[Scores]) -> Scores:
    n = len(per_profile) or 1
    return Scores(sum(s.ndcg_at_10 for s in per_profile) / n, sum(s.p_at_5 for s in per_profile) / n,
                  sum(s.recall_at_20 for s in per_profile) / n, sum(s.noise_at_10 for s in per_profile) / n,
                  round(sum(s.returned for s in per_profile) / n))
