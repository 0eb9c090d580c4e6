"""``broker eval`` through click: the tables, --json with --per-profile, --pool-out and bad input."""

from __future__ import annotations

import csv
import json
import shutil

from click.testing import CliRunner
from testpaths import FIXTURES, ROOT

from broker.cli import cli

SET2 = str(FIXTURES / "labelled_2")
RULES = str(ROOT / "rules")


def test_json_has_every_method_split_and_profile() -> None:
    result = CliRunner().invoke(cli, ["eval", "--labelled", SET2, "--rules", RULES, "--json", "--per-profile"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    (one,) = data["sets"]
    assert one["set"] == "mixed" and one["as_of"] == "2019-04-29, 2022-10-20, 2025-01-23, 2025-02-21, 2026-02-02"
    assert [g["as_of"] for g in one["groups"]] == one["as_of"].split(", ")
    assert sum(g["live_notices"] for g in one["groups"]) == 136
    assert set(one["splits"]) == {"tune", "test"}
    for split in one["splits"].values():
        assert set(split["methods"]) == {"matcher", "keyword_alert", "bm25"}
        for figures in split["methods"].values():
            assert {"ndcg@10", "p@5", "recall@20", "noise@10", "unjudged@10", "left_empty"} <= set(figures)
            assert figures["unjudged@10"] == 0.0  # every pair of this set is graded
        for counts in split["matcher_ndcg_vs"].values():
            assert sum(counts.values()) == split["profiles"]
    assert len(one["per_profile"]) == 22
    assert one["per_profile"]["M01"]["split"] == "tune"


def test_table_names_the_three_rankings() -> None:
    result = CliRunner().invoke(cli, ["eval", "--labelled", SET2, "--rules", RULES, "--split", "test"])
    assert result.exit_code == 0, result.output
    assert ("Set mixed (as of 2019-04-29, 2022-10-20, 2025-01-23, 2025-02-21, 2026-02-02; one run per notice group, "
            "5 groups), test split: 6 profiles with relevant notices, 5 with none") in result.output
    for name in ("matcher", "keyword alert", "plain BM25"):
        assert f"\n  {name}" in result.output
    assert "per profile, matcher nDCG@10 vs keyword alert" in result.output


def test_pool_out_writes_only_pairs_without_a_grade(tmp_path) -> None:
    folder = tmp_path / "set"
    shutil.copytree(SET2, folder)
    (folder / "set.json").write_text((folder / "set.json").read_text().replace("../opportunities/",
                                     str(FIXTURES / "opportunities") + "/"))
    # keep the grades of M01 only: every other profile's pool is unjudged
    with open(folder / "grades.csv", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["profile_id"] == "M01"]
    with open(folder / "grades.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "pool.csv"
    result = CliRunner().invoke(cli, ["eval", "--labelled", str(folder), "--rules", RULES, "--pool-out", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, encoding="utf-8") as fh:
        pooled = list(csv.DictReader(fh))
    assert pooled and {r["profile_id"] for r in pooled} == {f"M{i:02d}" for i in range(2, 23)}
    assert all(r["graded"] == "no" and r["methods"] for r in pooled)


def test_a_folder_without_manifest_is_a_one_line_error(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["eval", "--labelled", str(tmp_path)])
    assert result.exit_code != 0
    assert "set.json" in result.output and "Traceback" not in result.output
