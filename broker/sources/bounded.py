"""JSON read as a stream with limits on nesting depth and string size, in memory flat as depth grows.

``ijson.items`` and ``ijson.parse`` give every event its full path (``a.item.item...``): a document nested
``d`` deep keeps ``d`` such paths of up to ``d`` parts, so memory grows with the square of the depth (a
60 KB file took 2.3 GB). ``json.loads`` recurses and raises ``RecursionError`` near 1,000 levels. Here the
parser's plain events (``ijson.basic_parse``: no paths) are counted: a path is kept only as deep as the
caller asks, deeper events only move a counter, and an item that nests deeper than :data:`MAX_DEPTH` or
holds a string longer than :data:`MAX_STRING` is skipped to its end and reported, so the items after it
are still read.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

import ijson

MAX_DEPTH = 64
"""Containers an item may nest, counted from the item itself. Real OCDS releases nest about 8 deep."""
MAX_STRING = 1_000_000
"""Characters one string (key or value) may hold. The longest real descriptions are tens of thousands."""

MAX_LINE = 64 << 20
"""Bytes (or characters) one JSON Lines line may hold: read up to this, never a whole 1 GB line."""

_START = frozenset({"start_map", "start_array"})
_END = frozenset({"end_map", "end_array"})


class LimitExceeded(ValueError):
    """A JSON value nests too deep or holds too long a string (``reason`` says which)."""


@dataclass(frozen=True)
class Limits:
    depth: int = MAX_DEPTH
    string: int = MAX_STRING


DEFAULT_LIMITS = Limits()


def basic_events(stream: IO[bytes], *, multiple_values: bool = True) -> Iterator[tuple[str, Any]]:
    """``(event, value)`` pairs, numbers as ``int`` or ``Decimal`` (never float)."""
    return ijson.basic_parse(stream, multiple_values=multiple_values, use_float=False)


def shallow_events(stream: IO[bytes], depth: int, *, multiple_values: bool = True
                   ) -> Iterator[tuple[str, str, Any]]:
    """``ijson.parse``'s ``(prefix, event, value)`` for events at most ``depth`` containers deep.

    Deeper events are not given (only counted), so a deeply nested value costs no memory here. Used to
    sniff a file's top-level keys and package metadata.
    """
    frames: list[tuple[str, bool]] = []  # (prefix of the container, is an array) for kept containers
    nesting = 0  # containers open, kept or not
    key_prefix = ""  # prefix of the next value in a kept map
    for event, value in basic_events(stream, multiple_values=multiple_values):
        if nesting > depth:
            nesting += 1 if event in _START else -1 if event in _END else 0
            continue
        if event in _END:
            nesting -= 1
            prefix, _ = frames.pop()
            yield prefix, event, value
            continue
        if event == "map_key":
            key_prefix = _join(frames[-1][0], value)
            yield frames[-1][0], event, value
            continue
        prefix = "" if not frames else _join(frames[-1][0], "item") if frames[-1][1] else key_prefix
        if event in _START:
            nesting += 1
            if nesting > depth:
                continue
            frames.append((prefix, event == "start_array"))
        yield prefix, event, value


def _join(prefix: str, part: str) -> str:
    return f"{prefix}.{part}" if prefix else str(part)


@dataclass(frozen=True)
class Found:
    """One item under the wanted path: its ``value``, or why it was skipped (``problem``)."""

    value: Any = None
    problem: str | None = None


def iter_items(stream: IO[bytes], path: str, *, limits: Limits = DEFAULT_LIMITS,
               multiple_values: bool = True) -> Iterator[Found]:
    """Like ``ijson.items(stream, path)``, within ``limits``; an item over a limit is a ``problem``.

    Args:
        stream: UTF-8 JSON bytes.
        path: ``""`` (each top-level value), ``"item"``, ``"releases.item"``, ``"opportunities.item"``...
        limits: how deep an item may nest and how long its strings may be.
        multiple_values: accept several top-level values (concatenated JSON).

    Raises:
        ijson.JSONError: the JSON is malformed (after the items before the break were given).
    """
    target = tuple(p for p in path.split(".") if p)
    events = basic_events(stream, multiple_values=multiple_values)
    frames: list[tuple[tuple[str, ...], bool]] = []  # (path of the container, is an array)
    key_path: tuple[str, ...] = ()
    skip = 0  # > 0: inside a value that is not wanted, this many containers deep
    for event, value in events:
        if skip:
            skip += 1 if event in _START else -1 if event in _END else 0
            continue
        if event in _END:
            frames.pop()
            continue
        if event == "map_key":
            key_path = (*frames[-1][0], value)
            continue
        here = () if not frames else (*frames[-1][0], "item") if frames[-1][1] else key_path
        if here == target:
            yield _build(event, value, events, limits)
        elif event in _START:
            if len(here) < len(target) and here == target[:len(here)]:
                frames.append((here, event == "start_array"))
            else:
                skip = 1


def _build(event: str, value: Any, events: Iterator[tuple[str, Any]], limits: Limits) -> Found:
    """The item starting with ``(event, value)``; over a limit, skip to its end and say why."""
    if event not in _START:
        return _too_long(value, limits) or Found(value)
    builder = ijson.ObjectBuilder()
    builder.event(event, value)
    depth, problem = 1, None
    for event, value in events:
        if event in _START:
            depth += 1
            if depth > limits.depth and problem is None:
                problem = f"nested more than {limits.depth} levels deep"
        elif event in _END:
            depth -= 1
        elif problem is None and (found := _too_long(value, limits)) is not None:
            problem = found.problem
        if problem is None:
            builder.event(event, value)
        elif builder is not None:
            builder = None  # drop what was built: the rest of the item is only counted
        if depth == 0:
            return Found(builder.value) if builder is not None else Found(problem=problem)
    raise ijson.IncompleteJSONError("the file ends inside a value")


def _too_long(value: Any, limits: Limits) -> Found | None:
    if isinstance(value, str) and len(value) > limits.string:
        return Found(problem=f"a text value is {len(value):,} characters long (at most {limits.string:,})")
    return None


def bounded_lines(stream: IO[Any], limit: int | None = None) -> Iterator[tuple[int, Any]]:
    """``(line number, line)`` of a binary or text stream; a line longer than ``limit`` is ``None``
    (and skipped to its end in pieces of at most ``limit``), so memory never holds more than that."""
    limit = MAX_LINE if limit is None else limit
    number = 0
    while line := stream.readline(limit + 1):
        number += 1
        if len(line) <= limit:
            yield number, line
            continue
        while line and line[-1:] not in ("\n", b"\n"):
            line = stream.readline(limit)
        yield number, None


def loads(data: bytes | str, *, limits: Limits = DEFAULT_LIMITS) -> Any:
    """One JSON value (a JSON Lines line) within ``limits``.

    Raises:
        LimitExceeded: the value nests too deep or holds too long a string.
        ValueError: it is not one valid JSON value (the parser's message).
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= limits.depth and len(raw) <= limits.string:
        # Cannot nest deeper than it has brackets: the standard parser is safe, and unlike the streaming
        # one it keeps a lone surrogate escape (\ud800) as it is, for the record check to refuse.
        try:
            return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{exc.msg} (column {exc.colno})") from None
    try:
        found = list(iter_items(io.BytesIO(raw), "", limits=limits, multiple_values=False))
    except ijson.JSONError as exc:
        raise ValueError((str(exc).splitlines() or ["malformed JSON"])[0].strip()) from None
    if len(found) != 1:
        raise ValueError("expected one JSON value")
    if found[0].problem:
        raise LimitExceeded(found[0].problem)
    return found[0].value


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")
