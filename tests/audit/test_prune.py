"""Retention: audit records are never updated in place or deleted, except by `broker audit prune`,
which is itself recorded in the chain."""

from __future__ import annotations

import json

import pytest
from audit_world import MORE_OCDS, assert_identical, match, scalar, session_on, sql
from sqlalchemy import select
from testpaths import ROOT

from broker.store.models import AuditLink, Decision, MatchRun, RunInput, RunRuleFile, Snapshot

# Runs here are tampered with or pruned on purpose: not for a suite-wide "every run replays" check.
TAMPERS_WITH_AUDIT_RECORDS = True


def _audit_rows(db_url: str) -> dict[str, list[tuple]]:
    """Every audit row, in full, in a comparable form."""
    tables = {"runs": MatchRun, "rule_files": RunRuleFile, "inputs": RunInput, "snapshots": Snapshot,
              "decisions": Decision, "chain": AuditLink}
    out = {}
    with session_on(db_url) as session:
        for name, model in tables.items():
            cols = [c.key for c in model.__table__.columns]
            out[name] = sorted(tuple(json.dumps(getattr(r, c), sort_keys=True, default=str) for c in cols)
                               for r in session.scalars(select(model)))
    return out


def test_later_work_never_changes_or_deletes_earlier_audit_records(loaded, db_url, fresh_db, tmp_path):
    match(loaded)
    before = _audit_rows(db_url)
    # Everything else the broker does to the store afterwards, including a run that gets abandoned.
    assert loaded("ingest", MORE_OCDS).exit_code == 0
    assert loaded("directory", "import", str(ROOT / "fixtures" / "directory" / "vcses.csv")).exit_code == 0
    match(loaded)
    match(loaded, "--full", as_of="2025-01-24")
    with session_on(db_url) as session:
        session.add(MatchRun(id="run-000099", seq=99, as_of="2025-01-25", mode="full", status="running",
                             started_at=session.get(MatchRun, "run-000001").started_at, params={}, software={},
                             scope={}, rules_sha256="", counts={}))
    match(loaded, as_of="2025-01-25")  # marks the killed run abandoned (it was never in the chain)
    assert loaded("audit", "export", "run-000002", "--output", str(tmp_path / "r.jsonl")).exit_code == 0
    after = _audit_rows(db_url)
    for name, rows in before.items():
        assert set(rows) <= set(after[name]), f"{name}: an earlier audit row was changed or deleted"
    assert loaded("audit", "verify").exit_code == 0


def test_prune_deletes_old_runs_records_the_prune_and_the_chain_still_verifies(loaded, db_url):
    old = match(loaded, as_of="2025-01-20")
    assert loaded("ingest", MORE_OCDS).exit_code == 0
    kept = match(loaded, "--full")
    old_link = sql(db_url, "SELECT seq, hash FROM audit_chain WHERE ref = :r", r=old["run_id"])[0]
    snapshots_before = scalar(db_url, "SELECT count(*) FROM snapshots")
    result = loaded("audit", "prune", "--before", "2025-01-21", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [r["run_id"] for r in report["runs"]] == [old["run_id"]]
    assert report["runs"][0]["link_hash"] == old_link[1] and report["decisions"] > 0
    for table, key in (("decisions", "run_id"), ("run_inputs", "run_id"), ("run_rule_files", "run_id"),
                       ("match_runs", "id")):
        assert scalar(db_url, f"SELECT count(*) FROM {table} WHERE {key} = :r", r=old["run_id"]) == 0
    # Snapshots still read by the kept run stay; only orphans went.
    assert scalar(db_url, "SELECT count(*) FROM snapshots") == snapshots_before - report["snapshots"]
    assert scalar(db_url, "SELECT count(*) FROM run_inputs r WHERE NOT EXISTS (SELECT 1 FROM snapshots s "
                          "WHERE s.content_hash = r.content_hash)") == 0
    chain = sql(db_url, "SELECT seq, kind, ref FROM audit_chain ORDER BY seq")
    assert [tuple(r) for r in chain] == [(1, "run", old["run_id"]), (2, "run", kept["run_id"]),
                                         (3, "prune", "2025-01-21")]
    verified = loaded("audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert_identical(loaded, kept["run_id"])
    assert loaded("audit", "replay", old["run_id"]).exit_code == 1  # gone: "no run"
    again = loaded("audit", "prune", "--before", "2025-01-21")
    assert again.exit_code == 0 and "nothing pruned" in again.output
    assert scalar(db_url, "SELECT count(*) FROM audit_chain") == 3


def test_a_tampered_prune_record_is_caught(loaded, db_url):
    match(loaded, as_of="2025-01-20")
    match(loaded, "--full")
    assert loaded("audit", "prune", "--before", "2025-01-21").exit_code == 0
    with session_on(db_url) as session:
        link = session.get(AuditLink, 3)
        link.payload = {**link.payload, "decisions": 0}
    result = loaded("audit", "verify")
    assert result.exit_code == 1 and "link #3 (prune 2025-01-21)" in result.output


def test_a_prune_cannot_excuse_a_run_it_does_not_list(loaded, db_url):
    match(loaded, as_of="2025-01-20")
    second = match(loaded, "--full")
    assert loaded("audit", "prune", "--before", "2025-01-21").exit_code == 0
    for table, key in (("decisions", "run_id"), ("run_inputs", "run_id"), ("run_rule_files", "run_id"),
                       ("match_runs", "id")):
        sql(db_url, f"DELETE FROM {table} WHERE {key} = :r", r=second["run_id"])
    result = loaded("audit", "verify")
    assert result.exit_code == 1 and f"run {second['run_id']} is missing" in result.output


@pytest.mark.parametrize("bad", ["yesterday", "2025-13-01"])
def test_prune_needs_a_date(loaded, bad):
    result = loaded("audit", "prune", "--before", bad)
    assert result.exit_code == 1 and "--before" in result.output
