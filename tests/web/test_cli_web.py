"""The command line of the web front: `broker serve` from a fresh database, link options of digest builds."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
from browser import free_port
from sqlalchemy import select
from testpaths import ROOT
from web_world import SECRET, seed, text_part

from broker.store.engine import session_factory
from broker.store.models import Digest


def test_broker_serve_starts_on_a_fresh_database_and_serves_the_login(tmp_path):
    db = f"sqlite:///{tmp_path / 'broker.db'}"
    env = {**os.environ, "BROKER_SECRET": SECRET}
    assert subprocess.run([sys.executable, "-m", "broker", "--db", db, "init"], env=env, cwd=ROOT,
                          capture_output=True, timeout=120).returncode == 0
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "broker", "--db", db, "serve", "--port", str(port)], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline, page = time.monotonic() + 60, None
        while time.monotonic() < deadline and page is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.2)
        assert page is not None and page.status_code == 200 and "Officer log in" in page.text
        assert "script-src" not in page.headers["content-security-policy"]
        assert "server" not in page.headers  # uvicorn's banner is off
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert b"broker serve: http://127.0.0.1:" in err


def test_broker_serve_without_a_secret_says_how_to_set_one(run, monkeypatch):
    monkeypatch.delenv("BROKER_SECRET", raising=False)
    monkeypatch.delenv("BROKER_SECRET_FILE", raising=False)
    out = run("serve", "--port", str(free_port()))
    assert out.exit_code == 1 and "no signing secret: set BROKER_SECRET or BROKER_SECRET_FILE" in out.output


def test_digest_build_with_a_base_url_and_a_secret_file_carries_links(run, engine, tmp_path, monkeypatch):
    seed(engine)
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET, encoding="utf-8")
    monkeypatch.delenv("BROKER_SECRET", raising=False)
    monkeypatch.setenv("BROKER_SECRET_FILE", str(secret_file))
    outbox = tmp_path / "outbox"
    half = run("digest", "build", "--as-of", "2025-01-16", "--outbox", str(outbox))
    assert half.exit_code == 1 and "a signing secret is set but no base URL" in half.output
    out = run("digest", "build", "--as-of", "2025-01-16", "--outbox", str(outbox),
              "--base-url", "https://broker.example.org", "--link-days", "14")
    assert out.exit_code == 0, out.output
    with session_factory(engine)() as s:
        digest = s.scalars(select(Digest).where(Digest.recipient_id == "V1")).one()
    text = text_part(outbox / digest.file_name)
    assert "Not relevant: https://broker.example.org/f/" in text
    assert "Stop these emails: https://broker.example.org/stop/" in text
    assert digest.payload["stop_url"].startswith("https://broker.example.org/stop/")
