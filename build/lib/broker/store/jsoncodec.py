"""How JSON columns are written and read: orjson, with the standard library as the fallback.

A national match run stores a million decisions, each with three JSON columns, and reads them back to
replay or export; orjson does both several times faster than ``json``. Values round-trip the same either
way; only the stored text differs in spacing (digests are taken over canonical JSON of the values, never
over stored text). What orjson refuses (integers beyond 64 bits, non-string keys, text that ``json``
alone accepts) falls back to ``json``, which keeps its own errors. One difference remains: orjson writes
NaN and infinities as null where ``json`` wrote non-standard ``NaN`` (which PostgreSQL refuses anyway);
nothing in broker stores them.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value)


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
