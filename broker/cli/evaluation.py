"""``broker eval``: matching quality on the labelled set."""

from __future__ import annotations

from pathlib import Path

import click

from broker.cli.common import echo_json, handle_errors, json_option, rules_option
from broker.evaluation.labelled import evaluate
from broker.match.rulesdir import RulesLocation


@click.command("eval")
@click.option("--labelled", "folder", default="fixtures/labelled", show_default=True,
              type=click.Path(file_okay=False, exists=True), help="The labelled set.")
@click.option("--split", type=click.Choice(["test", "tune", "all"], case_sensitive=False), default="test", show_default=True,
              help="Report on the held-out test profiles (tune weights on `tune` only).")
@rules_option
@click.option("--per-profile", is_flag=True, help="Also show each profile's figures.")
@json_option
@handle_errors
def eval_cmd(folder: str, split: str, rules_dir: RulesLocation, per_profile: bool, as_json: bool) -> None:
    """Print nDCG@10, P@5, recall@20 and noise@10 for the matcher and a keyword alert.

    Runs in a scratch database; the database given by --db is not touched.
    """
    result = evaluate(Path(folder), rules_dir=rules_dir.path, split=split)
    if as_json:
        echo_json({"split": result.split, "profiles": result.profiles,
                   "matcher": result.matcher.as_dict(), "keyword_alert": result.keyword_alert.as_dict(),
                   "per_profile": {p: {k: s.as_dict() for k, s in v.items()}
                                   for p, v in result.per_profile.items()} if per_profile else None})
        return
    click.echo(f"Labelled set, {result.split} split, {result.profiles} profiles:")
    click.echo(f"{'':16}{'nDCG@10':>9}{'P@5':>7}{'recall@20':>11}{'noise@10':>10}{'shown':>7}")
    for name, s in (("matcher", result.matcher), ("keyword alert", result.keyword_alert)):
        click.echo(f"{name:16}{s.ndcg_at_10:9.3f}{s.p_at_5:7.3f}{s.recall_at_20:11.3f}{s.noise_at_10:10.3f}"
                   f"{s.returned:7d}")
    if per_profile:
        for profile, scores in result.per_profile.items():
            m, k = scores["matcher"], scores["keyword_alert"]
            click.echo(f"  {profile}: matcher nDCG {m.ndcg_at_10:.2f} noise {m.noise_at_10:.2f} | "
                       f"keyword nDCG {k.ndcg_at_10:.2f} noise {k.noise_at_10:.2f}")


def register(cli: click.Group) -> None:
    cli.add_command(eval_cmd)
