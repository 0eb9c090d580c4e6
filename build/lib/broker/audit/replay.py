"""Replay a stored run: re-execute it from its snapshot and stored rules, compare decision by decision.

The replay reads nothing live: the inputs come from the run's content-addressed snapshot, the rules from
the texts stored with the run, the parameters, scope and business date from its manifest
(research/durable-rules.md §4.3, "Replay procedure"). Before evaluating, every stored piece is checked
against its hash (rule texts, snapshot records, input list, manifest), so a tampered record is named
plainly rather than showing up only as different decisions.

Comparison streams: replayed decisions arrive in batches in the order the run made them, and the stored
rows are read alongside in the same order, so memory stays at a batch (plus any decisions whose order
differs, kept as 32-byte hashes by key until their counterpart turns up).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from broker.audit.digests import decision_digest, decision_hash
from broker.audit.stored import (
    AuditError,
    chain_link_of,
    decision_key,
    get_run,
    input_problems,
    iter_stored_decisions,
    load_views,
    manifest_problems,
    require_complete,
    rule_files,
    rule_problems,
    stored_ruleset,
)
from broker.errors import BrokerError, ConfigError
from broker.match.params import MatchParams
from broker.match.run import RunScope, evaluate_run
from broker.match.service import software_versions
from broker.normalise.record import canonical_json

Key = tuple[str, str, str]
CONTENT = ("party_type", "outcome", "score", "features", "firings", "detail")
KEEP_PENDING = 2000  # out-of-order decisions kept in full (beyond this, hash and summary only)
_Pending = tuple[bytes, dict[str, Any], dict[str, Any] | None]


class ReplayDiffers(BrokerError):
    """The replay did not give the stored decisions (exit 3: CONVENTIONS "replay differs")."""

    exit_code = 3


@dataclass
class DecisionDiff:
    """One decision that differs: its key, what is wrong, and a short summary of each side."""

    key: Key
    note: str
    stored: dict[str, Any] | None = None  # seq, outcome, score, decision_hash
    replayed: dict[str, Any] | None = None  # outcome, score, decision_hash
    changes: list[str] = field(default_factory=list)  # "features.capability_score: 55 -> 61"

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.key[0], "opportunity_id": self.key[1], "party_id": self.key[2], "note": self.note,
                "stored": self.stored, "replayed": self.replayed, "changes": self.changes}


@dataclass
class ReplayReport:
    run_id: str
    as_of: str
    decisions: int = 0  # made by the replay
    stored: int = 0  # stored for the run
    different: int = 0  # decisions that differ (all of them; ``differences`` holds the first few)
    problems: list[str] = field(default_factory=list)  # hash mismatches, unreadable records
    differences: list[DecisionDiff] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.problems and self.different == 0

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "as_of": self.as_of, "identical": self.identical,
                "decisions": self.decisions, "stored": self.stored, "different": self.different,
                "problems": self.problems, "differences": [d.to_json() for d in self.differences],
                "warnings": self.warnings}


def replay_run(session: Session, run_id: str, *, limit: int = 10,
               progress: Callable[[int], None] | None = None) -> ReplayReport:
    """Re-execute run ``run_id`` from its stored snapshot and rules and compare with its stored decisions.

    Args:
        session: a session on the database holding the run (only read).
        run_id: the run to replay.
        limit: how many differing decisions to describe in full.
        progress: called with the number of pairs evaluated so far.

    Raises:
        NotFound: no such run.
        AuditError: the run is not complete.
    """
    run = get_run(session, run_id)
    require_complete(run)
    report = ReplayReport(run.id, run.as_of)
    report.warnings = software_warnings(run.software)
    files = rule_files(session, run.id)
    report.problems += rule_problems(run, files)
    report.problems += manifest_problems(session, run, chain_link_of(session, run.id))
    inputs = load_views(session, run.id)
    report.problems += inputs.problems + input_problems(run, inputs.listed)
    try:
        ruleset = stored_ruleset(files)
        params = MatchParams.from_json(run.params)
        scope = RunScope.from_json(run.scope)
        as_of = date.fromisoformat(run.as_of)
    except (AuditError, ConfigError, KeyError, TypeError, ValueError) as exc:
        report.problems.append(f"the run cannot be re-executed: {exc}")
        return report
    compare = _Comparator(iter_stored_decisions(session, run.id), report, limit)
    try:
        outcome = evaluate_run(inputs.opportunities, inputs.parties, ruleset, params, as_of, scope,
                               sink=compare.feed, progress=progress)
    except BrokerError as exc:  # e.g. the engine refusing inputs that tampering made inconsistent
        report.problems.append(f"the replay stopped: {exc}")
        return report
    compare.finish()
    _check_digests(report, run.decision_digest, run.sequence_digest, run.counts, outcome, compare.stored_hashes,
                   same_engine=run.software.get("durable-rules") == software_versions()["durable-rules"])
    return report


def software_warnings(recorded: dict[str, Any]) -> list[str]:
    """A warning (not a failure) for each recorded software version that differs from this one's."""
    now = software_versions()
    return [f"{name}: the run used {recorded.get(name)!r}, this replay uses {now.get(name)!r}"
            for name in sorted(set(recorded) | set(now)) if recorded.get(name) != now.get(name)]


def _check_digests(report: ReplayReport, stored_digest: str | None, stored_sequence: str | None,
                   stored_counts: dict[str, Any], outcome: Any, stored_hashes: list[bytes], *,
                   same_engine: bool) -> None:
    replayed = decision_digest(outcome.hashes)
    if replayed != stored_digest:
        report.problems.append(f"decision digest: the run recorded {str(stored_digest)[:12]}, the replay "
                               f"gives {replayed[:12]}")
    on_disk = decision_digest(stored_hashes)
    if on_disk != stored_digest:
        report.problems.append(f"decision digest: the stored decision rows hash to {on_disk[:12]}, the run "
                               f"recorded {str(stored_digest)[:12]} (rows were added, removed or edited)")
    if outcome.sequence_digest != stored_sequence:
        message = (f"sequence digest (the order rules fired): the run recorded {str(stored_sequence)[:12]}, "
                   f"the replay gives {outcome.sequence_digest[:12]}")
        # The order of firings is only promised on the same engine version (research §4.3, step 6).
        (report.problems if same_engine else report.warnings).append(message)
    if dict(outcome.counts) != dict(stored_counts):
        changed = sorted(k for k in set(outcome.counts) | set(stored_counts)
                         if outcome.counts.get(k) != stored_counts.get(k))
        report.problems.append("counts differ: " + ", ".join(
            f"{k} {stored_counts.get(k)} stored, {outcome.counts.get(k)} replayed" for k in changed))


class _Comparator:
    """Pairs replayed decisions with stored rows read in the same order, falling back to keys."""

    def __init__(self, stored: Iterator[dict[str, Any]], report: ReplayReport, limit: int) -> None:
        self.stored, self.report, self.limit = stored, report, limit
        self.stored_hashes: list[bytes] = []  # recomputed from each stored row's content
        # Decisions whose counterpart has not turned up yet: (hash, summary, content while few are pending).
        self.pending_stored: dict[Key, _Pending] = {}
        self.pending_replayed: dict[Key, _Pending] = {}

    def feed(self, batch: list[dict[str, Any]]) -> None:
        for replayed in batch:
            self.report.decisions += 1
            stored = next(self.stored, None)
            if stored is not None:
                self._take_stored(stored)
            if stored is not None and decision_key(stored) == decision_key(replayed):
                if stored["_hash"] != bytes.fromhex(replayed["decision_hash"]):
                    self._differ(decision_key(stored), "decided differently", _summary(stored),
                                 _summary(replayed), _changes(stored, replayed))
                continue
            self._unpaired_replayed(replayed)
            if stored is not None:
                self._unpaired_stored(stored)

    def finish(self) -> None:
        for stored in self.stored:
            self._take_stored(stored)
            self._unpaired_stored(stored)
        for key, (_, summary, _) in sorted(self.pending_stored.items()):
            self._differ(key, "stored for the run, but the replay did not make this decision", summary, None)
        for key, (_, summary, _) in sorted(self.pending_replayed.items()):
            self._differ(key, "made by the replay, but not stored for the run", None, summary)

    def _take_stored(self, stored: dict[str, Any]) -> None:
        self.report.stored += 1
        now = decision_hash(stored)
        stored["_hash"] = bytes.fromhex(now)
        self.stored_hashes.append(stored["_hash"])
        if now != stored["decision_hash"]:
            key = decision_key(stored)
            self.report.problems.append(
                f"stored decision #{stored['seq']} ({_show(key)}) was edited after the run: its content "
                f"hashes to {now[:12]}, its recorded hash is {stored['decision_hash'][:12]}")

    def _unpaired_replayed(self, replayed: dict[str, Any]) -> None:
        key, digest = decision_key(replayed), bytes.fromhex(replayed["decision_hash"])
        if key in self.pending_stored:
            stored_hash, summary, content = self.pending_stored.pop(key)
            if stored_hash != digest:
                changes = _changes(content, replayed) if content else []
                self._differ(key, "decided differently", summary, _summary(replayed), changes)
        else:
            self.pending_replayed[key] = (digest, _summary(replayed), self._keep(replayed))

    def _unpaired_stored(self, stored: dict[str, Any]) -> None:
        key = decision_key(stored)
        if key in self.pending_replayed:
            replayed_hash, summary, content = self.pending_replayed.pop(key)
            if replayed_hash != stored["_hash"]:
                changes = _changes(stored, content) if content else []
                self._differ(key, "decided differently", _summary(stored), summary, changes)
        else:
            self.pending_stored[key] = (stored["_hash"], _summary(stored), self._keep(stored))

    def _keep(self, d: dict[str, Any]) -> dict[str, Any] | None:
        """A decision's content, kept to describe a difference only while few decisions are pending."""
        few = len(self.pending_stored) + len(self.pending_replayed) < KEEP_PENDING
        return {name: d[name] for name in CONTENT} if few else None

    def _differ(self, key: Key, note: str, stored: dict[str, Any] | None, replayed: dict[str, Any] | None,
                changes: list[str] | None = None) -> None:
        self.report.different += 1
        if len(self.report.differences) < self.limit:
            self.report.differences.append(DecisionDiff(key, note, stored, replayed, changes or []))


def _summary(d: dict[str, Any]) -> dict[str, Any]:
    out = {"outcome": d["outcome"], "score": d["score"], "decision_hash": d["decision_hash"]}
    if "seq" in d:
        out = {"seq": d["seq"], **out}
    return out


def _changes(stored: dict[str, Any], replayed: dict[str, Any], limit: int = 8) -> list[str]:
    """What differs between two decisions on the same key, field by field (dict fields key by key)."""
    out = []
    for name in CONTENT:
        a, b = stored[name], replayed[name]
        if canonical_json(a) == canonical_json(b):
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if canonical_json(a.get(k)) != canonical_json(b.get(k)):
                    out.append(f"{name}.{k}: {_short(a.get(k))} stored, {_short(b.get(k))} replayed")
        else:
            out.append(f"{name}: {_short(a)} stored, {_short(b)} replayed")
    return out[:limit]


def _short(value: Any, width: int = 120) -> str:
    text = canonical_json(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _show(key: Key) -> str:
    stage, opp, party = key
    return {"opportunity": f"opportunity {opp}", "party": f"party {party}"}.get(stage, f"pair {opp} / {party}")


def describe(report: ReplayReport) -> list[str]:
    """The report in lines of text: the verdict, then problems, differing decisions and warnings."""
    if report.identical:
        lines = [f"identical: {report.decisions} decisions (run {report.run_id}, as of {report.as_of})"]
    else:
        lines = [f"differs: run {report.run_id} (as of {report.as_of}): {report.different} of "
                 f"{max(report.decisions, report.stored)} decisions differ, {len(report.problems)} problems"]
        lines += [f"  problem: {p}" for p in report.problems]
        for d in report.differences:
            lines.append(f"  {_show(d.key)}: {d.note}")
            if d.stored:
                lines.append(f"    stored:   {d.stored['outcome']} score {d.stored['score']}"
                             + (f" (#{d.stored['seq']})" if "seq" in d.stored else ""))
            if d.replayed:
                lines.append(f"    replayed: {d.replayed['outcome']} score {d.replayed['score']}")
            lines += [f"    {c}" for c in d.changes]
        if report.different > len(report.differences):
            lines.append(f"  ... and {report.different - len(report.differences)} more differing decisions")
    lines += [f"  warning: {w}" for w in report.warnings]
    return lines
