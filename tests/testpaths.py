"""Paths the tests share. A module of its own (not conftest) so test files can import it by name:
several folders have a conftest.py, and ``from conftest import`` would pick whichever loaded first."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def _find_shared() -> Path:
    """``../shared`` beside the checkout (CI), or beside the folder holding it (git worktrees)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "data").is_dir():
            return base / "shared"
    return ROOT.parent / "shared"


SHARED = _find_shared()
SHARED_DATA = SHARED / "data"
FIXTURES = ROOT / "fixtures"
