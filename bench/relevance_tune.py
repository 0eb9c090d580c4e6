"""Tune the relevance model on the labelled set's tune split only, by leave-one-profile-out cross-validation.

Usage: ``python bench/relevance_tune.py [--split tune] [--set k=v ...]``

Loads the labelled set through the normal ingest and directory code into a scratch database, runs one
full match with no floor (``min_score`` 0, every candidate scored), and for every eligible pair (not
rejected by a rule) of the split's profiles computes the model's raw score and its share of the best
possible. Then:

1. fits the calibration (logistic regression of "graded relevant" on ``log(1 + raw)`` and the share), on
   all profiles but one, and predicts the held-out profile's pairs (leave-one-profile-out);
2. ranks each profile's pairs by the held-out calibrated percent plus the other rules' points, and cuts
   the list at each candidate floor; prints nDCG@10, recall@20, noise@10 and empty profiles per floor;
3. prints the calibration fitted on every profile of the split (what goes into ``RelevanceParams``).

``--set`` overrides ``RelevanceParams`` fields (e.g. ``--set expansion_weight=0``) to compare variants.
Never tune on the ``test`` split: report it with ``broker eval --split test``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from broker.directory import import_directory  # noqa: E402
from broker.evaluation.sets import load_set  # noqa: E402

_SET = load_set(ROOT / "fixtures" / "labelled")
AS_OF = _SET.as_of
NOTICES = _SET.notice_files[0]  # absolute: ``LABELLED / NOTICES`` is the file itself


def load_grades(folder: Path, split: str) -> dict[str, dict[str, int]]:
    """The graded pairs of ``split``'s profiles (the labelled set of ``folder``)."""
    labelled = load_set(folder)
    return {p: labelled.grades[p] for p in labelled.profiles_in(split)}
from broker.evaluation.metrics import ndcg_at, noise_at, recall_at  # noqa: E402
from broker.ingest import ingest  # noqa: E402
from broker.match.candidates import CandidateParams  # noqa: E402
from broker.match.params import MatchParams  # noqa: E402
from broker.match.relevance import RelevanceModel, RelevanceParams  # noqa: E402
from broker.match.service import load_inputs, run_match  # noqa: E402
from broker.store.engine import make_engine, session_factory, upgrade  # noqa: E402
from broker.store.models import Decision  # noqa: E402

LABELLED = ROOT / "fixtures" / "labelled"
FLOORS = (0, 3, 5, 7, 10, 13, 16, 20, 25, 30, 40)


def _params(overrides: list[str]) -> RelevanceParams:
    kinds = {f.name: f.type for f in fields(RelevanceParams)}
    values = {}
    for item in overrides:
        name, value = item.split("=", 1)
        values[name] = int(value) if kinds[name] in (int, "int") else float(value)
    return replace(RelevanceParams(), **values)


def collect_views(split: str, rel: RelevanceParams, workdir: Path) -> tuple[dict, dict, dict]:
    """({(party, notice): other rules' points} of every eligible pair of the split's profiles, the
    notices' views, the parties' views), from one full run with no floor."""
    engine = make_engine(f"sqlite:///{workdir / 'tune.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    ingest(sessions, [str(LABELLED / NOTICES)])
    with sessions.begin() as session:
        import_directory(session, LABELLED / "profiles.csv")
    params = MatchParams(min_score=0, candidates=CandidateParams(min_probability=1), relevance=rel)
    run = run_match(sessions, as_of=AS_OF, rules_dir=ROOT / "rules", full=True, params=params)
    grades = load_grades(LABELLED, split)
    boosts = {}
    with sessions() as session:
        inputs = load_inputs(session, AS_OF, rel)
        opps = {o.id: o for o in inputs.opportunities}
        parties = {p.id: p for p in inputs.parties}
        for d in session.scalars(select(Decision).where(Decision.run_id == run.run_id, Decision.stage == "pair",
                                                        Decision.outcome != "rejected")):
            if d.party_id in grades:
                cap = sum(f["points"] for f in d.firings if f["rule_id"] == "capability-relevance")
                boosts[(d.party_id, d.opportunity_id)] = d.score - cap
    engine.dispose()
    return boosts, opps, parties


def collect(split: str, rel: RelevanceParams, workdir: Path) -> list[dict]:
    """Every eligible scored pair of the split's profiles: profile, notice, raw, norm, boost, grade."""
    boosts, opps, parties = collect_views(split, rel, workdir)
    grades = load_grades(LABELLED, split)
    model = RelevanceModel(rel)
    rows = []
    for (pid, oid), boost in sorted(boosts.items()):
        r = model.score(parties[pid], opps[oid])
        rows.append({"party": pid, "opp": oid, "raw": r.raw, "norm": r.norm, "boost": boost,
                     "grade": grades[pid].get(oid, 0)})
    return rows


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> np.ndarray:
    """Newton's method for L2-regularised logistic regression (intercept unregularised)."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    reg = np.eye(xb.shape[1]) * l2
    reg[0, 0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        grad = xb.T @ (p - y) + reg @ w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def _features(rows: list[dict]) -> np.ndarray:
    return np.array([[math.log1p(r["raw"]), r["norm"]] for r in rows])


def cross_validate(rows: list[dict], split: str, boost_scale: float = 1.0) -> None:
    grades = load_grades(LABELLED, split)
    profiles = sorted(grades)
    pct: dict[tuple[str, str], float] = {}
    for held in profiles:
        train = [r for r in rows if r["party"] != held and r["raw"] > 0]
        test = [r for r in rows if r["party"] == held]
        w = fit_logistic(_features(train), np.array([1.0 if r["grade"] >= 1 else 0.0 for r in train]))
        for r in test:
            z = w[0] + w[1] * math.log1p(r["raw"]) + w[2] * r["norm"]
            pct[(r["party"], r["opp"])] = 0.0 if r["raw"] <= 0 else 100.0 / (1.0 + math.exp(-z))
    nd, rc = [], []
    for prof in profiles:
        ranking = [o for _, o in sorted((-pct[(r["party"], r["opp"])], r["opp"]) for r in rows if r["party"] == prof)]
        nd.append(ndcg_at(ranking, grades[prof], 10))
        rc.append(recall_at(ranking, grades[prof], 20))
    print(f"ranking alone (unrounded, no rules): nDCG@10 {np.mean(nd):.3f} R@20 {np.mean(rc):.3f}")
    print(f"{'floor':>6}{'nDCG@10':>9}{'R@20':>7}{'noise@10':>10}{'empty':>7}{'shown':>7}")
    for floor in FLOORS:
        nd, rc, ns, empty, shown = [], [], [], 0, []
        for prof in profiles:
            ranked = sorted(((-(int(pct[(r["party"], r["opp"])] + 0.5) + boost_scale * r["boost"]), r["opp"])
                             for r in rows if r["party"] == prof), key=lambda t: t)
            ranking = [o for s, o in ranked if -s >= floor]
            nd.append(ndcg_at(ranking, grades[prof], 10))
            rc.append(recall_at(ranking, grades[prof], 20))
            ns.append(noise_at(ranking, grades[prof], 10))
            shown.append(len(ranking))
            empty += not ranking
        print(f"{floor:6d}{np.mean(nd):9.3f}{np.mean(rc):7.3f}{np.mean(ns):10.3f}{empty:7d}{np.mean(shown):7.1f}")
    relevant = [r for r in rows if r["grade"] >= 1]
    print(f"{len(rows)} eligible pairs, {len(relevant)} relevant; relevant with no score: "
          f"{sum(r['raw'] <= 0 for r in relevant)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="tune", choices=("tune", "test"))
    ap.add_argument("--boost-scale", type=float, default=1.0, help="scale the other rules' points")
    ap.add_argument("--set", action="append", default=[], help="RelevanceParams field=value")
    args = ap.parse_args()
    if args.split == "test":
        print("warning: report-only; never choose parameters from the test split", file=sys.stderr)
    rel = _params(args.set)
    with tempfile.TemporaryDirectory() as tmp:
        rows = collect(args.split, rel, Path(tmp))
    cross_validate(rows, args.split, args.boost_scale)
    train = [r for r in rows if r["raw"] > 0]
    w = fit_logistic(_features(train), np.array([1.0 if r["grade"] >= 1 else 0.0 for r in train]))
    print(f"calibration on every {args.split} profile: intercept={w[0]:.3f} score_slope={w[1]:.3f} "
          f"norm_slope={w[2]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
