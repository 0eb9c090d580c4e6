"""The vocabulary of facts that rule files may refer to. One source of truth for the rule checker,
the feature builder and rules/README.md.

Facts are flat: every value is a bool, an int or a str; never null, never a float or a list
(durable-rules compares them reliably; see shared/research/durable-rules.md, guardrail 4). Unknowns are
spelled out (``deadline_known``, ``"unknown"``) instead of null. Money is whole pounds in rule facts so
that officers can read and edit thresholds; the store keeps pence.
"""

from __future__ import annotations

from dataclasses import dataclass

FACT_KINDS = ("opportunity", "party", "pair")
# Fields whose value changes with the run's business date alone (an incremental run re-checks matches
# when a rule reads one: broker.match.service.pairs_change_with_the_date).
DATED_FIELDS = ("days_to_deadline",)
# The flag a match carries when a ``needs_consortium`` rule fired for it: the party cannot take the work on
# alone, so the match is a subcontracting prospect, shown with that reason and never counted toward the
# target at the notice's headline value.
SUBCONTRACTING_FLAG = "subcontracting-prospect"


@dataclass(frozen=True)
class Field:
    name: str
    type: type  # bool, int or str
    description: str
    values: tuple[str, ...] = ()  # allowed values for an enumerated str field


_OPPORTUNITY = (
    Field("status", str, "Opportunity status", ("planned", "open", "closed", "cancelled", "awarded")),
    Field("deadline_known", bool, "The notice gives a deadline"),
    Field("days_to_deadline", int, "Whole days from the run's business date (as_of) to the deadline; "
          "negative when past; 9999 when unknown"),
    Field("value_known", bool, "The notice gives a usable GBP value"),
    Field("value_min_gbp", int, "Lower bound of the value in whole pounds (0 when unknown)"),
    Field("value_max_gbp", int, "Upper bound of the value in whole pounds (0 when unknown)"),
    Field("is_framework", bool, "A framework agreement (its ceiling is not brokerage value)"),
    Field("is_dps", bool, "A dynamic purchasing system"),
    Field("nationwide", bool, "Delivery anywhere in the UK or no place given"),
    Field("in_west_midlands", bool, "Delivery location in the West Midlands region"),
    Field("opportunity_cluster", str, "Cluster of the delivery location, \"\" when none"),
    Field("opportunity_local_authority", str, "Local authority of the delivery location, \"\" when none"),
    Field("vcse_suitable", str, "Buyer says suitable for VCSEs", ("yes", "no", "unknown")),
    Field("sme_suitable", str, "Buyer says suitable for SMEs", ("yes", "no", "unknown")),
    Field("reserved_for_vcse", bool, "Participation reserved for SMEs/VCSEs or public service mission "
          "organisations"),
    Field("notice_type", str, "Notice type (UK1-UK17, a CF notice type or an OCDS tag), \"\" when none"),
    Field("source", str, "Where the notice came from (contracts_finder, find_a_tender, private, ...)"),
    Field("remote_delivery", bool, "The title or description says the work can be delivered remotely "
          "(online, by telephone, virtually)"),
)

_PARTY = (
    Field("party_type", str, "Kind of party", ("vcse", "consortium", "suggested_consortium")),
    Field("digest_opt_in", bool, "The party receives digests"),
    Field("has_capabilities", bool, "The party has described its capabilities"),
    Field("capacity_known", bool, "The party gives a maximum contract value"),
    Field("max_contract_value_gbp", int, "Largest contract the party can take on, whole pounds (0 unknown)"),
    Field("min_contract_value_gbp", int, "Smallest contract worth the party's while, whole pounds (0 none)"),
    Field("annual_turnover_gbp", int, "Annual turnover, whole pounds (0 unknown)"),
    Field("employees", int, "Employees (0 unknown)"),
    Field("member_count", int, "Members of a consortium (1 for a single VCSE)"),
    Field("party_cluster", str, "The party's cluster, \"\" when none"),
    Field("serves_national", bool, "The party's service areas include National"),
)

_PAIR_ONLY = (
    Field("capability_score", int, "Relevance 0-100: the calibrated probability (percent) that the party "
          "would call the opportunity relevant, from its capabilities and keywords against the notice's "
          "title, description, CPV labels and buyer (BM25F with related terms and inferred CPV groups)"),
    Field("relevance_terms", str, "The terms, phrases, CPV groups and expansions that carried "
          "capability_score, in words (\"no shared terms\" when none)"),
    Field("capability_level", str, "Named level of capability_score", ("strong", "good", "weak", "none")),
    Field("keyword_hits", int, "How many of the party's keywords appear in the opportunity's text"),
    Field("exclude_hits", int, "How many of the party's exclude keywords appear in any opportunity text"),
    Field("cpv_overlap", str, "Closest CPV relation between the opportunity's and the party's codes",
          ("exact", "category", "class", "group", "division", "none", "no_codes")),
    Field("value_to_capacity_pct", int, "Opportunity minimum value as a percentage of the party's maximum "
          "contract value; -1 when either is unknown"),
    Field("value_fit", str, "How the value compares with the party's capacity",
          ("within", "stretch", "beyond", "below_minimum", "unknown")),
    Field("location_fit", str, "Where the work is relative to the party's service areas",
          ("local", "cluster", "region", "national", "outside")),
    Field("value_over_max_pct", int, "Opportunity value (its lower bound) as a percentage of the party's "
          "maximum contract value, rounded up (so `gt: 200` is exactly \"more than twice\"); -1 when either "
          "is unknown"),
    Field("value_over_turnover_pct", int, "Opportunity value as a percentage of the party's annual "
          "turnover, rounded up; -1 when either is unknown"),
)

VOCABULARY: dict[str, tuple[Field, ...]] = {
    "opportunity": _OPPORTUNITY,
    "party": _PARTY,
    # Pair facts carry the pair features plus copies of the opportunity and party fields.
    "pair": _PAIR_ONLY + _OPPORTUNITY + _PARTY,
}


def field_map(kind: str) -> dict[str, Field]:
    return {f.name: f for f in VOCABULARY[kind]}
