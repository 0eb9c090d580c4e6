"""Benchmark: candidate generation and pair features at regional and national scale.

Usage: ``python bench/match_bench_features.py [regional|national ...] [--json]``

Each scale runs in its own process so that its peak memory (``ru_maxrss``) is its own. Reported per
scale, as wall and CPU seconds (the CPU figure is the fairer one on a shared machine): index build;
nightly candidates (new opportunities against every party) and their pair features, with pairs proposed
against all pairs; the rapidfuzz-alone floor (``token_set_ratio`` of capability text against title +
description for the same nightly pairs, one worker and all); candidates for 1 % of parties changed; a full
re-match streamed (candidates and features, never all in memory); peak RSS after each phase.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rapidfuzz import fuzz, process  # noqa: E402

from bench.synthetic import AS_OF, generate  # noqa: E402
from broker.match.candidates import build_index  # noqa: E402
from broker.match.features import build_pair_facts, iter_pair_facts  # noqa: E402


def _timed(fn, *args, **kwargs):
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _rss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _stream_full(index, opps_by_id, parties_by_id) -> tuple[int, int]:
    """A full re-match as the run should do it: candidates and facts streamed, never all in memory."""
    pairs = strong = 0
    facts = iter_pair_facts(index.iter_candidates(), opps_by_id, parties_by_id, as_of=AS_OF)
    for _, f in facts:
        pairs += 1
        strong += f["capability_level"] == "strong"
    return pairs, strong


def run_scale(scale: str) -> dict[str, object]:
    data = generate(scale)
    opps, parties = data.opportunities, data.parties
    opps_by_id = {o.id: o for o in opps}
    parties_by_id = {p.id: p for p in parties}
    rss_data = _rss_mib()
    r: dict[str, object] = {"scale": scale, "parties": len(parties), "opportunities": len(opps),
                            "new_opportunities": len(data.new_opportunity_ids), "rss_after_data_mib": rss_data}
    index, *t = _timed(build_index, opps, parties, as_of=AS_OF)
    r["index_build_s"] = t
    r["live_opportunities"] = live = len(index.active)
    nightly, *t = _timed(index.candidates, opportunity_ids=data.new_opportunity_ids)
    r["nightly_candidates_s"] = t
    r["nightly_pairs"], r["nightly_all_pairs"] = len(nightly), len(data.new_opportunity_ids) * len(parties)
    facts, *t = _timed(build_pair_facts, nightly, opps_by_id, parties_by_id, as_of=AS_OF)
    r["nightly_features_s"] = t
    levels: dict[str, int] = {}
    for f in facts:
        levels[f["capability_level"]] = levels.get(f["capability_level"], 0) + 1
    r["nightly_capability_levels"] = dict(sorted(levels.items()))
    queries = [parties_by_id[c.party_id].capabilities for c in nightly]
    choices = [f"{opps_by_id[c.opportunity_id].title} {opps_by_id[c.opportunity_id].description}"
               for c in nightly]
    _, *r["rapidfuzz_floor_1_worker_s"] = _timed(process.cpdist, queries, choices, scorer=fuzz.token_set_ratio,
                                                 workers=1)
    _, *r["rapidfuzz_floor_all_workers_s"] = _timed(process.cpdist, queries, choices,
                                                    scorer=fuzz.token_set_ratio, workers=-1)
    del facts, queries, choices
    r["rss_after_nightly_mib"] = _rss_mib()
    changed = [p.id for p in parties[:: max(1, len(parties) // 100)]]
    changed_c, *t = _timed(index.candidates, party_ids=changed)
    r["changed_parties"], r["changed_pairs"], r["changed_candidates_s"] = len(changed), len(changed_c), t
    (pairs, strong), *t = _timed(_stream_full, index, opps_by_id, parties_by_id)
    r["full_stream_s"], r["full_pairs"], r["full_all_pairs"], r["full_strong"] = t, pairs, live * len(parties), strong
    r["rss_after_full_mib"] = _rss_mib()
    return r


def _print(r: dict) -> None:
    def t(key: str) -> str:
        wall, cpu = r[key]
        return f"{wall:6.2f} s wall {cpu:6.2f} s CPU"

    print(f"== {r['scale']}: {r['parties']:,} parties, {r['opportunities']:,} opportunities "
          f"({r['live_opportunities']:,} live, {r['new_opportunities']:,} new)")
    print(f"  index build                  {t('index_build_s')}")
    print(f"  nightly candidates           {t('nightly_candidates_s')}  {r['nightly_pairs']:>9,} pairs of "
          f"{r['nightly_all_pairs']:,} ({100 * r['nightly_pairs'] / r['nightly_all_pairs']:.2f} %)")
    print(f"  nightly features             {t('nightly_features_s')}  "
          f"({r['nightly_pairs'] / r['nightly_features_s'][1]:,.0f} pairs per CPU second)")
    print(f"  rapidfuzz token_set_ratio    {t('rapidfuzz_floor_1_worker_s')}  (same pairs, 1 worker)")
    print(f"  rapidfuzz token_set_ratio    {t('rapidfuzz_floor_all_workers_s')}  (same pairs, all workers)")
    print(f"  capability levels (nightly)  {r['nightly_capability_levels']}")
    print(f"  changed parties ({r['changed_parties']})        {t('changed_candidates_s')}  "
          f"{r['changed_pairs']:>9,} pairs")
    print(f"  full re-match, streamed      {t('full_stream_s')}  {r['full_pairs']:>9,} pairs of "
          f"{r['full_all_pairs']:,} ({100 * r['full_pairs'] / r['full_all_pairs']:.2f} %), candidates+features")
    print(f"  peak RSS: data {r['rss_after_data_mib']} MiB, after nightly {r['rss_after_nightly_mib']} MiB, "
          f"after full re-match {r['rss_after_full_mib']} MiB")


def main(argv: list[str]) -> int:
    as_json = "--json" in argv
    scales = [a for a in argv if not a.startswith("--")] or ["regional", "national"]
    if len(scales) == 1 and "--child" in argv:
        print(json.dumps(run_scale(scales[0])))
        return 0
    results = []
    for scale in scales:
        out = subprocess.run([sys.executable, __file__, scale, "--child"], check=True, capture_output=True,
                             text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    if as_json:
        print(json.dumps(results, indent=1))
    else:
        for r in results:
            _print(r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
