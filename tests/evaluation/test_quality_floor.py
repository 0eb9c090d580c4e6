"""Matching quality on the held-out test split must not drop below the floor measured when it was built.

Measured (broker eval --split test, commit of issue 3): matcher nDCG@10 0.435, noise@10 0.296; keyword
alert nDCG@10 0.250, noise@10 0.782. The floors leave room for small, deliberate trade-offs only.

Re-measured when the directory import stopped refusing rows for a bad optional field: two test profiles
(L22, L26: "Warwickshire" in service_areas) had been silently dropped before, so they showed nothing and
counted as noise 0. Now they are imported (Warwickshire read as its districts) and each shows one ungraded
notice: matcher nDCG@10 0.435 (unchanged), noise@10 0.421; keyword alert noise@10 0.907. The noise ceiling
follows the honest figure; the matcher must still beat the keyword alert on both.
"""

from __future__ import annotations

from testpaths import FIXTURES, ROOT

from broker.evaluation.labelled import evaluate

NDCG_FLOOR = 0.40
NOISE_CEILING = 0.45


def test_matcher_beats_keyword_alert_and_holds_its_floor(tmp_path):
    result = evaluate(FIXTURES / "labelled", rules_dir=ROOT / "rules", split="test", workdir=tmp_path)
    assert result.profiles >= 15
    m, k = result.matcher, result.keyword_alert
    assert m.ndcg_at_10 > k.ndcg_at_10
    assert m.noise_at_10 < k.noise_at_10
    assert m.ndcg_at_10 >= NDCG_FLOOR, m
    assert m.noise_at_10 <= NOISE_CEILING, m
