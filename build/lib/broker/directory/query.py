"""Reading the directory back: listings and single entries as plain dicts (the ``--json`` shapes).

Money fields end in ``_pence`` (integer pence), as everywhere in broker's JSON.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broker.errors import NotFound
from broker.normalise import geography
from broker.store.models import Consortium, ConsortiumMember, Vcse

_VCSE_FIELDS = ("id", "name", "legal_form", "charity_number", "company_number", "cluster", "cluster_derived",
                "local_authority", "postcode", "service_areas", "capabilities", "keywords", "exclude_keywords",
                "cpv_codes", "annual_turnover_pence", "employees", "min_contract_value_pence",
                "max_contract_value_pence", "certifications", "contact_email", "digest_opt_in")
_VCSE_SUMMARY = ("id", "name", "legal_form", "cluster", "local_authority", "annual_turnover_pence",
                 "max_contract_value_pence", "digest_opt_in")


def vcse_json(vcse: Vcse, *, full: bool = True) -> dict[str, Any]:
    """A VCSE as JSON: every field, or the summary fields a listing shows."""
    return {name: getattr(vcse, name) for name in (_VCSE_FIELDS if full else _VCSE_SUMMARY)}


def consortium_json(consortium: Consortium, members: list[Vcse], *, full: bool = True) -> dict[str, Any]:
    """A consortium as JSON; ``full`` adds its capabilities and each member's summary."""
    out: dict[str, Any] = {
        "id": consortium.id, "name": consortium.name, "lead_id": consortium.lead_id,
        "member_ids": [m.id for m in members],
        "max_contract_value_pence": consortium.max_contract_value_pence,
        "max_value_derived": consortium.max_value_derived,
        "capabilities_derived": consortium.capabilities_derived,
    }
    if full:
        out["capabilities"] = consortium.capabilities
        out["members"] = [vcse_json(m, full=False) for m in members]
    return out


def consortium_members(session: Session, consortium_id: str) -> list[Vcse]:
    """The members of a consortium in their spreadsheet order."""
    stmt = (select(Vcse).join(ConsortiumMember, ConsortiumMember.vcse_id == Vcse.id)
            .where(ConsortiumMember.consortium_id == consortium_id).order_by(ConsortiumMember.position))
    return list(session.scalars(stmt))


def list_directory(session: Session, *, cluster: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """VCSEs (and consortia) ordered by id; ``cluster`` keeps VCSEs of that cluster and consortia with a
    member in it. ``total_*`` count every match, ``limit`` caps each list."""
    name = (geography.canonical_cluster(cluster) or cluster) if cluster else None
    vcse_q = select(Vcse).order_by(Vcse.id)
    cons_q = select(Consortium).order_by(Consortium.id)
    if name is not None:
        vcse_q = vcse_q.where(Vcse.cluster == name)
        in_cluster = (select(ConsortiumMember.consortium_id).join(Vcse, Vcse.id == ConsortiumMember.vcse_id)
                      .where(Vcse.cluster == name))
        cons_q = cons_q.where(Consortium.id.in_(in_cluster))
    totals = {
        "total_vcses": session.scalar(select(func.count()).select_from(vcse_q.subquery())),
        "total_consortia": session.scalar(select(func.count()).select_from(cons_q.subquery())),
    }
    if limit is not None:
        vcse_q, cons_q = vcse_q.limit(limit), cons_q.limit(limit)
    return {
        "cluster": name,
        **totals,
        "vcses": [vcse_json(v, full=False) for v in session.scalars(vcse_q)],
        "consortia": [consortium_json(c, consortium_members(session, c.id), full=False)
                      for c in session.scalars(cons_q)],
    }


def show_entry(session: Session, entry_id: str) -> dict[str, Any]:
    """One VCSE (with the consortia it belongs to) or one consortium (with its members), by id."""
    vcse = session.get(Vcse, entry_id)
    if vcse is not None:
        stmt = (select(ConsortiumMember.consortium_id).where(ConsortiumMember.vcse_id == entry_id)
                .order_by(ConsortiumMember.consortium_id))
        return {"kind": "vcse", **vcse_json(vcse), "consortia": list(session.scalars(stmt))}
    consortium = session.get(Consortium, entry_id)
    if consortium is not None:
        return {"kind": "consortium", **consortium_json(consortium, consortium_members(session, entry_id))}
    raise NotFound(f"no VCSE or consortium with id {entry_id!r}. Try `broker directory list`.")
