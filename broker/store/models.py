"""SQLAlchemy 2 typed models: the store every stage of the pipeline reads and writes.

Schema changes go through Alembic migrations in ``broker/store/migrations``; ``broker init`` applies them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from broker.store.types import UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime}


class Opportunity(Base):
    """The current, canonical state of one opportunity (or lot), combined from all its sources."""

    __tablename__ = "opportunities"
    # Publishers' text has no length limit that holds (a 96-character buyer type, ocids over 255), so
    # what they send is Text. The id is ours: the ocid, or a readable start plus a sha256 when longer
    # (broker.normalise.keys.fit_key). A hash index on PostgreSQL takes an ocid of any length (a btree
    # entry must fit in a third of a page); ocids are only ever looked up by equality.
    __table_args__ = (Index("ix_opportunities_ocid", "ocid", postgresql_using="hash"),)

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    ocid: Mapped[str | None] = mapped_column(Text)
    lot_id: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    buyer_name: Mapped[str] = mapped_column(Text)
    buyer_id: Mapped[str | None] = mapped_column(Text)
    buyer_type: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    notice_type: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None] = mapped_column(index=True)
    contract_start: Mapped[datetime | None]
    contract_end: Mapped[datetime | None]
    value_min_pence: Mapped[int | None] = mapped_column(BigInteger)
    value_max_pence: Mapped[int | None] = mapped_column(BigInteger)
    value_currency: Mapped[str | None] = mapped_column(Text)
    value_original: Mapped[str | None] = mapped_column(Text)
    cpv_codes: Mapped[list[Any]]
    cpv_unknown: Mapped[list[Any]]
    postcode: Mapped[str | None] = mapped_column(Text)
    local_authority: Mapped[str | None] = mapped_column(String(120), index=True)
    lad_code: Mapped[str | None] = mapped_column(Text)
    itl_code: Mapped[str | None] = mapped_column(Text)
    region: Mapped[str | None] = mapped_column(Text)
    regions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    cluster: Mapped[str | None] = mapped_column(String(120), index=True)
    nationwide: Mapped[bool] = mapped_column(Boolean)
    sme_suitable: Mapped[bool | None] = mapped_column(Boolean)
    vcse_suitable: Mapped[bool | None] = mapped_column(Boolean)
    reserved_participation: Mapped[list[Any]]
    is_framework: Mapped[bool] = mapped_column(Boolean)
    is_dps: Mapped[bool] = mapped_column(Boolean)
    url: Mapped[str | None] = mapped_column(Text)
    source_ids: Mapped[list[Any]]
    match_keys: Mapped[list[Any]]
    raw_hash: Mapped[str] = mapped_column(String(64))
    # sha256 of the canonical record: an unchanged re-ingest leaves it (and the row) untouched.
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)


class OpportunityVersion(Base):
    """Every distinct canonical state an opportunity has had, content-addressed. Never updated."""

    __tablename__ = "opportunity_versions"
    __table_args__ = (UniqueConstraint("opportunity_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    opportunity_id: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    record: Mapped[dict[str, Any]]


class SourceRecord(Base):
    """One source's normalised view of an opportunity. The canonical row combines these by priority."""

    __tablename__ = "source_records"
    __table_args__ = (UniqueConstraint("source", "source_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(40))
    source_key: Mapped[str] = mapped_column(String(255))
    opportunity_id: Mapped[str] = mapped_column(String(255), index=True)
    priority: Mapped[int] = mapped_column(Integer)
    record: Mapped[dict[str, Any]]
    content_hash: Mapped[str] = mapped_column(String(64))


class OpportunityKey(Base):
    """Keys under which the same notice can arrive from different sources (de-duplication)."""

    __tablename__ = "opportunity_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    opportunity_id: Mapped[str] = mapped_column(String(255), index=True)


class Release(Base):
    """Every raw OCDS release ever ingested, kept verbatim (history; input to compiling)."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("ocid", "release_id", "raw_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Keys (broker.normalise.keys.fit_key): an ocid or release id over 255 characters is a readable start
    # plus a sha256 here; the release as published, ids and all, is in ``raw``.
    ocid: Mapped[str] = mapped_column(String(255), index=True)
    release_id: Mapped[str] = mapped_column(String(255))
    date: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[Any]]
    raw_hash: Mapped[str] = mapped_column(String(64))
    raw: Mapped[dict[str, Any]]
    package_meta: Mapped[dict[str, Any]]


class QuarantineItem(Base):
    """A record that could not be ingested, with the reason and the raw text. Nothing is dropped."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    file: Mapped[str] = mapped_column(Text)
    locator: Mapped[str | None] = mapped_column(Text)
    field: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class IngestedFile(Base):
    """Each distinct file content ingested (metadata only: re-ingesting is still idempotent without it)."""

    __tablename__ = "ingested_files"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(40))
    counts: Mapped[dict[str, Any]]
    ingested_at: Mapped[datetime]


class Vcse(Base):
    """A voluntary, community or social enterprise from the officers' directory."""

    __tablename__ = "vcses"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    legal_form: Mapped[str | None] = mapped_column(String(80))
    charity_number: Mapped[str | None] = mapped_column(String(40))
    company_number: Mapped[str | None] = mapped_column(String(40))
    cluster: Mapped[str | None] = mapped_column(String(120), index=True)
    cluster_derived: Mapped[bool] = mapped_column(Boolean)
    local_authority: Mapped[str] = mapped_column(String(120))
    postcode: Mapped[str | None] = mapped_column(String(16))
    service_areas: Mapped[list[Any]]
    capabilities: Mapped[str] = mapped_column(Text)
    keywords: Mapped[list[Any]]
    exclude_keywords: Mapped[list[Any]]
    cpv_codes: Mapped[list[Any]]
    annual_turnover_pence: Mapped[int | None] = mapped_column(BigInteger)
    employees: Mapped[int | None] = mapped_column(Integer)
    min_contract_value_pence: Mapped[int | None] = mapped_column(BigInteger)
    max_contract_value_pence: Mapped[int | None] = mapped_column(BigInteger)
    certifications: Mapped[list[Any]]
    contact_email: Mapped[str | None] = mapped_column(Text)
    digest_opt_in: Mapped[bool] = mapped_column(Boolean)
    content_hash: Mapped[str] = mapped_column(String(64))


class Consortium(Base):
    """A standing consortium of VCSEs that bid together."""

    __tablename__ = "consortia"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    lead_id: Mapped[str] = mapped_column(String(255))
    capabilities: Mapped[str] = mapped_column(Text)
    capabilities_derived: Mapped[bool] = mapped_column(Boolean)
    max_contract_value_pence: Mapped[int | None] = mapped_column(BigInteger)
    max_value_derived: Mapped[bool] = mapped_column(Boolean)
    content_hash: Mapped[str] = mapped_column(String(64))


class ConsortiumMember(Base):
    __tablename__ = "consortium_members"

    consortium_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("consortia.id", ondelete="CASCADE"), primary_key=True)
    vcse_id: Mapped[str] = mapped_column(String(255), ForeignKey("vcses.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class MatchRun(Base):
    """One match run: its business date, parameters, rule files and digests (the audit manifest)."""

    __tablename__ = "match_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    as_of: Mapped[str] = mapped_column(String(10))  # business date, YYYY-MM-DD
    mode: Mapped[str] = mapped_column(String(16))  # incremental | full
    status: Mapped[str] = mapped_column(String(16))  # running | complete | failed
    started_at: Mapped[datetime]  # wall clock: metadata only, never read by decisions
    finished_at: Mapped[datetime | None]
    params: Mapped[dict[str, Any]]
    software: Mapped[dict[str, Any]]
    scope: Mapped[dict[str, Any]]  # which opportunities and parties were in scope (incremental)
    rules_sha256: Mapped[str] = mapped_column(String(64))
    counts: Mapped[dict[str, Any]]
    input_digest: Mapped[str | None] = mapped_column(String(64))
    decision_digest: Mapped[str | None] = mapped_column(String(64))
    sequence_digest: Mapped[str | None] = mapped_column(String(64))
    manifest_digest: Mapped[str | None] = mapped_column(String(64))


class AuditLink(Base):
    """The tamper-evident chain: each completed run (or prune) linked to the one before. Append-only."""

    __tablename__ = "audit_chain"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))  # run | prune
    ref: Mapped[str] = mapped_column(String(255))  # run id, or the prune's cut-off date
    digest: Mapped[str] = mapped_column(String(64))  # the run's manifest digest, or the prune record's
    payload: Mapped[dict[str, Any]]  # for a prune: what was deleted
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class RunRuleFile(Base):
    """The exact text of each rule file a run used."""

    __tablename__ = "run_rule_files"

    run_id: Mapped[str] = mapped_column(String(40), ForeignKey("match_runs.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)


class Snapshot(Base):
    """Content-addressed input records (opportunities, parties) as a run read them."""

    __tablename__ = "snapshots"

    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    record: Mapped[dict[str, Any]]


class RunInput(Base):
    """Which snapshot of each input a run read."""

    __tablename__ = "run_inputs"

    run_id: Mapped[str] = mapped_column(String(40), ForeignKey("match_runs.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))


class Decision(Base):
    """Every pair (and opportunity/party) that reached the rules in a run, with features and firings."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(40), ForeignKey("match_runs.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(16))  # opportunity | party | pair
    opportunity_id: Mapped[str] = mapped_column(String(255), index=True)
    party_id: Mapped[str] = mapped_column(String(255), index=True)
    party_type: Mapped[str] = mapped_column(String(24))
    outcome: Mapped[str] = mapped_column(String(20))  # matched | rejected | below_threshold | eligible
    score: Mapped[int] = mapped_column(Integer)
    features: Mapped[dict[str, Any]]
    firings: Mapped[list[Any]]
    detail: Mapped[dict[str, Any]]  # members of a suggested consortium, levels, proposal reasons
    decision_hash: Mapped[str] = mapped_column(String(64))


class Match(Base):
    """The current match between an opportunity and a party: one row per pair however many runs."""

    __tablename__ = "matches"
    __table_args__ = (UniqueConstraint("opportunity_id", "party_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    opportunity_id: Mapped[str] = mapped_column(String(255), index=True)
    party_id: Mapped[str] = mapped_column(String(255), index=True)
    party_type: Mapped[str] = mapped_column(String(24))  # vcse | consortium | suggested_consortium
    lead_id: Mapped[str | None] = mapped_column(String(255))  # who receives the digest for a consortium
    members: Mapped[list[Any]]
    score: Mapped[int] = mapped_column(Integer)  # the rank within the party is computed on read (queries.py)
    levels: Mapped[dict[str, Any]]
    reasons: Mapped[list[Any]]
    flags: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(16))  # active | withdrawn
    first_run_id: Mapped[str] = mapped_column(String(40))
    last_run_id: Mapped[str] = mapped_column(String(40))


# ---------------------------------------------------------------------------------------------------------
# Digests (issue 6): what each VCSE was sent, the SMTP delivery log, feedback and per-VCSE preferences.
# Owned by broker/digest. "Never the same opportunity twice" is the unique constraint on DigestItem.
# ---------------------------------------------------------------------------------------------------------


class Digest(Base):
    """One digest to one recipient (a VCSE) for one business date. Its id is derived from the pair."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("recipient_id", "as_of"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    recipient_id: Mapped[str] = mapped_column(String(255), index=True)
    as_of: Mapped[str] = mapped_column(String(10), index=True)  # business date, YYYY-MM-DD
    file_name: Mapped[str] = mapped_column(String(255), unique=True)  # relative to the outbox
    message_id: Mapped[str] = mapped_column(String(255))
    to_address: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    item_count: Mapped[int] = mapped_column(Integer)
    content_sha256: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]  # the rendering context: re-rendering it gives the same bytes
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | delivered | rejected | cancelled
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_as_of: Mapped[str | None] = mapped_column(String(10))
    delivered_at: Mapped[datetime | None]  # wall clock: metadata only


class DigestItem(Base):
    """An opportunity included in a digest. Unique per (recipient, opportunity): never sent twice."""

    __tablename__ = "digest_items"
    __table_args__ = (UniqueConstraint("recipient_id", "opportunity_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest_id: Mapped[str] = mapped_column(String(40), ForeignKey("digests.id"), index=True)
    recipient_id: Mapped[str] = mapped_column(String(255))
    opportunity_id: Mapped[str] = mapped_column(String(255), index=True)
    party_id: Mapped[str] = mapped_column(String(255))  # the matched party: the VCSE or its consortium
    party_type: Mapped[str] = mapped_column(String(24))
    position: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(16), unique=True)  # the code a VCSE quotes in a reply


class DigestDelivery(Base):
    """The SMTP delivery log: one row per attempt. Append-only."""

    __tablename__ = "digest_deliveries"
    __table_args__ = (UniqueConstraint("digest_id", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest_id: Mapped[str] = mapped_column(String(40), ForeignKey("digests.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # sent | failed | rejected
    error: Mapped[str | None] = mapped_column(Text)
    as_of: Mapped[str] = mapped_column(String(10))
    logged_at: Mapped[datetime]  # wall clock: metadata only


class DigestFeedback(Base):
    """A party's feedback on an opportunity: not relevant (suppresses it) or interested."""

    __tablename__ = "digest_feedback"
    __table_args__ = (UniqueConstraint("party_id", "opportunity_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    party_id: Mapped[str] = mapped_column(String(255), index=True)
    opportunity_id: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # not_relevant | interested
    reason: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(16))
    as_of: Mapped[str] = mapped_column(String(10))
    cause: Mapped[str | None] = mapped_column(String(40))  # feedback:web (a signed link); NULL: typed by an officer


class DigestPreference(Base):
    """Per-VCSE digest settings, kept apart from the directory so a re-import does not erase them."""

    __tablename__ = "digest_preferences"

    party_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    opt_in: Mapped[bool | None] = mapped_column(Boolean)  # None: the directory's digest_opt_in decides
    digest_cap: Mapped[int | None] = mapped_column(Integer)
    min_score: Mapped[int | None] = mapped_column(Integer)
    cause: Mapped[str | None] = mapped_column(String(40))  # of the last change: feedback:web, or NULL (officer)


# Target ledger (issue 5): brokered value counted toward the £1m target. Append-only (BRIEF, Policies /
# Ledger): value changes, cancellations and corrections are new entries; migration 0003 adds database
# triggers that refuse UPDATE and DELETE on both tables. Written and read only by ``broker.target``.
# ---------------------------------------------------------------------------------------------------------


class TargetBatch(Base):
    """One write to the ledger (a run, a digest, an officer command) and the configuration in force."""

    __tablename__ = "target_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cause: Mapped[str] = mapped_column(String(255))  # run:<id> | digest:<id> | officer | import:<sha256>
    as_of: Mapped[str] = mapped_column(String(10))  # business date of the write, YYYY-MM-DD
    config: Mapped[dict[str, Any]]  # the exact TargetConfig values
    config_sha256: Mapped[str] = mapped_column(String(64))
    software: Mapped[str] = mapped_column(String(40))


class TargetEntry(Base):
    """One ledger event: a party reached a stage on an opportunity, or an opportunity's value changed.

    ``kind`` is ``stage`` (a pair event: party, cluster, stage) or ``value`` (the notice facts an
    opportunity is counted from: its opening value, then every adjustment, with the reason).
    """

    __tablename__ = "target_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(Integer, ForeignKey("target_batches.id"), index=True)
    as_of: Mapped[str] = mapped_column(String(10), index=True)  # the event's business date
    kind: Mapped[str] = mapped_column(String(8))  # stage | value
    opportunity_id: Mapped[str] = mapped_column(String(255), index=True)
    party_id: Mapped[str | None] = mapped_column(String(255), index=True)
    party_type: Mapped[str | None] = mapped_column(String(24))
    cluster: Mapped[str | None] = mapped_column(String(120))
    stage: Mapped[str | None] = mapped_column(String(16))
    basis: Mapped[str] = mapped_column(String(16))  # lower_bound | single_figure | unknown | framework | ...
    amount_pence: Mapped[int] = mapped_column(BigInteger)  # the value counted on this basis when written
    # The notice facts the value is derived from (value entries), so another policy can be applied later.
    value_min_pence: Mapped[int | None] = mapped_column(BigInteger)
    value_max_pence: Mapped[int | None] = mapped_column(BigInteger)
    framework: Mapped[bool | None] = mapped_column(Boolean)
    notice_status: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    cause: Mapped[str] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    # sha256 of the entry's content; the batch's ``ledger`` chain link binds it to the entry's id.
    entry_hash: Mapped[str | None] = mapped_column(String(64))


# ---------------------------------------------------------------------------------------------------------
# Web (``broker serve``): the officers who may log in to the workspace. Owned by broker/web.
# ---------------------------------------------------------------------------------------------------------


class Officer(Base):
    """A brokerage officer who logs in to the workspace; the password is kept only as an argon2 hash."""

    __tablename__ = "officers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-case
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]  # wall clock: metadata only
