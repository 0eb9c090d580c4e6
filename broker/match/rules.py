"""Evaluate checked rules with durable-rules, behind the guardrails of research/durable-rules.md §6.

This is the only module that imports durable. Every rule is a single-fact rule (no joins at all, so none of
the inequality-join memory errors of §1.3) whose pattern starts with a fact-kind discriminator. Facts go in
one at a time (never ``assert_facts``/``post_batch``, §2 "Batch API"), each with a unique type-prefixed
id, into short sessions that are deleted after use (§3.3). Every value is type-checked against the
vocabulary first: no None, float, NaN or numeric string ever reaches the engine (§1.4).

Actions only record. Instead of durable's Python dispatcher (``Host.assert_fact`` -> ``_flush_actions``:
a Closure, two wall-clock reads and a state write-back per action, with exceptions swallowed into
``state['exception']``, issues #58/#305) the engine drains the activations of each asserted fact itself
through the same C calls (``start_action_for_state``/``complete_and_start_action``). That is about 3.5x
faster with several firings per fact (bench/rules_bench.py), and an error can only surface as a raised
``RuleEngineError``. It ties this module to durable-rules 2.0.28, which is pinned and checked at start.

Two crashes found while building this (durable-rules 2.0.28, CPython 3.11, reproduced):
  * ``delete_state`` on a session whose facts all matched no rule (nothing stored) is a SIGSEGV, so such a
    session first gets a "sweep" fact that only the internal sweep rule matches;
  * two ids with the same 32-bit FNV-1 hash in one session raise MessageObservedException (§1.4, #376), so
    ids are hashed here first and a colliding fact goes to a separate session.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import durable_rules_engine as dre
from durable import engine as durable_engine

from broker.errors import BrokerError
from broker.match.conditions import INT_LIMIT, fields_of, to_durable
from broker.match.rulefiles import Rule, RuleSet
from broker.match.vocabulary import FACT_KINDS, VOCABULARY

DURABLE_VERSION = "2.0.28"
KIND_FIELD = "fact_kind"  # the discriminator in every fact and every rule pattern
RESERVED_FIELDS = ("id", "sid", KIND_FIELD)
SESSION_SIZE = 5000  # facts per durable session; well under the ~50k where sessions slow down (§3.2)
_SWEEP = "__sweep__"
_ID = re.compile(r'[!#-\[\]-~]{1,200}\Z')  # printable ASCII without quote or backslash: hashed as given
_NOT_HANDLED, _OBSERVED = 1, 2


class RuleEngineError(BrokerError):
    """The engine could not evaluate a fact (bad fact, engine anomaly). Fatal for the run."""

    def __init__(self, message: str, *, rule_id: str | None = None, fact_id: object = None) -> None:
        self.rule_id = rule_id
        self.fact_id = fact_id
        where = ", ".join(p for p in (f"fact {fact_id!r}" if fact_id is not None else "",
                                      f"rule {rule_id}" if rule_id else "") if p)
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True, slots=True)
class Firing:
    """One rule that fired for one fact, with its reason in words and the values it looked at."""

    rule_id: str
    effect: str  # reject | score | flag | needs_consortium
    points: int
    flag: str | None
    reason: str
    inputs: dict[str, bool | int | str]

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "effect": self.effect, "points": self.points, "flag": self.flag,
                "reason": self.reason, "inputs": dict(self.inputs)}


@dataclass(frozen=True, slots=True)
class FactResult:
    """The firings for one input fact, in rule-set order."""

    id: str | int
    kind: str
    firings: tuple[Firing, ...]

    @property
    def rejected(self) -> bool:
        return any(f.effect == "reject" for f in self.firings)

    @property
    def needs_consortium(self) -> bool:
        return any(f.effect == "needs_consortium" for f in self.firings)

    @property
    def score(self) -> int:
        return sum(f.points for f in self.firings)

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(f.flag for f in self.firings if f.flag)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "firings": [f.to_dict() for f in self.firings]}


def fnv1_32(text: str) -> int:
    """durable's fact-identity hash (``fnv1Hash32`` in state.c), including its signed-char XOR."""
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h = ((h ^ (b if b < 128 else (b - 256) & 0xFFFFFFFF)) * 16777619) & 0xFFFFFFFF
    return h


class _Host(durable_engine.Host):
    """A durable Host with no background dispatcher or timer threads (single-threaded, no wall clock)."""

    def _run(self) -> None:
        return None

    def get_action(self, action_name: str) -> Any:
        def not_dispatched(c: Any) -> None:  # the engine drains activations itself; see module docstring
            raise RuntimeError(f"durable dispatched action {action_name} outside the broker's engine")
        return not_dispatched


@dataclass
class _Kind:
    """Per fact kind: the rules, the checks on a fact, and the fields sent to durable."""

    kind: str
    rules: tuple[Rule, ...]
    keys: frozenset[str]
    checks: tuple[tuple[str, type, frozenset[str] | None], ...]
    send: tuple[str, ...]
    by_id: dict[str, Rule] = field(default_factory=dict)


@dataclass
class _Compiled:
    """One Host with one rule set registered, reusable by successive engines (never concurrently)."""

    sha256: str
    name: str
    host: _Host
    handle: int
    kinds: dict[str, _Kind]
    next_sid: int = 0
    healthy: bool = True


_POOL: dict[str, list[_Compiled]] = {}
_POOL_LOCK = threading.Lock()


def definition(ruleset: RuleSet) -> dict[str, Any]:
    """The durable-rules JSON for a rule set: one single-fact rule per rule, salience = rule order."""
    rules: dict[str, Any] = {}
    for rule in ruleset.rules:
        cond = to_durable(rule.when)
        parts = cond["$and"] if list(cond) == ["$and"] else [cond]
        pattern = {"$and": [{KIND_FIELD: rule.applies_to}, *parts]}
        rules[rule.id] = {"all": [{"m": pattern}], "pri": rule.index, "run": rule.id}
    rules[_SWEEP] = {"all": [{"m": {KIND_FIELD: _SWEEP}}], "pri": len(ruleset.rules), "run": _SWEEP}
    return rules


def _compile(ruleset: RuleSet) -> _Compiled:
    found = importlib.metadata.version("durable-rules")
    if found != DURABLE_VERSION:
        raise RuleEngineError(f"the rules engine drives durable-rules {DURABLE_VERSION}'s C API directly; "
                              f"found {found} (pin durable-rules=={DURABLE_VERSION})")
    name = f"broker-{ruleset.sha256[:16]}"
    host = _Host()
    # durable deletes "run" from the dict it is given (PR #254): hand it a fresh copy.
    host.set_rulesets(json.loads(json.dumps({name: definition(ruleset)})))
    kinds = {k: _kind(k, ruleset.for_kind(k)) for k in FACT_KINDS}
    return _Compiled(ruleset.sha256, name, host, host.get_ruleset(name)._handle, kinds)


def _kind(kind: str, rules: tuple[Rule, ...]) -> _Kind:
    fields = VOCABULARY[kind]
    checks = tuple((f.name, f.type, frozenset(f.values) if f.values else None) for f in fields)
    send = sorted({name for r in rules for name in fields_of(r.when)})
    return _Kind(kind, rules, frozenset(f.name for f in fields) | {"id"}, checks, tuple(send),
                 {r.id: r for r in rules})


@dataclass
class _Session:
    sid: str
    hashes: set[int]
    stored: bool = False


class RuleEngine:
    """Evaluates facts against a RuleSet. Use as a context manager; one thread at a time.

    Example:
        with RuleEngine(load_rules("rules")) as engine:
            results = engine.evaluate("pair", pair_facts)
            digest = engine.sequence_sha256()
    """

    def __init__(self, ruleset: RuleSet, *, session_size: int = SESSION_SIZE) -> None:
        if session_size < 1:
            raise ValueError("session_size must be positive")
        self.ruleset = ruleset
        self.session_size = session_size
        self.sequence: list[tuple[str, str, str]] = []  # (kind, fact id, rule id) in durable's firing order
        self.stats = {"facts": 0, "firings": 0, "sessions": 0, "deleted": 0, "sweeps": 0, "split": 0}
        self._digest = hashlib.sha256()
        self._compiled: _Compiled | None = None

    def __enter__(self) -> RuleEngine:
        with _POOL_LOCK:
            idle = _POOL.get(self.ruleset.sha256)
            self._compiled = idle.pop() if idle else None
        if self._compiled is None:
            self._compiled = _compile(self.ruleset)
        return self

    def __exit__(self, *exc: object) -> None:
        compiled, self._compiled = self._compiled, None
        if compiled is not None and compiled.healthy:
            with _POOL_LOCK:
                _POOL.setdefault(compiled.sha256, []).append(compiled)

    def sequence_sha256(self) -> str:
        """sha256 over "kind TAB fact id TAB rule id LF" for every firing so far, in firing order."""
        return self._digest.hexdigest()

    def evaluate(self, kind: str, facts: Sequence[Mapping[str, Any]]) -> list[FactResult]:
        """Evaluate facts of one kind; results follow the input order.

        Args:
            kind: ``opportunity``, ``party`` or ``pair``.
            facts: flat dicts holding every vocabulary field of ``kind`` plus a unique ``id`` (a str of
                printable ASCII without quotes or backslashes, or an int).

        Raises:
            RuleEngineError: a fact is malformed, or the engine misbehaved (the run must stop).
        """
        if self._compiled is None:
            raise RuleEngineError("use the RuleEngine in a `with` block")
        if kind not in FACT_KINDS:
            raise RuleEngineError(f"unknown fact kind {kind!r} (one of {', '.join(FACT_KINDS)})")
        spec = self._compiled.kinds[kind]
        ids = _check_facts(spec, facts)
        fired: list[list[Firing]] = [[] for _ in facts]
        if spec.rules:
            for start in range(0, len(facts), self.session_size):
                self._run_sessions(spec, facts, ids, range(start, min(start + self.session_size, len(facts))),
                                   fired)
        self.stats["facts"] += len(facts)
        return [FactResult(facts[i]["id"], kind, tuple(sorted(f, key=lambda x: spec.by_id[x.rule_id].index)))
                for i, f in enumerate(fired)]

    # --- sessions -------------------------------------------------------------------------------------

    def _run_sessions(self, spec: _Kind, facts: Sequence[Mapping[str, Any]], ids: list[str],
                      positions: range, fired: list[list[Firing]]) -> None:
        assert self._compiled is not None
        sessions: list[_Session] = []
        try:
            for pos in positions:
                did = f"{spec.kind}:{ids[pos]}"
                h = fnv1_32(did)
                if sessions and h not in sessions[0].hashes:
                    session = sessions[0]
                else:  # the first fact, or an id-hash collision: the first session without this hash
                    session = next((s for s in sessions if h not in s.hashes), None)
                if session is None:
                    session = self._new_session()
                    self.stats["split"] += bool(sessions)
                    sessions.append(session)
                session.hashes.add(h)
                payload = {name: facts[pos][name] for name in spec.send}
                payload.update({KIND_FIELD: spec.kind, "id": did, "sid": session.sid})
                for rule_id in self._assert(payload, session, ids[pos], spec.by_id):
                    try:
                        fired[pos].append(self._firing(spec, rule_id, facts[pos]))
                    except Exception as exc:  # the "action" failed: never a silently missing decision
                        raise RuleEngineError(f"recording the firing failed: {exc!r}", rule_id=rule_id,
                                              fact_id=ids[pos]) from exc
            self._close(sessions)
        except BaseException:
            # A half-drained or undeleted session: this Host is never reused (nor cleaned: sweeping or
            # deleting a session in an unknown state risks a crash that would hide this error).
            self._compiled.healthy = False
            raise

    def _new_session(self) -> _Session:
        assert self._compiled is not None
        self._compiled.next_sid += 1
        self.stats["sessions"] += 1
        return _Session(str(self._compiled.next_sid), {fnv1_32(_SWEEP)})

    def _close(self, sessions: list[_Session]) -> None:
        """delete_state every session (§3.3); one with nothing stored is swept first (it would crash)."""
        assert self._compiled is not None
        for s in sessions:
            if not s.stored:
                self.stats["sweeps"] += 1
                swept = self._assert({KIND_FIELD: _SWEEP, "id": _SWEEP, "sid": s.sid}, s, _SWEEP, {_SWEEP: None})
                if swept != [_SWEEP]:
                    self._compiled.healthy = False
                    raise RuleEngineError(f"sweeping session {s.sid} fired {swept}")
            self._compiled.host.delete_state(self._compiled.name, s.sid)
            self.stats["deleted"] += 1

    def _assert(self, payload: dict[str, Any], session: _Session, fact_id: str,
                rule_ids: Mapping[str, object]) -> list[str]:
        """Assert one fact and drain its activations; the rule ids in the order durable fired them."""
        handle = self._compiled.handle if self._compiled else 0
        text = json.dumps(payload, ensure_ascii=False)
        try:
            code, state = dre.assert_fact(handle, text)
        except (dre.error, UnicodeError, ValueError) as exc:
            raise RuleEngineError(f"durable-rules rejected the fact: {exc}", fact_id=fact_id) from exc
        if code == _NOT_HANDLED:
            return []  # no rule matched; durable stores nothing
        if code == _OBSERVED:
            raise RuleEngineError("durable-rules says this fact was already observed (an id-hash collision "
                                  "or a duplicate id); the run is not trustworthy", fact_id=fact_id)
        if code != 0:
            raise RuleEngineError(f"unexpected durable-rules result {code}", fact_id=fact_id)
        session.stored = True
        return self._drain(handle, state, payload, text, fact_id, rule_ids)

    def _drain(self, handle: int, state: int, payload: dict[str, Any], text: str, fact_id: str,
               rule_ids: Mapping[str, object]) -> list[str]:
        fired: list[str] = []
        started = dre.start_action_for_state(handle, state)
        if started is not None and '"exception"' in started[0]:
            raise RuleEngineError(f"durable-rules state holds an exception: {started[0][:500]}", fact_id=fact_id)
        messages = started[1] if started is not None else None
        suffix = '":{"m":' + text + "}}"
        while messages:
            rule_id = _fired_rule(messages, suffix, payload["id"], fact_id, rule_ids)
            fired.append(rule_id)
            if rule_id != _SWEEP:
                kind = payload[KIND_FIELD]
                self.sequence.append((kind, fact_id, rule_id))
                self._digest.update(f"{kind}\t{fact_id}\t{rule_id}\n".encode())
            messages = dre.complete_and_start_action(handle, state)
        return fired

    def _firing(self, spec: _Kind, rule_id: str, fact: Mapping[str, Any]) -> Firing:
        rule = spec.by_id[rule_id]  # _fired_rule checked it is a rule for this kind
        self.stats["firings"] += 1
        effect = rule.effect
        return Firing(rule.id, effect.kind, effect.points_for(fact), effect.flag, rule.reason.render(fact),
                      {name: fact[name] for name in rule.inputs})


def _fired_rule(messages: str, suffix: str, did: str, fact_id: str, rule_ids: Mapping[str, object]) -> str:
    """The rule id of one activation, checking it is about the fact just asserted.

    durable hands back the asserted JSON text verbatim as ``{"RULE":{"m":FACT}}``; comparing the text is
    exact and much cheaper than parsing it. Anything else is parsed and its id compared.
    """
    if messages.startswith('{"') and messages.endswith(suffix) and messages[2:-len(suffix)] in rule_ids:
        return messages[2:-len(suffix)]
    try:
        activation = json.loads(messages)
        (rule_id, match), = activation.items()
        matched = match["m"]["id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RuleEngineError(f"unreadable durable-rules activation {messages[:200]!r}",
                              fact_id=fact_id) from exc
    if matched != did or rule_id not in rule_ids:
        raise RuleEngineError(f"unexpected activation of {rule_id!r} for {matched!r} while asserting {did!r}",
                              rule_id=str(rule_id), fact_id=fact_id)
    return str(rule_id)


def _check_facts(spec: _Kind, facts: Sequence[Mapping[str, Any]]) -> list[str]:
    """Check every fact against the vocabulary before any reaches the engine; the ids as text."""
    ids: list[str] = []
    seen: set[str] = set()
    for pos, fact in enumerate(facts):
        fid = _check_fact(spec, fact, pos)
        if fid in seen:
            raise RuleEngineError("two facts have the same id", fact_id=fid)
        seen.add(fid)
        ids.append(fid)
    return ids


def _check_fact(spec: _Kind, fact: Mapping[str, Any], pos: int) -> str:
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
        if type(value) is not typ or (typ is int and not -INT_LIMIT <= value <= INT_LIMIT) or (
                allowed is not None and value not in allowed):
            expected = f"one of {sorted(allowed)}" if allowed else typ.__name__
            raise RuleEngineError(f"field {name} must be {expected}, not {value!r}", fact_id=fid)
    return fid
