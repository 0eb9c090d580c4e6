"""Text to terms for matching: tokenising, a light stemmer, stop words, phrases and an inverted index.

A text becomes *terms*: stems of content words ("counselling" -> ``counsel``) and phrases of two adjacent
content stems inside one clause (``mental health``). Stop words are dropped; *generic* words ("services",
"support", "provision", "community", ...) are kept, so that they still form phrases ("community
transport"), but they never propose a match on their own and weigh little in scores. Both sides of a match
go through the same functions, so the stemmer only has to be consistent, not linguistically right.

The inverted index is compressed sparse rows in numpy (term -> documents, weights), so a whole batch of
queries is answered with a handful of vector operations instead of a Python loop per posting.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from broker.normalise.text import clean_text

# A word (hyphens and apostrophes inside it kept), or clause punctuation (matched as an empty group).
_TOKEN = re.compile(r"([a-z0-9]+(?:[-'\u2019][a-z0-9]+)*)|[.,;:!?()\[\]{}|/\\\n\u2022\u2013\u2014\"+*=<>]+|\s[-&]\s")
_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9&]{1,5}\b")

STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing don down during each either etc few for from further had
has have having he her here hers herself him himself his how i if in into is it its itself just may me
might more most must my myself no nor not now of off on once only or other our ours ourselves out over own
per same shall she should so some such than that the their theirs them themselves then there these they
this those through to too under until up upon us very via was we were what when where which while who
whom why will with within without would you your yours yourself yourselves
""".split())

# Words that appear in most notices or most VCSE statements: kept for phrases, never a match on their own.
# The second half is every stem in more than ~7 % of the 1,000 real Contracts Finder notices of
# fixtures/labelled/cf_export_2020-04-16.csv that says nothing about the service.
_GENERIC_WORDS = """
service services support supporting provision provide provided providing provider providers deliver
delivery delivering contract contracts council councils requirement requirements require required
opportunity opportunities tender tenders tendering procurement organisation organisations organization
work working project projects programme programmes program people person persons community communities
local group groups include includes including need needs new use using offer offers help helping range
based across public various high quality value experience ensure aim aims area areas authority borough
city county district framework frameworks lot lots supplier suppliers supply supplies related general
activity activities information specification document documents portal date dates period year years
month months week weeks day days time number details following successful bidder bidders applicant
applicants company companies organisational agreement agreements scheme schemes solution solutions system
systems requirement management manage managing plan plans planning process processes approach team teams
access individuals individual member members partner partners partnership partnerships resident residents
please uk http https www com seek seeking invite invites interest interested register registered appoint
appointed look looking submit submission existing place full one two three available wish term notice
extend extension market meet current currently award awarded set open engage engagement potential contact
replace establish due improve enable subject able intend intended purpose issue commence undertake
additional consider initial email form qualify take future assess develop development build contractor
contractors associated cover fund funding funded business social response responsible limit limited link
found operate operating operation operational
""".split()


@lru_cache(maxsize=1 << 18)
def stem(word: str) -> str:
    """A light suffix-stripping stemmer (plurals, -ing, -ed, -er, -ation, -ment, -ise/-ize, ...).

    Consistency matters more than linguistics: "counselling", "counsellor's" and "counselled" must meet
    ("counsel"); "organisation" and "organization" must meet ("organis"). Two passes let "trainers" reach
    "train" and "employers" reach "employ".
    """
    w = _plural(word)
    stripped_any = False
    for _ in range(2):
        stripped = _strip_suffix(w)
        if stripped == w:
            break
        w, stripped_any = stripped, True
    if stripped_any and len(w) == 3 and _CVC.match(w):
        w += "e"  # caring, carer, cared -> care (not car); hoping -> hope (not hop)
    if len(w) > 4 and w.endswith("e"):
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiousy":
        w = w[:-1]
    return w


_CVC = re.compile(r"^[^aeiou][aeiouy][^aeiouwxy]$")
# (suffix, replacement, shortest stem left): the first match wins, longest suffixes first.
_SUFFIXES = (
    ("isations", "is", 3), ("izations", "is", 3), ("isation", "is", 3), ("ization", "is", 3),
    ("ational", "", 4), ("ations", "", 4), ("ation", "", 4), ("ability", "", 4), ("ibility", "", 4),
    ("nesses", "", 4), ("ness", "", 4), ("ments", "", 4), ("ment", "", 4),
    ("ising", "is", 3), ("izing", "is", 3), ("ised", "is", 3), ("ized", "is", 3), ("ise", "is", 3),
    ("ize", "is", 3), ("ancy", "", 4), ("ency", "", 4), ("ators", "", 4), ("ator", "", 4),
    ("ants", "", 4), ("ant", "", 4), ("ive", "", 4), ("ate", "", 4), ("ied", "y", 3), ("ier", "y", 3),
    ("ing", "", 3), ("ers", "", 3), ("er", "", 3), ("ed", "", 3),
)


def _plural(w: str) -> str:
    if len(w) <= 3 or not w.endswith("s"):
        return w
    if w.endswith("sses"):
        return w[:-2]
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("ss", "us", "is")):
        return w
    return w[:-1]


def _strip_suffix(w: str) -> str:
    for suffix, repl, keep in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= keep:
            if suffix[0] == "e" and w[-len(suffix) - 1] == "e":
                return w  # career, volunteer, engineer: "-eer" is no agent suffix (care != career)
            return w[: len(w) - len(suffix)] + repl
    return w


GENERIC = frozenset(stem(w) for w in _GENERIC_WORDS)


def is_generic(term: str) -> bool:
    """A generic unigram ("servic", "support"); phrases are never generic unless both halves are."""
    if " " in term:
        a, b = term.split(" ", 1)
        return a in GENERIC and b in GENERIC
    return term in GENERIC


def fold(text: str) -> str:
    """Lower case ASCII: accents dropped (café -> cafe), curly apostrophes kept for the word pattern."""
    low = text.lower()
    if low.isascii():
        return low
    return unicodedata.normalize("NFKD", low).encode("ascii", "ignore").decode()


@lru_cache(maxsize=1 << 18)
def _lex(token: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(stems in order, surface words, extra joined stems) of one raw token; cached per token."""
    token = token.replace("\u2019", "'").split("'", 1)[0]
    parts = token.split("-")
    words: list[str] = []
    extra: list[str] = []
    if len(parts) > 1:
        # "well-being" also meets "wellbeing"; "after-school" also meets "after school".
        joined = "".join(parts)
        if joined not in STOPWORDS:
            extra.append(stem(joined))
            words.append(joined)
    stems: list[str] = []
    for part in parts:
        if len(part) < 2 or part in STOPWORDS or part.isdigit():
            continue
        stems.append(stem(part))
        words.append(part)
    return tuple(stems), tuple(words), tuple(extra)


@dataclass(frozen=True, slots=True)
class Terms:
    """The terms of one text: unigram stems, two-stem phrases, surface words and acronyms."""

    unigrams: frozenset[str]
    bigrams: frozenset[str]
    words: frozenset[str]
    acronyms: frozenset[str]

    @property
    def all(self) -> frozenset[str]:
        return self.unigrams | self.bigrams


EMPTY_TERMS = Terms(frozenset(), frozenset(), frozenset(), frozenset())


# Short texts (titles, capability statements, keywords) are analysed once per process: blocking and
# features both need them. Long descriptions are not kept (a national run has 10,000 of them).
SHORT_TEXT = 500


def analyse(text: str) -> Terms:
    """Terms of a text. Phrases never cross clause punctuation (commas, full stops, brackets, slashes);
    stop words between two content words do not break a phrase ("meals on wheels" -> ``meal wheel``)."""
    if len(text) <= SHORT_TEXT:
        return _analyse_short(text)
    return _analyse(text)


def _analyse(text: str) -> Terms:
    if not text:
        return EMPTY_TERMS
    if "<" in text:
        text = clean_text(text)  # views carry clean text; this guards against markup that slipped through
    unigrams: set[str] = set()
    bigrams: set[str] = set()
    words: set[str] = set()
    prev = ""
    for token in _TOKEN.findall(fold(text)):
        if not token:  # clause punctuation
            prev = ""
            continue
        stems, seg_words, extra = _lex(token)
        words.update(seg_words)
        unigrams.update(extra)
        for s in stems:
            unigrams.add(s)
            if prev and prev != s:
                bigrams.add(f"{prev} {s}")
            prev = s
    return Terms(frozenset(unigrams), frozenset(bigrams), frozenset(words),
                 frozenset(_ACRONYM.findall(text)))


_analyse_short = lru_cache(maxsize=1 << 15)(_analyse)


def phrase_stems(text: str) -> tuple[str, ...]:
    """The content stems of a short phrase (a keyword) in order; stop words dropped."""
    return tuple(s for token in _TOKEN.findall(fold(text)) if token for s in _lex(token)[0])


def phrase_terms(stems: Sequence[str]) -> tuple[str, ...]:
    """The terms a phrase must all match: its single stem, or its consecutive two-stem phrases."""
    if len(stems) <= 1:
        return tuple(stems)
    return tuple(f"{a} {b}" for a, b in zip(stems, stems[1:], strict=False) if a != b) or (stems[0],)


@lru_cache(maxsize=1 << 14)
def place_terms(names: tuple[str, ...]) -> frozenset[str]:
    """Terms of place names ("Birmingham", "Perry Barr", "West Midlands").

    Where the work is and where a party works is the location features' business; a town named in both
    texts must not also count as shared capability, or every Birmingham charity would match every
    Birmingham notice.
    """
    out: set[str] = set()
    for name in names:
        out.update(analyse(name).all)
    return frozenset(out)


def split_phrases(text: str) -> list[str]:
    """Split a list-like field ("counselling; advocacy, befriending") into its phrases, in order."""
    return [p.strip() for p in re.split(r"[;,\n|]+", text or "") if p.strip()]


class Vocabulary:
    """Term -> integer id, ids given in sorted term order so that they do not depend on input order."""

    def __init__(self, terms: Iterable[str]) -> None:
        self.terms: tuple[str, ...] = tuple(sorted(set(terms)))
        self.ids: dict[str, int] = {t: i for i, t in enumerate(self.terms)}

    def __len__(self) -> int:
        return len(self.terms)


class InvertedIndex:
    """Term id -> (document indices, weights) in compressed sparse rows.

    Args:
        docs: for each document (in its index order), its ``{term_id: weight}``.
        n_terms: size of the term vocabulary.
    """

    def __init__(self, docs: Sequence[Mapping[int, float]], n_terms: int) -> None:
        counts = sum(len(d) for d in docs)
        term_ids = np.empty(counts, dtype=np.int64)
        doc_ids = np.empty(counts, dtype=np.int32)
        weights = np.empty(counts, dtype=np.float64)
        pos = 0
        for i, d in enumerate(docs):
            n = len(d)
            term_ids[pos:pos + n] = list(d.keys())
            weights[pos:pos + n] = list(d.values())
            doc_ids[pos:pos + n] = i
            pos += n
        order = np.argsort(term_ids, kind="stable")
        self.indices = doc_ids[order]
        self.data = weights[order]
        self.indptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(np.bincount(term_ids, minlength=n_terms), out=self.indptr[1:])
        self.n_docs = len(docs)

    @property
    def df(self) -> np.ndarray:
        """Document frequency of each term."""
        return np.diff(self.indptr)

    def gather(self, rows: np.ndarray, term_ids: np.ndarray,
               weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every posting of every query term at once.

        Args:
            rows: the query row of each (row, term, weight) triple.
            term_ids: the term of each triple.
            weights: the query-side weight of each triple.

        Returns:
            (rows, document indices, query weight x document weight), one entry per posting hit.
        """
        starts = self.indptr[term_ids]
        lens = self.indptr[term_ids + 1] - starts
        total = int(lens.sum())
        if total == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0, dtype=np.float64)
        offsets = np.cumsum(lens) - lens
        pos = np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, lens)
        return np.repeat(rows, lens), self.indices[pos], self.data[pos] * np.repeat(weights, lens)


def count_terms(text: str) -> tuple[dict[str, int], int]:
    """Term frequencies of a text (unigram stems and two-stem phrases, as ``analyse`` finds them) and its
    length in content words, for the relevance model's term-frequency saturation and length normalisation.

    Keys are inserted in first-seen order; callers that need a stable order sort them.
    """
    if not text:
        return {}, 0
    if "<" in text:
        text = clean_text(text)
    counts: dict[str, int] = {}
    length = 0
    prev = ""
    for token in _TOKEN.findall(fold(text)):
        if not token:
            prev = ""
            continue
        stems, _, extra = _lex(token)
        for s in extra:
            counts[s] = counts.get(s, 0) + 1
        for s in stems:
            length += 1
            counts[s] = counts.get(s, 0) + 1
            if prev and prev != s:
                bigram = f"{prev} {s}"
                counts[bigram] = counts.get(bigram, 0) + 1
            prev = s
    return counts, length


def surface_words(text: str) -> dict[str, str]:
    """Stem -> the first word (in sort order) of ``text`` that has that stem, to show terms as written."""
    out: dict[str, str] = {}
    for w in sorted(analyse(text).words):
        out.setdefault(stem(w), w)
    return out
