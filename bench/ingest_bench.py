"""Ingest throughput and peak memory.

Usage: python bench/ingest_bench.py [--releases N] [--db URL] [--skip-fixture]

1. Ingests the largest shipped OCDS fixture (cold, then again to time the idempotent no-op path).
2. Writes a synthetic release package of N releases (default 20,000) made by re-numbering real Contracts
   Finder releases, and ingests it in a child process, reporting releases/s and the child's peak RSS.
   Peak RSS that stays flat as N grows is the evidence that ingest streams (it must not load a file whole).
3. In the same run, the floor on the same synthetic file: ``json.load`` of the whole file plus an ocdsmerge
   compile of every ocid, nothing stored (also in a child). The ratio floor time / broker time is printed:
   on a loaded, shared machine only the ratio of two measurements taken together means anything.
4. A digest over what the ingest stored (opportunities, their versions, source records, de-duplication keys,
   releases, quarantine reasons), read with plain SQL so the same bench can check another version of the
   code gives identical results on the same file.
Prints one line per measurement; no thresholds are asserted here (tests never time things).
"""

from __future__ import annotations

import argparse
import hashlib
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
          "finally:\n    u = resource.getrusage(resource.RUSAGE_SELF)\n"
          "    print('PEAK_RSS_KB', u.ru_maxrss, file=sys.stderr)\n"
          "    print('CPU_S', u.ru_utime + u.ru_stime, file=sys.stderr)\n")


def timed_child(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run `broker ARGS` in a child; return wall seconds, its peak RSS in MiB, and its stdout.

    The child's CPU seconds (start-up included) are kept in ``LAST_CPU``: on a shared, loaded machine
    CPU time is steadier than wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        sys.exit(f"command failed ({proc.returncode}): broker {' '.join(args)}\n{proc.stderr}")
    peak_kb = next(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_KB"))
    LAST_CPU[:] = [float(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("CPU_S")]
    return wall, peak_kb / 1024, proc.stdout


LAST_CPU: list[float] = []


# The floor: json.load of the whole file, then ocdsmerge compiles every ocid; nothing stored.
_FLOOR = ("import json, resource, sys, time\n"
          "from broker.normalise.compile import merger\n"
          "m = merger()\n"
          "t0, c0 = time.perf_counter(), time.process_time()\n"
          "with open(sys.argv[1], encoding='utf-8') as fh:\n    releases = json.load(fh)['releases']\n"
          "by_ocid = {}\n"
          "for r in releases:\n    by_ocid.setdefault(r['ocid'], []).append(r)\n"
          "for group in by_ocid.values():\n    m.create_compiled_release(group)\n"
          "c0 = time.process_time() - c0\n"
          "print(time.perf_counter() - t0, c0)\n"
          "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")

# What the digest covers: every stored column except surrogate ids and wall-clock metadata.
_DIGEST_QUERIES = (
    "SELECT * FROM opportunities ORDER BY id",
    "SELECT opportunity_id, version, content_hash, record FROM opportunity_versions ORDER BY opportunity_id, version",
    "SELECT source, source_key, opportunity_id, priority, content_hash, record FROM source_records "
    "ORDER BY source, source_key",
    "SELECT key, opportunity_id FROM opportunity_keys ORDER BY key",
    "SELECT ocid, release_id, date, tags, raw_hash, raw, package_meta FROM releases "
    "ORDER BY ocid, release_id, raw_hash",
    "SELECT fingerprint, locator, field, reason FROM quarantine ORDER BY fingerprint",
)


def _canonical(value: object) -> object:
    """JSON columns come back as text on SQLite and as objects on PostgreSQL: compare them parsed."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def store_digest(db: str) -> tuple[str, dict[str, int]]:
    """sha256 over the stored rows (ordered by natural keys), and the row count of each table."""
    from sqlalchemy import create_engine, text

    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            for query in _DIGEST_QUERIES:
                table = query.split(" FROM ")[1].split()[0]
                n = 0
                for row in conn.execute(text(query)):
                    digest.update(json.dumps([_canonical(v) for v in row], sort_keys=True, default=str).encode())
                    n += 1
                counts[table] = n
    finally:
        engine.dispose()
    return digest.hexdigest(), counts


def floor_child(path: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """The floor's own wall and CPU seconds (after imports) and its peak RSS in MiB."""
    proc = subprocess.run([sys.executable, "-c", _FLOOR, str(path)], env=env, capture_output=True, text=True,
                          check=True)
    peak_kb = next(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_KB"))
    wall, cpu = (float(x) for x in proc.stdout.split()[:2])
    return wall, cpu, peak_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", type=int, default=20_000)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--skip-fixture", action="store_true", help="only the synthetic file, floor and digest")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite:///{tmp}/bench.db"
        env = dict(os.environ, BROKER_DB=db)
        subprocess.run([sys.executable, "-m", "broker", "init"], env=env, check=True, capture_output=True)
        fixture = largest_ocds_fixture()
        n_fixture = len(json.loads(fixture.read_text(encoding="utf-8"))["releases"])
        for label in () if args.skip_fixture else ("cold", "again (no-op)"):
            wall, rss, _ = timed_child(["ingest", "--json", str(fixture)], env)
            print(f"fixture {fixture.name} ({n_fixture} releases, {fixture.stat().st_size / 1e6:.1f} MB) {label}: "
                  f"{wall:.2f} s, {n_fixture / wall:,.0f} releases/s, peak RSS {rss:.0f} MiB")
        synthetic = Path(tmp) / "synthetic.json"
        write_synthetic(synthetic, args.releases)
        size = synthetic.stat().st_size / 1e6
        wall, rss, out = timed_child(["ingest", "--json", str(synthetic)], env)
        cpu = LAST_CPU[0]
        summary = json.loads(out)["summary"]
        print(f"synthetic package ({args.releases} releases, {size:.0f} MB): {wall:.1f} s ({cpu:.1f} s CPU, "
              f"start-up included), {args.releases / wall:,.0f} releases/s, peak RSS {rss:.0f} MiB, summary {summary}")
        floor, floor_cpu, floor_rss = floor_child(synthetic, env)
        print(f"floor (json.load + ocdsmerge compile of every ocid, nothing stored): {floor:.1f} s "
              f"({floor_cpu:.1f} s CPU), {args.releases / floor:,.0f} releases/s, peak RSS {floor_rss:.0f} MiB")
        print(f"ratio floor / broker: {floor / wall:.3f}x wall, {floor_cpu / cpu:.3f}x CPU")
        again, _, out = timed_child(["ingest", "--json", str(synthetic)], env)
        print(f"synthetic again (no-op): {again:.1f} s, summary {json.loads(out)['summary']}")
        digest, counts = store_digest(db)
        print(f"store digest {digest} rows {counts}")


if __name__ == "__main__":
    main()
