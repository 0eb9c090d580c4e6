"""Reason templates: the sentence a VCSE reads for a rule, e.g. "Deadline in {days_to_deadline} days".

A placeholder is a bare vocabulary field name of the rule's fact kind. Templates are parsed once, when the
rules are loaded, into literal text and field names; rendering only concatenates. There is no attribute or
index access, no conversion and no format spec (``str.format`` on untrusted templates can reach object
attributes), so a rule file cannot make rendering do anything but read the fact's own values.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from broker.match.vocabulary import field_map

MAX_REASON_LENGTH = 300


@dataclass(frozen=True)
class Reason:
    """A parsed template: ``parts`` alternate literal text and a field name (None for none)."""

    template: str
    parts: tuple[tuple[str, str | None], ...]

    @property
    def fields(self) -> list[str]:
        """Fields the template reads, in order of first use."""
        out: list[str] = []
        for _, name in self.parts:
            if name is not None and name not in out:
                out.append(name)
        return out

    def render(self, fact: Mapping[str, object]) -> str:
        """The sentence for one fact; every placeholder's field must be in ``fact``."""
        return "".join([text + show(name, fact[name]) if name else text for text, name in self.parts])


def show(name: str, value: object) -> str:
    """How a fact value reads in a sentence: yes/no for booleans, thousands separators for pounds."""
    if type(value) is str:
        return value
    if type(value) is bool:
        return "yes" if value else "no"
    if type(value) is int and name.endswith("_gbp"):
        return f"{value:,}"
    return str(value)


def parse_reason(template: object, kind: str, line: int, report: Callable[[int, str], None]) -> Reason | None:
    """Check a reason template for facts of ``kind``; report every problem, return None if any."""
    if not isinstance(template, str) or not template.strip():
        report(line, "reason must be a sentence (text)")
        return None
    if len(template) > MAX_REASON_LENGTH:
        report(line, f"reason is longer than {MAX_REASON_LENGTH} characters")
        return None
    try:
        pieces = list(string.Formatter().parse(template))
    except ValueError as exc:
        report(line, f"reason has unbalanced braces ({exc}); write {{{{ or }}}} for a literal brace")
        return None
    fields = field_map(kind)
    parts: list[tuple[str, str | None]] = []
    ok = True
    for text, name, spec, conversion in pieces:
        if name is None:
            parts.append((text, None))
            continue
        if spec or conversion or name not in fields:
            what = f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
            why = (f"{name!r} is not a field of {kind} facts" if name not in fields
                   else "no format specs or conversions")
            report(line, f"reason placeholder {what}: {why}; write {{FIELD}} with a field from rules/README.md")
            ok = False
        parts.append((text, name))
    return Reason(template, tuple(parts)) if ok else None
