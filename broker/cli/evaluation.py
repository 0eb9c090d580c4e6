"""``broker eval``: matching quality on the labelled sets, and the feedback experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from broker.cli.common import echo_json, handle_errors, json_option, rules_option
from broker.evaluation.labelled import METHODS, SetEvaluation, evaluate_set
from broker.evaluation.nights import FeedbackExperiment, run_feedback_experiment
from broker.evaluation.pooling import pool, write_pool
from broker.evaluation.sets import SPLITS, load_set
from broker.match.rulesdir import RulesLocation

DEFAULT_SETS = ("fixtures/labelled", "fixtures/labelled_2")
NAMES = {"matcher": "matcher", "keyword_alert": "keyword alert", "bm25": "plain BM25"}


@click.command("eval")
@click.option("--labelled", "folders", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="A labelled set folder (repeatable; default: fixtures/labelled and fixtures/labelled_2).")
@click.option("--split", type=click.Choice(["each", "test", "tune", "all"], case_sensitive=False), default="each", show_default=True,
              help="Which profiles to report on; `each` prints tune and test. Tune on `tune` only.")
@rules_option
@click.option("--per-profile", is_flag=True, help="Also show each profile's figures.")
@click.option("--feedback-nights", type=click.IntRange(min=2), default=None,
              help="Instead: split the notices into N nights by publication date, feed the labels of what "
                   "was shown back as feedback, and compare later nights with and without it.")
@click.option("--pool-out", type=click.Path(dir_okay=False), default=None,
              help="Instead: write the pooled (profile, notice) pairs no grade covers yet, to grade them.")
@json_option
@handle_errors
def eval_cmd(folders: tuple[str, ...], split: str, rules_dir: RulesLocation, per_profile: bool,
             feedback_nights: int | None, pool_out: str | None, as_json: bool) -> None:
    """Matcher vs a Contracts-Finder-style keyword alert vs plain BM25 on each labelled set.

    Prints nDCG@10, P@5, recall@20, noise@10, unjudged@10 and the profiles left empty, for each set and
    split. Runs in scratch databases; the database given by --db is not touched.
    """
    chosen = folders or tuple(f for f in DEFAULT_SETS if Path(f).is_dir())
    sets = [load_set(f) for f in chosen]
    if pool_out:
        if len(sets) != 1:
            raise click.UsageError("--pool-out works on one set: give exactly one --labelled.")
        pairs = pool(sets[0], rules_dir=rules_dir.path)
        count = write_pool(pairs, Path(pool_out))
        click.echo(f"{count} pooled pairs without a grade written to {pool_out}")
        return
    if feedback_nights:
        experiments = [run_feedback_experiment(s, nights=feedback_nights, rules_dir=rules_dir.path) for s in sets]
        if as_json:
            echo_json({"feedback_experiments": [e.as_dict() for e in experiments]})
        else:
            for e in experiments:
                _print_feedback(e)
        return
    splits = SPLITS if split == "each" else (split,)
    results = [evaluate_set(s, rules_dir=rules_dir.path, splits=splits) for s in sets]
    if as_json:
        echo_json({"sets": [_as_json(r, per_profile, {p: s.splits.get(p, "") for p in r.per_profile})
                            for r, s in zip(results, sets, strict=True)]})
        return
    for result, labelled in zip(results, sets, strict=True):
        _print_set(result)
        if per_profile:
            _print_per_profile(result, labelled.splits, labelled.has_relevant)


def _as_json(result: SetEvaluation, per_profile: bool, splits: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"set": result.set_name, "as_of": result.as_of, "groups": [
        {"as_of": g.as_of, "notices": list(g.files), "live_notices": g.live_notices} for g in result.groups],
        "splits": {
        name: {"profiles": r.profiles, "profiles_with_nothing_relevant": r.nothing_relevant,
               "methods": {m: s.as_dict() for m, s in r.methods.items()},
               "matcher_ndcg_vs": {b: dict(zip(("better", "same", "worse"), v, strict=True))
                                   for b, v in r.head_to_head.items()}}
        for name, r in result.splits.items()}}
    if per_profile:
        out["per_profile"] = {p: {"split": splits[p], **{m: s.as_dict() for m, s in v.items()}}
                              for p, v in result.per_profile.items()}
    return out


def _print_set(result: SetEvaluation) -> None:
    for name, r in result.splits.items():
        runs = "" if len(result.groups) < 2 else f"; one run per notice group, {len(result.groups)} groups"
        click.echo(f"Set {result.set_name} (as of {result.as_of}{runs}), {name} split: {r.profiles} profiles with "
                   f"relevant notices, {r.nothing_relevant} with none")
        click.echo(f"  {'':14}{'nDCG@10':>8}{'P@5':>7}{'R@20':>7}{'noise@10':>9}{'unjudged@10':>12}"
                   f"{'shown':>7}{'left empty':>11}{'shown to none':>14}")
        for method in METHODS:
            m = r.methods[method]
            s = m.scores
            click.echo(f"  {NAMES[method]:14}{s.ndcg_at_10:8.3f}{s.p_at_5:7.3f}{s.recall_at_20:7.3f}"
                       f"{s.noise_at_10:9.3f}{s.unjudged_at_10:12.3f}{s.returned:7d}"
                       f"{m.left_empty:11d}{m.shown_to_nothing_relevant:14.1f}")
        versus = "; ".join(f"vs {NAMES[base]} {up} better, {same} same, {down} worse"
                           for base, (up, same, down) in r.head_to_head.items())
        click.echo(f"  per profile, matcher nDCG@10 {versus}")
        click.echo("")


def _print_per_profile(result: SetEvaluation, splits: dict[str, str], has_relevant: Any) -> None:
    click.echo(f"Per profile, set {result.set_name} (nDCG@10 / R@20 / noise@10 / shown; "
               "'-' = nothing relevant in the set):")
    click.echo(f"  {'profile':9}{'split':6}" + "".join(f"{NAMES[m]:>27}" for m in METHODS))
    for profile, scores in result.per_profile.items():
        cells = []
        for method in METHODS:
            s = scores[method]
            if has_relevant(profile):
                cells.append(f"{s.ndcg_at_10:.2f} / {s.recall_at_20:.2f} / {s.noise_at_10:.2f} / {s.returned:3d}")
            else:
                cells.append(f"- / - / {s.noise_at_10:.2f} / {s.returned:3d}")
        click.echo(f"  {profile:9}{splits.get(profile, ''):6}" + "".join(f"{c:>27}" for c in cells))
    click.echo("")


def _print_feedback(e: FeedbackExperiment) -> None:
    click.echo(f"Feedback experiment, set {e.set_name}: {len(e.nights)} nights by publication date, "
               f"top {e.shown} shown a night; feedback from nights before each one (labels of what was shown)")
    for night in e.nights:
        click.echo(f"  night {night.number}: {night.first} .. {night.last}, {night.notices} notices "
                   f"({night.open} still open on {night.as_of}, the night's run date), "
                   f"{night.profiles} profiles with relevant new notices, feedback given so far {night.feedback}")
    click.echo(f"  quality on nights 2..{len(e.nights)} (new notices of each night):")
    click.echo(f"  {'':18}{'nDCG@10':>8}{'P@5':>7}{'R@20':>7}{'noise@10':>9}{'shown':>7}{'left empty':>11}")
    for arm, m in (("without feedback", e.without), ("with feedback", e.with_feedback)):
        s = m.scores
        click.echo(f"  {arm:18}{s.ndcg_at_10:8.3f}{s.p_at_5:7.3f}{s.recall_at_20:7.3f}{s.noise_at_10:9.3f}"
                   f"{s.returned:7d}{m.left_empty:11d}")
    click.echo(f"  pairs whose ranking changed with feedback: {e.changed_rankings} of {e.evaluated_pairs}")
    click.echo("")


def register(cli: click.Group) -> None:
    cli.add_command(eval_cmd)
