"""Export one run, manifest and decisions, for an auditor or for import into another database.

JSONL (``--format jsonl``), one JSON object a line, streamed so a national run never sits in memory::

    {"type": "manifest", "format": "broker-audit-export", "version": 1, "run": {...manifest...},
     "manifest_digest": "...", "rule_files": [{"name", "sha256", "text"}], "link": {...} | null}
    {"type": "input", "kind": "opportunity", "entity_id": "...", "content_hash": "...", "record": {...}}
    ...                                    (one line per input record the run read: the snapshot)
    {"type": "decision", "seq": 1, "stage": "...", ..., "decision_hash": "..."}
    ...                                    (one line per decision, in the order the run made them)
    {"type": "end", "inputs": N, "decisions": M}

CSV (``--format csv``): the decisions, one row each, with ``features``, ``firings`` and ``detail`` as
JSON text; the manifest goes in a companion file beside it, ``NAME.manifest.json`` (the manifest line
above plus ``"inputs": [...]`` and ``"decisions": M``), because a spreadsheet cannot hold it. Any cell a
spreadsheet would read as a formula (a leading ``=``, ``+``, ``-``, ``@``, tab or carriage return) is
prefixed with a single quote; so is a cell that already starts with one, so that import can strip exactly
one quote and get the original text back.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.orm import Session

from broker.audit.digests import DECISION_FIELDS
from broker.audit.stored import (
    chain_link_of,
    get_run,
    iter_inputs,
    iter_stored_decisions,
    require_complete,
    rule_files,
)
from broker.match.service import manifest_of

FORMAT, VERSION = "broker-audit-export", 1
CSV_COLUMNS = ("run_id", "seq", "stage", "opportunity_id", "party_id", "party_type", "outcome", "score",
               "decision_hash", "features", "firings", "detail")
JSON_COLUMNS = ("features", "firings", "detail")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """A cell a spreadsheet shows as text: formula-like cells (and quoted ones) get a leading quote."""
    return "'" + cell if cell.startswith((*FORMULA_START, "'")) else cell


def restore(cell: str) -> str:
    """The original text of a ``neutralise``d cell."""
    return cell[1:] if cell.startswith("'") else cell


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def manifest_line(session: Session, run_id: str) -> dict[str, Any]:
    """The manifest object of an export: the run's manifest, digest, rule texts and chain link."""
    run = get_run(session, run_id)
    require_complete(run)
    link = chain_link_of(session, run.id)
    return {"type": "manifest", "format": FORMAT, "version": VERSION, "run": manifest_of(session, run),
            "manifest_digest": run.manifest_digest,
            "rule_files": [{"name": f.name, "sha256": f.sha256, "text": f.text} for f in rule_files(session, run.id)],
            "link": None if link is None else {"seq": link.seq, "kind": link.kind, "digest": link.digest,
                                               "prev_hash": link.prev_hash, "hash": link.hash}}


def _inputs(session: Session, run_id: str) -> Iterator[dict[str, Any]]:
    for item in iter_inputs(session, run_id):
        yield {"type": "input", "kind": item.kind, "entity_id": item.entity_id,
               "content_hash": item.content_hash, "record": item.record}


def _decisions(session: Session, run_id: str) -> Iterator[dict[str, Any]]:
    for d in iter_stored_decisions(session, run_id):
        yield {"type": "decision", **d}


def export_jsonl(session: Session, run_id: str, out: TextIO) -> dict[str, int]:
    """Write run ``run_id`` as JSONL to ``out``; returns the counts written."""
    out.write(dumps(manifest_line(session, run_id)) + "\n")
    counts = {"inputs": 0, "decisions": 0}
    for item in _inputs(session, run_id):
        out.write(dumps(item) + "\n")
        counts["inputs"] += 1
    for d in _decisions(session, run_id):
        out.write(dumps(d) + "\n")
        counts["decisions"] += 1
    out.write(dumps({"type": "end", **counts}) + "\n")
    return counts


def companion_path(csv_path: Path) -> Path:
    """Where the manifest of a CSV export lives: ``NAME.manifest.json`` beside ``NAME.csv``."""
    return csv_path.with_name(csv_path.stem + ".manifest.json")


def export_csv(session: Session, run_id: str, csv_path: Path) -> dict[str, int]:
    """Write the decisions of ``run_id`` to ``csv_path`` and its manifest to the companion file."""
    header = manifest_line(session, run_id)
    counts = {"inputs": 0, "decisions": 0}
    with open(csv_path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for d in _decisions(session, run_id):
            writer.writerow([neutralise(_cell(name, d, run_id)) for name in CSV_COLUMNS])
            counts["decisions"] += 1
    inputs = [{k: v for k, v in item.items() if k != "type"} for item in _inputs(session, run_id)]
    counts["inputs"] = len(inputs)
    with open(companion_path(csv_path), "w", encoding="utf-8") as fh:
        fh.write(dumps({**header, "inputs": inputs, "decisions": counts["decisions"]}) + "\n")
    return counts


def _cell(name: str, d: dict[str, Any], run_id: str) -> str:
    if name == "run_id":
        return run_id
    value = d[name]
    return dumps(value) if name in JSON_COLUMNS else str(value)


def decision_from_csv(row: dict[str, str]) -> dict[str, Any]:
    """A decision from one CSV row (the inverse of the export's cells).

    Raises:
        ValueError: a cell that is not what the export writes.
    """
    cells = {k: restore(v) for k, v in row.items() if k is not None}
    missing = [c for c in CSV_COLUMNS if c not in cells]
    if missing:
        raise ValueError(f"missing columns {', '.join(missing)}")
    out: dict[str, Any] = {"type": "decision", "run_id": cells["run_id"], "seq": int(cells["seq"]),
                           "decision_hash": cells["decision_hash"]}
    for name in DECISION_FIELDS:
        text = cells[name]
        out[name] = json.loads(text) if name in JSON_COLUMNS else int(text) if name == "score" else text
    return out
