"""Candidate generation: relevant pairs found in a crowd, irrelevant ones explained, bounded fan-out,
incremental runs equal to full runs, and output that never depends on input order or hash seeds."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.errors import ConfigError, InputError, NotFound
from broker.match.candidates import (
    CandidateParams,
    build_index,
    generate_candidates,
    why_not_proposed,
)
from broker.match.model import OpportunityView, PartyView

AS_OF = date(2025, 3, 20)
ROOT = Path(__file__).resolve().parents[2]
WM = dict(region="West Midlands", in_west_midlands=True)
PWM = dict(region="West Midlands")

SERVICES = [
    "homelessness outreach and tenancy support", "grounds maintenance and grass cutting", "youth work and mentoring",
    "community transport with accessible minibuses", "meals on wheels for older people",
    "welfare benefits and debt advice", "ESOL classes for refugees", "bereavement counselling",
    "dementia day care and carers respite", "food bank and emergency food parcels",
    "office cleaning and janitorial services", "translation and interpreting", "arts and heritage projects",
    "sport coaching and physical activity", "digital inclusion and IT skills", "community cafe and catering",
]
TOWNS = ["Walsall", "Dudley", "Sandwell", "Wolverhampton", "Birmingham", "Coventry", "Solihull"]


def crowd(n: int = 80, seed: int = 3) -> list[PartyView]:
    """A directory of West Midlands VCSEs, two services each, all using the same generic filler."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        services = rng.sample(SERVICES, 2)
        out.append(PartyView(
            id=f"C{i:03d}", name=f"Crowd {i}", local_authority=rng.choice(TOWNS), **PWM,
            capabilities=f"We are a local charity providing {services[0]} and {services[1]} to support the "
                         "community and local people."))
    return out


def notice(id: str, title: str, description: str = "", **kw) -> OpportunityView:
    base = dict(local_authority="Walsall", **WM, status="open",
                deadline_at=datetime(2025, 4, 30, 12, tzinfo=UTC))
    return OpportunityView(id=id, title=title, description=description, **{**base, **kw})


TARGET = PartyView(id="T", name="Walsall Women's Aid", local_authority="Walsall", **PWM,
                   capabilities="Refuge accommodation, IDVA support and floating support for survivors of "
                                "domestic abuse and their children")
UNRELATED = PartyView(id="U", name="Green Spaces CIC", local_authority="Walsall", **PWM,
                      capabilities="Tree surgery, hedge laying and woodland management")
DA = notice("O-DA", "Domestic abuse refuge service",
            "Safe accommodation and floating support for survivors of domestic abuse and their children.")


def test_relevant_pair_in_a_crowd_is_proposed_first():
    index = build_index([DA], [*crowd(), TARGET, UNRELATED], as_of=AS_OF)
    found = {c.party_id: c for c in index.candidates()}
    assert "T" in found and found["T"].rank == 1
    assert any("abuse" in t for t in found["T"].shared_terms)
    assert any("abuse" in r for r in found["T"].reasons())
    assert index.why_not_proposed("O-DA", "T") is None
    assert why_not_proposed(DA, TARGET, index=index) is None


def test_irrelevant_pair_is_not_proposed_and_says_why():
    index = build_index([DA], [*crowd(), TARGET, UNRELATED], as_of=AS_OF)
    assert "U" not in {c.party_id for c in index.candidates()}
    assert index.why_not_proposed("O-DA", "U") == "no shared capability terms or CPV codes"


def test_outside_service_area_is_not_proposed_unless_nationwide():
    leeds = replace(TARGET, id="L", local_authority="Leeds", region="Yorkshire and The Humber")
    index = build_index([DA, replace(DA, id="O-NAT", local_authority=None, region=None, in_west_midlands=False,
                                     nationwide=True)], [leeds, TARGET], as_of=AS_OF)
    pairs = {(c.opportunity_id, c.party_id) for c in index.candidates()}
    assert ("O-DA", "T") in pairs and ("O-DA", "L") not in pairs
    assert ("O-NAT", "L") in pairs
    why = index.why_not_proposed("O-DA", "L")
    assert why is not None and why.startswith("outside service area") and "Walsall" in why and "Leeds" in why


@pytest.mark.parametrize("areas,proposed", [
    ((), False), (("West Midlands",), True), (("National",), True), (("Walsall", "Leeds"), True),
    (("Leeds", "Bradford"), False)])
def test_service_areas_decide_reach(areas, proposed):
    leeds = replace(TARGET, id="L", local_authority="Leeds", region="Yorkshire and The Humber",
                    service_areas=areas)
    got = generate_candidates([DA], [leeds], as_of=AS_OF)
    assert bool(got) is proposed


def test_common_words_do_not_explode_fan_out():
    generic = notice("O-GEN", "Provision of support services",
                     "The council seeks a provider to deliver support services to local people in the community.")
    index = build_index([generic, DA], [*crowd(), TARGET], as_of=AS_OF)
    assert [c for c in index.candidates() if c.opportunity_id == "O-GEN"] == []
    why = index.why_not_proposed("O-GEN", "C001")
    assert why is not None and why.startswith("only common words shared") and "community" in why


def test_words_common_across_many_parties_do_not_propose_on_their_own():
    # "volunteers" is in every crowd statement here: with a big enough directory it stops proposing.
    parties = [replace(p, capabilities=p.capabilities + " Run by volunteers.") for p in crowd(60)]
    vol = notice("O-VOL", "Volunteers wanted for a library")
    got = generate_candidates([vol, DA], parties, as_of=AS_OF)
    assert [c for c in got if c.opportunity_id == "O-VOL"] == []


def test_top_k_caps_fan_out_and_explains_the_cut():
    parties = [replace(TARGET, id=f"T{i:02d}", capabilities=TARGET.capabilities + " " + "outreach " * (i % 4))
               for i in range(12)]
    index = build_index([DA], parties, as_of=AS_OF, params=CandidateParams(top_k=5))
    got = index.candidates()
    assert len(got) == 5
    assert sorted(c.rank for c in got) == [1, 2, 3, 4, 5]
    left_out = sorted({p.id for p in parties} - {c.party_id for c in got})
    why = index.why_not_proposed("O-DA", left_out[0])
    assert why is not None and why.startswith("ranked") and "top 5" in why


def test_a_shared_cpv_group_adds_relevance_but_never_proposes_alone():
    coded = replace(UNRELATED, id="CPV", cpv_codes=("77340000",))  # tree pruning: group 773
    grounds = notice("O-GR", "Parks contract: tree surgery", "Lot 2", cpv_codes=("77313000",))
    bare = notice("O-BARE", "Parks contract", "Lot 2", cpv_codes=("77313000",))
    params = CandidateParams(min_probability=1)
    with_code = {c.opportunity_id: c for c in generate_candidates([grounds, bare], [coded], as_of=AS_OF,
                                                                   params=params)}
    without = {c.opportunity_id: c for c in generate_candidates([grounds, bare], [UNRELATED], as_of=AS_OF,
                                                                 params=params)}
    assert with_code["O-GR"].score > without["O-GR"].score
    assert with_code["O-GR"].cpv_relation == "group"
    assert "O-BARE" not in with_code or with_code["O-BARE"].score < 20  # codes alone: below the default floor
    assert "O-BARE" not in {c.opportunity_id for c in generate_candidates([bare], [coded], as_of=AS_OF)}


def test_closed_and_past_deadline_opportunities_are_skipped_with_a_reason():
    closed = replace(DA, id="O-CLOSED", status="awarded")
    past = replace(DA, id="O-PAST", deadline_at=datetime(2025, 3, 19, 23, 30, tzinfo=UTC))  # 19th in the UK
    today = replace(DA, id="O-TODAY", deadline_at=datetime(2025, 3, 20, 23, 30, tzinfo=UTC))  # 20th in the UK
    index = build_index([closed, past, today], [TARGET], as_of=AS_OF)
    assert [c.opportunity_id for c in index.candidates()] == ["O-TODAY"]
    assert index.why_not_proposed("O-CLOSED", "T") == "not considered: the opportunity is awarded"
    assert "deadline (2025-03-19) had passed" in (index.why_not_proposed("O-PAST", "T") or "")
    kept = build_index([closed], [TARGET], as_of=AS_OF, params=CandidateParams(skip_inactive=False))
    assert len(kept.candidates()) == 1


def test_buyer_vcse_suitability_is_not_a_gate():
    got = generate_candidates([replace(DA, vcse_suitable=False)], [TARGET], as_of=AS_OF)
    assert [c.party_id for c in got] == ["T"]


def test_place_names_alone_do_not_propose():
    walsall_party = replace(UNRELATED, capabilities="Walsall based charity: tree surgery")
    walsall_job = notice("O-W", "Walsall library refurbishment")
    index = build_index([walsall_job], [walsall_party], as_of=AS_OF)
    assert index.candidates() == []
    assert index.why_not_proposed("O-W", "U") == "no shared capability terms or CPV codes"


def test_keywords_propose():
    kw = replace(UNRELATED, id="K", keywords=("domestic abuse",))
    assert [c.party_id for c in generate_candidates([DA], [kw], as_of=AS_OF)] == ["K"]


@pytest.mark.parametrize("bad", [dict(top_k=0), dict(min_probability=0), dict(min_probability=1001),
                                 dict(chunk_rows=0)])
def test_bad_params_are_refused(bad):
    with pytest.raises(ConfigError):
        CandidateParams(**bad)


def test_duplicate_ids_are_refused():
    with pytest.raises(InputError):
        build_index([DA, DA], [TARGET], as_of=AS_OF)
    with pytest.raises(InputError):
        build_index([DA], [TARGET, TARGET], as_of=AS_OF)


def test_unknown_ids_are_not_found():
    index = build_index([DA], [TARGET], as_of=AS_OF)
    with pytest.raises(NotFound):
        index.why_not_proposed("nope", "T")
    with pytest.raises(NotFound):
        index.why_not_proposed("O-DA", "nope")


# --- a bigger world: determinism and incremental runs ------------------------------------------------

TITLES = ["Domestic abuse refuge", "Grounds maintenance", "Youth mentoring programme", "Community transport",
          "Meals on wheels", "Debt advice service", "ESOL classes", "Bereavement counselling",
          "Dementia day care", "Emergency food parcels", "Office cleaning", "Interpreting services",
          "Heritage project", "Physical activity for older people", "Digital skills for adults",
          "Supply of road salt", "Highway resurfacing works", "Laptops and tablets"]


def world(seed: int = 11) -> tuple[list[OpportunityView], list[PartyView]]:
    rng = random.Random(seed)
    opps = []
    for i in range(60):
        title = rng.choice(TITLES)
        where = rng.choice([dict(local_authority=rng.choice(TOWNS), **WM), dict(nationwide=True),
                            dict(local_authority="Leeds", region="Yorkshire and The Humber")])
        opps.append(notice(f"O{i:03d}", f"{title} {i}", f"{rng.choice(SERVICES)}. {rng.choice(SERVICES)}.",
                           cpv_codes=rng.choice([(), ("85312000",), ("77310000",), ("55520000",)]),
                           **{"local_authority": None, **where}))
    parties = crowd(120, seed) + [TARGET, UNRELATED]
    parties += [replace(p, id=f"N{p.id}", service_areas=("National",), cpv_codes=("85311000",))
                for p in crowd(10, seed + 1)]
    return opps, parties


def _tuples(cands) -> list[tuple]:
    return [(c.opportunity_id, c.party_id, c.score, c.rank, c.shared_terms, c.cpv_relation, c.location_fit)
            for c in cands]


def test_shuffled_inputs_give_identical_output():
    opps, parties = world()
    params = CandidateParams(top_k=15)
    first = _tuples(generate_candidates(opps, parties, as_of=AS_OF, params=params))
    rng = random.Random(5)
    for _ in range(3):
        rng.shuffle(opps)
        rng.shuffle(parties)
        assert _tuples(generate_candidates(opps, parties, as_of=AS_OF, params=params)) == first
    assert first == sorted(first, key=lambda t: (t[0], t[1]))
    assert len({(t[0], t[1]) for t in first}) == len(first)


HASH_SEED_SCRIPT = """
import json, sys
sys.path.insert(0, "tests/match")
from test_candidates import AS_OF, CandidateParams, _tuples, generate_candidates, world
from broker.match.features import build_pair_facts
opps, parties = world()
cands = generate_candidates(opps, parties, as_of=AS_OF, params=CandidateParams(top_k=15))
facts = build_pair_facts(cands, {o.id: o for o in opps}, {p.id: p for p in parties}, as_of=AS_OF)
print(json.dumps([_tuples(cands), facts], sort_keys=True))
"""


def test_candidates_and_features_do_not_depend_on_the_hash_seed():
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", HASH_SEED_SCRIPT], cwd=ROOT, env=env, capture_output=True,
                             text=True, check=True).stdout
        outputs.append(json.loads(out))
    assert outputs[0] == outputs[1]
    assert outputs[0][0] and len(outputs[0][0]) == len(outputs[0][1])


def test_incremental_runs_propose_exactly_what_a_full_run_does():
    opps, parties = world()
    index = build_index(opps, parties, as_of=AS_OF, params=CandidateParams(top_k=15))
    full = _tuples(index.candidates())
    new_opps = {o.id for o in opps[::7]}
    changed = {p.id for p in parties[::13]}
    assert _tuples(index.candidates(opportunity_ids=new_opps)) == [t for t in full if t[0] in new_opps]
    assert _tuples(index.candidates(party_ids=changed)) == [t for t in full if t[1] in changed]
    both = _tuples(index.candidates(opportunity_ids=new_opps, party_ids=changed))
    assert both == [t for t in full if t[0] in new_opps or t[1] in changed]
    assert index.candidates(opportunity_ids=[], party_ids=[]) == []


def test_proposed_iff_why_not_proposed_is_none():
    opps, parties = world()
    index = build_index(opps, parties, as_of=AS_OF, params=CandidateParams(top_k=15))
    proposed = {(c.opportunity_id, c.party_id) for c in index.candidates()}
    for o in opps[:12]:
        for p in parties[::9]:
            assert (index.why_not_proposed(o.id, p.id) is None) == ((o.id, p.id) in proposed)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), top_k=st.integers(1, 30))
def test_candidate_invariants(seed, top_k):
    opps, parties = world(seed)
    got = generate_candidates(opps, parties, as_of=AS_OF, params=CandidateParams(top_k=top_k))
    per_opp: dict[str, list[int]] = {}
    for c in got:
        assert c.score > 0 and 1 <= c.rank <= top_k
        assert c.location_fit != "outside"
        per_opp.setdefault(c.opportunity_id, []).append(c.rank)
    for ranks in per_opp.values():
        assert sorted(ranks) == list(range(1, len(ranks) + 1))


def test_chunking_by_postings_never_changes_a_candidate():
    parties = [*crowd(), TARGET, UNRELATED]
    notices = [DA, notice("O-GEN", "Provision of support services", "Support services to local people.")]
    default = build_index(notices, parties, as_of=AS_OF).candidates()
    tiny = build_index(notices, parties, as_of=AS_OF, params=CandidateParams(chunk_postings=1, chunk_rows=1))
    assert tiny.candidates() == default and default
