"""Helpers for the poison-input tests: real fixture records, altered, written back, ingested, counted."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from testpaths import FIXTURES

from broker.ingest import IngestReport, ingest
from broker.store.engine import make_engine, session_factory
from broker.store.models import Opportunity, QuarantineItem, Release

OPP = FIXTURES / "opportunities"
CF_PACKAGE = OPP / "cf_ocds_releases_2025_part1.json"
CF_CSV = OPP / "cf_export_2021_handmade.csv"
PRIVATE_CSV = OPP / "private_anchor_opportunities.csv"
PRIVATE_JSONL = OPP / "private_anchor_opportunities.jsonl"


def package(path: Path = CF_PACKAGE) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def distinct_releases(pkg: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The first ``n`` releases with ocids seen once in the package (one release = one opportunity)."""
    ocids = [r["ocid"] for r in pkg["releases"]]
    return [copy.deepcopy(r) for r in pkg["releases"] if ocids.count(r["ocid"]) == 1][:n]


def csv_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [row for row in csv.reader(fh) if row]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8", errors="surrogatepass")  # a lone surrogate: bad bytes
    return path


def run_ingest(db_url: str, *paths: Path) -> IngestReport:
    engine = make_engine(db_url)
    try:
        return ingest(session_factory(engine), [str(p) for p in paths])
    finally:
        engine.dispose()


def stored(db_url: str) -> dict[str, Any]:
    """Opportunity ids and ocids, release ocids, and quarantine (locator, field, reason) rows."""
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as s:
            return {
                "ids": set(s.scalars(select(Opportunity.id))),
                "ocids": set(s.scalars(select(Opportunity.ocid))),
                "titles": {r.id: r.title for r in s.scalars(select(Opportunity))},
                "release_ocids": set(s.scalars(select(Release.ocid))),
                "quarantine": [(q.locator, q.field, q.reason) for q in
                               s.scalars(select(QuarantineItem).order_by(QuarantineItem.id))],
            }
    finally:
        engine.dispose()
