"""Ingest throughput and peak memory.

Usage: python bench/ingest_bench.py [--releases N] [--db URL]

1. Ingests the largest shipped OCDS fixture (cold, then again to time the idempotent no-op path).
2. Writes a synthetic release package of N releases (default 20,000) made by re-numbering real Contracts
   Finder releases, and ingests it in a child process, reporting releases/s and the child's peak RSS.
   Peak RSS that stays flat as N grows is the evidence that ingest streams (it must not load a file whole).
Prints one line per measurement; no thresholds are asserted here (tests never time things).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "opportunities"


def largest_ocds_fixture() -> Path:
    candidates = [p for p in FIXTURES.glob("*.json") if "fts" not in p.name]
    return max(candidates, key=lambda p: p.stat().st_size)


def write_synthetic(path: Path, n: int) -> None:
    """A release package of n releases cloned from real ones with fresh ocids, written streaming."""
    source = json.loads(largest_ocds_fixture().read_text(encoding="utf-8"))["releases"]
    with path.open("w", encoding="utf-8") as out:
        out.write('{"uri":"synthetic","version":"1.1","publishedDate":"2025-01-01T00:00:00Z",'
                  '"publisher":{"name":"bench"},"releases":[\n')
        for i in range(n):
            release = dict(source[i % len(source)])
            release["ocid"] = f"ocds-b5fd17-bench-{i:08d}"
            release["id"] = f"bench-{i:08d}"
            if i:
                out.write(",\n")
            out.write(json.dumps(release, ensure_ascii=False))
        out.write("\n]}\n")


# Runs `broker ARGS` and reports the process's own peak RSS on stderr when it exits.
_CHILD = ("import resource, runpy, sys\n"
          "sys.argv = ['broker', *sys.argv[1:]]\n"
          "try:\n    runpy.run_module('broker', run_name='__main__')\n"
          "finally:\n    print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")


def timed_child(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run `broker ARGS` in a child; return wall seconds, its peak RSS in MiB, and its stdout."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        sys.exit(f"command failed ({proc.returncode}): broker {' '.join(args)}\n{proc.stderr}")
    peak_kb = next(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_KB"))
    return wall, peak_kb / 1024, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", type=int, default=20_000)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite:///{tmp}/bench.db"
        env = dict(os.environ, BROKER_DB=db)
        subprocess.run([sys.executable, "-m", "broker", "init"], env=env, check=True, capture_output=True)
        fixture = largest_ocds_fixture()
        n_fixture = len(json.loads(fixture.read_text(encoding="utf-8"))["releases"])
        for label in ("cold", "again (no-op)"):
            wall, rss, _ = timed_child(["ingest", "--json", str(fixture)], env)
            print(f"fixture {fixture.name} ({n_fixture} releases, {fixture.stat().st_size / 1e6:.1f} MB) {label}: "
                  f"{wall:.2f} s, {n_fixture / wall:,.0f} releases/s, peak RSS {rss:.0f} MiB")
        synthetic = Path(tmp) / "synthetic.json"
        write_synthetic(synthetic, args.releases)
        size = synthetic.stat().st_size / 1e6
        wall, rss, out = timed_child(["ingest", "--json", str(synthetic)], env)
        summary = json.loads(out)["summary"]
        print(f"synthetic package ({args.releases} releases, {size:.0f} MB): {wall:.1f} s, "
              f"{args.releases / wall:,.0f} releases/s, peak RSS {rss:.0f} MiB, summary {summary}")


if __name__ == "__main__":
    main()
