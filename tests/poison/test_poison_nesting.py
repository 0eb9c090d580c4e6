"""Bounded parsing: deep nesting and huge strings cost one record, never the file, the memory or the stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from poisonkit import PRIVATE_JSONL, distinct_releases, package, run_ingest, stored, write_json
from testpaths import ROOT

from broker.cli import cli
from broker.sources import bounded


def deep(depth: int, leaf: str = "x") -> str:
    """JSON text of ``depth`` nested lists around a string."""
    return "[" * depth + json.dumps(leaf) + "]" * depth


def test_a_deep_release_is_quarantined_and_its_neighbours_kept(db_url, tmp_path):
    pkg = package()
    releases = distinct_releases(pkg, 3)
    text = json.dumps({**pkg, "releases": releases})
    # The second release gets a field nested 5,000 deep.
    second = json.dumps(releases[1])
    text = text.replace(second, second[:-1] + ', "deep": ' + deep(5000) + "}", 1)
    path = tmp_path / "deep.json"
    path.write_text(text, encoding="utf-8")
    run_ingest(db_url, path)
    got = stored(db_url)
    assert got["ocids"] == {releases[0]["ocid"], releases[2]["ocid"]}
    [(locator, _, reason)] = got["quarantine"]
    assert locator == "release 2" and f"nested more than {bounded.MAX_DEPTH} levels deep" in reason


def test_a_jsonl_line_nested_1500_deep_is_quarantined_alone(db_url, tmp_path):
    """Before: RecursionError from json.loads lost every line of the file."""
    releases = distinct_releases(package(), 2)
    lines = [json.dumps(releases[0]), '{"ocid": "ocds-b5fd17-deep", "x": ' + deep(1500) + "}",
             json.dumps(releases[1])]
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_ingest(db_url, path)
    got = stored(db_url)
    assert got["ocids"] == {releases[0]["ocid"], releases[1]["ocid"]}
    [(locator, _, reason)] = got["quarantine"]
    assert locator == "line 2" and "nested more than" in reason


def test_a_private_jsonl_line_nested_1500_deep_is_quarantined_alone(db_url, tmp_path):
    lines = PRIVATE_JSONL.read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[1])
    bad["description"] = "@@"
    lines[1] = json.dumps(bad).replace('"@@"', deep(1500))
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = run_ingest(db_url, path)
    [(locator, _, reason)] = stored(db_url)["quarantine"]
    assert locator == "line 2" and "nested more than" in reason
    assert report.total("new") == len(lines) - 1


def test_a_private_json_array_with_a_deep_record_keeps_the_others(db_url, tmp_path):
    items = [json.loads(line) for line in PRIVATE_JSONL.read_text(encoding="utf-8").splitlines()]
    text = json.dumps(items).replace(json.dumps(items[0]["title"]), deep(3000), 1)
    path = tmp_path / "p.json"
    path.write_text(text, encoding="utf-8")
    report = run_ingest(db_url, path)
    [(locator, _, reason)] = stored(db_url)["quarantine"]
    assert locator == "record 1" and "nested more than" in reason
    assert report.total("new") == len(items) - 1


def test_a_string_over_the_field_limit_is_quarantined_alone(db_url, tmp_path):
    pkg = package()
    releases = distinct_releases(pkg, 3)
    releases[0]["tender"]["description"] = "a" * (bounded.MAX_STRING + 1)
    run_ingest(db_url, write_json(tmp_path / "big.json", {**pkg, "releases": releases}))
    got = stored(db_url)
    assert got["ocids"] == {releases[1]["ocid"], releases[2]["ocid"]}
    [(locator, _, reason)] = got["quarantine"]
    assert locator == "release 1" and "characters long" in reason


# Peak memory from VmHWM: ru_maxrss survives exec on Linux, so a child forked from a large pytest
# process would report the parent's size.
_MEASURE = """
import re, sys
from broker.sources.detect import detect_format
from broker.sources.registry import read
fmt = detect_format(sys.argv[1])
items = list(read(sys.argv[1], fmt))
peak = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) // 1024
print(fmt, len(items), [i.kind for i in items][-1], peak)
"""


def _peak_mb(path: Path) -> tuple[str, int]:
    """Read a file in a child process capped at 2 GB of address space; its peak resident memory in MB."""
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
    done = subprocess.run([sys.executable, "-c", limit + _MEASURE, str(path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    fmt, count, last, peak = done.stdout.split()
    return f"{fmt} {count} {last}", int(peak)


def test_memory_stays_flat_as_depth_grows(tmp_path):
    """Before: a 200 KB file nested deep took 23 GB before the kernel killed it."""
    peaks = []
    for depth in (1_000, 100_000):
        path = tmp_path / f"deep{depth}.json"
        path.write_text('{"uri": "u", "publishedDate": "2025-01-01T00:00:00Z", "releases": [{"ocid": "o", '
                        '"x": ' + deep(depth) + "}]}", encoding="utf-8")
        assert path.stat().st_size > 2 * depth
        what, peak = _peak_mb(path)
        assert what == "ocds_release_package 1 error"
        peaks.append(peak)
    assert peaks[1] < 200 and peaks[1] - peaks[0] < 50, peaks


def test_a_rule_file_nested_1000_deep_is_a_clean_error(tmp_path):
    """Before: `broker rules check` crashed with RecursionError."""
    (tmp_path / "deep.yaml").write_text("rules:\n  - " + "[" * 1000 + "x" + "]" * 1000 + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["rules", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert "deep.yaml:2:" in result.stdout and "nested more than 40 levels deep" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_rule_file_nested_1000_deep_in_block_style_is_a_clean_error(tmp_path):
    (tmp_path / "deep.yaml").write_text("rules:\n  " + "- " * 1000 + "x\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["rules", "check", str(tmp_path)])
    assert result.exit_code == 1 and "nested more than 40 levels deep" in result.stdout


def test_a_target_config_nested_1000_deep_is_a_config_error(tmp_path):
    """Before: yaml.safe_load raised RecursionError."""
    from broker.errors import ConfigError
    from broker.target.config import load_config

    path = tmp_path / "target.yaml"
    path.write_text("target: " + "[" * 1000 + "]" * 1000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="nested more than 40 levels deep"):
        load_config(path)


def test_a_harvested_page_nested_past_the_stack_is_refused_as_malformed():
    from broker.sources.harvest.pages import strict_loads

    with pytest.raises(ValueError, match="nested too deep"):
        strict_loads(deep(100_000))


@pytest.mark.parametrize("kind", ["ocds", "private"])
def test_an_overlong_json_lines_line_is_refused_without_reading_it_whole(db_url, tmp_path, monkeypatch, kind):
    """A line past the limit is skipped in pieces and quarantined; the lines around it are read."""
    monkeypatch.setattr(bounded, "MAX_LINE", 20_000)
    if kind == "ocds":
        good = [json.dumps(r) for r in distinct_releases(package(), 2)]
    else:
        good = PRIVATE_JSONL.read_text(encoding="utf-8").splitlines()[:2]
    assert all(len(line) < 20_000 for line in good)
    path = tmp_path / "long.jsonl"
    path.write_text("\n".join([good[0], '{"x": "' + "y" * 70_000 + '"}', good[1]]) + "\n", encoding="utf-8")
    report = run_ingest(db_url, path)
    [(locator, _, reason)] = stored(db_url)["quarantine"]
    assert locator == "line 2" and "longer than 20,000" in reason
    assert report.total("new") == 2
