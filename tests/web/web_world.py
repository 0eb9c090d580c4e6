"""Helpers for the web tests: a small directory, opportunities and matches written to the store, digests
built with signed links exactly as `broker digest build --base-url ...` builds them."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from broker.digest import DigestSettings, build_digests
from broker.digest.deliver import mark_sent
from broker.store.engine import session_factory
from broker.store.models import Digest, Match, Opportunity, Vcse
from broker.target.config import TargetConfig
from broker.target.ledger import record_introduced_many
from broker.web.app import WebConfig, create_app
from broker.web.tokens import LinkSettings

AS_OF = date(2025, 1, 16)
SECRET = "test-secret-" + "x" * 40
BASE_URL = "http://127.0.0.1:8080"
LINKS = LinkSettings(base_url=BASE_URL, secret=SECRET, days=30)
OFFICER, PASSWORD = "officer@brokerage.example", "correct horse battery staple"


def vcse(session: Session, vid: str, *, name: str | None = None, email: str | None = None,
         cluster: str = "Health and wellbeing") -> Vcse:
    row = Vcse(id=vid, name=name or f"VCSE {vid}", cluster=cluster, cluster_derived=False,
               local_authority="Birmingham", service_areas=[], capabilities="community support", keywords=[],
               exclude_keywords=[], cpv_codes=[], certifications=[], digest_opt_in=True, content_hash="0" * 64,
               contact_email=email or f"{vid.lower()}@example.net")
    session.add(row)
    session.flush()
    return row


def opportunity(session: Session, oid: str, *, title: str | None = None, description: str = "Support services.",
                value: int = 4_800_000, deadline: datetime = datetime(2025, 3, 31, 12, tzinfo=UTC)) -> Opportunity:
    row = Opportunity(
        id=oid, source="test", title=title or f"Opportunity {oid}", description=description,
        buyer_name="Birmingham City Council", status="open", deadline_at=deadline, value_min_pence=value,
        value_max_pence=value, cpv_codes=[], cpv_unknown=[], local_authority="Birmingham", postcode="B8 1AA",
        nationwide=False, reserved_participation=[], is_framework=False, is_dps=False, source_ids=[],
        match_keys=[], raw_hash="0" * 64, content_hash="0" * 64, version=1,
        url=f"https://www.contractsfinder.service.gov.uk/Notice/{oid}")
    session.add(row)
    session.flush()
    return row


def match(session: Session, opp: str, party: str, score: int, *, run_id: str = "run-1") -> Match:
    row = Match(opportunity_id=opp, party_id=party, party_type="vcse", lead_id=None, members=[], score=score,
                levels={"capability": "strong"}, reasons=[f"capability: strong fit for {opp}", "same area"],
                flags=[], status="active", first_run_id=run_id, last_run_id=run_id)
    session.add(row)
    session.flush()
    return row


# The worlds' report figures count what reached the VCSEs (digests marked sent), not only confirmed interest.
AT_INTRODUCED = TargetConfig(counting_stage="introduced")


def seed(engine: Engine) -> None:
    """Two VCSEs; V1 matches O1 and O2, V2 matches O1. O1's title is hostile markup (untrusted text)."""
    with session_factory(engine).begin() as s:
        vcse(s, "V1", name="Ward End Food Bank")
        vcse(s, "V2", name="Small Heath Youth Club")
        opportunity(s, "O1", title='Meals <script>alert("x")</script> & support',
                    description="<img src=x onerror=alert(1)> Delivery of community meals.")
        opportunity(s, "O2", title="Befriending service for older people", value=2_500_000)
        match(s, "O1", "V1", 90)
        match(s, "O2", "V1", 80)
        match(s, "O1", "V2", 70)


def build(engine: Engine, outbox: Path, as_of: date = AS_OF, links: LinkSettings | None = LINKS,
          cap: int = 10) -> list[Any]:
    """Build the night's digests and mark them sent (outbox-only mode), so their items are introduced."""
    settings = DigestSettings(sender_address="brokerage@wardend.example", links=links, cap=cap)
    with session_factory(engine)() as s:
        built = list(build_digests(s, as_of=as_of, outbox=outbox, settings=settings))
    with session_factory(engine).begin() as s:
        mark_sent(s, sorted(b.digest_id for b in built), as_of=as_of, delivered=record_introduced_many)
    return built


def digest_of(engine: Engine, recipient: str, as_of: date = AS_OF) -> Digest | None:
    with session_factory(engine)() as s:
        return s.scalars(select(Digest).where(Digest.recipient_id == recipient,
                                              Digest.as_of == as_of.isoformat())).first()


def parsed(path: Path) -> Any:
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())


def html_part(path: Path) -> str:
    return parsed(path).get_body(preferencelist=("html",)).get_content()


def text_part(path: Path) -> str:
    return parsed(path).get_body(preferencelist=("plain",)).get_content()


def csrf(page: str) -> str:
    """The CSRF token of the first form on an officer page."""
    return re.search(r'name="csrf" value="([^"]+)"', page)[1]


def login(client: Any, email: str = OFFICER, password: str = PASSWORD) -> Any:
    """Log in through the login form (a TestClient keeps the session cookie)."""
    token = csrf(client.get("/login").text)
    return client.post("/login", data={"csrf": token, "email": email, "password": password})


class Clock:
    """The business date the app sees; tests move it on."""

    def __init__(self, day: date) -> None:
        self.day = day

    def __call__(self) -> date:
        return self.day


def make_client(engine: Engine, clock: Clock, **overrides: Any) -> Any:
    """A Starlette TestClient on the app (plain http, so cookies are not Secure-only)."""
    from starlette.testclient import TestClient

    overrides.setdefault("target", AT_INTRODUCED)
    config = WebConfig(secret=SECRET, secure_cookies=False, clock=clock, **overrides)
    return TestClient(create_app(engine, config), base_url="http://127.0.0.1:8080", follow_redirects=False)
