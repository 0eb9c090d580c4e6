"""The engine decides exactly what the rules say: durable-rules against a pure-Python reference evaluator.

Hypothesis writes random rule files (conditions nested with all/any/not, every operator, values chosen from
small pools so that equalities and boundaries are hit often, text with quotes, backslashes and non-ASCII)
and random facts; the rules engine's firings must equal the reference evaluation of the *original*
condition trees, so the ``not`` rewriting, the ``in``/``not_in`` expansion and durable's own evaluation of
nested ``$and``/``$or`` are all checked together.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from broker.match.conditions import (
    AllOf,
    AnyOf,
    Leaf,
    Not,
    TooComplex,
    alternatives,
    parse_condition,
    to_durable,
    without_not,
)
from broker.match.rulefiles import RuleError, load_rules_from_texts
from broker.match.rules import RuleEngine
from broker.match.vocabulary import VOCABULARY, Field
from broker.match.yamlfile import load_yaml

FIELDS = VOCABULARY["pair"]
INTS = [-3, -2, -1, 0, 1, 2, 3, 9999, -(2**53), 2**53]
TEXTS = ["", "a", "Walsall", "Ynys Môn", 'q"uote', "back\\slash", "社会", "tab\there", "e\u0301", "yes"]


def pool(f: Field) -> list[Any]:
    if f.type is bool:
        return [True, False]
    if f.type is int:
        return INTS
    return list(f.values) or TEXTS


def ops(f: Field) -> list[str]:
    base = ["eq", "ne", "in", "not_in"]
    return base + ["lt", "le", "gt", "ge"] if f.type is int else base


# --- the reference evaluator (lives in tests, never in broker) ----------------------------------------

def holds(cond: dict[str, Any], fact: dict[str, Any]) -> bool:
    if "all" in cond:
        return all(holds(c, fact) for c in cond["all"])
    if "any" in cond:
        return any(holds(c, fact) for c in cond["any"])
    if "not" in cond:
        return not holds(cond["not"], fact)
    (op, value), = ((k, v) for k, v in cond.items() if k != "field")
    x = fact[cond["field"]]
    return {"eq": lambda: x == value, "ne": lambda: x != value, "lt": lambda: x < value,
            "le": lambda: x <= value, "gt": lambda: x > value, "ge": lambda: x >= value,
            "in": lambda: x in value, "not_in": lambda: x not in value}[op]()


def holds_parsed(cond: Any, fact: dict[str, Any]) -> bool:
    """The same over broker's parsed trees (to check ``without_not`` on its own)."""
    if isinstance(cond, AllOf):
        return all(holds_parsed(c, fact) for c in cond.items)
    if isinstance(cond, AnyOf):
        return any(holds_parsed(c, fact) for c in cond.items)
    if isinstance(cond, Not):
        return not holds_parsed(cond.item, fact)
    value = list(cond.value) if isinstance(cond.value, tuple) else cond.value
    return holds({"field": cond.field, cond.op: value}, fact)


# --- strategies ---------------------------------------------------------------------------------------

@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    f = draw(st.sampled_from(FIELDS))
    op = draw(st.sampled_from(ops(f)))
    if op in ("in", "not_in"):
        value: Any = draw(st.lists(st.sampled_from(pool(f)), min_size=1, max_size=4, unique=True))
    else:
        value = draw(st.sampled_from(pool(f)))
    return {"field": f.name, op: value}


def groups(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    items = st.lists(children, min_size=1, max_size=4)
    return st.one_of(items.map(lambda c: {"all": c}), items.map(lambda c: {"any": c}),
                     children.map(lambda c: {"not": c}))


conditions = st.recursive(leaves(), groups, max_leaves=10)


def facts(seed: int, n: int) -> list[dict[str, Any]]:
    """Facts drawn from the same small pools (seeded: cheap for hypothesis to generate and shrink)."""
    rng = random.Random(seed)
    return [{**{fld.name: rng.choice(pool(fld)) for fld in FIELDS}, "id": i} for i in range(n)]


def rule_file(conds: list[dict[str, Any]]) -> str:
    rules = [{"id": f"r{i}", "description": "generated", "applies_to": "pair", "when": c,
              "effect": {"flag": "hit"}, "reason": "generated"} for i, c in enumerate(conds)]
    return yaml.safe_dump({"rules": rules}, allow_unicode=True, sort_keys=False)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conds=st.lists(conditions, min_size=1, max_size=8), seed=st.integers(0, 2**32 - 1))
def test_engine_fires_exactly_what_the_reference_says(conds: list[dict[str, Any]], seed: int) -> None:
    try:
        ruleset = load_rules_from_texts([("generated.yaml", rule_file(conds))])
    except RuleError as exc:  # only "too many alternatives" is expected of generated conditions
        assert all("alternatives" in p.message for p in exc.problems), exc.problems
        assume(False)
    batch = facts(seed, 60)
    with RuleEngine(ruleset, session_size=25) as engine:
        results = engine.evaluate("pair", batch)
    for fact, result in zip(batch, results, strict=True):
        expected = [f"r{i}" for i, c in enumerate(conds) if holds(c, fact)]
        got = [f.rule_id for f in result.firings]
        if got != expected:
            wrong = sorted(set(got).symmetric_difference(expected)) or got
            rule = conds[int(wrong[0][1:])]
            values = {name: fact[name] for name in sorted(set(_fields(rule)))}
            raise AssertionError(f"{wrong[0]} {rule} on {values}: engine fired {got}, reference {expected}")


def _fields(cond: dict[str, Any]) -> list[str]:
    if "field" in cond:
        return [cond["field"]]
    body = next(iter(cond.values()))
    return [f for c in (body if isinstance(body, list) else [body]) for f in _fields(c)]


def _parse(cond: dict[str, Any]) -> Any:
    problems: list[str] = []
    parsed = parse_condition(load_yaml(yaml.safe_dump(cond, allow_unicode=True)), "pair", 1,
                             lambda line, message: problems.append(message))
    assert parsed is not None, problems
    return parsed


@settings(max_examples=400, deadline=None)
@given(cond=conditions, seed=st.integers(0, 2**32 - 1))
def test_not_rewriting_is_equivalent(cond: dict[str, Any], seed: int) -> None:
    batch = facts(seed, 10)
    parsed = _parse(cond)
    rewritten = without_not(parsed)
    assert "Not(" not in repr(rewritten)
    for fact in batch:
        assert holds_parsed(rewritten, fact) == holds(cond, fact) == holds_parsed(parsed, fact)
        negated = without_not(Not(parsed))
        assert holds_parsed(negated, fact) != holds(cond, fact)


def test_alternatives() -> None:
    status_in = Leaf("status", "in", ("open", "planned"))
    assert alternatives(status_in) == ((Leaf("status", "eq", "open"),), (Leaf("status", "eq", "planned"),))
    assert alternatives(Not(status_in)) == ((Leaf("status", "ne", "open"), Leaf("status", "ne", "planned")),)
    assert alternatives(Not(Leaf("days_to_deadline", "lt", 5))) == ((Leaf("days_to_deadline", "ge", 5),),)
    dps, small = Leaf("is_dps", "eq", True), Leaf("employees", "le", 3)
    assert alternatives(Not(AllOf((dps, small)))) == \
        ((Leaf("is_dps", "ne", True),), (Leaf("employees", "gt", 3),))
    assert alternatives(AllOf((AnyOf((dps, small)), status_in))) == (
        (dps, Leaf("status", "eq", "open")), (dps, Leaf("status", "eq", "planned")),
        (small, Leaf("status", "eq", "open")), (small, Leaf("status", "eq", "planned")))
    assert alternatives(AnyOf((dps, AllOf((dps, dps)), dps))) == ((dps,),)  # duplicates dropped
    assert alternatives(Not(Not(Leaf("status", "in", ("open",))))) == ((Leaf("status", "eq", "open"),),)
    assert to_durable((dps, Leaf("employees", "le", 3), Leaf("status", "eq", "open"))) == \
        [{"is_dps": True}, {"$lte": {"employees": 3}}, {"status": "open"}]
    wide = AllOf(tuple(Leaf("employees", "in", (1, 2, 3)) for _ in range(4)))
    with pytest.raises(TooComplex):
        alternatives(wide)  # 3**4 = 81 alternatives
