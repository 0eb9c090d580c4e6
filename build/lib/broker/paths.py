"""Where the package's reference data lives. Officers may edit these files; they are data, not code."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
SCHEMA_DIR = DATA_DIR / "schema"
