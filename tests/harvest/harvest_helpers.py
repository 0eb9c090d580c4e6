"""Helpers for the harvest tests: a local API (scripted replies, recorded requests), a fake clock, and pages
built from the real Contracts Finder search page in fixtures/opportunities
(cf_ocds_search_2022-10-20_100releases.json)."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from testpaths import real_file

REAL_CF_PAGE = real_file("cf_ocds_search_2022-10-20_100releases.json")

CF_PATH = "/Published/Notices/OCDS/Search"
FTS_PATH = "/api/1.0/ocdsReleasePackages"
NOW = datetime(2025, 2, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Seen:
    path: str
    params: dict[str, str]
    headers: dict[str, str]


def route_key(path: str, params: dict[str, str]) -> str:
    return f"{path}?{urlencode(sorted(params.items()))}"


@dataclass
class LocalApi:
    """Routes (path + query) to scripted replies, consumed in order; the last reply repeats."""

    base: str = ""
    routes: dict[str, list[Reply]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def route(self, path: str, params: dict[str, str], *replies: Reply) -> None:
        self.routes[route_key(path, params)] = list(replies)

    def reply_for(self, path: str, params: dict[str, str], headers: dict[str, str]) -> Reply:
        with self.lock:
            self.seen.append(Seen(path, params, headers))
            queue = self.routes.get(route_key(path, params))
            if not queue:
                return Reply(404, b'{"error": "no such route"}')
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def next_link(self, path: str, cursor: str) -> str:
        return f"{self.base}{path}?{urlencode({'limit': '100', 'cursor': cursor})}"


def _handler(api: LocalApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            parts = urlsplit(self.path)
            reply = api.reply_for(parts.path, dict(parse_qsl(parts.query)),
                                  {k.lower(): v for k, v in self.headers.items()})
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


@contextmanager
def local_api() -> Iterator[LocalApi]:
    """Serve a :class:`LocalApi` on 127.0.0.1 (an ephemeral port) until the block ends."""
    state = LocalApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class FakeClock:
    """Advances only when asked to sleep; records every sleep."""

    def __init__(self, now: datetime = NOW) -> None:
        self._now = now
        self._mono = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._mono += seconds
        self._now += timedelta(seconds=seconds)


def load_real_cf_page() -> dict[str, Any]:
    """The real 100-release Contracts Finder search page (2022-10-20)."""
    return json.loads(REAL_CF_PAGE.read_text(encoding="utf-8"))


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=1, ensure_ascii=False).encode("utf-8")


def split_pages(real: dict[str, Any], api: LocalApi, *, parts: int = 3, path: str = CF_PATH,
                tag: str = "c", releases: list[Any] | None = None) -> list[dict[str, Any]]:
    """Cut the real page's releases into ``parts`` pages whose ``links.next`` chain through the local API
    with cursors ``<tag>2``, ``<tag>3``... The last page has no ``links.next``."""
    items = real["releases"] if releases is None else releases
    size = -(-len(items) // parts)
    pages = []
    for i in range(parts):
        page = {k: copy.deepcopy(v) for k, v in real.items() if k not in ("releases", "links")}
        page["releases"] = copy.deepcopy(items[i * size:(i + 1) * size])
        page["links"] = {"next": api.next_link(path, f"{tag}{i + 2}")} if i < parts - 1 else {}
        pages.append(page)
    return pages


def serve_chain(api: LocalApi, first: dict[str, str], bodies: list[bytes], *, path: str = CF_PATH,
                tag: str = "c") -> None:
    """Route the first window query to ``bodies[0]`` and cursor ``<tag>N`` to ``bodies[N-1]``."""
    api.route(path, first, Reply(body=bodies[0]))
    for i, body in enumerate(bodies[1:], start=2):
        api.route(path, {"limit": "100", "cursor": f"{tag}{i}"}, Reply(body=body))


def cf_query(start: str, end: str) -> dict[str, str]:
    return {"publishedFrom": start, "publishedTo": end, "limit": "100"}


def fts_query(start: str, end: str) -> dict[str, str]:
    return {"updatedFrom": start, "updatedTo": end, "limit": "100"}
