"""A live ``broker serve`` (uvicorn in a thread) and headless Debian chromium driven through Playwright.

Playwright is pointed at the system chromium with ``executable_path``; it never downloads a browser.
Without chromium (or Playwright) the browser tests skip with a message, unless BROKER_REQUIRE_CHROMIUM=1
(as CI sets it) makes them fail instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


def chromium_or_skip() -> str:
    """The chromium binary, or skip (fail when BROKER_REQUIRE_CHROMIUM=1)."""
    found = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    reason = None
    if found is None:
        reason = ("Chromium is not installed, so the web pages were not driven in a real browser "
                  "(install Debian's `chromium` package: scripts/install-chromium.sh)")
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed (pip install -e '.[dev]')"
    if reason is None:
        assert found is not None
        return found
    if os.environ.get("BROKER_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"{reason}; BROKER_REQUIRE_CHROMIUM=1 makes this test mandatory")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(app: Any, port: int) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1:port in a thread for the duration of the block."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def browser(executable: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Page:
    """A Playwright page that records console errors (CSP violations show up there) and saves screenshots."""

    def __init__(self, b: Any, shots: Path) -> None:
        self.page = b.new_page(viewport={"width": 1000, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.shots = shots

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        keep = os.environ.get("BROKER_SCREENSHOT_DIR")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep) / path.name)
        return path
