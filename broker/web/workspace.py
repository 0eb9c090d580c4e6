"""The officer workspace: log in, tonight's matches, one opportunity, outcomes, directory, quarantine, report.

Every page needs a logged-in officer (else a redirect to ``/login``); every form carries the session's
CSRF token, and a POST without the right one is refused with 403 before anything is read or written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from broker.audit.explain import explain_pair
from broker.errors import BrokerError, InputError, NotFound
from broker.normalise.money import gbp_to_pence
from broker.store.models import Officer
from broker.target.ledger import record_outcome
from broker.target.report import render_report
from broker.target.stages import STAGES
from broker.web import pages
from broker.web.app import WebState, client_key, state_of
from broker.web.officers import authenticate, session_tag
from broker.web.security import REPORT_CSP, new_csrf_token, same_token

Handler = Callable[[Request, WebState, Officer], Awaitable[Response]]


def csrf_of(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = new_csrf_token()
        request.session["csrf"] = token
    return token


def _officer(state: WebState, officer_id: Any, tag: Any) -> Officer | None:
    """The session's officer, if still active and the password is the one they logged in with."""
    if not isinstance(officer_id, int) or not isinstance(tag, str):
        return None
    with state.read() as session:
        row = session.get(Officer, officer_id)
        return row if row is not None and row.active and same_token(session_tag(row), tag) else None


def officer_page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Require a logged-in, still active officer; on POST also the session's CSRF token."""
    @wraps(handler)
    async def wrapper(request: Request) -> Response:
        state = state_of(request)
        officer = await run_in_threadpool(_officer, state, request.session.get("officer_id"),
                                          request.session.get("tag"))
        if officer is None:
            request.session.pop("officer_id", None)
            return RedirectResponse("/login", status_code=303)
        if request.method == "POST":
            form = await request.form()
            if not same_token(request.session.get("csrf"), form.get("csrf")):
                return _forbidden(request, state)
        return await handler(request, state, officer)
    return wrapper


def _forbidden(request: Request, state: WebState) -> HTMLResponse:
    return state.render(request, "message.html.j2", 403, title="Refused",
                        message="This form was not sent from this workspace (its security token is missing "
                                "or wrong). Go back, reload the page and try again.")


def _render(request: Request, state: WebState, officer: Officer, name: str, status_code: int = 200,
            **context: Any) -> HTMLResponse:
    return state.render(request, name, status_code, officer=officer, csrf=csrf_of(request), **context)


async def login(request: Request) -> Response:
    state = state_of(request)
    if request.method == "GET":
        return state.render(request, "login.html.j2", csrf=csrf_of(request), error="", email="")
    if not state.limiter.allow("login:" + client_key(request)):
        return state.render(request, "login.html.j2", 429, csrf=csrf_of(request), email="",
                            error="Too many attempts. Wait a minute and try again.")
    form = await request.form()
    if not same_token(request.session.get("csrf"), form.get("csrf")):
        return _forbidden(request, state)
    email, password = str(form.get("email") or ""), str(form.get("password") or "")
    found = await run_in_threadpool(state.write, lambda s: _authenticated(s, email, password))
    if found is None:
        return state.render(request, "login.html.j2", 401, csrf=csrf_of(request), email=email[:320],
                            error="Wrong email or password.")
    request.session.clear()  # a fresh session (and CSRF token) after logging in: no fixation
    request.session["officer_id"], request.session["tag"] = found
    request.session["csrf"] = new_csrf_token()
    return RedirectResponse("/", status_code=303)


def _authenticated(session: Session, email: str, password: str) -> tuple[int, str] | None:
    row = authenticate(session, email, password)
    return (row.id, session_tag(row)) if row is not None else None


@officer_page
async def logout(request: Request, state: WebState, officer: Officer) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@officer_page
async def tonight(request: Request, state: WebState, officer: Officer) -> Response:
    view = "vcse" if request.query_params.get("by") == "vcse" else "cluster"
    everything = request.query_params.get("all") == "1"
    with state.read() as session:
        data = await run_in_threadpool(pages.tonight, session, everything)
    return _render(request, state, officer, "tonight.html.j2", title="Tonight's matches", view=view,
                   everything=everything, **data)


@officer_page
async def opportunity(request: Request, state: WebState, officer: Officer) -> Response:
    return await _opportunity_page(request, state, officer, request.query_params.get("id", ""))


async def _opportunity_page(request: Request, state: WebState, officer: Officer, opportunity_id: str,
                            status_code: int = 200, error: str = "", form: dict[str, str] | None = None) -> Response:
    with state.read() as session:
        data = await run_in_threadpool(pages.opportunity, session, opportunity_id, state.today())
    if data is None:
        return state.render(request, "message.html.j2", 404, officer=officer, csrf=csrf_of(request),
                            title="Not found", message="No opportunity has that id.")
    recorded = request.query_params.get("recorded")
    return _render(request, state, officer, "opportunity.html.j2", status_code, title=data["opp"]["title"],
                   stages=STAGES, error=error, form=form or {}, recorded=recorded, **data)


@officer_page
async def outcome(request: Request, state: WebState, officer: Officer) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if isinstance(v, str)}
    opportunity_id = form.get("opportunity_id", "")
    today = state.today()
    try:
        value = gbp_to_pence(form.get("value", "").strip() or None)
    except ValueError as exc:
        return await _opportunity_page(request, state, officer, opportunity_id, 400, f"Value: {exc}", form)
    try:
        added = await run_in_threadpool(state.write, lambda s: record_outcome(
            s, opportunity_id, form.get("party_id", ""), form.get("stage", ""), value_pence=value,
            note=form.get("note", "")[:2000], cause=f"officer:web:{officer.email}"[:255], as_of=today,
            config=state.config.target))
    except (InputError, NotFound) as exc:
        return await _opportunity_page(request, state, officer, opportunity_id, 400, str(exc).split(". Try")[0],
                                       form)
    return RedirectResponse(f"/opportunity?id={quote(opportunity_id, safe='')}&recorded={added}",
                            status_code=303)


@officer_page
async def explain(request: Request, state: WebState, officer: Officer) -> Response:
    opp, party = request.query_params.get("opportunity", ""), request.query_params.get("party", "")
    try:
        with state.read() as session:
            data = await run_in_threadpool(explain_pair, session, None, opp, party)
    except BrokerError as exc:
        return state.render(request, "message.html.j2", 404, officer=officer, csrf=csrf_of(request),
                            title="Nothing to explain", message=str(exc))
    return _render(request, state, officer, "explain.html.j2", title="Why (not) matched", opp=opp, party=party,
                   data=data, lines=pages.explain_lines(data))


@officer_page
async def directory(request: Request, state: WebState, officer: Officer) -> Response:
    with state.read() as session:
        data = await run_in_threadpool(pages.directory, session)
    return _render(request, state, officer, "directory.html.j2", title="Directory", **data)


@officer_page
async def quarantine(request: Request, state: WebState, officer: Officer) -> Response:
    with state.read() as session:
        data = await run_in_threadpool(pages.quarantine, session)
    return _render(request, state, officer, "quarantine.html.j2", title="Quarantine", **data)


@officer_page
async def report(request: Request, state: WebState, officer: Officer) -> Response:
    """The progress report: the very HTML `broker report` writes, for today's business date."""
    with state.read() as session:
        html, _ = await run_in_threadpool(render_report, session, state.today(), state.config.target)
    return HTMLResponse(html, headers={"content-security-policy": REPORT_CSP})


def routes() -> list[Route]:
    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", tonight),
        Route("/opportunity", opportunity),
        Route("/outcome", outcome, methods=["POST"]),
        Route("/explain", explain),
        Route("/directory", directory),
        Route("/quarantine", quarantine),
        Route("/report", report),
    ]
