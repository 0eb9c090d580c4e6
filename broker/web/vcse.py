"""The pages a VCSE reaches from a digest's signed links (no login).

A GET only shows what the link would do and a button; the change happens on the POST that button
sends, so a mail scanner that fetches every link changes nothing. The exception is RFC 8058's
one-click unsubscribe: a mail client POSTs ``List-Unsubscribe=One-Click`` to the Stop link itself.

A link that is not ours, or that names an item of another party, is a plain 404 (nothing tells a
prober which part was wrong); a genuine link past its date is 410 Gone. No contact details appear.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from broker.digest.feedback import REASON_MAX, record_feedback
from broker.digest.formatting import header_text
from broker.digest.preferences import set_preferences
from broker.errors import NotFound
from broker.store.models import Digest, DigestFeedback, DigestItem, DigestPreference, Opportunity, Vcse
from broker.target.ledger import record_outcome
from broker.web.app import WebState, client_key, state_of
from broker.web.tokens import ITEM_ACTIONS, BadToken, ExpiredToken, LinkSigner, LinkToken

CAUSE = "feedback:web"
VERBS = {"interested": "Interested", "not_relevant": "Not relevant", "stop": "Stop these emails"}


@dataclass(frozen=True)
class Target:
    """What a verified link is about, as the page shows it (names and titles only)."""

    token: LinkToken
    party_id: str
    recipient_name: str
    opportunity_id: str | None = None
    title: str = ""
    buyer: str = ""
    reference: str = ""
    done: bool = False  # already recorded


def _item(session: Session, signer: LinkSigner, token: str, today: date) -> Target:
    found = signer.loads(token, today=today)
    if found.action not in ITEM_ACTIONS:
        raise BadToken("not an item link")
    item = session.scalars(select(DigestItem).where(DigestItem.reference == found.subject)).first()
    if item is None or not found.matches_party(item.party_id):
        raise BadToken("no such item for this party")
    opp = session.get(Opportunity, item.opportunity_id)
    recipient = session.get(Vcse, item.recipient_id)
    done = session.scalars(select(DigestFeedback.id).where(
        DigestFeedback.party_id == item.party_id, DigestFeedback.opportunity_id == item.opportunity_id,
        DigestFeedback.kind == found.action)).first() is not None
    return Target(found, item.party_id, header_text(recipient.name if recipient else "", 120),
                  item.opportunity_id, header_text(opp.title if opp else "", 300) or "(untitled notice)",
                  header_text(opp.buyer_name if opp else "", 200), item.reference, done)


def _digest(session: Session, signer: LinkSigner, token: str, today: date) -> Target:
    found = signer.loads(token, today=today)
    if found.action != "stop":
        raise BadToken("not a stop link")
    digest = session.get(Digest, found.subject)
    if digest is None or not found.matches_party(digest.recipient_id):
        raise BadToken("no such digest for this party")
    recipient = session.get(Vcse, digest.recipient_id)
    if recipient is None:  # left the directory since: nothing to stop
        raise BadToken("recipient gone")
    pref = session.get(DigestPreference, digest.recipient_id)
    done = pref is not None and pref.opt_in is False
    return Target(found, digest.recipient_id, header_text(recipient.name, 120), done=done)


def _refused(request: Request, exc: Exception) -> HTMLResponse:
    state = state_of(request)
    if isinstance(exc, ExpiredToken):
        return state.render(request, "message.html.j2", 410, title="This link has expired",
                            message="Links in our emails work for a limited time. Reply to the email "
                                    "instead and tell us what you want, and we will record it.")
    return state.render(request, "message.html.j2", 404, title="Not found",
                        message="This link is not one of ours, or it was changed on the way. Reply to the "
                                "email instead and we will sort it out.")


def _too_many(request: Request) -> HTMLResponse:
    response = state_of(request).render(request, "message.html.j2", 429, title="Too many requests",
                                        message="Please wait a minute and try again.")
    response.headers["Retry-After"] = "60"
    return response


@dataclass(frozen=True)
class _Opened:
    """A signed link that checked out, and the form posted to it."""

    state: WebState
    token: str
    form: Any
    today: date
    target: Target


async def _open(request: Request, load: Any) -> _Opened | Response:
    """Rate-limit, verify and load a link's target; a GET (or a refusal) is answered here.

    Returns the opened link when a form was POSTed to it, else the response to send.
    """
    state, token = state_of(request), request.path_params["token"]
    if not state.limiter.allow(client_key(request)):
        return _too_many(request)
    form = await request.form() if request.method == "POST" else None
    today = state.today()
    try:
        with state.read() as session:
            target = await run_in_threadpool(load, session, state.signer, token, today)
    except (BadToken, ExpiredToken) as exc:
        return _refused(request, exc)
    if form is None:
        return _page(request, state, target, token)
    return _Opened(state, token, form, today, target)


async def item_link(request: Request) -> Response:
    """``/f/{token}``: Interested or Not relevant for one digest item."""
    opened = await _open(request, _item)
    if isinstance(opened, Response):
        return opened
    state, target = opened.state, opened.target
    if not state.signer.check_form_token(opened.token, _field(opened.form, "form_token")):
        return _forbidden(request)
    reason = _field(opened.form, "reason")[:REASON_MAX] if target.token.action == "not_relevant" else ""
    try:
        new = await run_in_threadpool(state.write, lambda s: record_feedback(
            s, target.party_id, target.opportunity_id or "", target.token.action, as_of=opened.today,
            reason=reason or None, reference=target.reference, outcome_callback=_ledger(state),
            cause=CAUSE).new)
    except NotFound:  # the party left the directory (and its matches went) since the digest was sent
        return _refused(request, BadToken("party gone"))
    return _done(request, state, target, new)


async def stop_link(request: Request) -> Response:
    """``/stop/{token}``: Stop these emails (also the List-Unsubscribe one-click URL)."""
    opened = await _open(request, _digest)
    if isinstance(opened, Response):
        return opened
    state, target = opened.state, opened.target
    one_click = _field(opened.form, "List-Unsubscribe") == "One-Click"  # RFC 8058
    if not one_click and not state.signer.check_form_token(opened.token, _field(opened.form, "form_token")):
        return _forbidden(request)
    new = await run_in_threadpool(state.write, lambda s: _opt_out(s, target.party_id))
    return _done(request, state, target, new)


def _ledger(state: WebState) -> Any:
    """``interested`` reaches the target ledger as `broker feedback --interested` does, under the
    server's counting configuration."""
    def hook(session: Session, opportunity_id: str, party_id: str, *, stage: str, cause: str, as_of: date) -> int:
        return record_outcome(session, opportunity_id, party_id, stage, cause=cause, as_of=as_of,
                              config=state.config.target)
    return hook


def _opt_out(session: Session, party_id: str) -> bool:
    pref = session.get(DigestPreference, party_id)
    if pref is not None and pref.opt_in is False:
        return False
    set_preferences(session, party_id, opt_in=False, cause=CAUSE)
    return True


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _page(request: Request, state: WebState, target: Target, token: str) -> HTMLResponse:
    return state.render(request, "link_confirm.html.j2", target=target, verb=VERBS[target.token.action],
                        form_token=state.signer.form_token(token), action_url=request.url.path)


def _done(request: Request, state: WebState, target: Target, new: bool) -> HTMLResponse:
    return state.render(request, "link_done.html.j2", target=target, verb=VERBS[target.token.action], new=new)


def _forbidden(request: Request) -> HTMLResponse:
    return state_of(request).render(request, "message.html.j2", 403, title="Please use the button",
                                    message="This request did not come from our confirmation page. Open the "
                                            "link from the email again and press the button.")


def routes() -> list[Route]:
    return [Route("/f/{token}", item_link, methods=["GET", "POST"]),
            Route("/stop/{token}", stop_link, methods=["GET", "POST"])]
