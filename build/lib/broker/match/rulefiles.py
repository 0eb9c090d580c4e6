"""Rule files: load ``rules/*.yaml``, check every rule against the fact vocabulary, keep the exact bytes.

A rule file is data only (see rules/README.md for the format)::

    rules:
      - id: deadline-too-close
        description: Too little time to prepare a bid (BRIEF policy: fewer than 5 days)
        applies_to: opportunity
        when: {all: [{field: deadline_known, eq: true}, {field: days_to_deadline, lt: 5}]}
        effect: {reject: true}
        reason: "Deadline in {days_to_deadline} days: too short to bid"

``load_rules`` stops at the first problem (raising ``RuleError``); ``check_rules`` returns them all. The
rule set keeps each file's bytes and sha256 so that a run can store them and an audit can replay the run
from them with ``load_rules_from_texts``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from broker.errors import BrokerError
from broker.match.conditions import (
    MAX_ALTERNATIVES,
    MAX_COMPARISONS,
    Condition,
    Leaf,
    TooComplex,
    alternatives,
    fields_of,
    is_int,
    parse_condition,
)
from broker.match.reasons import Reason, parse_reason
from broker.match.vocabulary import FACT_KINDS, field_map
from broker.match.yamlfile import YamlProblem, load_yaml

RULE_KEYS = ("id", "description", "applies_to", "when", "effect", "reason")
EFFECTS = ("reject", "score", "flag", "needs_consortium")
NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*\Z")  # rule ids and flag labels
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.ya?ml\Z")
MAX_NAME = 64
MAX_POINTS = 1000
MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class RuleProblem:
    """One problem in a rule file. ``file`` is the path (or stored name) as given."""

    file: str
    line: int
    rule_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:" if self.line else f"{self.file}:"
        rule = f" rule {self.rule_id}:" if self.rule_id else ""
        return f"{where}{rule} {self.message}"


class RuleError(BrokerError):
    """Rule files that cannot be used. Names the file, line and rule of the first problem."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = problems
        first = problems[0]
        self.file, self.line, self.rule_id = first.file, first.line, first.rule_id
        more = f" (and {len(problems) - 1} more; run `broker rules check`)" if len(problems) > 1 else ""
        super().__init__(f"{first}{more}")


@dataclass(frozen=True)
class Effect:
    """What a rule does when it fires. ``kind`` is one of EFFECTS."""

    kind: str
    points: int = 0  # a fixed score
    per: str | None = None  # a weighted score: min(max, weight * fact[per])
    weight: int = 0
    max: int = 0
    flag: str | None = None

    def points_for(self, fact: Mapping[str, Any]) -> int:
        """Points this effect gives a fact (0 unless it is a score). Python arithmetic, never the engine's."""
        if self.kind != "score":
            return 0
        if self.per is None:
            return self.points
        return min(self.max, self.weight * int(fact[self.per]))

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "score":
            return {"score": self.points if self.per is None
                    else {"per": self.per, "weight": self.weight, "max": self.max}}
        return {"flag": self.flag} if self.kind == "flag" else {self.kind: True}


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    applies_to: str
    when: Condition
    effect: Effect
    reason: Reason
    file: str
    line: int
    index: int  # position in the rule set: files by name, then rules in file order
    alternatives: tuple[tuple[Leaf, ...], ...]  # ``when`` in disjunctive normal form, as the engine runs it

    @cached_property
    def inputs(self) -> tuple[str, ...]:
        """Fields a firing records: those the condition, the reason and a weighted score read."""
        names = fields_of(self.when) + self.reason.fields + ([self.effect.per] if self.effect.per else [])
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class RuleFile:
    name: str
    data: bytes
    sha256: str


@dataclass(frozen=True)
class RuleSet:
    """Rules in a deterministic order, with the exact files they came from."""

    rules: tuple[Rule, ...]
    files: tuple[RuleFile, ...]
    sha256: str  # sha256 of "NAME\nSHA256\n" for each file in name order
    _by_id: dict[str, Rule] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update((r.id, r) for r in self.rules)

    def for_kind(self, kind: str) -> tuple[Rule, ...]:
        """Rules that apply to facts of ``kind``, in rule-set order."""
        return tuple(r for r in self.rules if r.applies_to == kind)

    def get(self, rule_id: str) -> Rule:
        return self._by_id[rule_id]


def load_rules(directory: str | Path) -> RuleSet:
    """Load every ``*.yaml``/``*.yml`` file in ``directory`` (sorted by name) into a checked RuleSet.

    Raises:
        RuleError: naming the file, line and rule id of the first problem.
    """
    return _raise_or(_check(_read_dir(Path(directory))))


def load_rules_from_texts(texts: Iterable[tuple[str, bytes | str]]) -> RuleSet:
    """The same as ``load_rules`` from stored ``(file name, content)`` pairs (the audit's replay)."""
    return _raise_or(_check(_named(texts)))


def check_rules(directory: str | Path) -> list[RuleProblem]:
    """Every problem in the rule files of ``directory`` (empty when they are all good)."""
    try:
        files = _read_dir(Path(directory))
    except RuleError as exc:
        return exc.problems
    return _check(files)[1]


def check_texts(texts: Iterable[tuple[str, bytes | str]]) -> list[RuleProblem]:
    """Every problem in stored ``(file name, content)`` pairs."""
    try:
        files = _named(texts)
    except RuleError as exc:
        return exc.problems
    return _check(files)[1]


# --- reading ------------------------------------------------------------------------------------------

_Source = tuple[str, bytes, str]  # stored name, bytes, name to show in problems


def _read_dir(directory: Path) -> list[_Source]:
    if not directory.is_dir():
        raise RuleError([RuleProblem(str(directory), 0, None, "no such rules directory")])
    paths = sorted((p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()),
                   key=lambda p: p.name)
    if not paths:
        raise RuleError([RuleProblem(str(directory), 0, None, "no rule files (*.yaml, *.yml) here")])
    return [(p.name, p.read_bytes(), str(p)) for p in paths]


def _named(texts: Iterable[tuple[str, bytes | str]]) -> list[_Source]:
    files = sorted(((n, t.encode("utf-8") if isinstance(t, str) else bytes(t), n) for n, t in texts),
                   key=lambda s: s[0])
    bad = [RuleProblem(n, 0, None, "stored rule file names are plain *.yaml/*.yml names")
           for n, _, _ in files if not FILE_NAME.match(n)]
    bad += [RuleProblem(b[0], 0, None, "file name given twice") for a, b in zip(files, files[1:], strict=False)
            if a[0] == b[0]]
    if not files:
        bad.append(RuleProblem("(stored rules)", 0, None, "no rule files"))
    if bad:
        raise RuleError(bad)
    return files


def _raise_or(result: tuple[RuleSet, list[RuleProblem]]) -> RuleSet:
    if result[1]:
        raise RuleError(result[1])
    return result[0]


# --- checking -----------------------------------------------------------------------------------------

def _check(files: list[_Source]) -> tuple[RuleSet, list[RuleProblem]]:
    problems: list[RuleProblem] = []
    rules: list[Rule] = []
    seen: dict[str, str] = {}  # rule id -> "FILE:LINE" of its first definition
    for name, data, shown in files:
        for raw, line in _file_rules(data, shown, problems):
            rule = _RuleChecker(shown, name, line, problems).check(raw, len(rules))
            rid = raw.get("id") if isinstance(raw.get("id"), str) else None
            if rid is not None and rid in seen:
                problems.append(RuleProblem(shown, line, rid, f"id {rid!r} is already used at {seen[rid]}"))
                continue
            if rid is not None:
                seen[rid] = f"{shown}:{line}"
            if rule is not None:
                rules.append(rule)
    digests = [RuleFile(n, d, hashlib.sha256(d).hexdigest()) for n, d, _ in files]
    combined = hashlib.sha256("".join(f"{f.name}\n{f.sha256}\n" for f in digests).encode()).hexdigest()
    return RuleSet(tuple(rules), tuple(digests), combined), problems


def _file_rules(data: bytes, shown: str, problems: list[RuleProblem]) -> list[tuple[dict[str, Any], int]]:
    """The rule mappings of one file with their lines (problems for anything else)."""
    def bad(line: int, message: str) -> list[tuple[dict[str, Any], int]]:
        problems.append(RuleProblem(shown, line, None, message))
        return []

    if len(data) > MAX_FILE_BYTES:
        return bad(1, f"file is larger than {MAX_FILE_BYTES} bytes")
    try:
        doc = load_yaml(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return bad(1, "not UTF-8 text")
    except YamlProblem as exc:
        return bad(exc.line, exc.message)
    if not isinstance(doc, dict) or "rules" not in doc:
        return bad(getattr(doc, "line", 1), "a rule file is a mapping with one key, `rules:`, holding a list")
    extra = [k for k in doc if k != "rules"]
    if extra:
        bad(doc.key_lines[extra[0]], f"unknown top-level key {extra[0]!r}: only `rules:` is allowed "
                                     "(thresholds live in the rules themselves)")
    items = doc["rules"]
    if not isinstance(items, list) or not items:
        return bad(doc.key_lines["rules"], "`rules:` must hold a non-empty list of rules")
    out = []
    for item, line in zip(items, items.item_lines, strict=True):
        if isinstance(item, dict):
            out.append((item, line))
        else:
            bad(line, "each rule is a mapping (id, description, applies_to, when, effect, reason)")
    return out


class _RuleChecker:
    """Checks one rule mapping, recording problems against its file, line and id."""

    def __init__(self, shown: str, name: str, line: int, problems: list[RuleProblem]) -> None:
        self.shown, self.name, self.line, self.problems = shown, name, line, problems
        self.rule_id: str | None = None
        self.ok = True

    def report(self, line: int, message: str) -> None:
        self.ok = False
        self.problems.append(RuleProblem(self.shown, line, self.rule_id, message))

    def at(self, raw: Any, key: str) -> int:
        return int(getattr(raw, "key_lines", {}).get(key, self.line))

    def check(self, raw: dict[str, Any], index: int) -> Rule | None:
        rid = raw.get("id")
        self.rule_id = rid if isinstance(rid, str) else None
        for key in raw:
            if key not in RULE_KEYS:
                self.report(self.at(raw, key), f"unknown key {key!r} (a rule has {', '.join(RULE_KEYS)})")
        missing = [k for k in RULE_KEYS if k not in raw]
        if missing:
            self.report(self.line, f"missing {', '.join(missing)}")
            return None
        if not isinstance(rid, str) or not NAME.match(rid) or len(rid) > MAX_NAME:
            self.report(self.at(raw, "id"), f"id {rid!r} must be lowercase letters, digits and single hyphens "
                                            f"(at most {MAX_NAME} characters)")
        if not isinstance(raw["description"], str) or not raw["description"].strip():
            self.report(self.at(raw, "description"), "description must be text")
        kind = raw["applies_to"]
        if kind not in FACT_KINDS:
            self.report(self.at(raw, "applies_to"), f"applies_to must be one of {', '.join(FACT_KINDS)}")
            return None
        when = parse_condition(raw["when"], kind, self.at(raw, "when"), self.report)
        effect = self.effect(raw["effect"], kind, self.at(raw, "effect"))
        reason = parse_reason(raw["reason"], kind, self.at(raw, "reason"), self.report)
        alts = self.expand(when, self.at(raw, "when")) if when is not None else None
        if not self.ok or when is None or effect is None or reason is None or alts is None:
            return None
        return Rule(rid, raw["description"].strip(), kind, when, effect, reason, self.name, self.line, index,
                    alts)

    def expand(self, when: Condition, line: int) -> tuple[tuple[Leaf, ...], ...] | None:
        """The engine's alternatives for a condition, within the engine's limits."""
        try:
            alts = alternatives(when)
        except TooComplex as exc:
            self.report(line, f"condition expands to {exc} or more alternatives (at most {MAX_ALTERNATIVES}): "
                              "split the rule or use fewer any/in values under all")
            return None
        if max(map(len, alts)) > MAX_COMPARISONS:
            self.report(line, f"condition needs more than {MAX_COMPARISONS} comparisons at once")
            return None
        return alts

    def effect(self, raw: Any, kind: str, line: int) -> Effect | None:
        if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in EFFECTS:
            found = ", ".join(map(repr, raw)) if isinstance(raw, dict) else repr(raw)
            self.report(line, f"effect must be exactly one of {', '.join(EFFECTS)} (found {found})")
            return None
        (name, value), = raw.items()
        if name in ("reject", "needs_consortium"):
            if value is not True:
                self.report(line, f"write `{name}: true` (a rule that does nothing should be deleted)")
                return None
            return Effect(name)
        if name == "flag":
            if not isinstance(value, str) or not NAME.match(value) or len(value) > MAX_NAME:
                self.report(line, "a flag label is lowercase letters, digits and single hyphens")
                return None
            return Effect("flag", flag=value)
        return self.score(value, kind, line)

    def score(self, value: Any, kind: str, line: int) -> Effect | None:
        if is_int(value):
            if value == 0 or abs(value) > MAX_POINTS:
                self.report(line, f"score must be a non-zero whole number between -{MAX_POINTS} and {MAX_POINTS}")
                return None
            return Effect("score", points=value)
        if not isinstance(value, dict) or set(value) != {"per", "weight", "max"}:
            self.report(line, f"score must be a whole number of points or {{per: FIELD, weight: N, max: M}}, "
                              f"not {value!r}")
            return None
        per = value["per"]
        f = field_map(kind).get(per) if isinstance(per, str) else None
        if f is None or f.type is not int:
            self.report(line, f"score per {per!r}: not a whole-number field of {kind} facts")
            return None
        weight, cap = value["weight"], value["max"]
        for label, n in (("weight", weight), ("max", cap)):
            if not is_int(n) or not 0 < n <= MAX_POINTS:
                self.report(line, f"score {label} must be a whole number from 1 to {MAX_POINTS} "
                                  "(for a penalty, use a fixed negative score)")
                return None
        return Effect("score", per=per, weight=weight, max=cap)
