"""Evaluate checked rules with durable-rules, behind the guardrails of research/durable-rules.md §6.

This is the only module that imports durable. Every rule is a single-fact rule (no joins at all, so none of
the inequality-join memory errors of §1.3) whose pattern starts with a fact-kind discriminator; its layout
is planned in ruleplan.py. Facts go in one at a time (never ``assert_facts``/``post_batch``, §2 "Batch
API"), each with a unique type-prefixed id, into short sessions that are deleted after use (§3.3). Every
value is type-checked against the vocabulary first: no None, float, NaN or numeric string ever reaches
the engine (§1.4).

Actions only record. Instead of durable's Python dispatcher (``Host.assert_fact`` -> ``_flush_actions``:
a Closure, two wall-clock reads and a state write-back per action, with exceptions swallowed into
``state['exception']``, issues #58/#305) the engine drains each asserted fact's activations itself through
the same C calls (``start_action_for_state``/``complete_and_start_action``). That is about 3.5x faster
with several firings per fact (bench/rules_bench.py), and an error can only surface as a raised
``RuleEngineError``. It ties this module to durable-rules 2.0.28, which is pinned and checked at start.

Two crashes found while building this (durable-rules 2.0.28, CPython 3.11, reproduced):
  * ``delete_state`` of a new Host's first session when no fact in it matched a rule (nothing stored) is a
    SIGSEGV, so a session that stored nothing first gets a "sweep" fact that only the sweep rule matches;
  * two ids with the same 32-bit FNV-1 hash in one session raise MessageObservedException (§1.4, #376), so
    ids are hashed here first and a colliding fact goes to a separate session.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, NamedTuple

import durable_rules_engine as dre
import orjson
from durable import engine as durable_engine

from broker.match.rulefiles import Rule, RuleSet
from broker.match.ruleplan import (
    KIND_FIELD,
    RESERVED_FIELDS,
    SWEEP,
    KindPlan,
    RuleEngineError,
    Shard,
    check_facts,
    plan,
)
from broker.match.vocabulary import FACT_KINDS

__all__ = ["DURABLE_VERSION", "RESERVED_FIELDS", "SESSION_SIZE", "FactResult", "Firing", "RuleEngine",
           "RuleEngineError", "fnv1_32"]

DURABLE_VERSION = "2.0.28"
_FIRING_CACHE_SIZE = 100_000
SESSION_SIZE = 5000  # facts per durable session; well under the ~50k where sessions slow down (§3.2)
_NOT_HANDLED, _OBSERVED = 1, 2


class Firing(NamedTuple):
    """One rule that fired for one fact, with its reason in words and the values it looked at.

    A named tuple rather than a frozen dataclass: a nightly run makes over a million of these, and a
    tuple is several times cheaper to build.
    """

    rule_id: str
    effect: str  # reject | score | flag | needs_consortium
    points: int
    flag: str | None
    reason: str
    inputs: Mapping[str, bool | int | str]  # read-only: one firing may be shared by many facts

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "effect": self.effect, "points": self.points, "flag": self.flag,
                "reason": self.reason, "inputs": dict(self.inputs)}


@dataclass(frozen=True)
class FactResult:
    """The firings for one input fact, in rule-set order.

    An opportunity's result is read again for every one of its pairs: what is derived from the firings
    is computed once (the firings never change).
    """

    id: str | int
    kind: str
    firings: tuple[Firing, ...]

    @cached_property
    def rejected(self) -> bool:
        return any(f.effect == "reject" for f in self.firings)

    @property
    def needs_consortium(self) -> bool:
        return any(f.effect == "needs_consortium" for f in self.firings)

    @cached_property
    def score(self) -> int:
        return sum(f.points for f in self.firings)

    @cached_property
    def firing_dicts(self) -> tuple[dict[str, Any], ...]:
        """The firings as a decision records them (shared between decisions: read-only)."""
        return tuple({"rule_id": f.rule_id, "stage": self.kind, "effect": f.effect, "points": f.points,
                      "flag": f.flag, "reason": f.reason} for f in self.firings)

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
class _Compiled:
    """One Host with one rule set registered, reusable by successive engines (never concurrently)."""

    sha256: str
    host: _Host
    kinds: dict[str, KindPlan]
    handles: dict[str, int]  # shard name -> durable handle
    next_sid: int = 0
    healthy: bool = True


@dataclass
class _Session:
    sid: str
    hashes: set[int]
    stored: set[str] = field(default_factory=set)  # shards in which a fact matched (so was stored)


_POOL: dict[str, list[_Compiled]] = {}
_POOL_LOCK = threading.Lock()


def _compile(ruleset: RuleSet) -> _Compiled:
    found = importlib.metadata.version("durable-rules")
    if found != DURABLE_VERSION:
        raise RuleEngineError(f"the rules engine drives durable-rules {DURABLE_VERSION}'s C API directly; "
                              f"found {found} (pin durable-rules=={DURABLE_VERSION})")
    kinds = plan(ruleset)
    shards = [s for k in kinds.values() for s in k.shards]
    host = _Host()
    try:
        # durable deletes "run" from the dict it is given (PR #254): hand it a fresh copy.
        host.set_rulesets(json.loads(json.dumps({s.name: s.definition for s in shards})))
    except dre.error as exc:
        raise RuleEngineError(f"durable-rules refused the rule set: {exc}") from exc
    handles = {s.name: host.get_ruleset(s.name)._handle for s in shards}
    return _Compiled(ruleset.sha256, host, kinds, handles)


class RuleEngine:
    """Evaluates facts against a RuleSet. Use as a context manager; one thread at a time.

    Example:
        with RuleEngine(load_rules("rules")) as engine:
            results = engine.evaluate("pair", pair_facts)
            digest = engine.sequence_sha256()
    """

    def __init__(self, ruleset: RuleSet, *, session_size: int = SESSION_SIZE, keep_sequence: bool = True) -> None:
        if session_size < 1:
            raise ValueError("session_size must be positive")
        self.ruleset = ruleset
        # A national run fires millions of rules: it keeps only the running digest of the sequence.
        self.keep_sequence = keep_sequence
        self.session_size = session_size
        # (kind, fact id, durable rule "RULE-ID.N") in the order durable fired them, across evaluate calls
        self.sequence: list[tuple[str, str, str]] = []
        # facts evaluated, durable activations, sessions opened / deleted / swept, sessions opened because
        # of an id-hash collision
        self.stats = {"facts": 0, "firings": 0, "sessions": 0, "deleted": 0, "sweeps": 0, "split": 0}
        # A firing is a function of its rule and the values of the rule's inputs, and most firings repeat
        # one seen before (a nightly run makes half a million from a few thousand distinct ones).
        self._firings: dict[tuple[Any, ...], Firing] = {}
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
        """sha256 over "KIND TAB FACT-ID TAB RULE-ID.N LF" for every durable firing so far, in firing order."""
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
        ids = check_facts(spec, facts)
        fired: list[list[str]] = [[] for _ in facts]
        if spec.shards:
            for start in range(0, len(facts), self.session_size):
                stop = min(start + self.session_size, len(facts))
                self._run_sessions(spec, facts, ids, range(start, stop), fired)
        self.stats["facts"] += len(facts)
        self.stats["firings"] += sum(map(len, fired))
        results = []
        for i, rule_ids in enumerate(fired):
            # several alternatives of one rule may fire for a fact: the rule fires once, in rule order
            rules = sorted({spec.by_id[r].index: spec.by_id[r] for r in rule_ids}.items())
            results.append(FactResult(facts[i]["id"], kind, tuple(self._firing(r, facts[i], ids[i])
                                                                  for _, r in rules)))
        return results

    def _firing(self, rule: Rule, fact: Mapping[str, Any], fact_id: str) -> Firing:
        """The firing of ``rule`` for ``fact`` (shared between facts with the same input values: read-only)."""
        try:
            # Each field has one type (the vocabulary), so True and 1 never meet under one key.
            key = (rule.index, *[fact[name] for name in rule.inputs])
            firing = self._firings.get(key)
            if firing is None:
                if len(self._firings) >= _FIRING_CACHE_SIZE:
                    self._firings.clear()
                effect = rule.effect
                firing = Firing(rule.id, effect.kind, effect.points_for(fact), effect.flag,
                                rule.reason.render(fact), MappingProxyType({name: fact[name] for name in rule.inputs}))
                self._firings[key] = firing
        except Exception as exc:  # a failed "action" must never become a silently missing decision
            raise RuleEngineError(f"recording the firing failed: {exc!r}", rule_id=rule.id,
                                  fact_id=fact_id) from exc
        return firing

    # --- sessions -------------------------------------------------------------------------------------

    def _run_sessions(self, spec: KindPlan, facts: Sequence[Mapping[str, Any]], ids: list[str],
                      positions: range, fired: list[list[str]]) -> None:
        assert self._compiled is not None
        sessions: list[_Session] = []
        try:
            for pos in positions:
                did = f"{spec.kind}:{ids[pos]}"
                session = self._session_for(sessions, fnv1_32(did))
                payload = {name: facts[pos][name] for name in spec.send}
                payload.update({KIND_FIELD: spec.kind, "id": did, "sid": session.sid})
                text = orjson.dumps(payload).decode("utf-8")
                for shard in spec.shards:
                    for name in self._assert(shard, text, did, session, ids[pos]):
                        fired[pos].append(shard.rule_of[name])
                        if self.keep_sequence:
                            self.sequence.append((spec.kind, ids[pos], name))
                        self._digest.update(f"{spec.kind}\t{ids[pos]}\t{name}\n".encode())
            self._close(spec, sessions)
        except BaseException:
            # A half-drained or undeleted session: this Host is never reused (nor cleaned: sweeping or
            # deleting a session in an unknown state risks a crash that would hide this error).
            self._compiled.healthy = False
            raise

    def _session_for(self, sessions: list[_Session], h: int) -> _Session:
        """The first open session without this id hash (a collision opens another session)."""
        found = sessions[0] if sessions and h not in sessions[0].hashes else None
        found = found or next((s for s in sessions if h not in s.hashes), None)
        if found is None:
            assert self._compiled is not None
            self._compiled.next_sid += 1
            self.stats["sessions"] += 1
            self.stats["split"] += bool(sessions)
            found = _Session(str(self._compiled.next_sid), {fnv1_32(SWEEP)})
            sessions.append(found)
        found.hashes.add(h)
        return found

    def _close(self, spec: KindPlan, sessions: list[_Session]) -> None:
        """delete_state every session (§3.3); one that stored nothing is swept first (it would crash)."""
        assert self._compiled is not None
        for s in sessions:
            for shard in spec.shards:
                if shard.name not in s.stored:
                    self.stats["sweeps"] += 1
                    text = json.dumps({KIND_FIELD: SWEEP, "id": SWEEP, "sid": s.sid})
                    swept = self._assert(shard, text, SWEEP, s, SWEEP)
                    if swept != [SWEEP]:
                        raise RuleEngineError(f"sweeping session {s.sid} of {shard.name} fired {swept}")
                self._compiled.host.delete_state(shard.name, s.sid)
            self.stats["deleted"] += 1

    def _assert(self, shard: Shard, text: str, did: str, session: _Session, fact_id: str) -> list[str]:
        """Assert one fact into one shard and drain its activations: durable rule names in firing order."""
        assert self._compiled is not None
        handle = self._compiled.handles[shard.name]
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
        session.stored.add(shard.name)
        started = dre.start_action_for_state(handle, state)
        if started is not None and '"exception"' in started[0]:
            raise RuleEngineError(f"durable-rules state holds an exception: {started[0][:500]}", fact_id=fact_id)
        fired: list[str] = []
        messages = started[1] if started is not None else None
        suffix = '":{"m":' + text + "}}"
        while messages:
            fired.append(_fired_rule(messages, suffix, did, fact_id, shard))
            messages = dre.complete_and_start_action(handle, state)
        return fired


def _fired_rule(messages: str, suffix: str, did: str, fact_id: str, shard: Shard) -> str:
    """The durable rule name of one activation, checking it is about the fact just asserted.

    durable hands back the asserted JSON text verbatim as ``{"RULE":{"m":FACT}}``; comparing the text is
    exact and much cheaper than parsing it. Anything else is parsed and its id compared.
    """
    known = shard.definition
    if messages.startswith('{"') and messages.endswith(suffix) and messages[2:-len(suffix)] in known:
        return messages[2:-len(suffix)]
    try:
        (name, match), = json.loads(messages).items()
        matched = match["m"]["id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RuleEngineError(f"unreadable durable-rules activation {messages[:200]!r}",
                              fact_id=fact_id) from exc
    if matched != did or name not in known:
        raise RuleEngineError(f"unexpected activation of {name!r} for {matched!r} while asserting {did!r}",
                              rule_id=str(name), fact_id=fact_id)
    return str(name)
