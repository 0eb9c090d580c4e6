"""``broker rules``: check the rule files (rules/*.yaml) before a run uses them."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from broker.cli.common import echo_json, handle_errors, json_option
from broker.match.rulefiles import check_rules, load_rules
from broker.match.rulesdir import rules_location


@click.group("rules")
def rules_group() -> None:
    """Matching rules: YAML files of conditions, effects and reasons (see rules/README.md)."""


@rules_group.command("check")
@click.argument("directory", required=False, default=None, type=click.Path(path_type=Path))
@json_option
@handle_errors
def check_cmd(directory: Path | None, as_json: bool) -> None:
    """Check every rule file in DIRECTORY (default: the rules shipped with broker) against the fact vocabulary.

    Prints each problem as FILE:LINE: rule ID: message and exits with status 1 if there is any.

    \b
    Example:
        broker rules check rules/
    """
    directory = directory if directory is not None else rules_location(None).path
    problems = check_rules(directory)
    if problems:
        if as_json:
            echo_json({"ok": False, "directory": str(directory),
                       "problems": [{"file": p.file, "line": p.line, "rule_id": p.rule_id, "message": p.message}
                                    for p in problems]})
        else:
            for p in problems:
                click.echo(str(p))
            noun = "problem" if len(problems) == 1 else "problems"
            click.echo(f"{len(problems)} {noun} in {directory}: fix and run `broker rules check {directory}` "
                       "again (format: rules/README.md)", err=True)
        sys.exit(1)
    ruleset = load_rules(directory)
    if as_json:
        echo_json({"ok": True, "directory": str(directory), "rules": len(ruleset.rules),
                   "files": [{"name": f.name, "sha256": f.sha256} for f in ruleset.files],
                   "sha256": ruleset.sha256, "problems": []})
    else:
        click.echo(f"{len(ruleset.rules)} rules in {len(ruleset.files)} files OK (sha256 {ruleset.sha256})")


def register(cli: click.Group) -> None:
    cli.add_command(rules_group)
