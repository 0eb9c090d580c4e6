"""The rules engine: the default rules case by case, determinism, guardrails and failures.

Run as a script (``python tests/match/test_rules_engine.py``) it prints the evaluation of a fixed batch as
JSON; the determinism test compares that output from a fresh process with the in-process result.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from broker.match import rules as engine_mod  # noqa: E402
from broker.match.rulefiles import Effect, load_rules, load_rules_from_texts  # noqa: E402
from broker.match.rules import FactResult, RuleEngine, RuleEngineError, fnv1_32  # noqa: E402
from broker.match.vocabulary import VOCABULARY  # noqa: E402

RULES = load_rules(ROOT / "rules")

# Values for which no default rule fires; each case below changes a few.
NEUTRAL: dict[str, Any] = {
    "status": "open", "deadline_known": True, "days_to_deadline": 30, "value_known": True,
    "value_min_gbp": 10_000, "value_max_gbp": 20_000, "is_framework": False, "is_dps": False,
    "nationwide": False, "in_west_midlands": True, "opportunity_cluster": "", "opportunity_local_authority": "",
    "vcse_suitable": "unknown", "sme_suitable": "unknown", "reserved_for_vcse": False, "notice_type": "",
    "source": "contracts_finder", "remote_delivery": False, "serves_national": False,
    "value_over_max_pct": 10, "value_over_turnover_pct": -1,
    "party_type": "vcse", "digest_opt_in": True, "has_capabilities": True, "capacity_known": True,
    "max_contract_value_gbp": 100_000, "min_contract_value_gbp": 0, "annual_turnover_gbp": 0, "employees": 0,
    "member_count": 1, "party_cluster": "",
    "capability_score": 0, "capability_level": "none", "relevance_terms": "no shared terms", "keyword_hits": 0, "exclude_hits": 0,
    "cpv_overlap": "none", "value_to_capacity_pct": 10, "value_fit": "unknown", "location_fit": "national",
}


def fact(kind: str, fid: str | int = "f1", **changes: Any) -> dict[str, Any]:
    out = {f.name: NEUTRAL[f.name] for f in VOCABULARY[kind]}
    unknown = set(changes) - set(out)
    assert not unknown, unknown
    out.update(changes)
    out["id"] = fid
    return out


def firings(result: FactResult) -> list[tuple[Any, ...]]:
    return [(f.rule_id, f.points if f.effect == "score" else f.flag or f.effect, f.reason) for f in result.firings]


CASES: list[tuple[str, str, dict[str, Any], list[tuple[Any, ...]]]] = [
    # (case, kind, changes from NEUTRAL, [(rule id, points | flag | effect, reason)])
    ("opp neutral", "opportunity", {}, []),
    ("deadline passed", "opportunity", {"days_to_deadline": -1},
     [("deadline-passed", "reject", "The deadline has passed")]),
    ("deadline today", "opportunity", {"days_to_deadline": 0},
     [("deadline-too-close", "reject", "Deadline in 0 days: too short to prepare a bid")]),
    ("deadline in 4 days", "opportunity", {"days_to_deadline": 4},
     [("deadline-too-close", "reject", "Deadline in 4 days: too short to prepare a bid")]),
    ("deadline in 5 days is fine", "opportunity", {"days_to_deadline": 5}, []),
    ("deadline unknown", "opportunity", {"deadline_known": False, "days_to_deadline": 9999}, []),
    ("unknown deadline never rejects", "opportunity", {"deadline_known": False, "days_to_deadline": -3}, []),
    ("closed", "opportunity", {"status": "closed"},
     [("status-ended", "reject", "The notice is closed: no longer open for bids")]),
    ("cancelled", "opportunity", {"status": "cancelled"},
     [("status-ended", "reject", "The notice is cancelled: no longer open for bids")]),
    ("awarded", "opportunity", {"status": "awarded"},
     [("status-ended", "reject", "The notice is awarded: no longer open for bids")]),
    ("planned", "opportunity", {"status": "planned"},
     [("status-planned", "reject", "Planned procurement: not open for bids yet")]),
    ("no value", "opportunity", {"value_known": False, "value_min_gbp": 0},
     [("value-unknown", "value-unknown", "The notice gives no value")]),
    ("several, in rule order", "opportunity", {"value_known": False, "status": "closed", "days_to_deadline": -9},
     [("deadline-passed", "reject", "The deadline has passed"),
      ("status-ended", "reject", "The notice is closed: no longer open for bids"),
      ("value-unknown", "value-unknown", "The notice gives no value")]),
    ("party neutral", "party", {}, []),
    ("no capabilities", "party", {"has_capabilities": False},
     [("no-capabilities", "no-capabilities",
       "No capabilities described: matches rely on keywords and CPV codes only")]),
    ("no capacity", "party", {"capacity_known": False, "max_contract_value_gbp": 0},
     [("capacity-unknown", "capacity-unknown", "No maximum contract value given: value fit cannot be judged")]),
    ("pair neutral", "pair", {}, []),
    ("opportunity rules ignore pairs", "pair", {"status": "closed", "days_to_deadline": -1}, []),
    ("exclude keyword", "pair", {"exclude_hits": 2},
     [("exclude-keyword", "reject", "The notice mentions 2 of your excluded keywords")]),
    ("beyond capacity", "pair", {"value_over_max_pct": 201, "value_min_gbp": 200_001},
     [("value-beyond-capacity", "needs_consortium", "Worth £200,001, more than twice your largest contract "
       "(£100,000): too big to take on alone, shown as a subcontracting prospect (part of the work for the "
       "main contractor, or a bid with partners)")]),
    ("exactly twice capacity", "pair", {"value_over_max_pct": 200, "value_min_gbp": 200_000}, []),
    ("a framework's ceiling is not judged against capacity", "pair",
     {"value_over_max_pct": 5000, "is_framework": True},
     [("framework", "framework", "A framework agreement: a place on it does not guarantee work")]),
    ("a DPS's ceiling is not judged against capacity", "pair",
     {"value_over_max_pct": 5000, "is_dps": True},
     [("dynamic-purchasing-system", "dps",
       "A dynamic purchasing system: you can join at any time and bid for call-offs")]),
    ("beyond half the turnover, no maximum given", "pair",
     {"capacity_known": False, "max_contract_value_gbp": 0, "value_over_max_pct": -1,
      "value_over_turnover_pct": 51, "annual_turnover_gbp": 39_000, "value_min_gbp": 20_000},
     [("value-beyond-turnover", "needs_consortium", "Worth £20,000, more than half your annual turnover "
       "(£39,000): too big to take on alone, shown as a subcontracting prospect (part of the work for the "
       "main contractor, or a bid with partners)")]),
    ("turnover is not read when a maximum is given", "pair", {"value_over_turnover_pct": 900}, []),
    ("UK-wide, party serves only its area", "pair", {"location_fit": "national", "nationwide": True},
     [("location-nationwide", "reject", "The notice names no delivery place in your area (it is open to "
       "anywhere in the UK) and does not say the work can be done remotely")]),
    ("UK-wide, remote delivery", "pair",
     {"location_fit": "national", "nationwide": True, "remote_delivery": True}, []),
    ("UK-wide, party serves National", "pair",
     {"location_fit": "national", "nationwide": True, "serves_national": True}, []),
    ("UK-wide notice naming the party's area", "pair", {"location_fit": "local", "nationwide": True},
     [("location-local", 5, "The work is in your local area")]),
    ("below minimum", "pair", {"value_fit": "below_minimum", "min_contract_value_gbp": 50_000},
     [("value-below-minimum", "reject", "Worth at most £20,000, below your minimum of £50,000")]),
    ("outside area", "pair", {"location_fit": "outside"},
     [("location-outside", "reject", "The work is outside your service areas")]),
    ("outside area but UK-wide", "pair", {"location_fit": "outside", "nationwide": True}, []),
    ("relevance", "pair", {"capability_level": "strong", "capability_score": 91,
                           "relevance_terms": "'refuge', 'domestic abuse'"},
     [("capability-relevance", 91, "Relevant to what you do (91/100): 'refuge', 'domestic abuse'")]),
    ("some relevance", "pair", {"capability_level": "weak", "capability_score": 12,
                                "relevance_terms": "through 'employability' (related to your 'back to work')"},
     [("capability-relevance", 12, "Relevant to what you do (12/100): through 'employability' (related to "
                                   "your 'back to work')")]),
    ("one keyword", "pair", {"keyword_hits": 1}, [("keyword-hits", 2, "1 of your keywords appear in the notice")]),
    ("three keywords", "pair", {"keyword_hits": 3},
     [("keyword-hits", 6, "3 of your keywords appear in the notice")]),
    ("keyword points capped", "pair", {"keyword_hits": 9},
     [("keyword-hits", 6, "9 of your keywords appear in the notice")]),
    ("cpv exact", "pair", {"cpv_overlap": "exact"}, [("cpv-exact", 5, "The notice uses one of your CPV codes")]),
    ("cpv category", "pair", {"cpv_overlap": "category"},
     [("cpv-category", 4, "The notice's CPV code is in the same category as one of yours")]),
    ("cpv class", "pair", {"cpv_overlap": "class"},
     [("cpv-class", 3, "The notice's CPV code is in the same class as one of yours")]),
    ("cpv group", "pair", {"cpv_overlap": "group"},
     [("cpv-group", 2, "The notice's CPV code is in the same group as one of yours")]),
    ("cpv division", "pair", {"cpv_overlap": "division"},
     [("cpv-division", 1, "The notice's CPV code is in the same division as one of yours")]),
    ("no codes", "pair", {"cpv_overlap": "no_codes"}, []),
    ("vcse suitable", "pair", {"vcse_suitable": "yes"},
     [("buyer-vcse-suitable", 3, "The buyer says this is suitable for VCSEs")]),
    ("sme suitable", "pair", {"sme_suitable": "yes"},
     [("buyer-sme-suitable", 2, "The buyer says this is suitable for small organisations")]),
    ("not suitable", "pair", {"vcse_suitable": "no", "sme_suitable": "no"}, []),
    ("reserved", "pair", {"reserved_for_vcse": True},
     [("reserved-for-vcse", 5, "Bidding is reserved for organisations like yours")]),
    ("local", "pair", {"location_fit": "local"}, [("location-local", 5, "The work is in your local area")]),
    ("cluster", "pair", {"location_fit": "cluster"}, [("location-cluster", 3, "The work is in your cluster")]),
    ("region", "pair", {"location_fit": "region"}, [("location-region", 2, "The work is in your region")]),
    ("within capacity", "pair", {"value_fit": "within"},
     [("value-within-capacity", 3, "The value fits your capacity")]),
    ("stretch", "pair", {"value_fit": "stretch", "value_to_capacity_pct": 90},
     [("value-stretch", "stretch", "A stretch: the value is 90% of your largest contract")]),
    ("framework", "pair", {"is_framework": True},
     [("framework", "framework", "A framework agreement: a place on it does not guarantee work")]),
    ("dps", "pair", {"is_dps": True},
     [("dynamic-purchasing-system", "dps",
       "A dynamic purchasing system: you can join at any time and bid for call-offs")]),
    ("a good all-round match", "pair",
     {"capability_level": "strong", "capability_score": 88, "relevance_terms": "'refuge'", "keyword_hits": 2,
      "cpv_overlap": "class", "vcse_suitable": "yes", "location_fit": "cluster", "value_fit": "within"},
     [("capability-relevance", 88, "Relevant to what you do (88/100): 'refuge'"),
      ("keyword-hits", 4, "2 of your keywords appear in the notice"),
      ("cpv-class", 3, "The notice's CPV code is in the same class as one of yours"),
      ("buyer-vcse-suitable", 3, "The buyer says this is suitable for VCSEs"),
      ("location-cluster", 3, "The work is in your cluster"),
      ("value-within-capacity", 3, "The value fits your capacity")]),
    ("rejected and still scored", "pair", {"exclude_hits": 1, "cpv_overlap": "exact"},
     [("exclude-keyword", "reject", "The notice mentions 1 of your excluded keywords"),
      ("cpv-exact", 5, "The notice uses one of your CPV codes")]),
]


def test_default_rules_table() -> None:
    by_kind: dict[str, list[tuple[str, dict[str, Any], list[Any]]]] = {}
    for case, kind, changes, expected in CASES:
        by_kind.setdefault(kind, []).append((case, fact(kind, case.replace(" ", "-"), **changes), expected))
    with RuleEngine(RULES) as engine:
        for kind, cases in by_kind.items():
            results = engine.evaluate(kind, [c[1] for c in cases])
            for (case, _, expected), result in zip(cases, results, strict=True):
                assert firings(result) == expected, case
                assert result.rejected == any(e[1] == "reject" for e in expected), case
                assert result.score == sum(e[1] for e in expected if isinstance(e[1], int)), case


def test_firing_records_inputs_and_effect_details() -> None:
    with RuleEngine(RULES) as engine:
        (result,) = engine.evaluate("pair", [fact("pair", 7, value_fit="stretch", value_over_max_pct=250,
                                                  value_min_gbp=250_000, keyword_hits=3)])
    assert result.id == 7 and result.kind == "pair"
    assert result.needs_consortium and not result.rejected and result.flags == ("stretch",)
    first = result.firings[0]
    assert first.to_dict() == {
        "rule_id": "value-beyond-capacity", "effect": "needs_consortium", "points": 0, "flag": None,
        "reason": "Worth £250,000, more than twice your largest contract (£100,000): too big to take on alone, "
                  "shown as a subcontracting prospect (part of the work for the main contractor, or a bid "
                  "with partners)",
        "inputs": {"is_framework": False, "is_dps": False, "value_over_max_pct": 250, "value_min_gbp": 250_000,
                   "max_contract_value_gbp": 100_000}}
    assert result.firings[1].inputs == {"keyword_hits": 3}
    assert result.score == 6


# --- determinism --------------------------------------------------------------------------------------

def synthetic(kind: str, n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        f: dict[str, Any] = {"id": f"{kind[0]}{i}"}
        for fld in VOCABULARY[kind]:
            if fld.type is bool:
                f[fld.name] = rng.random() < 0.4
            elif fld.type is int:
                f[fld.name] = rng.choice([-2, 0, 1, 3, 4, 5, 9, 90, 9999, 250_000])
            else:
                f[fld.name] = rng.choice(fld.values or ("", "Walsall", "Ynys Môn", 'a "quoted" \\ name'))
        out.append(f)
    return out


def evaluate_fixed_batch() -> dict[str, Any]:
    out: dict[str, Any] = {}
    with RuleEngine(RULES, session_size=700) as engine:
        for kind, n in (("opportunity", 500), ("party", 200), ("pair", 3000)):
            out[kind] = [r.to_dict() for r in engine.evaluate(kind, synthetic(kind, n))]
        out["sequence"] = [list(s) for s in engine.sequence]
        out["sequence_sha256"] = engine.sequence_sha256()
    return out


def test_same_input_same_results_and_sequence() -> None:
    first, second = evaluate_fixed_batch(), evaluate_fixed_batch()
    assert first == second
    assert sum(len(r["firings"]) for r in first["pair"]) > 3000  # the batch really exercises the rules
    lines = "".join(f"{k}\t{f}\t{r}\n" for k, f, r in first["sequence"])
    assert first["sequence_sha256"] == hashlib.sha256(lines.encode()).hexdigest()


def test_same_results_in_a_fresh_process() -> None:
    env = dict(os.environ, PYTHONHASHSEED="4242")
    proc = subprocess.run([sys.executable, __file__], capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(json.dumps(evaluate_fixed_batch()))


def test_sequence_follows_rule_order_within_each_fact() -> None:
    facts = synthetic("pair", 400, seed=3)
    with RuleEngine(RULES) as engine:
        results = engine.evaluate("pair", facts)
        by_fact: dict[str, list[str]] = {}
        for kind, fid, name in engine.sequence:
            assert kind == "pair"
            rule_id, _, alternative = name.rpartition(".")
            assert alternative.isdigit()
            by_fact.setdefault(fid, []).append(rule_id)
    for f, r in zip(facts, results, strict=True):
        assert r.id == f["id"]
        # salience = rule order, and no default pair rule has two alternatives that can both hold
        assert by_fact.get(f["id"], []) == [x.rule_id for x in r.firings]


# --- guardrails -------------------------------------------------------------------------------------

# Two ids whose durable identities ("pair:c286558", "pair:c1111006") share a 32-bit FNV-1 hash.
COLLIDING = ("c286558", "c1111006")


def test_id_hash_collisions_go_to_separate_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fnv1_32(f"pair:{COLLIDING[0]}") == fnv1_32(f"pair:{COLLIDING[1]}")
    facts = [fact("pair", COLLIDING[0], vcse_suitable="yes"), fact("pair", "other", reserved_for_vcse=True),
             fact("pair", COLLIDING[1], vcse_suitable="yes")]
    with RuleEngine(RULES) as engine:
        results = engine.evaluate("pair", facts)
        assert engine.stats["split"] == 1 and engine.stats["deleted"] == engine.stats["sessions"] == 2
    assert [[f.rule_id for f in r.firings] for r in results] == [
        ["buyer-vcse-suitable"], ["reserved-for-vcse"], ["buyer-vcse-suitable"]]
    # Without the pre-check durable refuses the second fact, and the engine stops loudly.
    monkeypatch.setattr(engine_mod, "fnv1_32", lambda text: zlib.crc32(text.encode()))
    with RuleEngine(RULES) as engine, pytest.raises(RuleEngineError, match="already observed") as info:
        engine.evaluate("pair", facts)
    assert info.value.fact_id == COLLIDING[1]


def test_fnv1_32_matches_durable_on_non_ascii() -> None:
    # durable XORs signed chars: bytes >= 0x80 are sign-extended (state.c fnv1Hash32).
    assert fnv1_32("pair:é50293") == fnv1_32("pair:é543300")
    assert fnv1_32("") == 0x811C9DC5


def test_an_action_that_raises_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Effect, f: Any) -> int:
        raise ZeroDivisionError("kaboom")

    monkeypatch.setattr(Effect, "points_for", boom)
    with RuleEngine(RULES) as engine, pytest.raises(RuleEngineError) as info:
        engine.evaluate("pair", [fact("pair", "p1"), fact("pair", "p2", cpv_overlap="exact")])
    assert (info.value.rule_id, info.value.fact_id) == ("cpv-exact", "p2")
    assert "kaboom" in str(info.value) and isinstance(info.value.__cause__, ZeroDivisionError)
    monkeypatch.undo()
    with RuleEngine(RULES) as engine:  # the broken Host was dropped; a fresh one works
        (result,) = engine.evaluate("pair", [fact("pair", "p2", cpv_overlap="exact")])
    assert [f.rule_id for f in result.firings] == ["cpv-exact"]


def test_an_exception_in_durable_state_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    real = engine_mod.dre.start_action_for_state

    def with_exception(handle: int, state: int) -> Any:
        started = real(handle, state)
        return ('{"sid": "1", "exception": "exception caught boom"}', started[1]) if started else started

    monkeypatch.setattr(engine_mod.dre, "start_action_for_state", with_exception)
    with RuleEngine(RULES) as engine, pytest.raises(RuleEngineError, match="state holds an exception"):
        engine.evaluate("pair", [fact("pair", "p1", is_dps=True)])


BAD_FACTS = [
    ("missing field", {k: v for k, v in fact("pair").items() if k != "status"}, "missing ['status']"),
    ("unknown field", {**fact("pair"), "colour": "red"}, "unknown ['colour']"),
    ("None", fact("pair", keyword_hits=None), "keyword_hits must be int, not None"),
    ("float", fact("pair", keyword_hits=2.0), "not 2.0"),
    ("NaN", fact("pair", capability_score=float("nan")), "not nan"),
    ("bool for int", fact("pair", keyword_hits=True), "not True"),
    ("int for bool", fact("pair", nationwide=1), "nationwide must be bool, not 1"),
    ("numeric string", fact("pair", days_to_deadline="5"), "not '5'"),
    ("huge int", fact("pair", value_min_gbp=2**60), "value_min_gbp"),
    ("enum value", fact("pair", value_fit="huge"), "value_fit must be one of"),
    ("id with a quote", fact("pair", 'a"b'), "needs an id"),
    ("id empty", fact("pair", ""), "needs an id"),
    ("id None", fact("pair", None), "needs an id"),
    ("id float", fact("pair", 1.5), "needs an id"),
    ("id bool", fact("pair", True), "needs an id"),
    ("id non-ascii", fact("pair", "café"), "needs an id"),
]


@pytest.mark.parametrize(("case", "bad", "words"), BAD_FACTS, ids=[c[0] for c in BAD_FACTS])
def test_facts_are_checked_before_the_engine_sees_them(case: str, bad: dict[str, Any], words: str) -> None:
    with RuleEngine(RULES) as engine:
        with pytest.raises(RuleEngineError) as info:
            engine.evaluate("pair", [fact("pair", "good"), bad])
        assert words in str(info.value)
        assert engine.stats["sessions"] == 0  # nothing was asserted, not even the good fact


def test_other_misuse() -> None:
    with RuleEngine(RULES) as engine:
        with pytest.raises(RuleEngineError, match="same id"):
            engine.evaluate("pair", [fact("pair", 5), fact("pair", "5")])
        with pytest.raises(RuleEngineError, match="unknown fact kind"):
            engine.evaluate("vcse", [])
        with pytest.raises(RuleEngineError, match="not a mapping"):
            engine.evaluate("party", [["id", 1]])  # type: ignore[list-item]
        assert engine.evaluate("pair", []) == []
    with pytest.raises(RuleEngineError, match="with"):
        engine.evaluate("pair", [fact("pair")])


# --- sessions, memory, registration ------------------------------------------------------------------

def test_every_session_is_deleted_and_unmatched_sessions_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    deleted: list[str] = []
    real = engine_mod._Host.delete_state

    def spy(self: Any, ruleset_name: str, sid: str | None = None) -> None:
        deleted.append(str(sid))
        real(self, ruleset_name, sid)

    monkeypatch.setattr(engine_mod._Host, "delete_state", spy)
    with RuleEngine(RULES, session_size=50) as engine:
        for batch in range(40):
            matched = [fact("pair", f"m{batch}-{i}", cpv_overlap="group") for i in range(120)]
            unmatched = [fact("party", f"u{batch}-{i}") for i in range(60)]  # no party rule fires
            assert all(r.score == 2 for r in engine.evaluate("pair", matched))
            assert all(not r.firings for r in engine.evaluate("party", unmatched))
        stats = dict(engine.stats)
    # 40 x (3 pair sessions + 2 party sessions); the party sessions stored nothing, so they were swept
    assert stats["sessions"] == stats["deleted"] == len(deleted) == 40 * 5
    assert stats["sweeps"] == 40 * 2
    assert len(set(deleted)) == len(deleted)


def test_a_first_session_where_nothing_matches_does_not_crash() -> None:
    # durable-rules 2.0.28 segfaults in delete_state when a new Host's first session stored nothing; the
    # engine sweeps such sessions first. Run in a child process so a regression fails this test only.
    code = ("import sys; sys.path.insert(0, 'tests/match'); from test_rules_engine import RULES, fact; "
            "from broker.match.rules import RuleEngine\n"
            "with RuleEngine(RULES, session_size=2) as e:\n"
            "    for i in range(3):\n"
            "        assert not any(r.firings for r in e.evaluate('party', [fact('party', f'{i}-{j}') "
            "for j in range(5)]))\n"
            "    assert e.stats['sweeps'] == e.stats['deleted'] == 9, e.stats\n"
            "print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert (proc.returncode, proc.stdout.strip()) == (0, "ok"), proc.stderr


def test_more_batches_than_durable_has_session_slots() -> None:
    # durable allows 1024 live sessions per rule set: without delete_state the 1025th batch would fail.
    with RuleEngine(RULES) as engine:
        for i in range(1100):
            kind = "pair" if i % 2 else "party"
            engine.evaluate(kind, [fact(kind, i, is_dps=True) if kind == "pair" else fact(kind, i)])
        assert engine.stats["deleted"] == 1100


def test_rule_sets_are_registered_once_and_never_collide(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[str] = []
    real = engine_mod._Host.set_rulesets

    def spy(self: Any, definitions: dict[str, Any]) -> None:
        registered.extend(definitions)
        real(self, definitions)

    monkeypatch.setattr(engine_mod._Host, "set_rulesets", spy)
    # Two rule sets with the same rule id and different conditions, used in one process.
    text = 'rules:\n  - {{id: r, description: d, applies_to: party, when: {{field: employees, {op}: 10}}, ' \
           'effect: {{flag: big}}, reason: "{{employees}} staff"}}\n'
    ge = load_rules_from_texts([("a.yaml", text.format(op="ge"))])
    lt = load_rules_from_texts([("a.yaml", text.format(op="lt"))])
    facts = [fact("party", "small", employees=3), fact("party", "big", employees=30)]
    for ruleset, expected in ((ge, [(), ("big",)]), (lt, [("big",), ()]), (ge, [(), ("big",)])):
        with RuleEngine(ruleset) as engine:
            assert [r.flags for r in engine.evaluate("party", facts)] == expected
    assert registered == [f"broker-{ge.sha256[:16]}-party-0", f"broker-{lt.sha256[:16]}-party-0"]
    with RuleEngine(ge) as one, RuleEngine(ge) as two:  # two open at once get a Host each
        assert one.evaluate("party", facts) == two.evaluate("party", facts)
    assert len(registered) == 3


def test_many_rules_matching_at_once_are_split_across_durable_rulesets() -> None:
    # 150 rules that all hold for one fact: one durable ruleset would overflow its 64-node match stack
    # (error 303); the plan splits them and the firings still come in rule order.
    text = "rules:\n" + "".join(
        f'  - {{id: r{i:03d}, description: d, applies_to: pair, when: {{field: keyword_hits, ne: {1000 + i}}}, '
        f'effect: {{score: 1}}, reason: "r{i}"}}\n' for i in range(150))
    ruleset = load_rules_from_texts([("many.yaml", text)])
    with RuleEngine(ruleset) as engine:
        (result,) = engine.evaluate("pair", [fact("pair", "p")])
        assert len(engine._compiled.kinds["pair"].shards) == 3  # type: ignore[union-attr]
    assert [f.rule_id for f in result.firings] == [f"r{i:03d}" for i in range(150)]
    assert result.score == 150


def test_a_rule_whose_alternatives_both_hold_fires_once() -> None:
    text = ('rules:\n  - {id: either, description: d, applies_to: pair, when: {any: [{field: is_dps, eq: true}, '
            '{field: is_framework, eq: true}, {field: status, in: [open, planned]}]}, effect: {score: 3}, '
            'reason: "either"}\n')
    with RuleEngine(load_rules_from_texts([("a.yaml", text)])) as engine:
        (result,) = engine.evaluate("pair", [fact("pair", "p", is_dps=True, is_framework=True)])
        assert [name for _, _, name in engine.sequence] == ["either.0", "either.1", "either.2"]
    assert [(f.rule_id, f.points) for f in result.firings] == [("either", 3)]


VALGRIND_RUN = """
import sys
sys.path.insert(0, 'tests/match')
from test_rules_engine import RULES, synthetic
from broker.match.rulefiles import load_rules_from_texts
from broker.match.rules import RuleEngine
with RuleEngine(RULES, session_size=60) as e:
    for kind, n in (('party', 50), ('opportunity', 150), ('pair', 300)):
        e.evaluate(kind, synthetic(kind, n))
rule = ('  - {{id: r{0:03d}, description: d, applies_to: pair, when: {{any: [{{field: keyword_hits, ne: {0}}}, '
        '{{field: status, in: [open, closed]}}]}}, effect: {{score: 1}}, reason: r}}\\n')
many = load_rules_from_texts([('m.yaml', 'rules:\\n' + ''.join(rule.format(i) for i in range(80)))])
with RuleEngine(many, session_size=20) as e:
    e.evaluate('pair', synthetic('pair', 100))
print('done')
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_durable_is_valgrind_clean_on_these_rule_shapes() -> None:
    # Guardrail 3 (research §6): the C engine must make no invalid memory access on our rule shapes
    # (flat conjunctions, sweeps, several shards). CPython's own valgrind noise is ignored.
    env = dict(os.environ, PYTHONMALLOC="malloc")
    proc = subprocess.run(["valgrind", "-q", sys.executable, "-c", VALGRIND_RUN], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=900)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-3000:]
    assert not re.search(r"Invalid (read|write|free)", proc.stderr), proc.stderr[-5000:]
    assert "durable_rules_engine" not in proc.stderr, proc.stderr[-5000:]


def test_kind_without_rules_needs_no_engine_work() -> None:
    text = 'rules:\n  - {id: r, description: d, applies_to: party, when: {field: employees, ge: 1}, ' \
           'effect: {score: 1}, reason: "staff"}\n'
    with RuleEngine(load_rules_from_texts([("a.yaml", text)])) as engine:
        results = engine.evaluate("pair", [fact("pair", i) for i in range(10)])
        assert [r.firings for r in results] == [()] * 10
        assert engine.stats["sessions"] == 0


if __name__ == "__main__":
    print(json.dumps(evaluate_fixed_batch()))
