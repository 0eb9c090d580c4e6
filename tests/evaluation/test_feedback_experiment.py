"""The feedback experiment (``broker eval --feedback-nights``) on the second labelled set."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from testpaths import FIXTURES, ROOT

from broker.evaluation.labelled import scratch_store
from broker.evaluation.nights import FeedbackExperiment, run_feedback_experiment
from broker.evaluation.sets import LabelledSet, load_set
from broker.ingest import ingest
from broker.store.models import Opportunity


@pytest.fixture(scope="module")
def labelled() -> LabelledSet:
    return load_set(FIXTURES / "labelled_2")


@pytest.fixture(scope="module")
def experiment(labelled: LabelledSet, tmp_path_factory: pytest.TempPathFactory) -> FeedbackExperiment:
    return run_feedback_experiment(labelled, nights=3, rules_dir=ROOT / "rules", workdir=tmp_path_factory.mktemp("fb"))


def test_nights_partition_the_notices_in_date_order(experiment: FeedbackExperiment, labelled: LabelledSet,
                                                    tmp_path) -> None:
    with scratch_store(tmp_path) as sessions:
        ingest(sessions, [str(p) for p in labelled.notice_files])
        with sessions() as session:
            total = session.scalar(select(func.count()).select_from(Opportunity))
    assert sum(n.notices for n in experiment.nights) == total
    assert [n.number for n in experiment.nights] == [1, 2, 3]
    for earlier, later in zip(experiment.nights, experiment.nights[1:], strict=False):
        assert earlier.last < later.first


def test_feedback_is_the_labels_of_what_was_shown_on_earlier_nights(experiment: FeedbackExperiment,
                                                                     labelled: LabelledSet) -> None:
    first = experiment.lists["with"][1]
    # night 1 has had no feedback, so both arms showed the same
    assert first == experiment.lists["without"][1]
    shown_graded = sum(1 for p, ranked in first.items() for o in ranked[:experiment.shown] if o in labelled.grades[p])
    assert shown_graded > 0
    assert experiment.nights[0].feedback == 0
    assert experiment.nights[1].feedback == shown_graded


def test_later_nights_are_scored_on_their_own_new_notices(experiment: FeedbackExperiment) -> None:
    assert experiment.evaluated_pairs == sum(n.profiles for n in experiment.nights[1:])
    for arm in ("without", "with"):
        for night in (2, 3):
            new = experiment.lists[arm][night]
            earlier = {o for ranked in experiment.lists[arm][1].values() for o in ranked}
            assert not earlier & {o for ranked in new.values() for o in ranked}


def test_todays_feedback_only_suppresses_the_pair_so_new_notices_rank_the_same(
        experiment: FeedbackExperiment) -> None:
    """Today "not relevant" only stops that one opportunity reaching the party again, so on later nights'
    new notices both arms agree. When feedback starts to shape ranking, replace this with the measured gain."""
    assert experiment.changed_rankings == 0
    assert experiment.with_feedback == experiment.without
