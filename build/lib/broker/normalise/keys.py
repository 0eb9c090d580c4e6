"""Match keys: how one notice arriving from two sources is recognised as one opportunity.

Every reader builds its keys with these functions so that the same notice gives the same key whichever
format it came in. Two keys are defined:

* ``cfref:`` + buyer + ``|`` + the buyer's own reference. Contracts Finder OCDS puts that reference in
  ``tender.id``; the Contracts Finder CSV calls it "Notice Identifier" (research/ocds-sources.md §2.2:
  it is not the OCDS GUID). Only meaningful for Contracts Finder, so only its readers use it.
* ``title:`` + buyer + ``|`` + title + ``|`` + deadline date. For every source: the same tender
  published on Contracts Finder and on Find a Tender has the same buyer, title and closing day.

Text goes through :func:`broker.normalise.text.match_key` (case, accents, punctuation folded). The
deadline's date is the UK calendar day, so ``23:59:59`` BST and ``22:59:59Z`` agree.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from broker.normalise.dates import LONDON
from broker.normalise.text import match_key

REFERENCE_PREFIX = "cfref:"
TITLE_PREFIX = "title:"
# Keys are stored in a VARCHAR(255) column; real Contracts Finder titles run past 300 characters.
MAX_KEY = 255


def reference_key(buyer: object, reference: object) -> str | None:
    """``cfref:<buyer>|<reference>``, or ``None`` when either part is blank."""
    b, r = match_key(buyer), match_key(reference)
    if not b or not r:
        return None
    return _fit(f"{REFERENCE_PREFIX}{b}|{r}")


def title_key(buyer: object, title: object, deadline: datetime | None) -> str | None:
    """``title:<buyer>|<title>|<YYYY-MM-DD or none>``, or ``None`` when buyer or title is blank.

    Args:
        buyer: the buyer's name as published.
        title: the notice (or lot) title as published.
        deadline: the aware deadline, or ``None``; its UK local date is used.
    """
    b, t = match_key(buyer), match_key(title)
    if not b or not t:
        return None
    day = deadline.astimezone(LONDON).date().isoformat() if deadline is not None else "none"
    return _fit(f"{TITLE_PREFIX}{b}|{t}|{day}")


def _fit(key: str) -> str:
    """A long key keeps a readable start and ends in a sha256 of the whole key (still unique)."""
    if len(key) <= MAX_KEY:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{key[:MAX_KEY - len(digest) - 1]}#{digest}"
