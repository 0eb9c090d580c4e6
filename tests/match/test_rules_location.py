"""The default rules ship with the package: `broker match` works from any folder; --rules and BROKER_RULES."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
from sqlalchemy import select
from testpaths import FIXTURES, ROOT

from broker.errors import ConfigError
from broker.match.rulefiles import load_rules
from broker.match.rulesdir import PACKAGED_RULES, rules_location
from broker.store.engine import make_engine, session_factory
from broker.store.models import MatchRun

CSV = str(FIXTURES / "opportunities" / "cf_export_2020_sample.csv")
VCSES = str(FIXTURES / "directory" / "vcses.csv")


def test_the_packaged_rules_are_the_repository_rules():
    assert PACKAGED_RULES.resolve().is_relative_to((ROOT / "broker").resolve()) or \
        PACKAGED_RULES.resolve() == (ROOT / "rules").resolve()
    assert load_rules(PACKAGED_RULES).sha256 == load_rules(ROOT / "rules").sha256


def test_package_data_ships_every_rule_file():
    # The wheel takes broker's package data by these globs: every rule file must fall under one of them.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["broker"]
    package = ROOT / "broker"
    shipped = {p.resolve() for g in globs for p in package.glob(g) if p.is_file()}
    rule_files = sorted(p for p in (ROOT / "rules").iterdir() if p.suffix in (".yaml", ".yml"))
    assert rule_files
    assert all(p.resolve() in shipped for p in rule_files)


def test_rules_location_names_its_source(tmp_path):
    assert rules_location(None).source == "packaged"
    assert rules_location(tmp_path).to_json() == {"source": "--rules", "directory": str(tmp_path)}
    with pytest.raises(ConfigError, match=r"no such folder .*BROKER_RULES.*unset BROKER_RULES"):
        rules_location(tmp_path / "missing", "BROKER_RULES")


def _rules_from(db_url: str) -> list[dict]:
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        found = [r.scope["rules_from"] for r in s.scalars(select(MatchRun).order_by(MatchRun.seq))]
    engine.dispose()
    return found


def test_match_from_any_folder_uses_the_shipped_rules_and_records_which(run, db_url, tmp_path, monkeypatch):
    assert run("ingest", CSV).exit_code == 0
    assert run("directory", "import", VCSES).exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no rules/ here
    monkeypatch.delenv("BROKER_RULES", raising=False)
    first = run("match", "--as-of", "2020-04-16", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["counts"]["matched"] > 0
    mine = tmp_path / "mine"
    shutil.copytree(ROOT / "rules", mine)
    monkeypatch.setenv("BROKER_RULES", str(mine))
    assert run("match", "--as-of", "2020-04-16", "--full").exit_code == 0
    assert run("match", "--as-of", "2020-04-16", "--full", "--rules", str(ROOT / "rules")).exit_code == 0
    assert [r["source"] for r in _rules_from(db_url)] == ["packaged", "BROKER_RULES", "--rules"]
    assert _rules_from(db_url)[1]["directory"] == str(mine)


def test_a_missing_rules_folder_is_one_clear_line(run, tmp_path, monkeypatch):
    monkeypatch.setenv("BROKER_RULES", str(tmp_path / "gone"))
    result = run("match", "--as-of", "2020-04-16")
    assert result.exit_code == 2
    assert "no such folder" in result.output and "BROKER_RULES" in result.output
    assert "Traceback" not in result.output


def test_rules_check_defaults_to_the_shipped_rules(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from broker.cli import cli

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["rules", "check", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["directory"] == str(Path(PACKAGED_RULES))
