"""Rule conditions: parse and type-check them against the fact vocabulary, rewrite ``not`` away and
compile them to durable-rules' JSON form. Pure data in, pure data out: this module never imports durable.

A condition in a rule file is one of::

    {field: NAME, OP: VALUE}      OP in eq, ne, lt, le, gt, ge, in, not_in
    {all: [COND, ...]}            every condition holds
    {any: [COND, ...]}            at least one holds
    {not: COND}                   the condition does not hold

durable-rules has no ``$not`` for a single fact's fields (its negation, ``none``, is a join construct), so
``not`` is pushed down to the leaves with De Morgan's laws and each comparison replaced by its complement
(``eq``<->``ne``, ``lt``<->``ge``, ``le``<->``gt``, ``in``<->``not_in``). That is exact because every fact
carries every vocabulary field with a non-null value of the declared type (vocabulary.py).

The condition is then expanded into alternatives (disjunctive normal form; ``in`` gives one alternative per
value, ``not_in`` a conjunction of inequalities), and each alternative becomes one durable rule: a flat
``$and`` of constant comparisons. durable's ``$or`` is not used because, tested on 2.0.28, it fires a rule
once per satisfied branch (``$or: [a == 1, b == 2]`` fires twice for a fact with both, nested ``$or``s
multiply), and each ``$and``/``$or`` takes 2 of a rule's 31 expression slots (error 113,
MAX_SEQUENCE_EXPRESSIONS in rete.h). Only numbers are compared with ``lt``..``ge``: durable compares a
string with a number as text (research/durable-rules.md §1.4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from broker.match.vocabulary import Field, field_map

Value = bool | int | str

COMPARE_OPS = ("eq", "ne", "lt", "le", "gt", "ge")
SET_OPS = ("in", "not_in")
OPS = COMPARE_OPS + SET_OPS
GROUPS = ("all", "any", "not")
ORDER_OPS = ("lt", "le", "gt", "ge")

# Largest magnitude accepted for an int in a rule or a fact: JSON numbers beyond 2**53 lose precision in
# many tools, and durable parses them in C. Whole pounds never get near it.
INT_LIMIT = 2**53
MAX_DEPTH = 16
MAX_SET_VALUES = 200
# durable runs each alternative as its own rule; more would make the rule set slow and hard to audit.
MAX_ALTERNATIVES = 64
MAX_COMPARISONS = 40  # in one alternative; the engine's match stack holds 64 nodes (see rules.py)

_COMPLEMENT = {"eq": "ne", "ne": "eq", "lt": "ge", "ge": "lt", "le": "gt", "gt": "le",
               "in": "not_in", "not_in": "in"}
_DURABLE_OP = {"ne": "$neq", "lt": "$lt", "le": "$lte", "gt": "$gt", "ge": "$gte"}


@dataclass(frozen=True)
class Leaf:
    """``field OP value``; for ``in``/``not_in`` the value is a tuple of values."""

    field: str
    op: str
    value: Value | tuple[Value, ...]


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Leaf | AllOf | AnyOf | Not

# (line, message): how the parser reports a problem; the caller adds the file and rule id.
Report = Callable[[int, str], None]


def is_int(value: object) -> bool:
    """True for a Python int that is not a bool and fits the safe range."""
    return type(value) is int and -INT_LIMIT <= value <= INT_LIMIT


def type_name(f: Field) -> str:
    if f.type is bool:
        return "true/false"
    if f.type is int:
        return "a whole number"
    return "one of " + ", ".join(repr(v) for v in f.values) if f.values else "text"


def value_problem(f: Field, value: object) -> str | None:
    """Why ``value`` cannot be a value of field ``f`` (None if it can)."""
    if f.type is bool:
        ok = type(value) is bool
    elif f.type is int:
        ok = is_int(value)
    else:
        ok = type(value) is str and (not f.values or value in f.values)
    if ok:
        return None
    hint = ""
    if f.type is str and type(value) is bool:
        # YAML 1.1 reads yes/no/on/off as booleans: the commonest surprise with vocabulary enums.
        hint = ' (YAML reads yes/no/true/false unquoted as a boolean: quote it, e.g. "yes")'
    elif f.type is int and isinstance(value, float):
        hint = " (no decimals: whole pounds, days or counts)"
    elif f.type is int and type(value) is int:
        hint = " (beyond ±2**53)"
    return f"{f.name} expects {type_name(f)}, not {value!r}{hint}"


def parse_condition(node: Any, kind: str, line: int, report: Report, depth: int = 0) -> Condition | None:
    """Parse and check one condition for facts of ``kind``; report every problem, return None if any.

    Args:
        node: the YAML value (a mapping with line numbers, see rulefiles.LMap).
        kind: the rule's ``applies_to`` fact kind.
        line: the line of the node, for problems without a more precise line.
        report: called with (line, message) for each problem found.
        depth: nesting depth so far (bounded, so a hostile file cannot exhaust the stack).
    """
    line = getattr(node, "line", line)
    if depth > MAX_DEPTH:
        report(line, f"condition nested more than {MAX_DEPTH} levels deep")
        return None
    if not isinstance(node, dict) or not node:
        report(line, "a condition is a mapping: {field: NAME, OP: VALUE}, {all: [...]}, {any: [...]} "
                     "or {not: ...}")
        return None
    groups = [k for k in node if k in GROUPS]
    if groups:
        if len(node) != 1:
            report(line, f"'{groups[0]}' must be the only key of its mapping (found {_keys(node)})")
            return None
        return _parse_group(groups[0], node[groups[0]], kind, _key_line(node, groups[0], line), report, depth)
    return _parse_leaf(node, kind, line, report)


def _parse_group(key: str, body: Any, kind: str, line: int, report: Report, depth: int) -> Condition | None:
    if key == "not":
        inner = parse_condition(body, kind, line, report, depth + 1)
        return Not(inner) if inner is not None else None
    if not isinstance(body, list) or not body:
        report(line, f"'{key}' takes a non-empty list of conditions")
        return None
    item_lines = getattr(body, "item_lines", [line] * len(body))
    items = [parse_condition(item, kind, item_lines[i], report, depth + 1) for i, item in enumerate(body)]
    if any(item is None for item in items):
        return None
    parsed = tuple(i for i in items if i is not None)
    return AllOf(parsed) if key == "all" else AnyOf(parsed)


def _parse_leaf(node: dict[Any, Any], kind: str, line: int, report: Report) -> Condition | None:
    ops = [k for k in node if k != "field"]
    unknown = [k for k in ops if k not in OPS]
    if "field" not in node or len(ops) != 1 or unknown:
        if unknown:
            report(_key_line(node, unknown[0], line),
                   f"unknown operator {unknown[0]!r} (use one of {', '.join(OPS + GROUPS)})")
        else:
            report(line, f"a comparison is {{field: NAME, OP: VALUE}} with exactly one OP "
                         f"(found {_keys(node)})")
        return None
    name, op = node["field"], ops[0]
    fields = field_map(kind)
    if not isinstance(name, str) or name not in fields:
        report(_key_line(node, "field", line), f"unknown field {name!r} for {kind} facts"
                                               f"{_suggest(name, fields)}")
        return None
    f = fields[name]
    value, vline = node[op], _key_line(node, op, line)
    if op in SET_OPS:
        return _parse_set(f, op, value, vline, report)
    if op in ORDER_OPS and f.type is not int:
        report(vline, f"'{op}' compares numbers; {name} is {type_name(f)} (use eq, ne, in or not_in)")
        return None
    problem = value_problem(f, value)
    if problem:
        report(vline, problem)
        return None
    return Leaf(name, op, value)


def _parse_set(f: Field, op: str, value: Any, line: int, report: Report) -> Condition | None:
    if not isinstance(value, list) or not value:
        report(line, f"'{op}' takes a non-empty list of values")
        return None
    if len(value) > MAX_SET_VALUES:
        report(line, f"'{op}' takes at most {MAX_SET_VALUES} values")
        return None
    problems = [p for p in (value_problem(f, v) for v in value) if p]
    for p in problems:
        report(line, p)
    if len(set(map(repr, value))) != len(value):
        report(line, f"'{op}' lists a value twice")
        return None
    return None if problems else Leaf(f.name, op, tuple(value))


def _keys(node: dict[Any, Any]) -> str:
    return ", ".join(repr(k) for k in node) or "nothing"


def _key_line(node: Any, key: Any, default: int) -> int:
    return int(getattr(node, "key_lines", {}).get(key, default))


def _suggest(name: object, fields: dict[str, Field]) -> str:
    if not isinstance(name, str):
        return ""
    close = [f for f in fields if name in f or f in name]
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- rewriting and compilation -------------------------------------------------------------------------

def without_not(cond: Condition, negate: bool = False) -> Condition:
    """The same condition with every ``not`` pushed into the leaves (De Morgan and complements)."""
    if isinstance(cond, Not):
        return without_not(cond.item, not negate)
    if isinstance(cond, Leaf):
        return Leaf(cond.field, _COMPLEMENT[cond.op], cond.value) if negate else cond
    items = tuple(without_not(i, negate) for i in cond.items)
    if isinstance(cond, AllOf):
        return AnyOf(items) if negate else AllOf(items)
    return AllOf(items) if negate else AnyOf(items)


class TooComplex(ValueError):
    """A condition expands into more alternatives than the engine takes."""


def alternatives(cond: Condition, limit: int = MAX_ALTERNATIVES) -> tuple[tuple[Leaf, ...], ...]:
    """The condition as alternatives (disjunctive normal form): it holds when every comparison of at least
    one alternative holds. Comparisons are ``eq``, ``ne``, ``lt``, ``le``, ``gt`` or ``ge``; ``in`` gives
    one alternative per value and ``not_in`` one ``ne`` per value. Duplicates are dropped, order is kept.

    Raises:
        TooComplex: more than ``limit`` alternatives.
    """
    return _dnf(without_not(cond), limit)


def _dnf(cond: Condition, limit: int) -> tuple[tuple[Leaf, ...], ...]:
    if isinstance(cond, Leaf):
        if cond.op == "in":
            assert isinstance(cond.value, tuple)
            out = tuple((Leaf(cond.field, "eq", v),) for v in cond.value)
        elif cond.op == "not_in":
            assert isinstance(cond.value, tuple)
            out = (tuple(Leaf(cond.field, "ne", v) for v in cond.value),)
        else:
            out = ((cond,),)
    elif isinstance(cond, AnyOf):
        out = tuple(alt for item in cond.items for alt in _dnf(item, limit))
    elif isinstance(cond, AllOf):
        out = ((),)
        for item in cond.items:
            parts = _dnf(item, limit)
            if len(out) * len(parts) > limit:
                raise TooComplex(len(out) * len(parts))
            out = tuple(a + b for a in out for b in parts)
    else:  # pragma: no cover - without_not removed them
        raise AssertionError("not must be rewritten first")
    out = tuple(dict.fromkeys(tuple(dict.fromkeys(alt)) for alt in out))
    if len(out) > limit:
        raise TooComplex(len(out))
    return out


def to_durable(alternative: tuple[Leaf, ...]) -> list[dict[str, Any]]:
    """durable-rules JSON for the comparisons of one alternative (the caller puts them in one ``$and``)."""
    return [{leaf.field: leaf.value} if leaf.op == "eq" else {_DURABLE_OP[leaf.op]: {leaf.field: leaf.value}}
            for leaf in alternative]


def fields_of(cond: Condition) -> list[str]:
    """Fields the condition reads, in order of first use."""
    out: list[str] = []

    def walk(c: Condition) -> None:
        if isinstance(c, Leaf):
            if c.field not in out:
                out.append(c.field)
        elif isinstance(c, Not):
            walk(c.item)
        else:
            for i in c.items:
                walk(i)

    walk(cond)
    return out
