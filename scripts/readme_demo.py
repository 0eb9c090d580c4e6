# ruff: noqa: T201  (a command-line script: printing is its job)
"""Check the README's pasted `make demo` output against what `make demo` printed.

    make demo | tee demo.log && python scripts/readme_demo.py demo.log

The README block under "`make demo` ends like this (abridged)" must be an ordered selection of the
demo's lines: each README line equals a demo line, or, ending in "...", starts one; demo lines may be
skipped between them. Exit 1, naming the first README line not found, when the README is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "`make demo` ends like this (abridged"


def readme_block(text: str) -> list[str]:
    """The lines of the fenced block after the marker."""
    after = text.split(MARKER, 1)[1].split("```", 2)[1].split("\n", 1)[1]
    return [line.rstrip() for line in after.splitlines() if line.strip()]


def first_missing(block: list[str], output: list[str]) -> str | None:
    """The first README line that is not, in order, one of the demo's lines (None when all are)."""
    lines = iter(line.rstrip() for line in output)
    for wanted in block:
        prefix = wanted[:-3].rstrip() if wanted.endswith("...") else None
        if not any((line.startswith(prefix) if prefix is not None else line == wanted) for line in lines):
            return wanted
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    output = Path(argv[0]).read_text(encoding="utf-8").splitlines()
    missing = first_missing(readme_block(README.read_text(encoding="utf-8")), output)
    if missing is not None:
        print(f"README.md: the demo output block is out of date: {missing!r} is not in {argv[0]} "
              "(in order); paste the new lines from `make demo`", file=sys.stderr)
        return 1
    print("README.md demo output matches.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
