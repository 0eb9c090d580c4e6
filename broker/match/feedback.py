"""Learning from a party's feedback: Rocchio-style query terms from "interested" and "not relevant".

A party that marks notices "interested" moves its query toward the words those notices share; "not
relevant" moves it away (Rocchio: ``q' = q + beta * mean(interested) - gamma * mean(not relevant)``). The
learned terms are data on the party's view (``PartyView.feedback_terms``, weights in thousandths), so:

* new feedback changes the party's view hash: the next run re-matches that party (incremental scope);
* the run's snapshot keeps the terms, so ``broker audit replay`` gives identical decisions;
* the relevance model adds them to the party's query, and a match's ``relevance_terms`` names the ones
  that carried it ("learned from your feedback") or held it back.

Each notice is represented by its heaviest BM25F terms, scaled so its strongest term is 1; the party's
own feedback only (never another party's), and only feedback given on or before the run's business date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from broker.match.model import OpportunityView
from broker.match.relevance import CPV_PREFIX, RelevanceModel
from broker.match.textindex import is_generic

INTERESTED, NOT_RELEVANT = "interested", "not_relevant"


@dataclass(frozen=True)
class FeedbackParams:
    """Rocchio weights; the defaults keep learned terms at or below a keyword's weight."""

    beta: float = 1.5  # pull toward what the party was interested in
    gamma: float = 1.0  # push away from what it called not relevant
    terms_per_notice: int = 12
    max_terms: int = 20


DEFAULT_FEEDBACK = FeedbackParams()


def notice_profile(model: RelevanceModel, opp: OpportunityView, limit: int, min_df: int = 3) -> dict[str, float]:
    """A notice's ``limit`` heaviest specific words, scaled so the heaviest is 1 (ties by term).

    Only single words that recur across notices (in at least ``min_df`` of the reference corpus): a
    notice's rarest phrases ("asp microsoft", "1st december") say nothing about the next notice.
    """
    doc = model.document(opp)
    df = model.stats.df
    ranked = sorted(((-w, t) for t, w in doc.items()
                     if " " not in t and not t.startswith(CPV_PREFIX) and not is_generic(t) and w > 0
                     and df.get(t, 0) >= min_df))[:limit]
    if not ranked:
        return {}
    top = -ranked[0][0]
    return {t: -w / top for w, t in ranked}


def rocchio_terms(model: RelevanceModel, feedback: Sequence[tuple[str, OpportunityView]],
                  params: FeedbackParams = DEFAULT_FEEDBACK) -> tuple[tuple[str, int], ...]:
    """The learned query terms of one party, sorted by term, weights in thousandths.

    Args:
        model: the relevance model the run scores with.
        feedback: (kind, notice) pairs, ``interested`` or ``not_relevant``, in any order.
        params: Rocchio weights and limits.
    """
    groups: dict[str, list[dict[str, float]]] = {INTERESTED: [], NOT_RELEVANT: []}
    for kind, opp in sorted(feedback, key=lambda kv: (kv[0], kv[1].id)):
        if kind in groups:
            groups[kind].append(notice_profile(model, opp, params.terms_per_notice))
    delta: dict[str, float] = {}
    for kind, factor in ((INTERESTED, params.beta), (NOT_RELEVANT, -params.gamma)):
        docs = groups[kind]
        for doc in docs:
            for t, w in doc.items():
                delta[t] = delta.get(t, 0.0) + factor * w / len(docs)
    ranked = sorted((-abs(w), t) for t, w in delta.items() if int(round(w * 1000)) != 0)[: params.max_terms]
    return tuple(sorted((t, int(round(delta[t] * 1000))) for _, t in ranked))


def party_feedback_terms(model: RelevanceModel, rows: Iterable[tuple[str, str, str]],
                         notices: Mapping[str, OpportunityView],
                         params: FeedbackParams = DEFAULT_FEEDBACK) -> dict[str, tuple[tuple[str, int], ...]]:
    """Learned terms for every party with feedback.

    Args:
        model: the relevance model the run scores with.
        rows: (party id, opportunity id, kind) of every feedback row to use.
        notices: the notices the rows name (rows naming others are skipped).
        params: Rocchio weights and limits.
    """
    by_party: dict[str, list[tuple[str, OpportunityView]]] = {}
    for party_id, opp_id, kind in rows:
        if opp_id in notices:
            by_party.setdefault(party_id, []).append((kind, notices[opp_id]))
    out = {}
    for party_id in sorted(by_party):
        terms = rocchio_terms(model, by_party[party_id], params)
        if terms:
            out[party_id] = terms
    return out
