"""Decision hashes are sha256 over canonical JSON however the JSON is written (orjson for speed), and the
JSON columns read back exactly what was written."""

from __future__ import annotations

import hashlib
import math

from hypothesis import given
from hypothesis import strategies as st

from broker.audit.digests import DECISION_FIELDS, decision_hash
from broker.normalise.record import canonical_hash, canonical_json
from broker.store import jsoncodec

# What a decision can hold: no floats (facts are type-checked ints, strings and booleans).
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)  # any character but a lone surrogate
scalars = st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | text
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                      max_leaves=20)


def _decision(value: object) -> dict:
    return {name: value for name in DECISION_FIELDS}


@given(values)
def test_a_decision_hash_is_sha256_over_canonical_json(value):
    decision = _decision(value)
    want = hashlib.sha256(canonical_json({k: decision[k] for k in DECISION_FIELDS}).encode("utf-8")).hexdigest()
    assert decision_hash(decision) == want


def test_what_orjson_refuses_is_hashed_the_canonical_way():
    for value in (2**64, {"big": -(2**70)}):
        decision = _decision(value)
        assert decision_hash(decision) == canonical_hash({k: decision[k] for k in DECISION_FIELDS})


@given(values)
def test_json_columns_read_back_what_was_written(value):
    assert jsoncodec.loads(jsoncodec.dumps(value)) == value


def test_json_the_fast_path_refuses_still_round_trips():
    assert jsoncodec.loads(jsoncodec.dumps({"n": 2**80, 1: "non-string key"})) == {"n": 2**80, "1": "non-string key"}
    assert math.isnan(jsoncodec.loads("NaN"))  # json's extension, which older SQLite rows may hold: still read
