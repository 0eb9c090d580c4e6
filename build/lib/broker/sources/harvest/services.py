"""The two UK OCDS APIs the harvester walks: their endpoints, window sizes and politeness defaults.

Facts come from shared/research/ocds-sources.md §2.1 (Contracts Finder) and §2.4 (Find a Tender), which
cite the API documentation and OCP's production spiders (kingfisher-collect).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Politeness:
    """How gently to ask. Every wait goes through the injected clock's ``sleep``.

    Attributes:
        min_interval: Seconds between the starts of two requests (one request at a time, always).
        rate_limit_wait: Seconds to wait when the service says "too many requests" without a
            ``Retry-After`` (and, for Contracts Finder, after every 403, which means the same thing).
        max_wait: Cap on any single wait, including one asked for by ``Retry-After``.
        rate_limit_retries: Rate-limit answers in a row for one URL before giving up.
        server_error_retries: Retries of one URL after other 5xx answers or connection failures.
        backoff_base: First back-off after a 5xx or connection failure; it doubles each retry.
        timeout: Seconds to wait for a connection or for the next bytes of an answer.
        max_body_bytes: Larger answers are refused (a page of 100 releases is well under 5 MB).
    """

    min_interval: float
    rate_limit_wait: float
    max_wait: float = 900.0
    rate_limit_retries: int = 5
    server_error_retries: int = 3
    backoff_base: float = 10.0
    timeout: float = 60.0
    max_body_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class ServiceSpec:
    """One OCDS search API walked in time windows, page by page through ``links.next``."""

    key: str  # file-name prefix in the inbox: cf-..., fts-...
    title: str
    default_base_url: str
    path: str
    from_param: str
    to_param: str
    window: timedelta
    stages: tuple[str, ...]  # values the API's ``stages`` filter accepts
    politeness: Politeness
    # Contracts Finder answers 403 when it means "too many requests" (§2.1); elsewhere 403 is an error.
    forbidden_is_rate_limit: bool


CONTRACTS_FINDER = ServiceSpec(
    key="cf",
    title="Contracts Finder",
    default_base_url="https://www.contractsfinder.service.gov.uk",
    path="/Published/Notices/OCDS/Search",
    from_param="publishedFrom",
    to_param="publishedTo",
    # OCP's spider walks 15-day windows (united_kingdom_contracts_finder_base.py: step = 15).
    window=timedelta(days=15),
    stages=("planning", "tender", "award", "implementation"),
    # The spider waits 300 s after a 403 and makes at most 5 attempts; it sets no delay, so 2 s is ours.
    politeness=Politeness(min_interval=2.0, rate_limit_wait=300.0),
    forbidden_is_rate_limit=True,
)

FIND_A_TENDER = ServiceSpec(
    key="fts",
    title="Find a Tender",
    default_base_url="https://www.find-tender.service.gov.uk",
    path="/api/1.0/ocdsReleasePackages",
    from_param="updatedFrom",
    to_param="updatedTo",
    # "The endpoint doesn't return all available releases with a longer step" (united_kingdom_fts.py).
    window=timedelta(hours=6),
    stages=("planning", "tender", "award"),
    # HTTP 429 "12 request limit in 2 minute exceeded": one request per 10 s stays under it.
    politeness=Politeness(min_interval=10.0, rate_limit_wait=120.0),
    forbidden_is_rate_limit=False,
)

SERVICES: dict[str, ServiceSpec] = {spec.key: spec for spec in (CONTRACTS_FINDER, FIND_A_TENDER)}
