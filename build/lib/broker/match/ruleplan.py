"""How a RuleSet is laid out for durable-rules, and the checks every fact passes before it gets there.

Pure data: this module never imports durable (rules.py does). Per fact kind, each rule's alternatives
(conditions.alternatives) become durable rules named ``RULE-ID.N``, each a flat ``$and`` that starts with
the fact-kind discriminator. They are packed, in rule order, into durable rulesets ("shards") small enough
for durable's alpha-network match stack: ``handleAlpha`` keeps matching nodes on a fixed 64-entry stack
and fails with error 303 (ERR_MAX_STACK_SIZE, events.c) when more match at once; tested on 2.0.28, 200
one-comparison rules that all match one fact hit it. A shard of flat conjunctions never has more nodes on
that stack than it has comparisons, so a shard holds at most MATCH_STACK_BUDGET of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from broker.errors import BrokerError
from broker.match.conditions import INT_LIMIT, Leaf, fields_of, to_durable
from broker.match.rulefiles import Rule, RuleSet
from broker.match.vocabulary import FACT_KINDS, VOCABULARY

KIND_FIELD = "fact_kind"  # the discriminator in every fact and every rule pattern
RESERVED_FIELDS = ("id", "sid", KIND_FIELD)
SWEEP = "__sweep__"  # an internal rule and fact kind (see rules.py, _close)
MATCH_STACK_BUDGET = 60  # alpha nodes per shard, below durable's MAX_STACK_SIZE of 64
_ID = re.compile(r"[!#-\[\]-~]{1,200}\Z")  # printable ASCII without quote or backslash: hashed as given


class RuleEngineError(BrokerError):
    """The engine could not evaluate a fact (bad fact, engine anomaly). Fatal for the run."""

    def __init__(self, message: str, *, rule_id: str | None = None, fact_id: object = None) -> None:
        self.rule_id = rule_id
        self.fact_id = fact_id
        where = ", ".join(p for p in (f"fact {fact_id!r}" if fact_id is not None else "",
                                      f"rule {rule_id}" if rule_id else "") if p)
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True)
class Shard:
    """One durable ruleset: some alternatives of some rules of one kind, plus the sweep rule."""

    name: str
    definition: dict[str, Any]
    rule_of: dict[str, str]  # durable rule name -> rule id


@dataclass(frozen=True)
class KindPlan:
    """Everything the engine needs for facts of one kind."""

    kind: str
    rules: tuple[Rule, ...]
    by_id: dict[str, Rule]
    keys: frozenset[str]  # the vocabulary fields plus "id"
    checks: tuple[tuple[str, type, frozenset[str] | None], ...]
    send: tuple[str, ...]  # fields the conditions read: the only ones sent to durable
    shards: tuple[Shard, ...]


def plan(ruleset: RuleSet) -> dict[str, KindPlan]:
    """The durable layout of a rule set, per fact kind; ruleset names carry the rule set's sha256."""
    out = {}
    for kind in FACT_KINDS:
        rules = ruleset.for_kind(kind)
        fields = VOCABULARY[kind]
        checks = tuple((f.name, f.type, frozenset(f.values) if f.values else None) for f in fields)
        send = tuple(sorted({name for r in rules for name in fields_of(r.when)}))
        shards = tuple(_shard(f"broker-{ruleset.sha256[:16]}-{kind}-{n}", kind, part)
                       for n, part in enumerate(_pack(rules)))
        out[kind] = KindPlan(kind, rules, {r.id: r for r in rules},
                             frozenset(f.name for f in fields) | {"id"}, checks, send, shards)
    return out


def _pack(rules: tuple[Rule, ...]) -> list[list[tuple[Rule, int, tuple[Leaf, ...]]]]:
    """Alternatives in rule order, cut into runs of at most MATCH_STACK_BUDGET alpha nodes."""
    parts: list[list[tuple[Rule, int, tuple[Leaf, ...]]]] = []
    used = MATCH_STACK_BUDGET
    for rule in rules:
        for n, alt in enumerate(rule.alternatives):
            if used + len(alt) > MATCH_STACK_BUDGET:
                parts.append([])
                used = 2  # the kind node and the sweep node
            parts[-1].append((rule, n, alt))
            used += len(alt)
    return parts


def _shard(name: str, kind: str, part: list[tuple[Rule, int, tuple[Leaf, ...]]]) -> Shard:
    definition: dict[str, Any] = {}
    rule_of: dict[str, str] = {}
    for pri, (rule, n, alt) in enumerate(part):
        durable_name = f"{rule.id}.{n}"
        # salience = position: durable fires lower values first, so firings come in rule order
        definition[durable_name] = {"all": [{"m": {"$and": [{KIND_FIELD: kind}, *to_durable(alt)]}}],
                                    "pri": pri, "run": durable_name}
        rule_of[durable_name] = rule.id
    definition[SWEEP] = {"all": [{"m": {KIND_FIELD: SWEEP}}], "pri": len(part), "run": SWEEP}
    return Shard(name, definition, rule_of)


def check_facts(spec: KindPlan, facts: Sequence[Mapping[str, Any]]) -> list[str]:
    """Check every fact against the vocabulary before any reaches the engine; the ids as text.

    Raises:
        RuleEngineError: naming the fact and the field.
    """
    ids: list[str] = []
    seen: set[str] = set()
    for pos, fact in enumerate(facts):
        fid = _check_fact(spec, fact, pos)
        if fid in seen:
            raise RuleEngineError("two facts have the same id", fact_id=fid)
        seen.add(fid)
        ids.append(fid)
    return ids


def _check_fact(spec: KindPlan, fact: Mapping[str, Any], pos: int) -> str:
    if not isinstance(fact, Mapping):
        raise RuleEngineError(f"{spec.kind} fact #{pos} is not a mapping")
    fid = fact.get("id")
    if type(fid) is int:
        fid = str(fid)
    elif not isinstance(fid, str) or not _ID.match(fid):
        raise RuleEngineError(f"{spec.kind} fact #{pos} needs an id: an int or up to 200 printable ASCII "
                              f"characters without quotes or backslashes (got {fid!r})")
    if fact.keys() != spec.keys:
        missing = sorted(spec.keys - fact.keys())
        extra = sorted(map(str, fact.keys() - spec.keys))
        raise RuleEngineError(f"{spec.kind} fact fields differ from the vocabulary: missing {missing}, "
                              f"unknown {extra}", fact_id=fid)
    for name, typ, allowed in spec.checks:
        value = fact[name]
        # type() is exact: bool is not accepted for int, nor int for bool; floats (NaN too) never pass
        if type(value) is not typ or (typ is int and not -INT_LIMIT <= value <= INT_LIMIT) or (
                allowed is not None and value not in allowed):
            expected = f"one of {sorted(allowed)}" if allowed else typ.__name__
            raise RuleEngineError(f"field {name} must be {expected}, not {value!r}", fact_id=fid)
    return fid
