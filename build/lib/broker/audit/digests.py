"""Digests over a run's decisions, inputs and manifest. Every hash is sha256 over canonical JSON.

The audit contract (shared/research/durable-rules.md §4.3) is the *sorted set* of decisions plus the
manifest; the order in which rules fired is digested separately (the sequence digest).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from broker.normalise.record import canonical_hash

DECISION_FIELDS = ("stage", "opportunity_id", "party_id", "party_type", "outcome", "score", "features",
                   "firings", "detail")


def decision_hash(decision: dict[str, Any]) -> str:
    """Hash of one decision's content (not of its storage id or sequence number).

    The canonical JSON is written by orjson (a national run hashes a million decisions): for values
    without floats its bytes are those of ``canonical_json`` (sorted keys, no spaces, UTF-8), and a
    decision holds no floats (facts are type-checked ints, strings and booleans; points and the blocking
    score are ints). What orjson refuses (big integers, lone surrogates) goes through ``canonical_hash``.
    """
    content = {k: decision[k] for k in DECISION_FIELDS}
    try:
        text = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        return canonical_hash(content)
    return hashlib.sha256(text).hexdigest()


def decision_digest(hashes: Iterable[str | bytes]) -> str:
    """sha256 over the sorted decision hashes: the same set of decisions in any order, same digest."""
    raw = sorted(h if isinstance(h, bytes) else bytes.fromhex(h) for h in hashes)
    return hashlib.sha256(b"".join(raw)).hexdigest()


def sequence_digest(sequence: Sequence[Sequence[str]]) -> str:
    """Digest of the order in which rules fired: [(fact id, rule id), ...] as the engine reported it."""
    return canonical_hash([list(step) for step in sequence])


def input_digest(inputs: Iterable[tuple[str, str, str]]) -> str:
    """Digest of (kind, entity id, content hash) for every input record the run read."""
    return canonical_hash(sorted([list(i) for i in inputs]))


def link_hash(prev_hash: str | None, kind: str, ref: str, digest: str) -> str:
    return canonical_hash([prev_hash, kind, ref, digest])
