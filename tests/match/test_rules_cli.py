"""``broker rules check``: the officer's way to prove a rule change is well formed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker.cli import cli
from broker.match.rulefiles import load_rules

ROOT = Path(__file__).resolve().parents[2]

BAD = """rules:
  - id: too-close
    description: d
    applies_to: opportunity
    when: {field: days_to_deadline, lt: 4.5}
    effect: {reject: true}
    reason: "Deadline in {days} days"
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["rules", *args])
    return result.exit_code, result.stdout, result.stderr


def test_default_rules_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # DIR defaults to rules/ in the current directory
    code, out, _ = run("check")
    rs = load_rules(ROOT / "rules")
    assert code == 0
    assert out == f"{len(rs.rules)} rules in {len(rs.files)} files OK (sha256 {rs.sha256})\n"


def test_json_ok(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "rules", tmp_path / "r")
    code, out, _ = run("check", "--json", str(tmp_path / "r"))
    rs = load_rules(tmp_path / "r")
    assert code == 0
    assert json.loads(out) == {
        "ok": True, "directory": str(tmp_path / "r"), "rules": len(rs.rules),
        "files": [{"name": f.name, "sha256": f.sha256} for f in rs.files], "sha256": rs.sha256, "problems": []}


def test_problems_listed_with_file_line_rule_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BAD)
    (tmp_path / "b.yaml").write_text("rules:\n  - id: x\n")
    code, out, err = run("check", str(tmp_path))
    assert code == 1
    assert out.splitlines() == [
        f"{tmp_path / 'a.yaml'}:5: rule too-close: days_to_deadline expects a whole number, not 4.5 "
        "(no decimals: whole pounds, days or counts)",
        f"{tmp_path / 'a.yaml'}:7: rule too-close: reason placeholder {{days}}: 'days' is not a field of "
        "opportunity facts; write {FIELD} with a field from rules/README.md",
        f"{tmp_path / 'b.yaml'}:2: rule x: missing description, applies_to, when, effect, reason",
    ]
    assert f"3 problems in {tmp_path}" in err and "broker rules check" in err


def test_problems_as_json(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BAD)
    code, out, _ = run("check", "--json", str(tmp_path))
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False
    assert [(p["file"], p["line"], p["rule_id"]) for p in doc["problems"]] == \
        [(str(tmp_path / "a.yaml"), 5, "too-close"), (str(tmp_path / "a.yaml"), 7, "too-close")]


def test_missing_directory(tmp_path: Path) -> None:
    code, out, err = run("check", str(tmp_path / "nope"))
    assert code == 1
    assert out == f"{tmp_path / 'nope'}: no such rules directory\n"


def test_help() -> None:
    result = CliRunner().invoke(cli, ["rules", "check", "--help"])
    assert result.exit_code == 0
    assert "FILE:LINE: rule ID: message" in result.output
    assert "broker rules check rules/" in result.output
