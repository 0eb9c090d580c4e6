"""The ledger inside the audit chain, and a chain that adds up: with the append-only triggers dropped,
`broker audit verify` still names an edited, a deleted and an inserted ledger entry; a run deleted with
its link (a cut-back chain) is caught by what still cites it and by a published head; a night with
nothing new records no run."""

from __future__ import annotations

import json

import pytest
from audit_world import AS_OF, RULES, add_notice, scalar, sql

TAMPERS_WITH_AUDIT_RECORDS = True  # the tests below edit records behind the broker's back on purpose


def nightly(run, tmp_path, *args: str, as_of: str = AS_OF):
    result = run("nightly", "--outbox", str(tmp_path / "outbox"), "--as-of", as_of, "--rules", str(RULES), *args)
    assert result.exit_code in (0, 4), result.output
    return result


def verify(run, *args: str) -> tuple[int, dict]:
    result = run("audit", "verify", "--json", *args)
    return result.exit_code, json.loads(result.output[:result.output.rindex("}") + 1])


@pytest.fixture
def drop_triggers(db_url):  # type: ignore[no-untyped-def]
    """Drops the ledger's append-only triggers (a tamperer with the database owner's rights); puts them back
    afterwards, since the PostgreSQL schema is shared by the tests of a run."""
    dropped = []

    def drop() -> None:
        if db_url.startswith("sqlite"):
            sql(db_url, "DROP TRIGGER target_entries_no_update")
            sql(db_url, "DROP TRIGGER target_entries_no_delete")
        else:
            sql(db_url, "DROP TRIGGER target_entries_append_only ON target_entries")
            dropped.append(True)

    yield drop
    if dropped:
        sql(db_url, "CREATE TRIGGER target_entries_append_only BEFORE UPDATE OR DELETE ON target_entries "
                    "FOR EACH ROW EXECUTE FUNCTION target_ledger_append_only()")


@pytest.fixture
def night(loaded, tmp_path):
    """One nightly on the CF fixture: a run, its matched entries and value entries, all sealed."""
    nightly(loaded, tmp_path)
    code, data = verify(loaded)
    assert code == 0 and data["ledger_batches"] >= 1 and data["ledger_entries"] > 10, data
    return loaded


def _problems(data: dict) -> str:
    return "\n".join(p["message"] for p in data["problems"])


def test_an_edited_ledger_entry_is_named_with_the_triggers_dropped(night, db_url, drop_triggers):
    drop_triggers()
    entry = scalar(db_url, "SELECT min(id) FROM target_entries WHERE kind = 'stage'")
    sql(db_url, "UPDATE target_entries SET amount_pence = amount_pence + 100000 WHERE id = :i", i=entry)
    code, data = verify(night)
    assert code == 1 and data["first_broken"]["kind"] == "ledger"
    assert f"ledger entry #{entry} " in data["first_broken"]["message"] and "was edited" in _problems(data)


def test_an_entry_rewritten_with_its_hash_is_caught_by_the_batch_digest(night, db_url, drop_triggers):
    from audit_world import session_on
    from sqlalchemy import select

    from broker.audit.ledger import ENTRY_FIELDS, entry_hash
    from broker.store.models import TargetEntry

    drop_triggers()
    entry = scalar(db_url, "SELECT min(id) FROM target_entries WHERE kind = 'value'")
    sql(db_url, "UPDATE target_entries SET amount_pence = amount_pence + 100000 WHERE id = :i", i=entry)
    with session_on(db_url) as session:  # a careful tamperer recomputes the entry's own hash too
        row = session.execute(select(*(getattr(TargetEntry, k) for k in ENTRY_FIELDS))
                              .where(TargetEntry.id == entry)).one()
        new_hash = entry_hash(dict(zip(ENTRY_FIELDS, row, strict=True)))
    sql(db_url, "UPDATE target_entries SET entry_hash = :h WHERE id = :i", h=new_hash, i=entry)
    code, data = verify(night)
    assert code == 1 and "rewritten together with its hash" in _problems(data)


def test_a_deleted_ledger_entry_is_named(night, db_url, drop_triggers):
    drop_triggers()
    entry = scalar(db_url, "SELECT max(id) FROM target_entries")
    sql(db_url, "DELETE FROM target_entries WHERE id = :i", i=entry)
    code, data = verify(night)
    assert code == 1 and f"ledger entry #{entry} of batch" in _problems(data) and "was deleted" in _problems(data)


def test_an_inserted_ledger_entry_is_named(night, db_url):
    # Inserting needs no dropped trigger: the triggers refuse only UPDATE and DELETE.
    batch = scalar(db_url, "SELECT min(id) FROM target_batches")
    sql(db_url, "INSERT INTO target_entries (batch_id, as_of, kind, opportunity_id, party_id, party_type, "
                "cluster, stage, basis, amount_pence, reason, cause) VALUES (:b, :d, 'stage', 'ocds-fake', "
                "'wm-0003', 'vcse', NULL, 'won', 'award', 99900000000, 'won', 'officer')", b=batch, d=AS_OF)
    entry = scalar(db_url, "SELECT max(id) FROM target_entries")
    code, data = verify(night)
    assert code == 1 and f"ledger entry #{entry} (stage won ocds-fake wm-0003) was inserted" in _problems(data)


def test_an_entry_in_a_batch_of_its_own_is_named(night, db_url):
    sql(db_url, "INSERT INTO target_batches (cause, as_of, config, config_sha256, software) "
                "VALUES ('officer', :d, '{}', 'x', 'x')", d=AS_OF)
    batch = scalar(db_url, "SELECT max(id) FROM target_batches")
    sql(db_url, "INSERT INTO target_entries (batch_id, as_of, kind, opportunity_id, party_id, basis, "
                "amount_pence, reason, cause) VALUES (:b, :d, 'stage', 'ocds-fake', 'wm-0003', 'award', 5, "
                "'won', 'officer')", b=batch, d=AS_OF)
    code, data = verify(night)
    problems = _problems(data)
    assert code == 1 and f"ledger batch {batch} (officer, {AS_OF}) is in no chain link" in problems
    assert "inserted outside the broker" in problems


def test_a_deleted_tail_is_caught_by_what_cites_it_and_by_the_published_head(loaded, db_url, tmp_path, drop_triggers):
    nightly(loaded, tmp_path)
    add_notice(db_url, "youth-1", "Youth work in Birmingham", "Detached youth work and mentoring for young people.")
    second = nightly(loaded, tmp_path)
    assert "run-000002: 0 matched" not in second.output, second.output
    heads = tmp_path / "outbox" / "audit-heads.txt"
    lines = heads.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and lines[-1].startswith(f"{AS_OF} #")
    assert lines[-1].split()[-1] in second.output  # the head is printed with the summary too
    assert verify(loaded, "--head", str(heads))[0] == 0
    # Remove the last run completely, with its decisions, inputs, rules and every link from its own on.
    drop_triggers()
    run_id = "run-000002"
    seq = scalar(db_url, "SELECT seq FROM audit_chain WHERE kind = 'run' AND ref = :r", r=run_id)
    for table in ("decisions", "run_inputs", "run_rule_files"):
        sql(db_url, f"DELETE FROM {table} WHERE run_id = :r", r=run_id)
    sql(db_url, "DELETE FROM audit_chain WHERE seq >= :s", s=seq)
    sql(db_url, "DELETE FROM match_runs WHERE id = :r", r=run_id)
    code, data = verify(loaded)
    assert code == 1
    cited = [p for p in data["problems"] if p["kind"] == "reference" and p["ref"] == run_id]
    assert cited and "matches were" in cited[0]["message"]
    # The sealed ledger batches of that night are now in no link either.
    assert any(p["kind"] == "ledger" and "in no chain link" in p["message"] for p in data["problems"])
    code, data = verify(loaded, "--head", str(heads))
    assert code == 1 and any(p["kind"] == "head" and "deleted from its end" in p["message"]
                             for p in data["problems"])
    # The next nightly notices it too, and says so in its exit code.
    result = loaded("nightly", "--outbox", str(tmp_path / "outbox"), "--as-of", AS_OF, "--rules", str(RULES))
    assert result.exit_code == 1 and "audit:" in result.output


def test_a_head_that_is_not_in_the_chain(night, tmp_path):
    code, data = verify(night, "--head", "ab" * 32)
    assert code == 1 and data["problems"][0]["kind"] == "head"
    bad = tmp_path / "heads.txt"
    bad.write_text("not a head\n", encoding="utf-8")
    result = night("audit", "verify", "--head", str(bad))
    assert result.exit_code == 1 and "line 1: not a published head" in result.output


def test_a_night_with_nothing_new_records_no_run(loaded, db_url, tmp_path):
    nightly(loaded, tmp_path)
    runs = scalar(db_url, "SELECT count(*) FROM match_runs")
    decisions = scalar(db_url, "SELECT count(*) FROM decisions")
    entries = scalar(db_url, "SELECT count(*) FROM target_entries")
    again = nightly(loaded, tmp_path)
    assert "nothing new since run-000001 (no run recorded)" in again.output
    assert scalar(db_url, "SELECT count(*) FROM match_runs") == runs
    assert scalar(db_url, "SELECT count(*) FROM decisions") == decisions
    assert scalar(db_url, "SELECT count(*) FROM target_entries") == entries
    direct = loaded("match", "--as-of", AS_OF, "--rules", str(RULES), "--json")
    assert json.loads(direct.output)["noop"] is True
    # A new business day is not "nothing new" (deadlines move): it is a run.
    later = loaded("match", "--as-of", "2025-01-24", "--rules", str(RULES), "--json")
    assert json.loads(later.output)["run_id"] == "run-000002"
    assert verify(loaded)[0] == 0


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_upgrading_a_database_with_a_ledger_seals_what_is_there(fresh_db, kind):
    """Migration 0006 hashes the entries written before it and seals their batches; the result verifies,
    and the triggers are back afterwards (an edit is still refused)."""
    from alembic import command
    from sqlalchemy import text

    from broker.audit.verify import verify_chain
    from broker.store.engine import _alembic_config, make_engine, session_factory, upgrade

    url = fresh_db(kind)
    engine = make_engine(url)
    try:
        cfg = _alembic_config(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO target_batches (cause, as_of, config, config_sha256, software) "
                              "VALUES ('officer', '2025-05-01', '{\"counting_stage\": \"introduced\"}', 'abc', '0')"))
            for stage, amount in (("introduced", 500000), ("won", 700000)):
                conn.execute(text("INSERT INTO target_entries (batch_id, as_of, kind, opportunity_id, party_id, "
                                  "stage, basis, amount_pence, framework, reason, cause) VALUES (1, '2025-05-01', "
                                  "'stage', 'o1', 'v1', :s, 'lower_bound', :a, false, 'r', 'officer')"),
                             {"s": stage, "a": amount})
        upgrade(engine)
        with session_factory(engine)() as session:
            report = verify_chain(session, cross_references=False)
            assert report.ok, [str(p) for p in report.problems]
            assert (report.links, report.ledger_batches, report.ledger_entries) == (1, 1, 2)
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text("UPDATE target_entries SET amount_pence = 0"))
    finally:
        engine.dispose()


def test_an_unreadable_heads_file_is_reported_and_the_night_still_runs(loaded, tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "audit-heads.txt").write_text("someone edited this\n", encoding="utf-8")
    result = loaded("nightly", "--outbox", str(outbox), "--as-of", AS_OF, "--rules", str(RULES))
    assert result.exit_code == 1 and "line 1: not a published head" in result.output
    assert "run-000001:" in result.output  # the night's work was done
