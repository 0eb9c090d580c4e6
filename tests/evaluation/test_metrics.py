import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.evaluation.metrics import ndcg_at, noise_at, precision_at, recall_at, score_ranking

JUDGED = {"a": 2, "b": 1, "c": 0, "d": 2}


def test_perfect_ranking_has_ndcg_one():
    assert ndcg_at(["a", "d", "b", "c"], JUDGED, 10) == pytest.approx(1.0)


def test_ndcg_by_hand():
    # ranking c, a: dcg = 0/log2(2) + 3/log2(3); ideal = 3 + 3/log2(3) + 1/2
    expected = (3 / math.log2(3)) / (3 + 3 / math.log2(3) + 1 / 2)
    assert ndcg_at(["c", "a"], JUDGED, 10) == pytest.approx(expected)


def test_precision_counts_empty_positions_as_misses():
    assert precision_at(["a", "b"], JUDGED, 5) == pytest.approx(2 / 5)


def test_recall_and_noise():
    assert recall_at(["a", "x", "c"], JUDGED, 20) == pytest.approx(1 / 3)
    assert noise_at(["a", "x", "c"], JUDGED, 10) == pytest.approx(2 / 3)  # unjudged x counts as 0
    assert noise_at([], JUDGED, 10) == 0.0


# no deadline: a pure function, and on a loaded shared machine the first example can take >200 ms
@settings(deadline=None)
@given(st.permutations(["a", "b", "c", "d", "e", "f"]))
def test_metrics_stay_in_unit_interval(ranking):
    s = score_ranking(ranking, JUDGED)
    for v in (s.ndcg_at_10, s.p_at_5, s.recall_at_20, s.noise_at_10):
        assert 0.0 <= v <= 1.0
