"""The checker .ci/run uses to keep the README's pasted demo output true to what `make demo` prints."""

from __future__ import annotations

import importlib.util

from testpaths import ROOT

spec = importlib.util.spec_from_file_location("readme_demo", ROOT / "scripts" / "readme_demo.py")
readme_demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme_demo)


def test_the_readme_has_a_demo_block():
    block = readme_demo.readme_block((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(block) >= 5 and any(line.startswith("nightly ") for line in block)


def test_lines_must_appear_in_order_and_dots_mean_a_cut_line():
    output = ["noise", "nightly 2020-04-16: 10 files (584 new)", "more", "--- matches ---", "wm-0003  #1"]
    assert readme_demo.first_missing(["nightly 2020-04-16: 10 files ...", "--- matches ---"], output) is None
    assert readme_demo.first_missing(["--- matches ---", "nightly 2020-04-16: 10 files ..."], output) == \
        "nightly 2020-04-16: 10 files ..."
    assert readme_demo.first_missing(["wm-0003  #2"], output) == "wm-0003  #2"
