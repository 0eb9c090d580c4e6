"""An id nothing has is an error, not an empty answer: `audit explain` on a typo exits 1 and says which."""

from __future__ import annotations

import json

from testpaths import FIXTURES

CSV = str(FIXTURES / "opportunities" / "cf_export_2020_sample.csv")
VCSES = str(FIXTURES / "directory" / "vcses.csv")


def test_audit_explain_refuses_unknown_ids(run):
    assert run("ingest", CSV).exit_code == 0
    assert run("directory", "import", VCSES).exit_code == 0
    assert run("match", "--as-of", "2020-04-16").exit_code == 0
    result = run("audit", "explain", "nope", "wm-0003")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: no opportunity 'nope' (see `broker opportunities list`)"
    both = run("audit", "explain", "nope", "nobody")
    assert both.exit_code == 1 and "no VCSE or consortium 'nobody'" in both.stderr
    known = json.loads(run("matches", "list", "--party", "wm-0003", "--limit", "1", "--json").output)[0]
    assert run("audit", "explain", known["opportunity_id"], "wm-0003").exit_code == 0


def test_nightly_quiet_prints_nothing_when_all_went_well(run, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    args = ("nightly", "--inbox", str(inbox), "--outbox", str(tmp_path / "out"), "--as-of", "16/04/2020")
    quiet = run(*args, "--quiet")
    assert quiet.exit_code == 0, quiet.output
    assert quiet.output == ""
    loud = run(*args)
    assert loud.exit_code == 0 and loud.output.startswith("nightly 2020-04-16: ")
