"""Choosing between settings by cross-validation over profiles, with an honest estimate of the choice.

Picking the best of several settings (weights, thresholds, cut-offs) on the same profiles it is then
scored on overstates it. Here each fold's profiles are held out in turn: the setting with the best mean
on the other folds is chosen and scored on the held-out fold. The mean of those held-out scores is what
the tuning procedure can be expected to give on profiles it has not seen.

Typical use: rank the ``tune`` split's profiles with each candidate setting, call
:func:`cross_validate`, and report the chosen setting on the ``test`` split once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from broker.evaluation.metrics import Scores, score_ranking

Rankings = Mapping[str, Sequence[str]]  # {profile id: ranked opportunity ids}


@dataclass(frozen=True)
class CrossValidation:
    """``held_out``: mean of the chosen settings' held-out scores; ``chosen``: the setting each fold chose."""

    held_out: float
    chosen: list[str]
    folds: list[list[str]]


def profile_folds(profiles: Sequence[str], k: int) -> list[list[str]]:
    """``k`` folds of the profiles, dealt round-robin in id order (deterministic; leave-one-out when k = n)."""
    ids = sorted(profiles)
    k = max(1, min(k, len(ids)))
    return [ids[i::k] for i in range(k)]


def cross_validate(candidates: Mapping[str, Rankings], grades: Mapping[str, Mapping[str, int]], *, k: int = 5,
                   metric: Callable[[Scores], float] = lambda s: s.ndcg_at_10) -> CrossValidation:
    """Held-out estimate of "pick the candidate setting with the best ``metric``".

    Args:
        candidates: {setting name: rankings of every profile in ``grades``}.
        grades: {profile: {opportunity: grade}}, profiles with at least one relevant notice.
        k: number of folds over the profiles.
        metric: what to maximise (nDCG@10 unless told).
    """
    profiles = sorted(p for p, g in grades.items() if any(v >= 1 for v in g.values()))
    folds = profile_folds(profiles, k)
    score = {(name, p): metric(score_ranking(list(r.get(p, [])), grades[p]))
             for name, r in candidates.items() for p in profiles}
    names = sorted(candidates)
    held, chosen = [], []
    for fold in folds:
        rest = [p for p in profiles if p not in fold]
        # ties go to the first name in sorted order, so the choice is deterministic
        best = max(names, key=lambda n: (sum(score[(n, p)] for p in rest) / (len(rest) or 1), -names.index(n)))
        chosen.append(best)
        held += [score[(best, p)] for p in fold]
    return CrossValidation(sum(held) / (len(held) or 1), chosen, folds)
