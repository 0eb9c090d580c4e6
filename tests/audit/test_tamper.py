"""Tamper evidence: an edit to any stored decision, manifest field, snapshot record, rule text or chain
link made behind the broker's back is caught by `broker audit verify` (exit 1, naming the link) and by
`broker audit replay` (exit 3)."""

from __future__ import annotations

import json

import pytest
from audit_world import add_notice, match, replay, scalar, session_on, sql
from sqlalchemy import select, update

from broker.audit.replay import replay_run
from broker.store.models import AuditLink, MatchRun, Snapshot

# Runs here are tampered with or pruned on purpose: not for a suite-wide "every run replays" check.
TAMPERS_WITH_AUDIT_RECORDS = True


@pytest.fixture
def two_runs(loaded, db_url):
    """run-000001 (full) and run-000002 (incremental, after a new notice): both in the chain."""
    first = match(loaded)
    # A notice live on the run's business day (one published after it would not be an input).
    add_notice(db_url, "new-1", "Community lunch club", "Weekly lunch clubs for older people in Birmingham.")
    second = match(loaded)
    assert (first["run_id"], second["run_id"]) == ("run-000001", "run-000002")
    result = loaded("audit", "verify")
    assert result.exit_code == 0 and result.output.startswith("chain ok: 2 links, 2 runs")
    return loaded


def _verify_fails(run, expected: str) -> dict:
    result = run("audit", "verify", "--json")
    assert result.exit_code == 1
    data = json.loads(result.output[:result.output.rindex("}") + 1])
    assert not data["ok"] and expected in str(data["first_broken"]), data["first_broken"]
    text = run("audit", "verify")
    assert text.exit_code == 1 and "Error: the audit chain is broken at " in text.output
    return data


def _replay_differs(run, run_id: str, expected: str) -> None:
    result = replay(run, run_id)
    assert result.exit_code == 3, result.output
    assert result.output.startswith("differs:") and expected in result.output, result.output


def test_an_edited_decision_is_caught(two_runs, db_url):
    row = sql(db_url, "SELECT id, seq, score FROM decisions WHERE run_id = 'run-000001' AND stage = 'pair' "
                      "ORDER BY seq LIMIT 1")[0]
    sql(db_url, "UPDATE decisions SET score = :s WHERE id = :i", s=(row[2] + 37) % 100, i=row[0])
    data = _verify_fails(two_runs, f"decision #{row[1]} ")
    assert data["first_broken"]["seq"] == 1 and data["first_broken"]["ref"] == "run-000001"
    _replay_differs(two_runs, "run-000001", f"stored decision #{row[1]} ")
    assert replay(two_runs, "run-000002").exit_code == 0  # the other run is untouched


def test_an_edited_decision_with_a_recomputed_hash_is_caught(two_runs, db_url):
    # A careful tamperer also rewrites the row's own hash: the run's decision digest still gives it away.
    from broker.audit.digests import decision_hash

    with session_on(db_url) as session:
        from broker.store.models import Decision

        d = session.scalars(select(Decision).where(Decision.run_id == "run-000002", Decision.stage == "party")
                            .order_by(Decision.seq).limit(1)).one()
        d.outcome = "rejected"
        d.decision_hash = decision_hash({"stage": d.stage, "opportunity_id": d.opportunity_id,
                                         "party_id": d.party_id, "party_type": d.party_type, "outcome": d.outcome,
                                         "score": d.score, "features": d.features, "firings": d.firings,
                                         "detail": d.detail})
    _verify_fails(two_runs, "the stored decisions")
    _replay_differs(two_runs, "run-000002", "decided differently")


def test_a_deleted_decision_is_caught(two_runs, db_url):
    sql(db_url, "DELETE FROM decisions WHERE id = (SELECT max(id) FROM decisions WHERE run_id = 'run-000001')")
    _verify_fails(two_runs, "run-000001")
    _replay_differs(two_runs, "run-000001", "not stored for the run")


@pytest.mark.parametrize("column, value", [("as_of", "'2025-01-22'"), ("mode", "'incremental'"),
                                           ("decision_digest", "'" + "0" * 64 + "'")])
def test_an_edited_manifest_field_is_caught(two_runs, db_url, column, value):
    sql(db_url, f"UPDATE match_runs SET {column} = {value} WHERE id = 'run-000001'")
    _verify_fails(two_runs, "manifest")
    _replay_differs(two_runs, "run-000001", "manifest")


def test_edited_parameters_are_caught(two_runs, db_url):
    with session_on(db_url) as session:
        run = session.get(MatchRun, "run-000002")
        run.params = {**run.params, "min_score": 10}  # a threshold quietly lowered
    _verify_fails(two_runs, "manifest")
    _replay_differs(two_runs, "run-000002", "manifest")


def test_an_edited_snapshot_record_is_caught(two_runs, db_url):
    h = scalar(db_url, "SELECT content_hash FROM run_inputs WHERE run_id = 'run-000001' AND kind = 'party' "
                       "AND entity_id = 'wm-0003'")
    with session_on(db_url) as session:
        snap = session.get(Snapshot, h)
        session.execute(update(Snapshot).where(Snapshot.content_hash == h)
                        .values(record={**snap.record, "capabilities": "We build motorways."}))
    data = _verify_fails(two_runs, "snapshot of party 'wm-0003'")
    assert data["first_broken"]["seq"] == 1  # the first run that read it is the first broken link
    _replay_differs(two_runs, "run-000001", "snapshot of party 'wm-0003'")


def test_an_edited_run_input_is_caught(two_runs, db_url):
    other = scalar(db_url, "SELECT content_hash FROM run_inputs WHERE run_id = 'run-000002' "
                           "AND entity_id = 'wm-0004'")
    sql(db_url, "UPDATE run_inputs SET content_hash = :h WHERE run_id = 'run-000002' AND entity_id = 'wm-0003'",
        h=other)
    _verify_fails(two_runs, "input digest")
    _replay_differs(two_runs, "run-000002", "input digest")


def test_an_edited_rule_text_is_caught(two_runs, db_url):
    sql(db_url, "UPDATE run_rule_files SET text = replace(text, 'lt: 5}', 'lt: 50}') "
                "WHERE run_id = 'run-000001' AND name = 'eligibility.yaml'")
    _verify_fails(two_runs, "rule file eligibility.yaml")
    _replay_differs(two_runs, "run-000001", "rule file eligibility.yaml")


def test_an_edited_chain_link_is_caught(two_runs, db_url):
    sql(db_url, "UPDATE audit_chain SET digest = :d WHERE seq = 1", d="f" * 64)
    data = _verify_fails(two_runs, "the link's hash")
    assert data["first_broken"]["seq"] == 1
    sql(db_url, "DELETE FROM audit_chain WHERE seq = 1")
    _verify_fails(two_runs, "expected link #1")


def test_a_rewritten_link_breaks_the_next_one(two_runs, db_url):
    from broker.audit.digests import link_hash

    with session_on(db_url) as session:
        link = session.get(AuditLink, 1)
        link.digest = "e" * 64
        link.hash = link_hash(link.prev_hash, link.kind, link.ref, link.digest)  # consistent in itself
    data = _verify_fails(two_runs, "run-000001")
    assert any("prev_hash" in p["message"] and p["seq"] == 2 for p in data["problems"])


def test_a_run_deleted_outside_prune_is_caught(two_runs, db_url):
    for table in ("decisions", "run_inputs", "run_rule_files", "match_runs"):
        key = "id" if table == "match_runs" else "run_id"
        sql(db_url, f"DELETE FROM {table} WHERE {key} = 'run-000001'")
    _verify_fails(two_runs, "no later prune link lists it")


def test_a_run_added_outside_the_chain_is_caught(two_runs, db_url):
    with session_on(db_url) as session:
        run = session.get(MatchRun, "run-000002")
        session.add(MatchRun(id="run-000009", seq=9, as_of=run.as_of, mode=run.mode, status="complete",
                             started_at=run.started_at, finished_at=run.finished_at, params=run.params,
                             software=run.software, scope=run.scope, rules_sha256=run.rules_sha256,
                             counts=run.counts, input_digest=run.input_digest, decision_digest=run.decision_digest,
                             sequence_digest=run.sequence_digest, manifest_digest=run.manifest_digest))
    _verify_fails(two_runs, "run-000009")
    assert two_runs("audit", "verify", "--quick").exit_code == 1


def test_quick_verify_checks_manifests_but_not_rows(two_runs, db_url):
    sql(db_url, "UPDATE decisions SET score = 3 WHERE id = (SELECT min(id) FROM decisions)")
    quick = two_runs("audit", "verify", "--quick")
    assert quick.exit_code == 0 and "(quick)" in quick.output
    assert two_runs("audit", "verify").exit_code == 1
    sql(db_url, "UPDATE match_runs SET as_of = '2020-01-01' WHERE id = 'run-000002'")
    assert two_runs("audit", "verify", "--quick").exit_code == 1


def test_other_software_is_a_warning_and_the_edited_row_a_problem(two_runs, db_url):
    with session_on(db_url) as session:
        run = session.get(MatchRun, "run-000001")
        run.software = {**run.software, "rapidfuzz": "0.0.1"}  # as if replayed on another machine
    with session_on(db_url) as session:
        report = replay_run(session, "run-000001")
    # The version differs and the edited row no longer hashes to its manifest digest: both are named.
    assert any("rapidfuzz" in w and "0.0.1" in w for w in report.warnings)
    assert any("manifest" in p for p in report.problems) and report.different == 0
