"""`broker audit export` / `import`: a run moves between databases (SQLite and PostgreSQL, both ways) and
still replays identically and verifies there; CSV cells are safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import json

import pytest
from audit_world import add_notice, assert_identical, match, scalar, sql
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from broker.audit.export import FORMULA_START, companion_path, neutralise, restore
from broker.cli import cli

TARGETS = ["sqlite", "postgresql"]
FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A9)", "\tHIDDEN", "\rCR", "'quoted"]


def _cli(db_url: str):
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, ["--db", db_url, *args], catch_exceptions=False)


def _export(run, run_id: str, path, fmt: str = "jsonl") -> None:
    result = run("audit", "export", run_id, "--format", fmt, "--output", str(path))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_import_replay_across_databases(loaded, db_url, fresh_db, tmp_path, target, fmt):
    summary = match(loaded)
    path = tmp_path / f"{summary['run_id']}.{fmt}"
    _export(loaded, summary["run_id"], path, fmt)
    other_url = fresh_db(target)
    other = _cli(other_url)
    result = other("audit", "import", str(path), "--json")
    assert result.exit_code == 0, result.output
    imported = json.loads(result.output)
    stored = scalar(db_url, "SELECT count(*) FROM decisions WHERE run_id = :r", r=summary["run_id"])
    assert imported["decisions"] == stored and not imported["already_present"]
    assert assert_identical(other, summary["run_id"]) == stored
    verified = other("audit", "verify")
    assert verified.exit_code == 0 and "chain ok: 1 links, 1 runs" in verified.output, verified.output
    link = sql(other_url, "SELECT kind, ref, digest FROM audit_chain")
    manifest = scalar(db_url, "SELECT manifest_digest FROM match_runs WHERE id = :r", r=summary["run_id"])
    assert [tuple(r) for r in link] == [("import", summary["run_id"], manifest)]
    # And back again: the re-export is the same export, but for the chain link (this database's own).
    again = tmp_path / f"again.{fmt}"
    _export(other, summary["run_id"], again, fmt)
    assert again.read_bytes() == path.read_bytes() if fmt == "csv" else _unlinked(again) == _unlinked(path)
    if fmt == "csv":
        assert _unlinked(companion_path(again)) == _unlinked(companion_path(path))


def _unlinked(path) -> list[dict]:
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    items[0].pop("link")
    return items


def test_import_is_idempotent_and_refuses_a_different_run_with_the_same_id(loaded, fresh_db, tmp_path):
    first = match(loaded)
    path = tmp_path / "run.jsonl"
    _export(loaded, first["run_id"], path)
    other_url = fresh_db("sqlite")
    other = _cli(other_url)
    assert other("audit", "import", str(path)).exit_code == 0
    again = other("audit", "import", str(path))
    assert again.exit_code == 0 and "already here, identical" in again.output
    assert scalar(other_url, "SELECT count(*) FROM audit_chain") == 1
    # A different database's own run-000001 is a different run: refused, nothing changed.
    third_url = fresh_db("sqlite")
    third = _cli(third_url)
    add_notice(third_url, "own-1", "Youth work in Sandwell", "Detached youth work and mentoring.")
    match(third)
    refused = third("audit", "import", str(path))
    assert refused.exit_code == 1 and "different content" in refused.output
    assert scalar(third_url, "SELECT count(*) FROM audit_chain") == 1


def test_an_imported_run_is_never_the_base_of_a_local_incremental_run(loaded, fresh_db, tmp_path):
    first = match(loaded)
    path = tmp_path / "run.jsonl"
    _export(loaded, first["run_id"], path)
    other_url = fresh_db("sqlite")
    other = _cli(other_url)
    assert other("audit", "import", str(path)).exit_code == 0
    add_notice(other_url, "local-1", "Community meals", "Hot meals for lunch clubs.")
    local = match(other)
    assert local["run_id"] == "run-000002" and local["mode"] == "full"  # not incremental on run-000001
    assert_identical(other, "run-000002")
    assert other("audit", "verify").exit_code == 0


@pytest.mark.parametrize("edit", ["decision", "record", "truncate", "manifest"])
def test_a_tampered_export_is_refused_and_nothing_is_kept(loaded, fresh_db, tmp_path, edit):
    summary = match(loaded)
    path = tmp_path / "run.jsonl"
    _export(loaded, summary["run_id"], path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if edit == "truncate":
        lines = lines[:-5]
    else:
        kind = {"decision": "decision", "record": "input", "manifest": "manifest"}[edit]
        i = next(n for n, line in enumerate(lines) if json.loads(line)["type"] == kind)
        item = json.loads(lines[i])
        if edit == "decision":
            item["score"] += 1
        elif edit == "record":
            item["record"]["title" if item["kind"] == "opportunity" else "name"] = "Edited"
        else:
            item["run"]["as_of"] = "2025-01-01"
        lines[i] = json.dumps(item)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    other_url = fresh_db("sqlite")
    result = _cli(other_url)("audit", "import", str(path))
    assert result.exit_code == 1 and "Error:" in result.output
    assert scalar(other_url, "SELECT count(*) FROM match_runs") == 0
    assert scalar(other_url, "SELECT count(*) FROM snapshots") == 0


def test_csv_cells_that_look_like_formulas_are_neutralised(loaded, db_url, fresh_db, tmp_path):
    for i, notice_id in enumerate(FORMULAS):
        add_notice(db_url, notice_id, f"Youth mentoring programme {i}",
                   "Mentoring young people at risk of exclusion; detached youth work.")
    summary = match(loaded)
    path = tmp_path / "run.csv"
    _export(loaded, summary["run_id"], path, "csv")
    with open(path, encoding="utf-8", newline="") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert not [c for c in cells if c.startswith(FORMULA_START)]
    for notice_id in FORMULAS:
        assert "'" + notice_id in cells
    other = _cli(fresh_db("sqlite"))
    assert other("audit", "import", str(path)).exit_code == 0
    assert_identical(other, summary["run_id"])
    shown = json.loads(other("audit", "explain", FORMULAS[0], "wm-0002", "--json").output)
    assert shown["opportunity_id"] == FORMULAS[0] and shown["run_id"] == summary["run_id"]


def test_csv_needs_an_output_file_and_jsonl_goes_to_stdout(loaded):
    summary = match(loaded)
    assert loaded("audit", "export", summary["run_id"], "--format", "csv").exit_code == 1
    out = loaded("audit", "export", summary["run_id"]).output.splitlines()
    types = [json.loads(line)["type"] for line in out]
    assert types[0] == "manifest" and types[-1] == "end" and "input" in types and "decision" in types
    end = json.loads(out[-1])
    assert end["decisions"] == types.count("decision") and end["inputs"] == types.count("input")


@given(st.text(max_size=20))
def test_neutralise_is_reversible_and_safe(cell):
    safe = neutralise(cell)
    assert not safe.startswith(FORMULA_START)
    assert restore(safe) == cell


@pytest.mark.parametrize("target", TARGETS)
def test_rule_file_order_does_not_depend_on_the_database_collation(loaded, fresh_db, rules_copy, tmp_path,
                                                                    target):
    # "Party.yaml" sorts before "eligibility.yaml" by code point but after it in most locale collations
    # (PostgreSQL's en_US): the manifest must not take its order from the database.
    (rules_copy / "party.yaml").rename(rules_copy / "Party.yaml")
    summary = match(loaded, rules=rules_copy)
    path = tmp_path / "run.jsonl"
    _export(loaded, summary["run_id"], path)
    names = [f["name"] for f in json.loads(path.read_text(encoding="utf-8").splitlines()[0])["run"]["rules"]]
    assert names == sorted(names) and names[0] == "Party.yaml"
    other = _cli(fresh_db(target))
    assert other("audit", "import", str(path)).exit_code == 0
    assert_identical(other, summary["run_id"])
    assert other("audit", "verify").exit_code == 0
