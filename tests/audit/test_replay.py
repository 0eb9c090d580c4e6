"""`broker audit replay`: a stored run re-executes to identical decisions, whatever changed since."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from audit_world import AS_OF, MORE_OCDS, assert_identical, match, replay, scalar, session_on
from sqlalchemy import select
from testpaths import ROOT

from broker.match.service import software_versions
from broker.store.models import Decision, MatchRun


def test_a_run_replays_identically(loaded, db_url):
    summary = match(loaded)
    assert summary["counts"]["matched"] > 0  # the fixture gives live matches on this day
    stored = scalar(db_url, "SELECT count(*) FROM decisions WHERE run_id = :r", r=summary["run_id"])
    result = replay(loaded, summary["run_id"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"identical: {stored} decisions")


def test_replay_ignores_later_rule_edits_new_data_and_directory_changes(loaded, db_url, rules_copy, tmp_path):
    first = match(loaded, rules=rules_copy)
    # Edit the rules the run used, add notices and change a VCSE: the live world moves on.
    path = rules_copy / "eligibility.yaml"
    text = path.read_text(encoding="utf-8")
    assert "{field: days_to_deadline, lt: 5}" in text
    path.write_text(text.replace("{field: days_to_deadline, lt: 5}", "{field: days_to_deadline, lt: 40}"),
                    encoding="utf-8")
    assert loaded("ingest", MORE_OCDS).exit_code == 0
    changed = tmp_path / "vcses.csv"
    rows = (ROOT / "fixtures" / "directory" / "vcses.csv").read_text(encoding="utf-8").splitlines()
    changed.write_text("\n".join([rows[0], rows[1].replace("community kitchen", "community café")] + rows[2:]) + "\n",
                       encoding="utf-8")
    assert loaded("directory", "import", str(changed)).exit_code == 0
    second = match(loaded, rules=rules_copy)
    # the edited rule is in force for the new run, which matches everything again (other rules)
    assert second["mode"] == "full" and second["counts"]["opportunities_rejected"] > \
        first["counts"]["opportunities_rejected"]
    full = match(loaded, "--full", rules=rules_copy)
    for run_id in (first["run_id"], second["run_id"], full["run_id"]):
        assert_identical(loaded, run_id)
    with session_on(db_url) as session:
        assert session.get(MatchRun, first["run_id"]).counts == first["counts"]


def test_replay_in_another_process(loaded, db_url):
    summary = match(loaded)
    env = {**os.environ, "BROKER_DB": db_url}
    done = subprocess.run([sys.executable, "-m", "broker", "audit", "replay", summary["run_id"]], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("identical: ")


def test_an_incremental_run_on_a_new_day_replays(loaded):
    match(loaded)
    assert loaded("ingest", MORE_OCDS).exit_code == 0
    later = match(loaded, as_of="2025-01-27")
    assert later["mode"] == "incremental"
    assert_identical(loaded, later["run_id"])


def test_replay_json(loaded, db_url):
    summary = match(loaded)
    data = json.loads(replay(loaded, summary["run_id"], "--json").output)
    assert data["run_id"] == summary["run_id"] and data["as_of"] == AS_OF and data["identical"]
    assert data["warnings"] == []  # same software
    with session_on(db_url) as session:
        run = session.get(MatchRun, summary["run_id"])
        assert run.software == software_versions()
        assert set(run.software) >= {"broker", "durable-rules", "rapidfuzz", "numpy", "python", "reference-data"}


def test_replay_streams_in_decision_order(loaded, db_url):
    summary = match(loaded)
    with session_on(db_url) as session:
        seqs = list(session.scalars(select(Decision.seq).where(Decision.run_id == summary["run_id"])
                                    .order_by(Decision.id)))
    assert seqs == list(range(1, len(seqs) + 1))  # the stored order the replay reads alongside


def test_replay_of_unknown_or_unfinished_run(loaded, db_url):
    result = replay(loaded, "run-999999")
    assert result.exit_code == 1 and "no run 'run-999999'" in result.output
    summary = match(loaded)
    with session_on(db_url) as session:  # a run killed part-way: never completed, never in the chain
        done = session.get(MatchRun, summary["run_id"])
        session.add(MatchRun(id="run-000050", seq=50, as_of=AS_OF, mode="full", status="abandoned",
                             started_at=done.started_at, params=done.params, software=done.software,
                             scope=done.scope, rules_sha256=done.rules_sha256, counts={}))
    result = replay(loaded, "run-000050")
    assert result.exit_code == 1 and "run-000050 is abandoned, not complete" in result.output
