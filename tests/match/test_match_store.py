"""The store side of a match run: the current ``matches`` after incremental runs, ranks read back, and
what happens when decisions cannot be stored."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from testpaths import FIXTURES, ROOT

from broker.match import service
from broker.match.queries import list_matches, show_match
from broker.match.rulefiles import load_rules
from broker.store.engine import make_engine, session_factory
from broker.store.models import ConsortiumMember, Match, MatchRun, Opportunity, Vcse

CSV = FIXTURES / "opportunities" / "cf_export_2020_sample.csv"
VCSES = FIXTURES / "directory" / "vcses.csv"
CONSORTIA = str(FIXTURES / "directory" / "consortia.csv")
AS_OF = "2020-04-16"
NO_DEADLINE = datetime.max.replace(tzinfo=UTC)  # ranked after every deadline


def _split_notices(tmp_path: Path) -> tuple[str, str]:
    """The export in two files: every third notice arrives the next day."""
    with CSV.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    for path, part in ((first, [r for i, r in enumerate(rows[1:]) if i % 3]),
                       (second, [r for i, r in enumerate(rows[1:]) if not i % 3])):
        with path.open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([rows[0], *part])
    return str(first), str(second)


def _changed_directory(tmp_path: Path, vcse_id: str) -> str:
    """The directory with one VCSE now doing something no notice asks for."""
    with VCSES.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if row["id"] == vcse_id:
            row["capabilities"] = "Repair and restoration of antique violins, violas and cellos in our workshop."
            row["keywords"], row["cpv_codes"] = "violin repair;bow rehairing", "37312000"
    path = tmp_path / "vcses-changed.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def _ok(run, *args: str) -> dict:
    result = run(*args, "--json")
    assert result.exit_code in (0, 1), result.output  # 1: the export's award notices are quarantined
    return json.loads(result.output)


def _load(run) -> None:
    _ok(run, "ingest", str(CSV))
    _ok(run, "directory", "import", str(VCSES), "--consortia", CONSORTIA)


def _match(run, *args: str) -> dict:
    result = run("match", "--as-of", AS_OF, "--rules", str(ROOT / "rules"), "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _current(db_url: str) -> tuple[list[tuple], dict[str, list[tuple]]]:
    """Active matches (suggested groupings aside) and every party's ranked list, as a user reads them."""
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        items = list_matches(s)
    engine.dispose()
    active = sorted((m["opportunity_id"], m["party_id"], m["party_type"], m["score"]) for m in items
                    if m["party_type"] != "suggested_consortium")
    ranked: dict[str, list[tuple]] = {}
    for m in items:
        ranked.setdefault(m["party_id"], []).append((m["rank"], m["opportunity_id"], m["score"]))
    return active, ranked


def test_an_incremental_run_leaves_the_matches_a_full_run_would(run, db_url, tmp_path):
    """New notices and a VCSE that changed what it does: the incremental run's matches are a full run's."""
    first, second = _split_notices(tmp_path)
    _ok(run, "ingest", first)
    _ok(run, "directory", "import", str(VCSES), "--consortia", CONSORTIA)
    _match(run)
    before = {(o, p) for o, p, t, _ in _current(db_url)[0] if t == "vcse"}
    busiest = max(sorted({p for _, p in before}), key=lambda v: sum(p == v for _, p in before))
    changed = _changed_directory(tmp_path, busiest)
    _ok(run, "ingest", second)
    _ok(run, "directory", "import", changed, "--consortia", CONSORTIA)
    incremental = _match(run)
    assert incremental["mode"] == "incremental"
    got, got_ranks = _current(db_url)

    other = f"sqlite:///{tmp_path / 'full.db'}"
    assert run.__class__(other)("init").exit_code == 0
    full_run = run.__class__(other)
    _ok(full_run, "ingest", first)
    _ok(full_run, "ingest", second)
    _ok(full_run, "directory", "import", changed, "--consortia", CONSORTIA)
    assert _match(full_run)["mode"] == "full"
    want, want_ranks = _current(other)

    assert got == want
    vcse_ranks = {p: r for p, r in got_ranks.items() if p in {x[1] for x in got}}
    assert vcse_ranks == {p: r for p, r in want_ranks.items() if p in vcse_ranks}
    # the changed VCSE's old matches went: nothing asks for violin repair
    lost = {pair for pair in before if pair[1] == busiest} - {(o, p) for o, p, _, _ in got}
    assert lost
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        statuses = {s.scalar(select(Match.status).where(Match.opportunity_id == o, Match.party_id == p))
                    for o, p in lost}
    engine.dispose()
    assert statuses == {"withdrawn"}


def test_matches_of_a_party_that_left_the_directory_are_withdrawn(run, db_url):
    _load(run)
    _match(run)
    engine = make_engine(db_url)
    with session_factory(engine).begin() as s:
        members = set(s.scalars(select(ConsortiumMember.vcse_id)))
        counts: dict[str, int] = {}
        for party in s.scalars(select(Match.party_id).where(Match.status == "active",
                                                            Match.party_type == "vcse")):
            counts[party] = counts.get(party, 0) + 1
        leaving = max(sorted(p for p in counts if p not in members), key=counts.__getitem__)
        s.execute(delete(Vcse).where(Vcse.id == leaving))
    second = _match(run)
    with session_factory(engine)() as s:
        statuses = set(s.scalars(select(Match.status).where(Match.party_id == leaving)))
        assert list_matches(s, party_id=leaving) == []
    engine.dispose()
    assert second["counts"]["pairs_considered"] == 0  # nothing new to match: only the departure
    assert statuses == {"withdrawn"}


def test_ranks_are_per_party_by_score_then_deadline_and_the_same_however_the_list_is_filtered(run, db_url):
    _load(run)
    _match(run)
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        items = list_matches(s)
        deadlines = dict(s.execute(select(Opportunity.id, Opportunity.deadline_at)).all())
        by_party: dict[str, list[dict]] = {}
        for m in items:
            by_party.setdefault(m["party_id"], []).append(m)
        assert len(by_party) > 5
        for party, mine in sorted(by_party.items()):
            assert [m["rank"] for m in mine] == list(range(1, len(mine) + 1))
            order = [(-m["score"], deadlines[m["opportunity_id"]] or NO_DEADLINE, m["opportunity_id"]) for m in mine]
            assert order == sorted(order)
            assert [m["rank"] for m in list_matches(s, party_id=party)] == [m["rank"] for m in mine]
        busiest = max(sorted(by_party), key=lambda p: len(by_party[p]))
        last = by_party[busiest][-1]
        alone = list_matches(s, opportunity_id=last["opportunity_id"], party_id=busiest)
        assert [m["rank"] for m in alone] == [last["rank"]] and last["rank"] > 1
        assert show_match(s, last["opportunity_id"], busiest)["rank"] == last["rank"]
    engine.dispose()


def test_a_run_whose_decisions_cannot_be_stored_fails_and_is_abandoned_by_the_next(db_url, run, monkeypatch):
    _load(run)
    engine = make_engine(db_url)
    sessions = session_factory(engine)

    def broken(decision: dict) -> dict:
        raise OSError("disk full")

    monkeypatch.setattr(service, "_match_values", broken)
    with pytest.raises(OSError, match="disk full"):
        service.run_match(sessions, as_of=date.fromisoformat(AS_OF), rules_dir=ROOT / "rules")
    monkeypatch.undo()
    summary = service.run_match(sessions, as_of=date.fromisoformat(AS_OF), rules_dir=ROOT / "rules")
    with sessions() as s:
        statuses = dict(s.execute(select(MatchRun.id, MatchRun.status)).all())
    engine.dispose()
    assert statuses == {"run-000001": "abandoned", summary.run_id: "complete"}
    assert summary.mode == "full" and summary.counts["matched"] > 0


CLOSING_SOON = """rules:
  - id: closing-soon
    description: The deadline is near; say so on the match.
    applies_to: pair
    when: {field: days_to_deadline, lt: 14}
    effect: {flag: closing-soon}
    reason: "Closes in {days_to_deadline} days"
"""


def _scope(db_url: str, run_id: str) -> dict:
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        scope = s.get(MatchRun, run_id).scope
    engine.dispose()
    # Where the rules were read from is checked in test_rules_location.py.
    return {k: v for k, v in scope.items() if k != "rules_from"}


def test_the_next_business_day_rechecks_near_deadline_matches_only_when_a_rule_reads_the_date(run, db_url,
                                                                                                tmp_path):
    _load(run)
    shipped = str(ROOT / "rules")
    dated = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", dated)
    (dated / "closing.yaml").write_text(CLOSING_SOON, encoding="utf-8")
    assert not service.pairs_change_with_the_date(load_rules(shipped))  # deadlines only reject opportunities
    assert service.pairs_change_with_the_date(load_rules(dated))

    def match(as_of: str, rules: str) -> dict:
        result = run("match", "--as-of", as_of, "--rules", rules, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    match("2020-04-16", shipped)
    nothing_new = match("2020-04-17", shipped)
    assert _scope(db_url, nothing_new["run_id"]) == {"full": False, "opportunity_ids": [], "party_ids": []}
    assert nothing_new["counts"]["pairs_considered"] == 0
    assert nothing_new["counts"]["opportunities_rejected"] > 0  # the deadline rules still ran on every notice

    new_rules = match("2020-04-17", str(dated))
    assert new_rules["mode"] == "full"  # other rules than the last run's: everything is matched again
    rechecked = match("2020-04-18", str(dated))
    scope = _scope(db_url, rechecked["run_id"])
    assert rechecked["mode"] == "incremental" and scope["opportunity_ids"]
    assert rechecked["counts"]["pairs_considered"] > 0
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        deadlines = dict(s.execute(select(Opportunity.id, Opportunity.deadline_at)).all())
    engine.dispose()
    soon = datetime(2020, 4, 18 + 7, 23, 59, tzinfo=UTC) + timedelta(hours=1)  # recheck_days, UK summer time
    assert all(deadlines[o] is not None and deadlines[o] <= soon for o in scope["opportunity_ids"])
