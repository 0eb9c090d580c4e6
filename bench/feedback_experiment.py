"""Does feedback help? Earlier nights' labels fed back, quality measured on the later nights only.

Usage: ``python bench/feedback_experiment.py [--split tune|test|all]``

The labelled notices are split by publication date: notices published before the median date are the
"earlier nights", the rest the "later nights". For each profile, the items the matcher would have shown
on the earlier nights (its eligible pairs at or above the match floor, best first, up to the digest cap of
10) are fed back with their grades ("interested" for grade 1-2, "not relevant" for 0), Rocchio terms are
learned (broker.match.feedback) and the later nights' eligible pairs are ranked again. Prints nDCG@10,
recall@20 and noise@10 on the later notices without and with feedback. Eligibility, boosts and the floor
are the shipped rules' (one full run through the store with no floor, as bench/relevance_tune.py does).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.relevance_tune import LABELLED, NOTICES, collect_views, load_grades  # noqa: E402
from broker.evaluation.metrics import ndcg_at, noise_at, recall_at  # noqa: E402
from broker.match.feedback import INTERESTED, NOT_RELEVANT, rocchio_terms  # noqa: E402
from broker.match.params import MatchParams  # noqa: E402
from broker.match.relevance import RelevanceModel  # noqa: E402
from broker.normalise.cf_csv import cf_record_id  # noqa: E402

CAP = 10


def published() -> dict[str, str]:
    with open(LABELLED / NOTICES, encoding="utf-8-sig", newline="") as fh:
        return {cf_record_id(r["Organisation Name"], r["Notice Identifier"]): r["Published Date"]
                for r in csv.DictReader(fh)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="tune", choices=("tune", "test", "all"))
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    verbose = args.verbose
    floor = MatchParams().min_score
    model = RelevanceModel()
    with tempfile.TemporaryDirectory() as tmp:
        pairs, opps, parties = collect_views(args.split, model.params, Path(tmp))
    dates = published()
    cut = sorted(dates[o] for o in opps)[len(opps) // 2]
    early = {o for o in opps if dates[o] < cut}
    grades = load_grades(LABELLED, args.split)

    def ranking(party, opp_ids: list[str]) -> list[str]:
        scored = []
        for o in opp_ids:
            score = model.score(party, opps[o]).percent + pairs[(party.id, o)]
            if score >= floor:
                scored.append((-score, o))
        return [o for _, o in sorted(scored)]

    results: dict[str, list[tuple[float, float, float]]] = {"without": [], "with": []}
    shown_early = fed = 0
    for pid in sorted(grades):
        eligible = sorted(o for (p, o) in pairs if p == pid)
        later_grades = {o: g for o, g in grades[pid].items() if o not in early}
        if not any(g >= 1 for g in later_grades.values()):
            continue  # nothing relevant on the later nights: nDCG and recall undefined
        party = parties.get(pid)
        if party is None:
            continue  # a profile the directory import refused
        shown = ranking(party, [o for o in eligible if o in early])[:CAP]
        shown_early += len(shown)
        feedback = [(INTERESTED if grades[pid].get(o, 0) >= 1 else NOT_RELEVANT, opps[o]) for o in shown]
        fed += bool(feedback)
        later = [o for o in eligible if o not in early]
        learned = replace(party, feedback_terms=rocchio_terms(model, feedback)) if feedback else party
        for name, who in (("without", party), ("with", learned)):
            r = ranking(who, later)
            if verbose and feedback:
                print(pid, name, [(o[:30], later_grades.get(o, 0)) for o in r[:5]], who.feedback_terms[:6])
            results[name].append((ndcg_at(r, later_grades, 10), recall_at(r, later_grades, 20),
                                  noise_at(r, later_grades, 10)))
    print(f"split {args.split}: earlier nights = notices published before {cut[:10]} ({len(early)} of {len(opps)}); "
          f"{len(results['with'])} profiles with relevant later notices, {fed} gave feedback on "
          f"{shown_early} earlier items")
    print(f"{'':10}{'nDCG@10':>9}{'R@20':>7}{'noise@10':>10}")
    for name, rows in results.items():
        a = np.array(rows)
        print(f"{name:10}{a[:, 0].mean():9.3f}{a[:, 1].mean():7.3f}{a[:, 2].mean():10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
