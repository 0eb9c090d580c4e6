"""Suggested groupings: when no single VCSE can take an opportunity on, 2-4 members who can together."""

from __future__ import annotations

from broker.match.consortia import Member, aspects, needs_grouping, suggest
from broker.match.model import OpportunityView, PartyView
from broker.match.params import ConsortiumParams

PARAMS = ConsortiumParams()


def _opp(value_gbp: int | None = 500_000) -> OpportunityView:
    pence = None if value_gbp is None else value_gbp * 100
    return OpportunityView(id="o1", title="School catering and cleaning services",
                           description="Meals and cleaning for ten primary schools", value_min_pence=pence,
                           value_max_pence=pence, local_authority="Birmingham", in_west_midlands=True)


def _member(pid: str, capabilities: str, max_gbp: int, cluster: str = "Ward End", score: int = 50,
            fit: str = "beyond") -> Member:
    view = PartyView(id=pid, name=pid, capabilities=capabilities, cluster=cluster, local_authority="Birmingham",
                     max_contract_value_pence=max_gbp * 100)
    return Member(view, score, fit)


CATERING = _member("v-cater", "We run a community kitchen and provide catering and school meals", 200_000)
CLEANING = _member("v-clean", "Cleaning co-operative: office and school cleaning", 300_000)


def test_two_members_who_together_cover_the_work_and_the_value_are_suggested():
    assert {"cate", "clea"} <= {a[:4] for a in aspects(_opp())}  # stems of catering, cleaning
    suggestions = suggest(_opp(), [CATERING, CLEANING], PARAMS)
    assert suggestions, "no grouping suggested"
    best = suggestions[0]
    assert set(best.party.member_ids) == {"v-cater", "v-clean"}
    assert best.party.party_type == "suggested_consortium"
    assert best.capacity_pence == 50_000_000
    assert any("combined capacity £500,000" in r for r in best.reasons)
    assert best.party.id == "suggested:v-cater+v-clean"


def test_no_grouping_when_one_member_can_do_it_alone():
    both = _member("v-both", "Catering and cleaning for schools: meals and cleaning teams", 900_000, fit="within")
    assert not needs_grouping(_opp(), [both, CATERING, CLEANING], PARAMS)
    assert suggest(_opp(), [both, CATERING, CLEANING], PARAMS) == []


def test_no_grouping_for_work_far_beyond_the_members_together():
    assert suggest(_opp(value_gbp=118_000_000), [CATERING, CLEANING], PARAMS) == []


def test_members_come_from_the_same_or_neighbouring_clusters():
    far = _member("v-far", "Cleaning co-operative: office and school cleaning", 300_000, cluster="Coventry")
    suggestions = suggest(_opp(), [CATERING, far], PARAMS)
    assert all(set(s.party.member_ids) != {"v-cater", "v-far"} for s in suggestions)


def test_members_without_relevant_capability_are_left_out():
    weak = _member("v-weak", "Cleaning co-operative: office and school cleaning", 300_000, score=4)
    assert suggest(_opp(), [CATERING, weak], PARAMS) == []
