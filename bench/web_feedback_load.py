"""Load test of the one-click feedback links: many concurrent POSTs to a real `broker serve` on 127.0.0.1.

Usage: python bench/web_feedback_load.py [--db URL] [--vcses 20] [--items 10] [--concurrency 200]

1. Seeds a fresh database with VCSES x ITEMS matches (half the links get Interested, half Not relevant)
   and builds the night's digests with signed links, as `broker digest build --base-url` does.
2. Starts `broker serve` in a child process (uvicorn, one worker) and fetches each link's confirmation
   page once for its form token (not timed).
3. Round 1 sends every POST at once (a bounded loop: exactly VCSES x ITEMS requests, at most CONCURRENCY
   in flight); round 2 sends the same POSTs again at once. Prints p50/p99/max latency per round.
4. Checks the database: every click recorded exactly once with cause feedback:web (none lost, none
   doubled), and one ledger `interested` entry per Interested click.
PostgreSQL: pass --db postgresql+psycopg://... (the schema is created fresh in a new schema and dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select, text

from broker.digest import DigestSettings, build_digests
from broker.store.engine import make_engine, session_factory, upgrade
from broker.store.models import Digest, DigestFeedback, Match, Opportunity, TargetEntry, Vcse
from broker.target.ledger import record_introduced
from broker.web.tokens import LinkSettings

AS_OF = date(2025, 1, 16)


def seed(url: str, vcses: int, items: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine).begin() as s:
        for o in range(items):
            s.add(Opportunity(
                id=f"O{o:04d}", source="bench", title=f"Opportunity {o}", description="Support services.",
                buyer_name="Birmingham City Council", status="open",
                deadline_at=datetime(2025, 3, 31, 12, tzinfo=UTC), value_min_pence=1_000_000 + o,
                value_max_pence=1_000_000 + o, cpv_codes=[], cpv_unknown=[], local_authority="Birmingham",
                postcode="B8 1AA", nationwide=False, reserved_participation=[], is_framework=False, is_dps=False,
                source_ids=[], match_keys=[], raw_hash="0" * 64, content_hash="0" * 64, version=1, url=None))
        for v in range(vcses):
            s.add(Vcse(id=f"V{v:04d}", name=f"VCSE {v}", cluster="Health", cluster_derived=False,
                       local_authority="Birmingham", service_areas=[], capabilities="support", keywords=[],
                       exclude_keywords=[], cpv_codes=[], certifications=[], digest_opt_in=True,
                       content_hash="0" * 64, contact_email=f"v{v}@example.net"))
        s.flush()
        for v in range(vcses):
            for o in range(items):
                s.add(Match(opportunity_id=f"O{o:04d}", party_id=f"V{v:04d}", party_type="vcse", lead_id=None,
                            members=[], score=50 + o, levels={}, reasons=["bench"], flags=[], status="active",
                            first_run_id="bench", last_run_id="bench"))
    engine.dispose()


def build(url: str, links: LinkSettings, outbox: Path, cap: int) -> list[tuple[str, str]]:
    """Build the digests; return (link path, kind) for every item, alternating Interested / Not relevant."""
    engine = make_engine(url)
    with session_factory(engine)() as s:
        build_digests(s, as_of=AS_OF, outbox=outbox, introduced_callback=record_introduced,
                      settings=DigestSettings(links=links, cap=cap))
        out = []
        for digest in s.scalars(select(Digest).order_by(Digest.id)):
            for n, item in enumerate(digest.payload["items"]):
                kind = "interested" if n % 2 == 0 else "not_relevant"
                out.append((item["actions"][kind].replace(links.root, ""), kind))
    engine.dispose()
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: str, port: int, secret: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BROKER_SECRET": secret}
    proc = subprocess.Popen([sys.executable, "-m", "broker", "--db", url, "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--as-of", AS_OF.isoformat(), "--rate-limit", "100000",
                             "--cookie-insecure"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/robots.txt", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"broker serve did not start: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")


async def round_of_posts(base: str, forms: list[tuple[str, str]], concurrency: int) -> tuple[list[float], list[int]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        async def one(path: str, token: str) -> tuple[float, int]:
            async with gate:
                start = time.perf_counter()
                response = await client.post(path, data={"form_token": token})
                return time.perf_counter() - start, response.status_code
        results = await asyncio.gather(*(one(p, t) for p, t in forms))
    return [r[0] for r in results], [r[1] for r in results]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, latencies: list[float], codes: list[int], wall: float) -> None:
    ms = [x * 1000 for x in latencies]
    print(f"{name}: {len(ms)} POSTs in {wall:.2f} s ({len(ms) / wall:.0f}/s); status {sorted(set(codes))}; "
          f"latency p50 {percentile(ms, .5):.0f} ms, p99 {percentile(ms, .99):.0f} ms, max {max(ms):.0f} ms, "
          f"mean {statistics.fmean(ms):.0f} ms")


def fresh_pg(url: str) -> tuple[str, str]:
    schema = f"broker_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}", schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="PostgreSQL URL (default: a temporary SQLite file)")
    parser.add_argument("--vcses", type=int, default=20)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="broker-web-load-"))
    url, schema = (fresh_pg(args.db) if args.db else (f"sqlite:///{tmp / 'broker.db'}", None))
    port, secret = free_port(), secrets.token_urlsafe(32)
    links = LinkSettings(base_url=f"http://127.0.0.1:{port}", secret=secret)
    seed(url, args.vcses, args.items)
    clicks = build(url, links, tmp / "outbox", cap=args.items)
    print(f"database {url.split('?')[0].split('://')[0]}; {len(clicks)} links in {args.vcses} digests")
    server = start_server(url, port, secret)
    try:
        base = f"http://127.0.0.1:{port}"
        forms = []
        with httpx.Client(base_url=base, timeout=30) as client:
            for path, _ in clicks:
                page = client.get(path).text
                forms.append((path, re.search(r'name="form_token" value="([0-9a-f]+)"', page)[1]))
        for name in ("round 1 (new clicks)", "round 2 (the same clicks again)"):
            start = time.perf_counter()
            latencies, codes = asyncio.run(round_of_posts(base, forms, args.concurrency))
            report(name, latencies, codes, time.perf_counter() - start)
    finally:
        server.terminate()
        server.communicate(timeout=30)
    engine = make_engine(url)
    with session_factory(engine)() as s:
        rows = s.scalar(select(func.count()).select_from(DigestFeedback).where(DigestFeedback.cause == "feedback:web"))
        distinct = s.scalar(select(func.count()).select_from(select(DigestFeedback.party_id, DigestFeedback.opportunity_id,
                                                                    DigestFeedback.kind).distinct().subquery()))
        ledger = s.scalar(select(func.count()).select_from(TargetEntry).where(
            TargetEntry.stage == "interested", TargetEntry.cause == "feedback:web"))
    engine.dispose()
    wanted_interested = sum(1 for _, k in clicks if k == "interested")
    ok = rows == distinct == len(clicks) and ledger == wanted_interested
    print(f"recorded {rows} feedback rows for {len(clicks)} clicks ({distinct} distinct), "
          f"{ledger} ledger 'interested' entries for {wanted_interested} Interested clicks: "
          f"{'all recorded once, none lost' if ok else 'MISMATCH'}")
    if schema:
        admin = make_engine(args.db)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
