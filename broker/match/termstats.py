"""Collection statistics for the relevance model: document frequencies, field lengths, related terms and
the CPV groups words go with, learned from a corpus of real notices and shipped as reference data.

Why a reference table and not the statistics of tonight's live notices: with live statistics every pair's
score would depend on every other notice, so a nightly (incremental) run would either re-score every pair
or leave yesterday's scores inconsistent with what a full run gives, and explaining one pair would need the
whole corpus. A table built from a large snapshot of live notices (``scripts/build_term_stats.py``, see
``broker/data/README.md``) keeps a pair's score a function of the pair, the table and the parameters; the
table's digest is recorded with every run (``service.reference_data_digest``), so replay stays identical
and a rebuilt table is visible in the manifest.

What is learned:

* ``df``: in how many notices each term (stem or two-stem phrase) occurs, in any field;
* ``avg_length``: the mean length of each field in content words (BM25F length normalisation);
* ``related``: for a term, terms that co-occur with it far more than chance (lift), e.g. ``unemploy`` ->
  ``employ``; the query expansion uses them, and every expansion is shown in the match's reasons;
* ``cpv``: for a term, the CPV groups (first three digits) of the notices that use it, when the term
  predicts the group well; the query infers CPV groups from a VCSE's own words with them.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from broker.errors import ConfigError
from broker.match.textindex import count_terms, is_generic
from broker.normalise.cpv import canonical_code, catalogue
from broker.paths import DATA_DIR

FIELDS = ("title", "description", "cpv", "buyer")
STATS_FILE = DATA_DIR / "term_stats.json"
CPV_GROUP_DIGITS = 3


@dataclass(frozen=True)
class TermStats:
    """Reference collection statistics (see the module docstring)."""

    documents: int
    avg_length: Mapping[str, float]
    df: Mapping[str, int]
    related: Mapping[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)
    cpv: Mapping[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)
    source: str = ""

    def idf(self, term: str) -> float:
        """Robertson-Sparck Jones idf with the usual +1 inside the log (never negative)."""
        df = self.df.get(term, 0)
        return math.log(1.0 + (self.documents - df + 0.5) / (df + 0.5))

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "documents": self.documents,
                "avg_length": {k: self.avg_length[k] for k in FIELDS},
                "df": {t: self.df[t] for t in sorted(self.df)},
                "related": {t: [[u, w] for u, w in self.related[t]] for t in sorted(self.related)},
                "cpv": {t: [[g, w] for g, w in self.cpv[t]] for t in sorted(self.cpv)}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TermStats:
        try:
            return cls(documents=int(data["documents"]),
                       avg_length={k: float(data["avg_length"][k]) for k in FIELDS},
                       df={str(t): int(n) for t, n in data["df"].items()},
                       related={str(t): tuple((str(u), float(w)) for u, w in v)
                                for t, v in data.get("related", {}).items()},
                       cpv={str(t): tuple((str(g), float(w)) for g, w in v) for t, v in data.get("cpv", {}).items()},
                       source=str(data.get("source", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad term statistics: {exc}") from None


@lru_cache(maxsize=4)
def load_term_stats(path: Path = STATS_FILE) -> TermStats:
    """The shipped reference statistics (read once per process).

    Raises:
        ConfigError: the file is missing or malformed.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read term statistics {path}: {exc}. Rebuild them with "
                          "`python scripts/build_term_stats.py`.") from None
    return TermStats.from_json(data)


@dataclass(frozen=True)
class NoticeText:
    """The four text fields of a notice (what the statistics and the model read)."""

    title: str
    description: str
    buyer: str
    cpv_codes: tuple[str, ...]

    def fields(self) -> dict[str, tuple[dict[str, int], int]]:
        labels = "\n".join(filter(None, (catalogue().label(c) for c in self.cpv_codes)))
        return {"title": count_terms(self.title), "description": count_terms(self.description),
                "cpv": count_terms(labels), "buyer": count_terms(self.buyer)}


def cpv_groups(codes: Iterable[str]) -> tuple[str, ...]:
    """The CPV groups (first three digits) of a list of codes, sorted, placeholders dropped."""
    out = set()
    for raw in codes:
        code = canonical_code(raw)
        if code and code != "00000000":
            out.add(code[:CPV_GROUP_DIGITS])
    return tuple(sorted(out))


def build_term_stats(notices: Iterable[NoticeText], *, source: str = "", min_df: int = 2,
                     related_per_term: int = 6, min_cooccurrence: int = 3, min_lift: float = 4.0,
                     max_df_fraction: float = 0.2) -> TermStats:
    """Statistics of a corpus of notices (deterministic: sorted iteration throughout).

    Args:
        notices: the corpus.
        source: a line saying where the corpus came from, kept in the file.
        min_df: terms in fewer notices are left out of ``df`` (they get the idf of an unseen term).
        related_per_term: how many related terms to keep per term.
        min_cooccurrence: notices two terms must share before they can be related.
        min_lift: how many times more often than chance they must co-occur.
        max_df_fraction: terms in more notices than this share are too common to relate or predict codes.
    """
    docs: list[frozenset[str]] = []
    groups: list[tuple[str, ...]] = []
    lengths = {f: 0 for f in FIELDS}
    for notice in notices:
        terms: set[str] = set()
        for name, (counts, length) in notice.fields().items():
            lengths[name] += length
            terms.update(counts)
        docs.append(frozenset(terms))
        groups.append(cpv_groups(notice.cpv_codes))
    n = len(docs)
    if n == 0:
        raise ConfigError("no notices to build term statistics from")
    df = Counter(t for d in docs for t in d)
    useful = {t for t, c in df.items() if min_cooccurrence <= c <= max_df_fraction * n and not is_generic(t)}
    related = _related(docs, df, useful, n, related_per_term, min_cooccurrence, min_lift)
    cpv = _cpv_evidence(docs, groups, df, useful, min_cooccurrence)
    return TermStats(n, {f: lengths[f] / n for f in FIELDS}, {t: c for t, c in sorted(df.items()) if c >= min_df},
                     related, cpv, source)


def _related(docs: list[frozenset[str]], df: Counter[str], useful: set[str], n: int, per_term: int,
             min_co: int, min_lift: float) -> dict[str, tuple[tuple[str, float], ...]]:
    """t -> [(u, P(u|t))] for the terms u most predictive of t's documents (lift >= ``min_lift``).

    A term is never related to its own parts or to phrases containing it ("mental health" and "mental"
    already meet in the index); only unigrams relate, to unigrams and phrases.
    """
    co: Counter[tuple[str, str]] = Counter()
    for d in docs:
        terms = sorted(t for t in d if t in useful)
        uni = [t for t in terms if " " not in t]
        for t in uni:
            for u in terms:
                if u != t:
                    co[(t, u)] += 1
    out: dict[str, list[tuple[float, str, float]]] = {}
    for (t, u), c in sorted(co.items()):
        if c < min_co or t in u.split(" ") or any(p in t.split(" ") for p in u.split(" ")):
            continue
        lift = c * n / (df[t] * df[u])
        if lift < min_lift:
            continue
        p = c / df[t]
        out.setdefault(t, []).append((-p * math.log(lift), u, round(p, 3)))
    return {t: tuple((u, p) for _, u, p in sorted(v)[:per_term]) for t, v in sorted(out.items())}


def _cpv_evidence(docs: list[frozenset[str]], groups: list[tuple[str, ...]], df: Counter[str], useful: set[str],
                  min_co: int) -> dict[str, tuple[tuple[str, float], ...]]:
    """t -> [(CPV group, P(group|t))] where the term predicts the group (P >= 0.3, lift >= 3)."""
    group_df = Counter(g for gs in groups for g in gs)
    n = len(docs)
    co: Counter[tuple[str, str]] = Counter()
    for d, gs in zip(docs, groups, strict=True):
        for t in d:
            if t in useful:
                for g in gs:
                    co[(t, g)] += 1
    out: dict[str, list[tuple[float, str]]] = {}
    for (t, g), c in sorted(co.items()):
        p = c / df[t]
        if c >= min_co and p >= 0.3 and p * n / group_df[g] >= 3.0:
            out.setdefault(t, []).append((-p, g))
    return {t: tuple((g, round(-negp, 3)) for negp, g in sorted(v)[:3]) for t, v in sorted(out.items())}
