"""The repository stands alone: no test, benchmark default or library module reads the shared folder that
sits beside a developer's checkout (a user's clone has none)."""

from __future__ import annotations

import re

import pytest
from testpaths import OUTSIDE_DATA, REAL_FILES, ROOT


def test_a_read_beside_the_checkout_is_refused():
    # The guard in conftest fires before the file system is asked, so this holds with or without the folder.
    for prefix in OUTSIDE_DATA:
        with pytest.raises(PermissionError, match="fixtures/"):
            open(prefix + "data/README.md", encoding="utf-8")  # noqa: SIM115 (never opened)


def test_every_real_file_is_in_fixtures():
    for name, path in REAL_FILES.items():
        assert path.is_file(), name
        assert path.resolve().is_relative_to(ROOT / "fixtures"), name


def test_no_source_names_the_shared_folder():
    # A path written into the code (not only one opened while the tests run): benchmarks and the Makefile
    # are not run by the suite, so they are searched.
    pattern = re.compile(r"""\.\./shared|["']shared["']\s*[/)]|shared/data""")
    found = []
    for folder in ("broker", "tests", "bench", "scripts"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".sh", ".cfg", ".toml", ".yaml") and path.name != "test_stands_alone.py":
                text = path.read_text(encoding="utf-8", errors="replace")
                found += [f"{path.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}"
                          for m in pattern.finditer(text)]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    found += ["Makefile" for _ in pattern.finditer(makefile)]
    assert found == []
