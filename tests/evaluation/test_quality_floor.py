"""The quality floor: on the held-out (test) split of every labelled set, the matcher must beat both a
Contracts-Finder-style keyword alert and plain BM25 on nDCG@10 and recall@20, and keep noise@10 at or
below 0.45.

Parts the matcher does not meet yet are marked ``xfail(strict=True)``: they fail the suite the day they
start passing, so whoever lands the better relevance model removes the mark (and the floor then holds).
Measured on main after the relevance model, eligibility and business-date changes merged (``broker eval --split test``):

| set, test split | matcher nDCG / R@20 / noise | keyword alert nDCG / R@20 | plain BM25 nDCG / R@20 |
| --- | --- | --- | --- |
| cf2020 (16 profiles) | 0.425 / 0.393 / 0.343 | 0.236 / 0.347 | 0.513 / 0.813 |
| mixed (6 profiles) | 0.667 / 0.667 / 0.000 | 0.465 / 0.417 | 0.837 / 1.000 |

The mixed set now runs once per notice group as of that group's business date (its notices span 2019 to
2026; see fixtures/labelled_2/README.md), with the same figures as above.
"""

from __future__ import annotations

import pytest
from testpaths import FIXTURES, ROOT

from broker.evaluation.labelled import SplitReport, evaluate_set
from broker.evaluation.sets import load_set

NOISE_CEILING = 0.45
SETS = {"cf2020": "labelled", "mixed": "labelled_2"}
NOT_YET = pytest.mark.xfail(strict=True, reason="today's matcher (rules + rapidfuzz features) does not beat plain "
                            "BM25 yet; remove this mark when the new relevance model lands")


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SplitReport]:
    out = {}
    for name, folder in SETS.items():
        result = evaluate_set(load_set(FIXTURES / folder), rules_dir=ROOT / "rules", splits=("test",),
                              workdir=tmp_path_factory.mktemp(name))
        out[name] = result.splits["test"]
    return out


def _beats(report: SplitReport, baseline: str, metric: str) -> tuple[float, float]:
    mine = getattr(report.methods["matcher"].scores, metric)
    theirs = getattr(report.methods[baseline].scores, metric)
    return mine, theirs


@pytest.mark.parametrize(("set_name", "baseline", "metric"), [
    ("cf2020", "keyword_alert", "ndcg_at_10"),
    ("cf2020", "keyword_alert", "recall_at_20"),
    pytest.param("cf2020", "bm25", "ndcg_at_10", marks=NOT_YET),
    pytest.param("cf2020", "bm25", "recall_at_20", marks=NOT_YET),
    ("mixed", "keyword_alert", "ndcg_at_10"),
    ("mixed", "keyword_alert", "recall_at_20"),
    pytest.param("mixed", "bm25", "ndcg_at_10", marks=NOT_YET),
    pytest.param("mixed", "bm25", "recall_at_20", marks=NOT_YET),
])
def test_matcher_beats_baseline_on_held_out_split(held_out: dict[str, SplitReport], set_name: str, baseline: str,
                                                  metric: str) -> None:
    mine, theirs = _beats(held_out[set_name], baseline, metric)
    assert mine > theirs, f"{set_name} test split {metric}: matcher {mine:.3f}, {baseline} {theirs:.3f}"


@pytest.mark.parametrize("set_name", sorted(SETS))
def test_noise_at_10_stays_under_the_ceiling(held_out: dict[str, SplitReport], set_name: str) -> None:
    noise = held_out[set_name].methods["matcher"].scores.noise_at_10
    assert noise <= NOISE_CEILING, f"{set_name} test split noise@10 {noise:.3f} > {NOISE_CEILING}"


@pytest.mark.parametrize("set_name", sorted(SETS))
def test_the_held_out_split_is_big_enough_to_mean_something(held_out: dict[str, SplitReport], set_name: str) -> None:
    assert held_out[set_name].profiles >= {"cf2020": 15, "mixed": 6}[set_name]
