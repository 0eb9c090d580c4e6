"""Benchmark: candidate generation and pair features at regional and national scale.

Usage: ``python bench/match_bench_features.py [regional|national ...] [--json]``

Each scale runs in its own process so that its peak memory (``ru_maxrss``) is its own. Reported per
scale: index build, full re-match and nightly candidate generation (new opportunities against every
party), pairs proposed against all pairs, pair-feature time for the nightly and the full candidate sets,
and the rapidfuzz-alone floor: ``token_set_ratio`` of capability text against title + description for
the same nightly pairs (one core, then both).
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
from broker.match.features import build_pair_facts  # noqa: E402


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def run_scale(scale: str) -> dict[str, object]:
    data, t_gen = _timed(generate, scale)
    opps, parties = data.opportunities, data.parties
    opps_by_id = {o.id: o for o in opps}
    parties_by_id = {p.id: p for p in parties}
    index, t_index = _timed(build_index, opps, parties, as_of=AS_OF)
    nightly, t_nightly = _timed(index.candidates, opportunity_ids=data.new_opportunity_ids)
    full, t_full = _timed(index.candidates)
    changed = [p.id for p in parties[:: max(1, len(parties) // 100)]]
    changed_c, t_changed = _timed(index.candidates, party_ids=changed)
    facts_n, t_feat_n = _timed(build_pair_facts, nightly, opps_by_id, parties_by_id, as_of=AS_OF)
    facts_f, t_feat_f = _timed(build_pair_facts, full, opps_by_id, parties_by_id, as_of=AS_OF)
    queries = [parties_by_id[c.party_id].capabilities for c in nightly]
    choices = [f"{opps_by_id[c.opportunity_id].title} {opps_by_id[c.opportunity_id].description}"
               for c in nightly]
    _, t_rf1 = _timed(process.cpdist, queries, choices, scorer=fuzz.token_set_ratio, workers=1)
    _, t_rf2 = _timed(process.cpdist, queries, choices, scorer=fuzz.token_set_ratio, workers=-1)
    live = len(index.active)
    levels: dict[str, int] = {}
    for f in facts_n:
        levels[f["capability_level"]] = levels.get(f["capability_level"], 0) + 1
    return {
        "scale": scale, "parties": len(parties), "opportunities": len(opps), "live_opportunities": live,
        "new_opportunities": len(data.new_opportunity_ids), "generate_s": round(t_gen, 2),
        "index_build_s": round(t_index, 2),
        "nightly_candidates_s": round(t_nightly, 2), "nightly_pairs": len(nightly),
        "nightly_all_pairs": len(data.new_opportunity_ids) * len(parties),
        "full_candidates_s": round(t_full, 2), "full_pairs": len(full), "full_all_pairs": live * len(parties),
        "changed_parties": len(changed), "changed_candidates_s": round(t_changed, 2),
        "changed_pairs": len(changed_c),
        "nightly_features_s": round(t_feat_n, 2), "full_features_s": round(t_feat_f, 2),
        "nightly_features_pairs_per_s": round(len(nightly) / t_feat_n) if t_feat_n else 0,
        "full_features_pairs_per_s": round(len(facts_f) / t_feat_f) if t_feat_f else 0,
        "rapidfuzz_token_set_1core_s": round(t_rf1, 2), "rapidfuzz_token_set_all_cores_s": round(t_rf2, 2),
        "nightly_capability_levels": dict(sorted(levels.items())),
        "nightly_blocking_plus_features_s": round(t_nightly + t_feat_n, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _print(r: dict[str, object]) -> None:
    print(f"== {r['scale']}: {r['parties']:,} parties, {r['opportunities']:,} opportunities "
          f"({r['live_opportunities']:,} live, {r['new_opportunities']:,} new)")
    print(f"  index build            {r['index_build_s']:>7} s")
    print(f"  nightly candidates     {r['nightly_candidates_s']:>7} s  {r['nightly_pairs']:>10,} pairs "
          f"of {r['nightly_all_pairs']:,} ({100 * r['nightly_pairs'] / r['nightly_all_pairs']:.2f} %)")
    print(f"  full re-match cands    {r['full_candidates_s']:>7} s  {r['full_pairs']:>10,} pairs "
          f"of {r['full_all_pairs']:,} ({100 * r['full_pairs'] / r['full_all_pairs']:.2f} %)")
    print(f"  changed parties ({r['changed_parties']})  {r['changed_candidates_s']:>7} s  "
          f"{r['changed_pairs']:>10,} pairs")
    print(f"  nightly features       {r['nightly_features_s']:>7} s  ({r['nightly_features_pairs_per_s']:,} pairs/s)")
    print(f"  full features          {r['full_features_s']:>7} s  ({r['full_features_pairs_per_s']:,} pairs/s)")
    print(f"  rapidfuzz floor        {r['rapidfuzz_token_set_1core_s']:>7} s one core, "
          f"{r['rapidfuzz_token_set_all_cores_s']} s all cores (token_set_ratio, nightly pairs)")
    print(f"  nightly blocking+features {r['nightly_blocking_plus_features_s']} s (+ index build)")
    print(f"  capability levels (nightly) {r['nightly_capability_levels']}")
    print(f"  peak RSS               {r['peak_rss_mib']:>7} MiB")


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
