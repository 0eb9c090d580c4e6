"""Pooling: the (profile, notice) pairs a grader should read, and which methods proposed each.

Used to build a labelled set (after its profiles and splits are written) and to extend one when a new
method's unjudged share is high: the top ``depth`` of each method, a CPV-prefix list, and a few random
notices (to estimate what the methods miss), for every profile the set imports.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from broker.evaluation.baselines import cpv_prefix, random_notices
from broker.evaluation.labelled import rank_set
from broker.evaluation.sets import LabelledSet

POOL_COLUMNS = ("profile_id", "opportunity_id", "title", "methods", "graded")


@dataclass(frozen=True)
class PooledPair:
    profile_id: str
    opportunity_id: str
    title: str
    methods: tuple[str, ...]
    graded: bool


def pool(labelled: LabelledSet, *, rules_dir: Path, depth: int = 15, random_k: int = 5,
         workdir: Path | None = None) -> list[PooledPair]:
    """Every pooled pair of every profile the set imports, by profile then opportunity id."""
    # one run per notice group, lists merged as the evaluation merges them
    rankings, live, known = rank_set(labelled, rules_dir=rules_dir, workdir=workdir)
    notices = sorted((n for group in live for n in group), key=lambda n: n.id)
    titles = {n.id: n.title for n in notices}
    out: list[PooledPair] = []
    for pid in sorted(known):
        proposed: dict[str, list[str]] = {}
        for method, ranked in rankings.items():
            for oid in ranked.get(pid, [])[:depth]:
                proposed.setdefault(oid, []).append(method)
        for oid in cpv_prefix(known[pid].cpv_codes, notices)[:depth]:
            proposed.setdefault(oid, []).append("cpv")
        for oid in random_notices(pid, notices, random_k, proposed):
            proposed.setdefault(oid, []).append("random")
        judged = labelled.grades.get(pid, {})
        out += [PooledPair(pid, oid, titles.get(oid, ""), tuple(ms), oid in judged)
                for oid, ms in sorted(proposed.items())]
    return out


def write_pool(pairs: list[PooledPair], path: Path, *, unjudged_only: bool = True) -> int:
    """Write the pool as CSV (``methods`` ``;``-separated); returns the number of rows written."""
    rows = [p for p in pairs if not (unjudged_only and p.graded)]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(POOL_COLUMNS)
        for p in rows:
            writer.writerow([p.profile_id, p.opportunity_id, p.title, ";".join(p.methods), "yes" if p.graded else "no"])
    return len(rows)
