"""Harvest release packages from the Contracts Finder and Find a Tender OCDS APIs into an inbox.

The core takes no part in ingest: it only fills a directory with release-package pages (as served, or
repaired where the known quirks demand) that ``broker ingest`` reads like any dropped-in file.

Typical use::

    from broker.sources.harvest import CONTRACTS_FINDER, FetchOptions, harvest
    summary = harvest(CONTRACTS_FINDER, FetchOptions(inbox=Path("inbox"), since=since))
    if not summary.ok: ...
"""

from broker.sources.harvest.http import USER_AGENT, Clock, FetchError, SystemClock, Wait, parse_retry_after
from broker.sources.harvest.pages import Page, PageError, parse_page
from broker.sources.harvest.run import FetchEvent, FetchOptions, FetchSummary, harvest
from broker.sources.harvest.services import CONTRACTS_FINDER, FIND_A_TENDER, SERVICES, Politeness, ServiceSpec
from broker.sources.harvest.windows import parse_duration, parse_since, parse_until

__all__ = [
    "CONTRACTS_FINDER", "FIND_A_TENDER", "SERVICES", "USER_AGENT", "Clock", "FetchError", "FetchEvent",
    "FetchOptions", "FetchSummary", "Page", "PageError", "Politeness", "ServiceSpec", "SystemClock", "Wait",
    "harvest", "parse_duration", "parse_page", "parse_retry_after", "parse_since", "parse_until",
]
