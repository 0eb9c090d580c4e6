"""Configuration files, policies applied when reading, breakdowns, the series and the pace."""

from __future__ import annotations

from datetime import date

import pytest

from broker.errors import ConfigError
from broker.target import (
    DEFAULT_CONFIG,
    TargetConfig,
    compute_progress,
    load_config,
    progress_json,
    record_introduced,
    record_introduced_many,
    record_outcome,
)

D = date.fromisoformat
# These cases are about the counting mechanics, shown at the introduced stage (the headline default is
# interested, with introduced as its pipeline: see test_the_headline_counts_interested_beside_the_pipeline).
AT_INTRODUCED = TargetConfig(counting_stage="introduced")


def test_defaults_are_the_brief_policies():
    c = DEFAULT_CONFIG
    assert (c.target_pence, c.counting_stage, c.pipeline_stage, c.value_basis, c.frameworks_count_zero) == (
        100_000_000, "interested", "introduced", "lower_bound", True)
    assert len(c.sha256()) == 64 and c.sha256() == TargetConfig().sha256()
    assert TargetConfig(counting_stage="bid").sha256() != c.sha256()


def test_load_toml_and_yaml(tmp_path):
    toml = tmp_path / "target.toml"
    toml.write_text('[target]\ntarget_gbp = 250000\ncounting_stage = "bid"\nwindow_start = 2024-10-01\n'
                    'window_end = "2026-09-30"\nvalue_basis = "midpoint"\n')
    c = load_config(toml)
    assert (c.target_pence, c.counting_stage, c.window_start, c.window_end, c.value_basis) == (
        25_000_000, "bid", D("2024-10-01"), D("2026-09-30"), "midpoint")
    yml = tmp_path / "target.yaml"
    yml.write_text("target_pence: 5000000\nframeworks_count_zero: false\naward_value_counts: false\n")
    c = load_config(yml)
    assert (c.target_pence, c.frameworks_count_zero, c.award_value_counts) == (5_000_000, False, False)
    assert load_config(None) is DEFAULT_CONFIG


@pytest.mark.parametrize(("text", "message"), [
    ("counting_stage: lost\n", "counting_stage 'lost' is not one of"),
    ("value_basis: average\n", "value_basis 'average'"),
    ("target_gbp: -5\n", "non-negative"),
    ("target_pence: 0\n", "positive"),
    ("target_gbp: 1\ntarget_pence: 100\n", "not both"),
    ("window_start: 2026-01-01\nwindow_end: 2025-01-01\n", "before window_start"),
    ("window_start: soon\n", "not a YYYY-MM-DD date"),
    ("colour: blue\n", "unknown key(s) colour"),
    ("frameworks_count_zero: maybe\n", "true or false"),
    ("- a list\n", "table of keys"),
    ("key: [unclosed\n", "not valid YAML"),
])
def test_bad_configuration_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "target.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_config(path)


def test_missing_configuration_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def _two_opportunities(session, rows):
    rows.vcse("v1", "Ward End")
    rows.vcse("v2", None)
    rows.opportunity("range", lo=1_000_000, hi=3_000_000)
    rows.opportunity("fw", lo=50_000_000, hi=900_000_000, framework=True)
    record_introduced(session, "range", "v1", cause="officer", as_of=D("2025-05-01"))
    record_introduced(session, "fw", "v2", cause="officer", as_of=D("2025-05-01"))
    record_outcome(session, "range", "v1", "bid", as_of=D("2025-05-10"))


def test_policies_apply_when_reading_so_the_same_ledger_answers_each_configuration(session, rows):
    _two_opportunities(session, rows)
    day = D("2025-06-01")

    def total(**kw):
        return compute_progress(session, day, TargetConfig(**{"counting_stage": "introduced", **kw})).counted_pence

    assert total() == 1_000_000
    assert total(value_basis="upper_bound") == 3_000_000
    assert total(value_basis="midpoint") == 2_000_000
    assert total(frameworks_count_zero=False) == 1_000_000 + 50_000_000
    assert total(counting_stage="bid") == 1_000_000
    assert total(counting_stage="won") == 0
    assert total(counting_stage="matched") == 1_000_000


def test_rows_without_a_cluster_and_the_json_shape(session, rows):
    _two_opportunities(session, rows)
    doc = progress_json(compute_progress(session, D("2025-06-01"), AT_INTRODUCED))
    assert doc["by_cluster"] == [{"cluster": "Ward End", "opportunities": 1, "value_pence": 1_000_000},
                                 {"cluster": None, "opportunities": 1, "value_pence": 0}]
    assert [r["stage"] for r in doc["by_stage"]] == [
        "matched", "introduced", "interested", "bid", "won", "lost", "withdrawn"]
    assert doc["frameworks_excluded"] == {"count": 1, "opportunity_ids": ["fw"], "published_pence": 50_000_000}
    assert doc["config"] == AT_INTRODUCED.as_dict() and doc["config_sha256"] == AT_INTRODUCED.sha256()
    _money_fields_end_in_pence(doc)


def test_the_headline_counts_interested_beside_the_pipeline(session, rows):
    # Introduced (a digest delivered) is pipeline; the headline counts what a VCSE or officer confirmed.
    rows.vcse("v1", "Ward End")
    rows.opportunity("a", lo=2_000_000)
    rows.opportunity("b", lo=3_000_000)
    record_introduced_many(session, [("a", "v1"), ("b", "v1")], cause="digest:d1", as_of=D("2025-05-01"))
    p = compute_progress(session, D("2025-06-01"))
    assert (p.config.counting_stage, p.counted_pence, p.pipeline_pence, len(p.pipeline)) == (
        "interested", 0, 5_000_000, 2)
    record_outcome(session, "b", "v1", "interested", as_of=D("2025-05-20"))
    p = compute_progress(session, D("2025-06-01"))
    assert (p.counted_pence, [c.id for c in p.counted], p.pipeline_pence) == (3_000_000, ["b"], 5_000_000)
    doc = progress_json(p)
    assert doc["pipeline"] == {"stage": "introduced", "value_pence": 5_000_000, "opportunities": 2}
    assert doc["counting_stage"] == "interested" and doc["config"]["pipeline_stage"] == "introduced"
    assert compute_progress(session, D("2025-05-19")).counted_pence == 0  # interest recorded on the 20th


def _money_fields_end_in_pence(doc, path=""):
    """Every integer that is money is named *_pence: only counts, days and ids are other integers."""
    allowed = {"counted_opportunities", "count", "opportunities", "days_elapsed", "ledger_entries"}
    if isinstance(doc, dict):
        for key, value in doc.items():
            if isinstance(value, int) and not isinstance(value, bool):
                assert key.endswith("_pence") or key in allowed, f"{path}.{key}"
            _money_fields_end_in_pence(value, f"{path}.{key}")
    elif isinstance(doc, list):
        for item in doc:
            _money_fields_end_in_pence(item, path)


def _steady(session, rows, n: int, start: str = "2025-04-01") -> None:
    rows.vcse("v1", "Ward End")
    for i in range(n):
        rows.opportunity(f"o{i}", lo=10_000_000)
        record_introduced(session, f"o{i}", "v1", cause="officer", as_of=D(start).replace(day=1 + i))


def test_pace_projects_the_date_at_the_current_rate(session, rows):
    _steady(session, rows, 2)  # £200,000 by 2 April, measured from the window start (1 April)
    pace = compute_progress(session, D("2025-04-10"), AT_INTRODUCED).pace
    assert (pace.since, pace.days_elapsed, pace.per_day_pence) == (D("2025-04-01"), 10, 2_000_000)
    # £800,000 more at £20,000 a day is 40 days after 10 April.
    assert (pace.projected_date, pace.status, pace.within_window) == (D("2025-05-20"), "on_track", True)
    short = TargetConfig(counting_stage="introduced", window_start=D("2025-04-01"), window_end=D("2025-05-01"))
    late = compute_progress(session, D("2025-04-10"), short).pace
    assert (late.status, late.within_window) == ("behind", False)
    ended = compute_progress(session, D("2025-06-10"), short).pace
    assert ended.status == "window_ended"


def test_pace_before_anything_counts_and_after_the_target_is_reached(session, rows):
    assert compute_progress(session, D("2025-04-10"), AT_INTRODUCED).pace.status == "no_progress"
    _steady(session, rows, 12)  # £100,000 a day from 1 April: £1m on 10 April
    p = compute_progress(session, D("2025-04-20"), AT_INTRODUCED)
    assert p.counted_pence == 120_000_000 and p.share() == 120
    assert (p.pace.status, p.pace.reached_on, p.pace.within_window) == ("reached", D("2025-04-10"), True)


def test_work_before_the_window_counts_and_the_pace_runs_from_the_first_of_it(session, rows):
    _steady(session, rows, 3, start="2025-01-01")
    pace = compute_progress(session, D("2025-01-10"), AT_INTRODUCED).pace
    assert (pace.since, pace.days_elapsed) == (D("2025-01-01"), 10)


def test_the_series_ends_at_the_total_and_respects_as_of(session, rows):
    _steady(session, rows, 5)
    p = compute_progress(session, D("2025-04-03"), AT_INTRODUCED)
    assert [v for _, v in p.series] == [10_000_000, 20_000_000, 30_000_000]
    assert p.series[-1][1] == p.counted_pence
    assert compute_progress(session, D("2025-03-31"), AT_INTRODUCED).counted_pence == 0


def test_an_outcome_corrected_away_stays_in_the_history(session, rows):
    # Counting at "won": a win later corrected to "lost" counted while it stood, and the series shows it.
    rows.vcse("v1", "Ward End")
    rows.opportunity("o1", lo=4_000_000)
    record_outcome(session, "o1", "v1", "won", value_pence=3_000_000, as_of=D("2025-05-01"))
    record_outcome(session, "o1", "v1", "lost", as_of=D("2025-05-05"))
    config = TargetConfig(counting_stage="won")
    p = compute_progress(session, D("2025-05-10"), config)
    assert p.counted_pence == 0 and p.counted == ()
    assert p.series == ((D("2025-05-01"), 3_000_000), (D("2025-05-05"), 0))
    assert compute_progress(session, D("2025-05-02"), config).counted_pence == 3_000_000
