"""Benchmark: `broker audit replay` against the run it replays, on synthetic regional or national data.

Usage: ``python bench/replay_bench.py [regional|national] [--db URL] [--json]``

The synthetic views (bench/synthetic.py) are fed to the real ``run_match`` (its ``load_inputs`` is swapped
for one returning them; everything else, snapshot, decision rows, matches and the audit chain, is the real
store path). Runs, each in a child process of its own so its peak RSS is its own:

1. national: a full run on every opportunity but tonight's new ones (the night before), then the nightly
   incremental run once the 1,000 new ones arrive; regional (where every notice is new): one full run;
2. a replay of each, in a fresh process, as an auditor would run it.

Reported as wall and CPU seconds and the replay/original ratio. The original includes writing the
decisions; the replay reads them back and recomputes every stored row's hash as well as re-deciding it.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.synthetic import AS_OF, generate  # noqa: E402
from broker.audit.replay import replay_run  # noqa: E402
from broker.match import service  # noqa: E402
from broker.match.views import view_hash  # noqa: E402
from broker.store.engine import make_engine, session_factory, upgrade  # noqa: E402


def _rss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _inputs(opps, parties) -> service.Inputs:
    hashes = {("opportunity", o.id): view_hash(o) for o in opps}
    hashes.update({("party", p.id): view_hash(p) for p in parties})
    return service.Inputs(sorted(opps, key=lambda o: o.id), sorted(parties, key=lambda p: p.id), hashes)


def child_run(scale: str, db_url: str, which: str) -> dict[str, object]:
    """One original run: ``night-before`` (full, without tonight's new notices), ``nightly`` (incremental,
    with them) or ``full`` (everything)."""
    data = generate(scale)
    new = set(data.new_opportunity_ids) if which == "night-before" else set()
    opps = [o for o in data.opportunities if o.id not in new]
    inputs = _inputs(opps, data.parties)
    service.load_inputs = lambda session, as_of: inputs  # the synthetic store
    engine = make_engine(db_url)
    wall, cpu = time.perf_counter(), time.process_time()
    summary = service.run_match(session_factory(engine), as_of=AS_OF, rules_dir=ROOT / "rules",
                                full=which != "nightly")
    out = {"run_id": summary.run_id, "mode": summary.mode, "wall_s": time.perf_counter() - wall,
           "cpu_s": time.process_time() - cpu, "counts": summary.counts, "rss_mib": _rss_mib()}
    engine.dispose()
    return out


def child_replay(db_url: str, run_id: str) -> dict[str, object]:
    engine = make_engine(db_url)
    wall, cpu = time.perf_counter(), time.process_time()
    with session_factory(engine)() as session:
        report = replay_run(session, run_id)
    out = {"run_id": run_id, "identical": report.identical, "decisions": report.decisions,
           "problems": report.problems[:3], "wall_s": time.perf_counter() - wall,
           "cpu_s": time.process_time() - cpu, "rss_mib": _rss_mib()}
    engine.dispose()
    return out


def _child(*args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--child":
        kind, rest = argv[1], argv[2:]
        result = child_run(*rest) if kind == "run" else child_replay(*rest)
        print(json.dumps(result))
        return 0
    scale = next((a for a in argv if a in ("regional", "national")), "regional")
    db_url = argv[argv.index("--db") + 1] if "--db" in argv else None
    with tempfile.TemporaryDirectory() as tmp:
        db_url = db_url or f"sqlite:///{tmp}/bench.db"
        engine = make_engine(db_url)
        upgrade(engine)
        engine.dispose()
        results = []
        # Every regional notice is "new" (bench/synthetic.py SCALES): there it is one full run.
        runs = ["full"] if scale == "regional" else ["night-before", "nightly"]
        for which in runs:
            original = _child("run", scale, db_url, which)
            replay = _child("replay", db_url, str(original["run_id"]))
            results.append({"scale": scale, "run": which, "original": original, "replay": replay,
                            "ratio_wall": replay["wall_s"] / original["wall_s"],
                            "ratio_cpu": replay["cpu_s"] / original["cpu_s"]})
    if "--json" in argv:
        print(json.dumps(results, indent=1))
        return 0
    for r in results:
        o, p = r["original"], r["replay"]
        c = o["counts"]
        print(f"== {r['scale']} {r['run']} ({o['mode']}, {o['run_id']}): {c['opportunities']:,} opportunities, "
              f"{c['parties']:,} parties, {c['pairs_through_rules']:,} pairs through the rules, "
              f"{p['decisions']:,} decisions")
        print(f"  original run  {o['wall_s']:8.1f} s wall {o['cpu_s']:8.1f} s CPU  peak RSS {o['rss_mib']} MiB")
        print(f"  replay        {p['wall_s']:8.1f} s wall {p['cpu_s']:8.1f} s CPU  peak RSS {p['rss_mib']} MiB  "
              f"{'identical' if p['identical'] else 'DIFFERS ' + str(p['problems'])}")
        print(f"  replay / original: {r['ratio_wall']:.2f} wall, {r['ratio_cpu']:.2f} CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
