"""Labelled-set loading, the baselines and the nights split of the feedback experiment."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from broker.errors import InputError
from broker.evaluation.baselines import Bm25Ranker, Notice, Profile, cpv_prefix, keyword_alert, random_notices
from broker.evaluation.metrics import unjudged_at
from broker.evaluation.nights import assign_nights
from broker.evaluation.sets import load_set


def _notice(oid: str, title: str, day: int, desc: str = "", status: str = "open",
            cpv: tuple[str, ...] = ()) -> Notice:
    return Notice(oid, title, desc, datetime(2025, 1, day, tzinfo=UTC), status, cpv)


NOTICES = [
    _notice("a", "Grounds maintenance of parks", 1, "grass cutting and hedges", cpv=("77310000",)),
    _notice("b", "Domestic abuse support for children", 3, "therapeutic work with children", cpv=("85310000",)),
    _notice("c", "Office cleaning", 2, "daily cleaning of council offices", cpv=("90910000",)),
    _notice("d", "Pipeline: domestic abuse refuge", 4, "", status="planned"),
]


def test_keyword_alert_is_whole_word_newest_first_and_open_only() -> None:
    assert keyword_alert(["domestic abuse", "cleaning"], NOTICES) == ["b", "c"]
    assert keyword_alert(["clean"], NOTICES) == []  # whole words only
    assert keyword_alert([], NOTICES) == []


def test_bm25_ranks_the_notice_that_shares_the_words_first() -> None:
    ranker = Bm25Ranker(NOTICES)
    profile = Profile("p", "We support children who lived with domestic abuse", ("therapeutic",), ())
    ranked = ranker.rank(profile)
    assert ranked[0] == "b"
    assert "a" not in ranked  # no shared term, no score
    assert Bm25Ranker([]).rank(profile) == []


def test_cpv_prefix_needs_five_shared_digits() -> None:
    assert cpv_prefix(["77310000-6"], NOTICES) == ["a"]  # check digit ignored
    assert cpv_prefix(["77311000"], NOTICES) == []  # four shared digits only
    assert cpv_prefix([], NOTICES) == []


def test_random_notices_are_reproducible_and_skip_the_pool() -> None:
    first = random_notices("M01", NOTICES, 2, {"a": 1})
    assert first == random_notices("M01", NOTICES, 2, {"a": 1})
    assert "a" not in first and len(first) == 2


def test_unjudged_counts_only_what_is_shown() -> None:
    assert unjudged_at(["x", "a"], {"a": 0}, 10) == 0.5
    assert unjudged_at([], {"a": 0}, 10) == 0.0


def test_nights_keep_days_whole_and_have_no_gaps() -> None:
    days = {"a": date(2020, 1, 1), "b": date(2020, 1, 1), "c": date(2020, 1, 2), "d": date(2020, 1, 3), "e": None}
    assert assign_nights(days, 2) == {"a": 1, "b": 1, "c": 2, "d": 2, "e": 1}
    assert assign_nights(days, 3) == {"a": 1, "b": 1, "c": 2, "d": 3, "e": 1}
    # one day cannot make two nights
    assert set(assign_nights({"a": date(2020, 1, 1), "b": date(2020, 1, 1)}, 3).values()) == {1}


def _write_set(folder: Path, grade: str = "1") -> Path:
    (folder / "set.json").write_text(json.dumps({"name": "t", "as_of": "2025-01-01", "notices": ["n.csv"],
                                                 "profiles": ["p.csv"], "grades": ["g.csv"]}))
    (folder / "splits.csv").write_text("profile_id,split\nP1,test\n")
    (folder / "g.csv").write_text(f"profile_id,opportunity_id,title,grade,methods,note\nP1,o1,T,{grade},bm25;cpv,x\n")
    return folder


def test_load_set_reads_grades_methods_and_splits(tmp_path: Path) -> None:
    labelled = load_set(_write_set(tmp_path))
    assert labelled.grades == {"P1": {"o1": 1}}
    assert labelled.methods == {("P1", "o1"): ("bm25", "cpv")}
    assert labelled.profiles_in("test") == ["P1"] and labelled.profiles_in("tune") == []
    assert labelled.as_of == date(2025, 1, 1)


def test_load_set_names_file_line_and_field_for_a_bad_grade(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        load_set(_write_set(tmp_path, grade="3"))
    assert "g.csv" in str(err.value) and "line 2" in str(err.value) and "grade" in str(err.value)


def test_load_set_without_manifest_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="set.json"):
        load_set(tmp_path)


def test_a_graded_profile_missing_from_the_profile_files_stops_the_evaluation(tmp_path: Path) -> None:
    from testpaths import FIXTURES, ROOT

    from broker.evaluation.labelled import evaluate_set

    folder = tmp_path / "set"
    folder.mkdir()
    src = FIXTURES / "labelled_2"
    (folder / "set.json").write_text((src / "set.json").read_text().replace(
        "../opportunities/", str(FIXTURES / "opportunities") + "/"))
    (folder / "splits.csv").write_text((src / "splits.csv").read_text())
    (folder / "grades.csv").write_text((src / "grades.csv").read_text())
    lines = (src / "profiles.csv").read_text().splitlines(keepends=True)
    (folder / "profiles.csv").write_text("".join(lines[:-1]))  # M22 dropped, its grades kept
    with pytest.raises(InputError, match="M22"):
        evaluate_set(load_set(folder), rules_dir=ROOT / "rules", workdir=tmp_path)


def test_the_experiment_scores_later_nights_only_and_sees_a_ranking_that_feedback_changed(tmp_path: Path) -> None:
    """The summary step on hand-made lists: feedback that moves a relevant notice up must show as a gain."""
    from broker.evaluation.nights import _summarise

    labelled = load_set(_write_set(tmp_path))
    labelled.grades["P1"].update({"n1": 2, "n2a": 0, "n2b": 2})
    notices_of = {1: {"n1"}, 2: {"n2a", "n2b"}}
    dates = {1: date(2025, 1, 1), 2: date(2025, 1, 2)}
    plain = {1: {"P1": ["n1"]}, 2: {"P1": ["n2a", "n2b"]}}
    fed = {1: {"P1": ["n1"]}, 2: {"P1": ["n2b", "n2a"]}}
    e = _summarise(labelled, 2, 10, notices_of, dates, {1: [dates[1]], 2: [dates[2]]}, plain, fed, {1: 0, 2: 1})
    assert e.evaluated_pairs == 1 and e.changed_rankings == 1
    assert e.with_feedback.scores.ndcg_at_10 == pytest.approx(1.0)
    assert e.without.scores.ndcg_at_10 < 1.0
    assert e.without.scores.noise_at_10 == e.with_feedback.scores.noise_at_10 == 0.5
    assert [n.feedback for n in e.nights] == [0, 1]


def test_folds_are_deterministic_and_cover_every_profile_once() -> None:
    from broker.evaluation.folds import profile_folds

    folds = profile_folds(["c", "a", "b", "d", "e"], 2)
    assert folds == [["a", "c", "e"], ["b", "d"]]
    assert profile_folds(["a", "b"], 5) == [["a"], ["b"]]  # leave-one-out at most


def test_cross_validation_scores_the_choice_on_profiles_it_did_not_see() -> None:
    from broker.evaluation.folds import cross_validate

    grades = {"p1": {"x": 2}, "p2": {"y": 2}, "p3": {"z": 2}, "p4": {"w": 0}}
    # "lucky" is perfect on p1 only; "steady" is perfect on p2 and p3. Picking on all profiles would
    # pick steady (2 of 3); held out, the choice made without p2 (or p3) is a tie broken by name, so
    # the estimate is below what the in-sample best shows.
    candidates = {"steady": {"p1": [], "p2": ["y"], "p3": ["z"]}, "lucky": {"p1": ["x"], "p2": [], "p3": []}}
    cv = cross_validate(candidates, grades, k=3)
    assert cv.folds == [["p1"], ["p2"], ["p3"]]  # p4 has nothing relevant: left out
    assert cv.chosen == ["steady", "lucky", "lucky"]
    assert cv.held_out == pytest.approx(0.0)
    in_sample_best = 2 / 3
    assert cv.held_out < in_sample_best


def test_a_manifest_with_groups_gives_each_group_its_date(tmp_path: Path) -> None:
    from broker.evaluation.sets import NoticeGroup

    _write_set(tmp_path)
    (tmp_path / "set.json").write_text(json.dumps({
        "name": "t", "profiles": ["p.csv"], "grades": ["g.csv"],
        "groups": [{"as_of": "2019-04-29", "notices": ["a.json"]},
                   {"as_of": "2025-01-23", "notices": ["b.json", "c.csv"]}]}))
    labelled = load_set(tmp_path)
    assert labelled.notice_groups() == (NoticeGroup(date(2019, 4, 29), (tmp_path / "a.json",)),
                                        NoticeGroup(date(2025, 1, 23), (tmp_path / "b.json", tmp_path / "c.csv")))
    assert labelled.notice_files == (tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.csv")
    assert labelled.as_of == date(2025, 1, 23)  # every notice is public by the latest group date
    # a one-date manifest is one group of all its files
    one = load_set(_write_set(tmp_path))
    assert one.notice_groups() == (NoticeGroup(date(2025, 1, 1), (tmp_path / "n.csv",)),)


@pytest.mark.parametrize(("groups", "extra", "says"), [
    ([{"as_of": "2020-01-01", "notices": ["a.json"]}], {"as_of": "2020-01-01"}, "not both"),
    ([{"as_of": "2020-01-01", "notices": ["a.json"]}, {"as_of": "2021-01-01", "notices": ["a.json"]}], {},
     "more than one group"),
    ([{"as_of": "01/01/2020", "notices": ["a.json"]}], {}, "YYYY-MM-DD"),
    ([{"as_of": "2020-01-01", "notices": []}], {}, "non-empty 'notices'"),
])
def test_bad_groups_are_one_line_errors_naming_the_manifest(tmp_path: Path, groups: list, extra: dict,
                                                            says: str) -> None:
    _write_set(tmp_path)
    (tmp_path / "set.json").write_text(json.dumps({"name": "t", "profiles": ["p.csv"], "grades": ["g.csv"],
                                                   "groups": groups, **extra}))
    with pytest.raises(InputError, match=says) as err:
        load_set(tmp_path)
    assert "set.json" in str(err.value)


def test_merge_keeps_one_groups_order_and_interleaves_groups_by_key() -> None:
    from broker.evaluation.labelled import merge

    first = {"matcher": {"P": [((-9, "x"), "x"), ((-3, "y"), "y")]}, "keyword_alert": {}, "bm25": {}}
    second = {"matcher": {"P": [((-5, "z"), "z"), ((-1, "x"), "x")]}, "keyword_alert": {}, "bm25": {}}
    assert merge([first])["matcher"] == {"P": ["x", "y"]}
    # by score across groups; a notice in two groups is kept where it ranks first
    assert merge([first, second])["matcher"] == {"P": ["x", "z", "y"]}
