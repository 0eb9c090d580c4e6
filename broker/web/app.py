"""The Starlette application behind ``broker serve``: VCSE link pages and the officer workspace.

Why Starlette: a small, well-kept ASGI toolkit (routing, forms, signed-cookie sessions, static files and
a TestClient) that uses the Jinja2 templates the project already has, without a framework's weight;
uvicorn serves it. Database work is synchronous SQLAlchemy run in Starlette's thread pool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from broker.normalise.dates import LONDON
from broker.store.engine import session_factory
from broker.target.config import TargetConfig
from broker.web.security import RateLimiter, SecurityHeaders
from broker.web.tokens import LinkSigner, derive_key

HERE = Path(__file__).resolve().parent
T = TypeVar("T")
SESSION_HOURS = 8
WRITE_TRIES = 5


def uk_today() -> date:
    """Today in the UK: the business date of a click or an outcome recorded on the web."""
    return datetime.now(LONDON).date()


@dataclass
class WebConfig:
    """How the server runs. ``clock`` gives the business date (tests and demos pin it)."""

    secret: str = field(repr=False)
    secure_cookies: bool = True
    rate_limit: int = 60  # requests per minute per client address on link and login endpoints
    target: TargetConfig = field(default_factory=TargetConfig)
    clock: Callable[[], date] = uk_today


class WebState:
    """What every request handler needs: sessions, the link signer, the limiter, the templates."""

    def __init__(self, engine: Engine, config: WebConfig) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)
        self.config = config
        self.signer = LinkSigner(config.secret)
        self.limiter = RateLimiter(config.rate_limit)
        # SQLite takes one writer at a time and refuses (rather than waits for) a writer whose read
        # snapshot went stale; one process-wide lock keeps this server's own writes in a queue.
        self._write_lock = threading.Lock() if engine.dialect.name == "sqlite" else None

    def today(self) -> date:
        return self.config.clock()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def write(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction and commit. A unique-constraint race (the same click twice at
        once) or a busy database is retried: the second try finds the first's row, so it records nothing."""
        for attempt in range(WRITE_TRIES):
            try:
                with self._write_lock or nullcontext(), self.sessions.begin() as session:
                    return work(session)
            except (IntegrityError, OperationalError):
                if attempt == WRITE_TRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def render(self, request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = templates().get_template(name).render(request=request, **context)
        return HTMLResponse(html, status_code=status_code)


@lru_cache(maxsize=1)
def templates() -> Environment:
    # Autoescaping everywhere: every notice, directory and note text is untrusted and reaches the page as text.
    return Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def state_of(request: Request) -> WebState:
    return request.app.state.web  # type: ignore[no-any-return]


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def not_found(request: Request, exc: Exception) -> HTMLResponse:
    return state_of(request).render(request, "message.html.j2", 404, title="Not found",
                                    message="There is nothing here. If you followed a link from an email, "
                                            "reply to that email instead and we will sort it out.")


async def method_not_allowed(request: Request, exc: Exception) -> HTMLResponse:
    return state_of(request).render(request, "message.html.j2", 405, title="Not allowed",
                                    message="That request is not allowed here.")


async def robots(request: Request) -> Response:
    # Nothing here is for search engines, least of all a VCSE's link pages.
    return PlainTextResponse("User-agent: *\nDisallow: /\n")


async def favicon(request: Request) -> Response:
    return Response(status_code=204)


def create_app(engine: Engine, config: WebConfig) -> Starlette:
    """The application on ``engine`` (whose schema must be current)."""
    from broker.web import vcse, workspace

    routes = [*vcse.routes(), *workspace.routes(), Route("/robots.txt", robots), Route("/favicon.ico", favicon),
              Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static")]
    middleware = [
        Middleware(SecurityHeaders, hsts=config.secure_cookies),
        # Signed (HMAC, itsdangerous) cookie; HttpOnly always, Secure unless serving plain http locally.
        Middleware(SessionMiddleware, secret_key=derive_key(config.secret, "session").hex(),
                   session_cookie="broker_session", max_age=SESSION_HOURS * 3600, same_site="lax",
                   https_only=config.secure_cookies),
    ]
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={404: not_found, 405: method_not_allowed})
    app.state.web = WebState(engine, config)
    return app
