"""What every source reader yields, so the ingest pipeline treats all formats alike.

A reader never raises for a bad record: it yields an ``error`` item naming the record and field, and goes
on with the next record. It raises :class:`broker.errors.InputError` only when the file as a whole cannot
be read (unknown format, unreadable file); a file that breaks part-way (truncated JSON) yields the good
records before the break and then one ``error`` item for the break.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from broker.errors import InputError
from broker.normalise.record import OpportunityRecord

# Called with the number of bytes read so far (drives a progress bar on a terminal).
ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class SourceItem:
    """One unit read from a file.

    ``release``: a raw OCDS release (dict, numbers as Decimal) to be stored and compiled per ocid.
    ``record``: an already-normalised opportunity (CSV exports, private opportunities).
    ``error``: a record that could not be read; ``raw`` is its text for the quarantine.
    """

    kind: Literal["release", "record", "error"]
    locator: str
    release: dict[str, Any] | None = None
    package_meta: dict[str, Any] | None = None
    record: OpportunityRecord | None = None
    error: InputError | None = None
    raw: str | None = None


ReadFn = Callable[[str, "ProgressCallback | None"], Iterator[SourceItem]]
