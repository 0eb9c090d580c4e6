"""Rankings the matcher is compared with, and extra pooling methods for building labelled sets.

* keyword alert: what a Contracts Finder saved search sends: every open notice whose title or description
  contains one of the profile's keywords (whole words, any case), newest first. Exclusions are not applied.
* plain BM25: no rules at all; the profile's capability text and keywords as the query, title and
  description as the document, English stop words and Snowball stemming. A textbook retrieval model, so a
  matcher that cannot beat it is not adding anything by its rules.
* CPV prefix and random: only used to pool candidates when a set is built or extended.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import bm25s
import Stemmer


@dataclass(frozen=True)
class Notice:
    """What the baselines read of a live notice."""

    id: str
    title: str
    description: str
    published: datetime
    status: str
    cpv_codes: tuple[str, ...]

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.description}"


@dataclass(frozen=True)
class Profile:
    """What the baselines read of a VCSE profile."""

    id: str
    capabilities: str
    keywords: tuple[str, ...]
    cpv_codes: tuple[str, ...]


def keyword_alert(keywords: Sequence[str], notices: Sequence[Notice]) -> list[str]:
    """Open notices containing any keyword as whole words, newest first (ties by id)."""
    patterns = [re.compile(r"\b" + re.escape(k.strip()) + r"\b", re.IGNORECASE) for k in keywords if k.strip()]
    if not patterns:
        return []
    hits = [(n.published, n.id) for n in notices
            if n.status == "open" and any(p.search(n.text) for p in patterns)]
    hits.sort(key=lambda h: (-h[0].timestamp(), h[1]))
    return [oid for _, oid in hits]


class Bm25Ranker:
    """Plain BM25 (bm25s, k1 1.5, b 0.75) over the notices, built once and queried per profile."""

    def __init__(self, notices: Sequence[Notice]) -> None:
        # Sorted so that ties break by id and the index does not depend on the order notices were read.
        self._notices = sorted(notices, key=lambda n: n.id)
        self._stemmer = Stemmer.Stemmer("english")
        self._index = bm25s.BM25()
        if self._notices:
            self._index.index(self._tokens([n.text for n in self._notices]), show_progress=False)

    def _tokens(self, texts: Sequence[str]) -> list[list[str]]:
        return bm25s.tokenize(list(texts), stopwords="en", stemmer=self._stemmer, return_ids=False,
                              show_progress=False)

    def rank(self, profile: Profile) -> list[str]:
        """Notices sharing at least one query term, best first (ties by id)."""
        return [oid for _, oid in self.scored(profile)]

    def scored(self, profile: Profile) -> list[tuple[float, str]]:
        """(score, id) of the notices sharing at least one query term, best first (ties by id)."""
        query = self._tokens([" ".join([profile.capabilities, *profile.keywords])])[0]
        if not self._notices or not query:
            return []
        scores = self._index.get_scores(query)
        hits = sorted((-float(s), n.id) for s, n in zip(scores, self._notices, strict=True) if s > 0)
        return [(-neg, oid) for neg, oid in hits]


def cpv_prefix(codes: Sequence[str], notices: Sequence[Notice], *, digits: int = 5) -> list[str]:
    """Notices sharing a CPV prefix of ``digits`` digits with the profile, longest shared prefix first."""
    mine = {c[:8] for c in codes if c}
    if not mine:
        return []

    def shared(n: Notice) -> int:
        return max((len(_common(a, b[:8])) for a in mine for b in n.cpv_codes), default=0)

    hits = [(-shared(n), -n.published.timestamp(), n.id) for n in notices if shared(n) >= digits]
    return [oid for *_, oid in sorted(hits)]


def _common(a: str, b: str) -> str:
    out = []
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        out.append(x)
    return "".join(out)


def random_notices(profile_id: str, notices: Sequence[Notice], k: int, exclude: Mapping[str, object]) -> list[str]:
    """``k`` notices not in ``exclude``, drawn with a generator seeded by the profile id (reproducible)."""
    pool = sorted(n.id for n in notices if n.id not in exclude)
    return random.Random(f"pool:{profile_id}").sample(pool, min(k, len(pool)))
