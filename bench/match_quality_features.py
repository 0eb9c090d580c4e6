"""Quality of blocking and of the capability score on the labelled set (fixtures/labelled).

Usage: ``python bench/match_quality_features.py [tune|test] [--location-bonus N]``

Tune on ``tune`` only; report on ``test`` (fixtures/labelled/README.md). This is a features-only view,
not the matcher: notices become views straight from the CSV (region from the ``Region`` column, no
local authority), every candidate is ranked by ``capability_score`` (plus ``--location-bonus`` when the
work is local, in the cluster or in the region, minus it when the value is beyond capacity), pairs with an
exclude hit or capability level ``none`` are not shown. Prints, per profile and on average: blocking recall
(relevant pairs proposed), nDCG@10, P@5, recall@20 and noise@10, and the Contracts-Finder-style keyword
alert (any keyword in title or description, newest first) on the same profiles.
"""

from __future__ import annotations

import csv
import math
import os
import re
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from broker.match.candidates import CandidateParams, build_index  # noqa: E402
from broker.match.features import build_pair_facts  # noqa: E402
from broker.match.model import OpportunityView, PartyView  # noqa: E402
from broker.normalise.cpv import canonical_code  # noqa: E402

LABELLED = Path(os.environ.get("BROKER_LABELLED_DIR") or ROOT / "fixtures" / "labelled")
AS_OF = date(2020, 4, 16)


def _rows(name: str) -> list[dict[str, str]]:
    with open(LABELLED / name, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _pence(text: str) -> int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value * 100) if value > 1 else None  # 0, 0.01 and 1 are placeholders


def _list(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(";") if s.strip())


def _codes(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c for c in (canonical_code(x) for x in items) if c)


def notices(rows: list[dict[str, str]]) -> list[OpportunityView]:
    out = []
    for r in rows:
        region = r["Region"]
        anywhere = region in ("Any region", "") or "," in region
        out.append(OpportunityView(
            id=f"{r['Organisation Name']}|{r['Notice Identifier']}", title=r["Title"], description=r["Description"],
            buyer_name=r["Organisation Name"], cpv_codes=_codes(tuple(r["Cpv Codes"].replace(",", " ").split())),
            region=None if anywhere else region, in_west_midlands=region == "West Midlands", nationwide=anywhere,
            value_min_pence=_pence(r["Value Low"]), value_max_pence=_pence(r["Value High"])))
    return out


def profiles(rows: list[dict[str, str]]) -> list[PartyView]:
    return [PartyView(
        id=p["id"], name=p["name"], capabilities=p["capabilities"], keywords=_list(p["keywords"]),
        exclude_keywords=_list(p["exclude_keywords"]), cpv_codes=_codes(_list(p["cpv_codes"])),
        service_areas=_list(p["service_areas"]), local_authority=p["local_authority"], cluster=p["cluster"] or None,
        region="West Midlands",
        max_contract_value_pence=_pence(p["max_contract_value_gbp"])) for p in rows]


def _dcg(grades: list[int], k: int = 10) -> float:
    return sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(grades[:k]))


def measures(ranked: list[str], judged: dict[str, int]) -> tuple[float, float, float, float]:
    """(nDCG@10, P@5, recall@20, noise@10) as fixtures/labelled/README.md defines them."""
    grades = [judged.get(i, 0) for i in ranked]
    ideal = _dcg(sorted(judged.values(), reverse=True))
    relevant = {i for i, g in judged.items() if g >= 1}
    shown = grades[:10]
    return (_dcg(grades) / ideal if ideal else 0.0, sum(g >= 1 for g in grades[:5]) / 5,
            len(relevant & set(ranked[:20])) / len(relevant) if relevant else 0.0,
            sum(g == 0 for g in shown) / len(shown) if shown else 0.0)


def main(argv: list[str]) -> int:
    if not (LABELLED / "profiles.csv").exists():
        print(f"no labelled set at {LABELLED}")
        return 1
    split = next((a for a in argv if a in ("tune", "test")), "tune")
    bonus = int(argv[argv.index("--location-bonus") + 1]) if "--location-bonus" in argv else 20
    rows = _rows("cf_export_2020-04-16.csv")
    opps = notices(rows)
    chosen = {r["profile_id"] for r in _rows("splits.csv") if r["split"] == split}
    parties = profiles([p for p in _rows("profiles.csv") if p["id"] in chosen])
    judged: dict[str, dict[str, int]] = {}
    for g in _rows("grades.csv"):
        judged.setdefault(g["profile_id"], {})[f"{g['buyer']}|{g['notice_identifier']}"] = int(g["grade"])
    index = build_index(opps, parties, as_of=AS_OF, params=CandidateParams(skip_inactive=False))
    cands = index.candidates()
    facts = build_pair_facts(cands, {o.id: o for o in opps}, {p.id: p for p in parties}, as_of=AS_OF)
    by_party: dict[str, list] = {}
    for c, f in zip(cands, facts, strict=True):
        by_party.setdefault(c.party_id, []).append((f, c))
    published = {f"{r['Organisation Name']}|{r['Notice Identifier']}": r["Published Date"] for r in rows}
    ours, alert, recall = [], [], []
    for p in parties:
        grades = judged.get(p.id, {})
        pairs = by_party.get(p.id, [])

        def key(fc):
            f, c = fc
            near = f["location_fit"] in ("local", "cluster", "region")
            return (-(f["capability_score"] + bonus * near - bonus * (f["value_fit"] == "beyond")),
                    -f["keyword_hits"], -c.score, c.opportunity_id)

        ranked = [c.opportunity_id for f, c in sorted(pairs, key=key)
                  if f["capability_level"] != "none" and not f["exclude_hits"]]
        relevant = {i for i, g in grades.items() if g >= 1}
        proposed = {c.opportunity_id for _, c in pairs}
        recall.append(len(relevant & proposed) / len(relevant) if relevant else 0.0)
        ours.append(measures(ranked, grades))
        pats = [re.compile(r"\b" + re.escape(k.lower()) + r"\b") for k in p.keywords]
        hits = sorted((o.id for o in opps if any(x.search(f"{o.title} {o.description}".lower()) for x in pats)),
                      key=lambda i: published[i], reverse=True)
        alert.append(measures(hits, grades))
        print(f"{p.id}: blocking recall {recall[-1]:.2f}, proposed {len(proposed)}, shown {len(ranked)}, "
              "nDCG@10 {:.2f} P@5 {:.2f} R@20 {:.2f} noise@10 {:.2f}".format(*ours[-1]))
    n = len(parties)

    def mean(rows_: list[tuple[float, ...]]) -> str:
        cols = [sum(r[i] for r in rows_) / n for i in range(4)]
        return "nDCG@10 {:.3f}  P@5 {:.3f}  recall@20 {:.3f}  noise@10 {:.3f}".format(*cols)

    print(f"== {split} ({n} profiles), location bonus {bonus}")
    print(f"  features ranking  {mean(ours)}  blocking recall {sum(recall) / n:.3f}")
    print(f"  keyword alert     {mean(alert)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
