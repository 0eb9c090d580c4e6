"""How fast the rules engine evaluates pair facts with the default rules.

Usage: python bench/rules_bench.py [N] [--session-size S] [--rules DIR] [--repeat R]

Builds N synthetic pair facts (seeded, so every run sees the same facts) with values spread over the
vocabulary, evaluates them with the rules in DIR (default rules/) R times (default 3) in one engine and
prints one JSON line for the fastest run: facts/s by the wall clock and by CPU time (steadier on a shared
machine), firings, sessions, peak RSS. The figure to compare with research/durable-rules.md §3.2 (~25k facts/s for
simple single-fact rules through durable's own dispatcher).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broker.match.rulefiles import load_rules  # noqa: E402
from broker.match.rules import RuleEngine  # noqa: E402
from broker.match.vocabulary import VOCABULARY  # noqa: E402

INTS = {
    "days_to_deadline": lambda r: r.choice([-3, 1, 4, 7, 14, 30, 60, 9999]),
    "capability_score": lambda r: r.randrange(0, 101),
    "keyword_hits": lambda r: r.choice([0, 0, 0, 1, 2, 3, 5]),
    "exclude_hits": lambda r: r.choice([0] * 19 + [1]),
    "value_to_capacity_pct": lambda r: r.choice([-1, 5, 40, 90, 150, 400]),
    "member_count": lambda r: r.choice([1, 1, 1, 3]),
}


def make_fact(rng: random.Random, n: int) -> dict[str, object]:
    fact: dict[str, object] = {"id": f"opp{n // 40}:vcse{n % 40}"}
    for f in VOCABULARY["pair"]:
        if f.type is bool:
            fact[f.name] = rng.random() < 0.3
        elif f.type is int:
            fact[f.name] = INTS[f.name](rng) if f.name in INTS else rng.choice([0, 5_000, 80_000, 1_500_000])
        elif f.values:
            fact[f.name] = rng.choice(f.values)
        else:
            fact[f.name] = rng.choice(["", "Birmingham", "Walsall", "Ynys Môn"])
    return fact


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=50_000)
    ap.add_argument("--session-size", type=int, default=None)
    ap.add_argument("--rules", default=str(ROOT / "rules"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(20240601)
    facts = [make_fact(rng, n) for n in range(args.n)]
    ruleset = load_rules(args.rules)
    kwargs = {"session_size": args.session_size} if args.session_size else {}
    with RuleEngine(ruleset, **kwargs) as engine:
        engine.evaluate("pair", [dict(f, id=f"warm-{f['id']}") for f in facts[:100]])  # registration etc.
        runs = []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            results = engine.evaluate("pair", facts)
            runs.append((time.perf_counter() - t0, time.process_time() - c0))
        stats = dict(engine.stats)
    secs = min(r[0] for r in runs)
    cpu = min(r[1] for r in runs)
    firings = sum(len(r.firings) for r in results)
    print(json.dumps({
        "facts": args.n, "rules": len(ruleset.for_kind("pair")), "secs": round(secs, 3),
        "facts_per_s": round(args.n / secs), "cpu_secs": round(cpu, 3), "facts_per_cpu_s": round(args.n / cpu), "firings": firings, "firings_per_fact": round(firings / args.n, 2),
        "firings_per_s": round(firings / secs), "rejected": sum(r.rejected for r in results),
        "sessions_per_run": stats["sessions"] // (args.repeat + 1), "split_for_hash_collisions": stats["split"],
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
