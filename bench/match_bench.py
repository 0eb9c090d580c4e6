"""Benchmark: the whole match run at regional or national scale, on views or through the store.

Usage::

    python bench/match_bench.py [--scale regional|national] [--store none|sqlite|postgres]
                                [--runs nightly,full] [--pg-url URL] [--workdir DIR] [--keep] [--no-floor]
                                [--json-out FILE]

Every measured run is its own child process, so its peak RSS (``ru_maxrss`` at the end of the child) is
that run's own. Reported per run: wall and CPU seconds (CPU is the steadier figure on a shared machine:
the load average is printed at the start and around every child), pairs considered (candidates), pairs
through the rules engine (candidates plus suggested groupings), decisions emitted or stored, matched, peak
RSS, the decision digest (equal digests = identical decisions, for before/after checks of a performance
change) and the floor: rapidfuzz ``token_set_ratio`` alone over the same candidate pairs (party
capabilities against opportunity title + description), measured in a separate child, one worker and all.

``--store none`` (the default) calls ``broker.match.run.evaluate_run`` on the generated views: the full
run over every opportunity, the nightly one with ``RunScope(full=False, opportunity_ids=<the new ones>)``.
``--store sqlite|postgres`` writes the data into a fresh database (opportunities through
``upsert_record``, VCSEs as rows) and measures ``broker.match.service.run_match`` end to end, snapshot,
decision storage and the matches update included: a full run the night before without tonight's new
opportunities (measured too), then tonight's nightly incremental on the next business day (the scope is
printed: the new opportunities, plus near-deadline matches when the rules make pair decisions depend on
the date, which the shipped rules do not), then a full re-match of everything.

Targets (the issue, on this 2-core machine): national nightly in 60 s or less with peak memory under
2 GiB; national full re-match in 15 minutes or less. The PASS/MISS lines are informational: the exit code
is 0 either way.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.synthetic import AS_OF, Synthetic, generate, opportunity_record, vcse_row  # noqa: E402
from broker.audit.digests import decision_digest  # noqa: E402
from broker.match.params import MatchParams  # noqa: E402
from broker.match.rulefiles import load_rules  # noqa: E402
from broker.match.run import RunScope, evaluate_run  # noqa: E402

RULES = ROOT / "rules"
NIGHTLY_TARGET_S, NIGHTLY_RSS_TARGET_MIB, FULL_TARGET_S = 60.0, 2048, 15 * 60.0
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _rss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class _Clock:
    """Wall and CPU seconds of this process since creation."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> dict[str, float]:
        return {"wall_s": round(time.perf_counter() - self.wall, 2), "cpu_s": round(time.process_time() - self.cpu, 2)}


# --- children: views only ---------------------------------------------------------------------------

class _PairSink:
    """Counts decisions and keeps the candidate pairs (as two int32 arrays of row numbers) for the floor."""

    def __init__(self, data: Synthetic) -> None:
        self.opp_pos = {o.id: i for i, o in enumerate(data.opportunities)}
        self.party_pos = {p.id: i for i, p in enumerate(data.parties)}
        self.decisions = 0
        self.opp_rows, self.party_rows = array("i"), array("i")

    def __call__(self, batch: list[dict[str, Any]]) -> None:
        self.decisions += len(batch)
        for d in batch:
            if d["stage"] == "pair" and d["party_id"] in self.party_pos:  # not a suggested grouping
                self.opp_rows.append(self.opp_pos[d["opportunity_id"]])
                self.party_rows.append(self.party_pos[d["party_id"]])


def child_views(scale: str, mode: str, pairs_file: str) -> dict[str, Any]:
    """One evaluate_run on the generated views; the candidate pairs go to ``pairs_file`` afterwards."""
    clock = _Clock()
    data = generate(scale)
    generated = clock.read()
    rss_data = _rss_mib()
    ruleset = load_rules(RULES)
    scope = RunScope(True) if mode == "full" else RunScope(False, tuple(data.new_opportunity_ids))
    sink = _PairSink(data)
    clock = _Clock()
    out = evaluate_run(data.opportunities, data.parties, ruleset, MatchParams(), AS_OF, scope, sink=sink)
    result = {**clock.read(), "peak_rss_mib": _rss_mib(), "rss_after_data_mib": rss_data, "generate": generated,
              "counts": out.counts, "decisions": sink.decisions, "decision_digest": decision_digest(out.hashes),
              "scope_opportunities": len(scope.opportunity_ids) if not scope.full else None}
    Path(pairs_file).write_bytes(sink.opp_rows.tobytes() + sink.party_rows.tobytes())
    return result


def child_floor_views(scale: str, pairs_file: str) -> dict[str, Any]:
    data = generate(scale)
    raw = array("i")
    raw.frombytes(Path(pairs_file).read_bytes())
    half = len(raw) // 2
    return _floor(data.opportunities, data.parties, raw[:half], raw[half:])


def _floor(opps: list[Any], parties: list[Any], opp_rows: Any, party_rows: Any) -> dict[str, Any]:
    """rapidfuzz token_set_ratio over the pairs, one worker and all workers."""
    from rapidfuzz import fuzz, process

    texts = [f"{o.title} {o.description}" for o in opps]
    queries = [parties[j].capabilities for j in party_rows]
    choices = [texts[i] for i in opp_rows]
    out: dict[str, Any] = {"pairs": len(queries)}
    for label, workers in (("one_worker", 1), ("all_workers", -1)):
        clock = _Clock()
        process.cpdist(queries, choices, scorer=fuzz.token_set_ratio, workers=workers)
        out[label] = clock.read()
    return out


# --- children: through the store ---------------------------------------------------------------------

def _engine(url: str) -> Any:
    from broker.store.engine import make_engine

    return make_engine(url)


def child_store_setup(scale: str, url: str, which: str) -> dict[str, Any]:
    """Write the parties and tonight's old opportunities (``old``), or tonight's new ones (``new``)."""
    from sqlalchemy import insert

    from broker.store.engine import session_factory, upgrade
    from broker.store.models import Vcse
    from broker.store.opportunities import upsert_record

    data = generate(scale)
    engine = _engine(url)
    new = set(data.new_opportunity_ids)
    opps = [o for o in data.opportunities if (o.id in new) == (which == "new")]
    clock = _Clock()
    if which == "old":
        upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        if which == "old":
            session.execute(insert(Vcse), [vcse_row(p) for p in data.parties])
        for o in opps:
            upsert_record(session, opportunity_record(o))
    result = {**clock.read(), "opportunities_written": len(opps),
              "parties_written": len(data.parties) if which == "old" else 0}
    result["view_mismatches"] = _check_views(sessions, data, opps if which == "new" else None)
    engine.dispose()
    return result


def _check_views(sessions: Any, data: Synthetic, only: list[Any] | None) -> int:
    """How many stored views differ from the generated ones (should be 0: the store adds nothing)."""
    from broker.match.service import load_inputs

    with sessions.begin() as session:
        inputs = load_inputs(session, AS_OF)
    want = {o.id: o for o in (only if only is not None else data.opportunities)}
    bad = sum(o != want[o.id] for o in inputs.opportunities if o.id in want)
    parties = {p.id: p for p in data.parties}
    return bad + sum(p != parties.get(p.id) for p in inputs.parties)


def child_store_run(url: str, mode: str, as_of_offset: str) -> dict[str, Any]:
    """One ``run_match`` against the store, with the figures the issue asks for."""
    from sqlalchemy import func, select

    from broker.match.service import run_match
    from broker.store.engine import session_factory
    from broker.store.models import Decision, MatchRun

    engine = _engine(url)
    sessions = session_factory(engine)
    clock = _Clock()
    summary = run_match(sessions, as_of=AS_OF + timedelta(days=int(as_of_offset)), rules_dir=RULES,
                        full=mode == "full")
    result = {**clock.read(), "peak_rss_mib": _rss_mib(), "counts": summary.counts, "run_id": summary.run_id,
              "mode": summary.mode, "decision_digest": summary.decision_digest}
    with sessions.begin() as session:
        result["decisions"] = session.scalar(select(func.count()).select_from(Decision)
                                             .where(Decision.run_id == summary.run_id))
        scope = session.get(MatchRun, summary.run_id).scope
    result["scope_opportunities"] = None if scope["full"] else len(scope["opportunity_ids"])
    result["scope_parties"] = None if scope["full"] else len(scope["party_ids"])
    engine.dispose()
    return result


def child_floor_store(url: str, run_id: str, as_of_offset: str) -> dict[str, Any]:
    """The floor over the pairs the stored run considered (suggested groupings left out)."""
    from sqlalchemy import select

    from broker.match.service import load_inputs
    from broker.store.engine import session_factory
    from broker.store.models import Decision

    engine = _engine(url)
    with session_factory(engine).begin() as session:
        inputs = load_inputs(session, AS_OF + timedelta(days=int(as_of_offset)))
        o_pos = {o.id: i for i, o in enumerate(inputs.opportunities)}
        p_pos = {p.id: i for i, p in enumerate(inputs.parties)}
        pairs = session.execute(select(Decision.opportunity_id, Decision.party_id).where(
            Decision.run_id == run_id, Decision.stage == "pair").order_by(Decision.seq)).all()
    engine.dispose()
    kept = [(o_pos[o], p_pos[p]) for o, p in pairs if p in p_pos]
    return _floor(inputs.opportunities, inputs.parties, [o for o, _ in kept], [p for _, p in kept])


def child_db_size(url: str) -> dict[str, Any]:
    from sqlalchemy import text

    engine = _engine(url)
    with engine.connect() as conn:
        if url.startswith("sqlite"):
            pages = conn.execute(text("PRAGMA page_count")).scalar_one()
            size = pages * conn.execute(text("PRAGMA page_size")).scalar_one()
        else:
            size = conn.execute(text("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN "
                                     "pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND "
                                     "n.nspname = current_schema()")).scalar_one()
    engine.dispose()
    return {"db_bytes": int(size or 0)}


CHILDREN = {"views": child_views, "floor-views": child_floor_views, "store-setup": child_store_setup,
            "store-run": child_store_run, "floor-store": child_floor_store, "db-size": child_db_size}


# --- the parent ----------------------------------------------------------------------------------------

def spawn(kind: str, *args: str) -> dict[str, Any]:
    """Run one child; its last stdout line is its JSON result. Load averages taken around it."""
    before = _load()
    proc = subprocess.run([sys.executable, __file__, "--child", kind, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child {kind} {' '.join(args)} failed (exit {proc.returncode})")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**result, "load_before": before, "load_after": _load()}


def bench_views(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    runs = []
    for mode in args.runs:
        pairs_file = str(tmp / f"pairs-{mode}.bin")
        r = {**spawn("views", args.scale, mode, pairs_file), "name": f"{mode} (views, evaluate_run)", "mode": mode}
        if not args.no_floor:
            r["floor"] = spawn("floor-views", args.scale, pairs_file)
        _print_run(r)
        runs.append(r)
    return runs


def bench_store(args: argparse.Namespace, tmp: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    url, drop = _database(args, tmp)
    try:
        setup = {"old": spawn("store-setup", args.scale, url, "old")}
        _print_setup("setup", setup["old"])
        runs = [_store_run(args, url, "full", -1, "previous night's full run (without tonight's new)")]
        setup["new"] = spawn("store-setup", args.scale, url, "new")
        _print_setup("tonight's new opportunities", setup["new"])
        if "nightly" in args.runs:
            runs.append(_store_run(args, url, "nightly", 0, "nightly incremental (run_match)"))
        if "full" in args.runs:
            runs.append(_store_run(args, url, "full", 0, "full re-match (run_match --full)"))
        setup["size"] = spawn("db-size", url)
        return runs, setup
    finally:
        if not args.keep:
            drop()


def _store_run(args: argparse.Namespace, url: str, mode: str, offset: int, name: str) -> dict[str, Any]:
    r = {**spawn("store-run", url, mode, str(offset)), "name": name, "mode": mode}
    if not args.no_floor:
        r["floor"] = spawn("floor-store", url, r["run_id"], str(offset))
    _print_run(r)
    return r


def _database(args: argparse.Namespace, tmp: Path) -> tuple[str, Any]:
    """A fresh database URL and a function that removes it."""
    if args.store == "sqlite":
        path = tmp / "bench.db"
        return f"sqlite:///{path}", lambda: None
    from sqlalchemy import text

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = _engine(args.pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in args.pg_url else "?"

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{args.pg_url}{sep}options=-csearch_path%3D{schema}", drop


# --- report ------------------------------------------------------------------------------------------

def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _print_header(args: argparse.Namespace, load: list[float]) -> None:
    print(f"== match bench: scale {args.scale}, store {args.store}, {os.cpu_count()} CPUs, "
          f"load average at start {load[0]} / {load[1]} / {load[2]} (1 / 5 / 15 min; shared machine)", flush=True)


def _print_setup(what: str, r: dict[str, Any]) -> None:
    print(f"-- {what}: wrote {r['parties_written']:,} VCSEs and {r['opportunities_written']:,} opportunities "
          f"in {r['wall_s']} s; stored views differing from the generated ones: {r['view_mismatches']}",
          flush=True)


def _print_run(r: dict[str, Any]) -> None:
    c = r["counts"]
    scope = "all" if r.get("scope_opportunities") is None else f"{r['scope_opportunities']:,} opportunities"
    if r.get("scope_parties"):
        scope += f" + {r['scope_parties']:,} parties"
    print(f"-- {r['name']}: scope {scope}; load {r['load_before'][0]} -> {r['load_after'][0]}")
    print(f"   wall {r['wall_s']:8.2f} s   CPU {r['cpu_s']:8.2f} s   peak RSS {r['peak_rss_mib']:,} MiB")
    print(f"   opportunities {c['opportunities']:,} ({c['opportunities_rejected']:,} rejected), parties "
          f"{c['parties']:,}; pairs considered {c['pairs_considered']:,}, through the rules "
          f"{c['pairs_through_rules']:,}; decisions {r['decisions']:,}; matched {c['matched']:,}, "
          f"suggested groupings {c['suggested_consortia']:,}")
    print(f"   decision digest {r['decision_digest']}", flush=True)
    if "floor" in r:
        f = r["floor"]
        print(f"   floor: rapidfuzz token_set_ratio alone over the same {f['pairs']:,} pairs: "
              f"{f['one_worker']['wall_s']} s wall ({f['one_worker']['cpu_s']} s CPU) on one worker, "
              f"{f['all_workers']['wall_s']} s wall on all", flush=True)


def _print_targets(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    note = "" if args.scale == "national" else " (targets are for national scale: shown for reference)"
    tonight = [r for r in runs if "previous night" not in r["name"]]
    for r in tonight:
        if r["mode"] == "nightly":
            print(f"TARGET nightly <= {NIGHTLY_TARGET_S:.0f} s: {_verdict(r['wall_s'] <= NIGHTLY_TARGET_S)} "
                  f"({r['wall_s']} s wall); peak RSS < 2 GiB: "
                  f"{_verdict(r['peak_rss_mib'] < NIGHTLY_RSS_TARGET_MIB)} ({r['peak_rss_mib']:,} MiB){note}")
        else:
            print(f"TARGET full re-match <= 15 min: {_verdict(r['wall_s'] <= FULL_TARGET_S)} "
                  f"({r['wall_s']} s wall, {r['cpu_s']} s CPU){note}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        print(json.dumps(CHILDREN[argv[1]](*argv[2:])))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", choices=("regional", "national"), default="regional")
    ap.add_argument("--store", choices=("none", "sqlite", "postgres"), default="none")
    ap.add_argument("--runs", default="nightly,full", help="comma-separated: nightly, full")
    ap.add_argument("--pg-url", default=os.environ.get("BROKER_TEST_POSTGRES_URL") or DEFAULT_PG)
    ap.add_argument("--workdir", help="where the SQLite file and pair lists go (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the database (and workdir) afterwards")
    ap.add_argument("--no-floor", action="store_true", help="skip the rapidfuzz floor")
    ap.add_argument("--json-out", metavar="FILE", help="also write every figure to FILE as one JSON document")
    args = ap.parse_args(argv)
    args.runs = [r for r in args.runs.split(",") if r]
    load = _load()
    _print_header(args, load)
    tmp = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="match-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        setup = None
        if args.store == "none":
            runs = bench_views(args, tmp)
        else:
            runs, setup = bench_store(args, tmp)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"scale": args.scale, "store": args.store, "load_at_start": load,
                                                   "setup": setup, "runs": runs}, indent=1), encoding="utf-8")
    if setup:
        print(f"   database size after all runs: {setup['size']['db_bytes'] / 2**20:,.0f} MiB")
    _print_targets(args, runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
