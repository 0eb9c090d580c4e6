"""Pair features: tables of cases per feature, the vocabulary contract, and invariants (hypothesis)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.errors import ConfigError
from broker.match import fit
from broker.match.features import (
    TypoMap,
    build_pair_facts,
    compile_keyword,
    iter_pair_facts,
    opportunity_fact,
    pair_features,
    party_fact,
    prepare_keyword,
    prepare_opportunity,
)
from broker.match.levels import DEFAULT_LEVELS, Level, Levels
from broker.match.model import OpportunityView, PartyView
from broker.match.textindex import analyse, place_terms, stem
from broker.match.vocabulary import VOCABULARY, field_map

AS_OF = date(2025, 3, 20)


def opp(**kw) -> OpportunityView:
    base = dict(id="O1", title="Community services", description="", buyer_name="Walsall Council")
    return OpportunityView(**{**base, **kw})


def party(**kw) -> PartyView:
    base = dict(id="P1", name="Test VCSE", capabilities="", local_authority="Walsall", region="West Midlands")
    return PartyView(**{**base, **kw})


def features(o: OpportunityView, p: PartyView, levels: Levels = DEFAULT_LEVELS) -> dict:
    return pair_features(o, p, as_of=AS_OF, levels=levels)


# --- stemming ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", [
    ("counselling", "counseling", "counselled", "counsel"),
    ("organisation", "organization", "organise", "organising"),
    ("trainers", "training", "trainer", "train"),
    ("employment", "employers", "employability", "employed"),
    ("consultancy", "consultant", "consultation", "consulting"),
    ("refuges", "refuge"),
    ("communities", "community"),
    ("gardening", "gardens", "garden"),
    ("supplies", "supplier", "supply"),
    ("housing", "houses", "house"),
    ("care", "caring", "carers", "cared"),
    ("volunteers", "volunteering", "volunteer"),
])
def test_word_families_meet_at_one_stem(family):
    assert len({stem(w) for w in family}) == 1, {w: stem(w) for w in family}


@pytest.mark.parametrize("a,b", [("community", "communication"), ("mental", "rental"), ("care", "career"),
                                 ("caring", "cars"), ("hoping", "hopping")])
def test_different_words_stay_apart(a, b):
    assert stem(a) != stem(b)


def test_phrases_stay_inside_clauses_and_skip_stop_words():
    terms = analyse("Meals on wheels, befriending; mental health (adults)")
    assert "meal wheel" in terms.bigrams
    assert f"{stem('wheels')} {stem('befriending')}" not in terms.bigrams
    assert f"{stem('mental')} {stem('health')}" in terms.bigrams
    assert f"{stem('health')} {stem('adults')}" not in terms.bigrams


def test_markup_is_not_text():
    assert analyse("<p><strong>Grounds</strong> <span class='x'>maintenance</span></p>") == analyse(
        "Grounds maintenance")


def test_hyphenated_words_meet_their_joined_and_spaced_forms():
    assert stem("wellbeing") in analyse("Health and well-being").unigrams
    assert stem("childcare") in analyse("child-care").unigrams
    assert f"{stem('child')} {stem('care')}" in analyse("child-care").bigrams


# --- keywords and exclude keywords -------------------------------------------------------------------

KEYWORD_CASES = [
    # (keyword, opportunity title, description, hit?, why)
    ("refuge", "Refuges for women", "", True, "plural"),
    ("Refuges", "Refuge accommodation", "", True, "plural on the keyword side, any case"),
    ("mental health", "Adult MENTAL HEALTH services", "", True, "phrase, case-insensitive"),
    ("mental health", "Health checks", "Mental wellbeing for adults", False, "words apart are not the phrase"),
    ("meals on wheels", "Meals on Wheels service", "", True, "stop words inside the phrase"),
    ("mentroing", "Youth mentoring", "", True, "a swap of letters in a long word"),
    ("counselling", "Counselling", "", True, "exact"),
    ("counselling", "Counsellign for adults", "", True, "a typo in the notice"),
    ("yuoth", "Youth work", "", False, "short words get no typo tolerance"),
    ("mental", "Rental services", "", False, "typos never change the first letter"),
    ("gardening", "Office cleaning", "<p>Weekly <b>gardening</b> of the grounds</p>", True, "HTML in text"),
    ("IT", "IT support for schools", "", True, "an acronym as written"),
    ("IT", "Catering", "It is a contract for meals", False, "an acronym never matches the word"),
    ("domestic abuse", "Support services", "Refuge for survivors of domestic abuse.", True, "description"),
    ("youth work", "Youth clubs", "Detached work with young people", False, "both words, not as a phrase"),
]


@pytest.mark.parametrize("keyword,title,description,hit,why", KEYWORD_CASES)
def test_keyword_hits(keyword, title, description, hit, why):
    f = features(opp(title=title, description=description), party(keywords=(keyword,)))
    assert f["keyword_hits"] == (1 if hit else 0), why


def test_keyword_hits_count_each_keyword_once():
    o = opp(title="Youth work and youth mentoring", description="Youth work in parks.")
    f = features(o, party(keywords=("youth work", "mentoring", "catering", "youth work ")))
    assert f["keyword_hits"] == 3


EXCLUDE_CASES = [
    # (exclude keyword, opportunity fields, hits)
    ("alcohol", dict(title="Community cafe", description="No alcohol licence is needed."), 1),
    ("asbestos", dict(title="Void property works", description="Includes asbestos removal"), 1),
    ("construction", dict(title="Grounds maintenance", cpv_codes=("45000000",)), 1),  # CPV label only
    ("prison", dict(title="Mentoring", buyer_name="HM Prison and Probation Service"), 1),  # buyer only
    ("gambling", dict(title="Mentoring", description="Youth mentoring."), 0),
]


@pytest.mark.parametrize("exclude,fields,hits", EXCLUDE_CASES)
def test_exclude_keywords_look_in_every_text_field(exclude, fields, hits):
    f = features(opp(**fields), party(capabilities="youth mentoring", exclude_keywords=(exclude,)))
    assert f["exclude_hits"] == hits


def test_buyer_name_is_not_a_keyword_field():
    o = opp(title="Mentoring", buyer_name="Prison Service")
    assert features(o, party(keywords=("prison",)))["keyword_hits"] == 0


def test_typo_tolerance_follows_levels():
    o = opp(title="Youth mentoring")
    strict = Levels(typo_max_edits=0)
    assert features(o, party(keywords=("mentroing",)), strict)["keyword_hits"] == 0
    assert features(o, party(keywords=("mentroing",)))["keyword_hits"] == 1


def test_compiled_keyword_variants_use_the_typo_map():
    typos = TypoMap(["mentroing"], ["mentoring", "youth"], DEFAULT_LEVELS)
    kw = compile_keyword(prepare_keyword("youth mentroing"), typos)
    assert kw.found_in(prepare_opportunity(opp(title="Youth mentoring")).text, frozenset())


# --- capability score --------------------------------------------------------------------------------

DA_OPP = opp(title="Provision of Accommodation Based Support Services for Victims of Domestic Abuse",
             description="Refuge accommodation and floating support for adults and children affected by "
                         "domestic abuse.", cpv_codes=("85311000",))
GROUNDS_OPP = opp(title="Grounds Maintenance Services",
                  description="Grass cutting, hedge trimming and litter picking in parks.")


@pytest.mark.parametrize("o,exact,partial,unrelated", [
    (GROUNDS_OPP, "Grounds maintenance: grass cutting, hedge trimming and litter picking in parks",
     "Community gardening, grounds maintenance and litter picking by volunteers",
     "Youth work, sports coaching and mentoring for young people"),
    (DA_OPP, "Refuge accommodation and floating support for victims of domestic abuse and their children",
     "We provide counselling and therapeutic support for adults affected by domestic abuse",
     "Community transport: accessible minibuses and volunteer drivers"),
])
def test_capability_levels_follow_how_much_of_the_notice_the_party_covers(o, exact, partial, unrelated):
    got = [features(o, party(capabilities=c)) for c in (exact, partial, unrelated, "")]
    scores = [f["capability_score"] for f in got]
    assert scores[0] > scores[1] > scores[2] == scores[3] == 0, scores
    assert got[0]["capability_level"] in ("strong", "good")
    assert got[1]["capability_level"] in ("good", "weak")
    assert got[2]["capability_level"] == got[3]["capability_level"] == "none"


def test_capability_prefers_the_specific_service_to_a_related_one():
    refuge = features(DA_OPP, party(capabilities="Refuge accommodation for victims of domestic abuse"))
    counselling = features(DA_OPP, party(capabilities="Counselling for adults affected by domestic abuse"))
    unrelated = features(DA_OPP, party(capabilities="Counselling for adults with anxiety"))
    assert refuge["capability_score"] > counselling["capability_score"] > unrelated["capability_score"]


def test_plurals_meet_and_typos_count_through_keywords_only():
    clean = features(GROUNDS_OPP, party(capabilities="grounds maintenance and litter picking"))
    plural = features(GROUNDS_OPP, party(capabilities="ground maintenance and litter pickings"))
    assert plural["capability_score"] == clean["capability_score"] > 0
    # rapidfuzz tolerates the typo in a keyword (a keyword hit), not in the relevance model's terms
    typo = features(GROUNDS_OPP, party(capabilities="litter picking", keywords=("grounds maintenence",)))
    assert typo["keyword_hits"] == 1
    strict = features(GROUNDS_OPP, party(capabilities="litter picking", keywords=("grounds maintenence",)),
                      Levels(typo_max_edits=0))
    assert strict["keyword_hits"] == 0


def test_generic_words_alone_are_no_capability_match():
    o = opp(title="Provision of support services", description="Support services for the community.")
    f = features(o, party(capabilities="We provide support services to the local community"))
    assert f["capability_level"] == "none"


def test_place_names_are_not_capability():
    o = opp(title="Walsall youth work", local_authority="Walsall", in_west_midlands=True, region="West Midlands")
    with_place = party(capabilities="Walsall based charity doing youth work")
    without = party(capabilities="charity doing youth work")
    assert features(o, with_place)["capability_score"] == features(o, without)["capability_score"]


def test_keywords_raise_the_score():
    plain = features(DA_OPP, party(capabilities="support for survivors"))
    keyed = features(DA_OPP, party(capabilities="support for survivors", keywords=("domestic abuse",)))
    assert keyed["capability_score"] > plain["capability_score"]


def test_levels_name_the_score_and_are_configurable():
    levels = Levels(capability=(Level("strong", 95, "near-perfect"), Level("good", 90, "very close"),
                                Level("weak", 5, "anything")))
    f = features(DA_OPP, party(capabilities="Domestic abuse refuge and floating support"), levels)
    assert f["capability_level"] == levels.capability_level(f["capability_score"])
    assert levels.capability_label("weak") == "anything"
    assert DEFAULT_LEVELS.capability_label("strong") == "strong capability match"
    assert DEFAULT_LEVELS.capability_label("none") == "no capability match"
    assert Levels.from_json(levels.to_json()) == levels


@pytest.mark.parametrize("bad", [
    dict(capability=(Level("good", 80, "x"), Level("strong", 60, "y"), Level("weak", 30, "z"))),
    dict(capability=(Level("strong", 60, "x"), Level("good", 80, "y"), Level("weak", 30, "z"))),
    dict(value_stretch_pct=90),
])
def test_bad_levels_are_refused(bad):
    with pytest.raises(ConfigError):
        Levels(**bad)


@pytest.mark.parametrize("score,level", [(100, "strong"), (50, "strong"), (49, "good"), (25, "good"),
                                         (24, "weak"), (10, "weak"), (9, "none"), (0, "none")])
def test_default_thresholds(score, level):
    assert DEFAULT_LEVELS.capability_level(score) == level


# --- CPV ---------------------------------------------------------------------------------------------

CPV_CASES = [
    (("85311000",), ("85311000",), "exact"),
    (("85311000-2",), ("85311000",), "exact"),  # check digit
    (("85311200",), ("85311300",), "category"),  # siblings under 85311000
    (("85311000",), ("85312000",), "class"),  # under 85310000
    (("85311000",), ("85320000",), "group"),  # under 85300000
    (("85311000",), ("85121270",), "division"),
    (("85311000",), ("55520000",), "none"),
    ((), ("85311000",), "no_codes"),
    (("85311000",), (), "no_codes"),
    (("85310000",), ("85311000",), "class"),  # one code is the other's ancestor: its level
    (("55520000", "85311200"), ("90910000", "85311300"), "category"),  # closest of all pairs
    # 35611000 does not exist: its children meet at the nearest existing ancestor, a class.
    (("35611100",), ("35611200",), "class"),
    # 60110000 does not exist: 60112000's nearest ancestor is the group 60100000.
    (("60112000",), ("60100000",), "group"),
    (("39254100",), ("39254000",), "category"),  # under a code whose own parent is missing
]


@pytest.mark.parametrize("ours,theirs,relation", CPV_CASES)
def test_cpv_overlap_by_hierarchy_level(ours, theirs, relation):
    assert features(opp(cpv_codes=ours), party(cpv_codes=theirs))["cpv_overlap"] == relation
    assert fit.cpv_relation(theirs, ours) == relation  # symmetric


# --- value -------------------------------------------------------------------------------------------

K = 100_000  # £1,000 in pence

VALUE_CASES = [
    # (opp min, opp max, party min, party max, pct, fit)
    (50 * K, 80 * K, None, 100 * K, 50, "within"),
    (100 * K, 100 * K, None, 100 * K, 100, "within"),
    (150 * K, 200 * K, None, 100 * K, 150, "stretch"),
    (151 * K, None, None, 100 * K, 151, "beyond"),
    (2 * K, 3 * K, 5 * K, 100 * K, 2, "below_minimum"),
    (2 * K, 3 * K, 5 * K, None, -1, "below_minimum"),  # known without a maximum
    (None, None, None, 100 * K, -1, "unknown"),
    (50 * K, None, None, None, -1, "unknown"),
    (None, 80 * K, None, 100 * K, 80, "within"),  # a single upper figure stands for the value
    (1, None, None, 3, 33, "within"),  # rounding to whole percent
]


@pytest.mark.parametrize("vmin,vmax,pmin,pmax,pct,value_fit", VALUE_CASES)
def test_value_fit(vmin, vmax, pmin, pmax, pct, value_fit):
    f = features(opp(value_min_pence=vmin, value_max_pence=vmax),
                 party(min_contract_value_pence=pmin, max_contract_value_pence=pmax))
    assert (f["value_to_capacity_pct"], f["value_fit"]) == (pct, value_fit)


def test_stretch_is_configurable():
    o, p = opp(value_min_pence=130 * K), party(max_contract_value_pence=100 * K)
    assert features(o, p)["value_fit"] == "stretch"
    assert features(o, p, Levels(value_stretch_pct=120))["value_fit"] == "beyond"


# --- location ----------------------------------------------------------------------------------------

WM = dict(region="West Midlands", in_west_midlands=True)
LOCATION_CASES = [
    (dict(local_authority="Walsall", **WM), dict(local_authority="Walsall"), "local"),
    (dict(local_authority="walsall", **WM), dict(local_authority="WALSALL"), "local"),
    (dict(local_authority="Dudley", **WM), dict(local_authority="Walsall", service_areas=("Dudley",)), "local"),
    (dict(local_authority="Birmingham", cluster="Ward End", **WM),
     dict(local_authority="Sandwell", cluster="Ward End"), "cluster"),
    (dict(local_authority="Coventry", **WM), dict(local_authority="Walsall", region="West Midlands"), "region"),
    (dict(local_authority="Coventry", **WM),
     dict(local_authority="Leeds", region="Yorkshire and The Humber", service_areas=("West Midlands",)), "region"),
    (dict(nationwide=True), dict(local_authority="Leeds", region="Yorkshire and The Humber"), "national"),
    (dict(), dict(local_authority="Leeds", region="Yorkshire and The Humber"), "national"),  # no place given
    (dict(local_authority="Leeds", region="Yorkshire and The Humber"),
     dict(local_authority="Walsall", service_areas=("National",)), "national"),
    (dict(local_authority="Leeds", region="Yorkshire and The Humber"),
     dict(local_authority="Walsall", region="West Midlands"), "outside"),
    (dict(local_authority="Dudley", **WM),
     dict(local_authority="Leeds", region="Yorkshire and The Humber", service_areas=("Leeds", "Bradford")),
     "outside"),
]


@pytest.mark.parametrize("where,who,location", LOCATION_CASES)
def test_location_fit(where, who, location):
    p = PartyView(id="P1", **{"region": None, **who})
    assert features(opp(**where), p)["location_fit"] == location


# --- deadline ----------------------------------------------------------------------------------------

DEADLINE_CASES = [
    (datetime(2025, 3, 29, 23, 30, tzinfo=UTC), date(2025, 3, 20), 9),  # GMT: still 29 March in the UK
    (datetime(2025, 3, 31, 23, 30, tzinfo=UTC), date(2025, 3, 20), 12),  # BST: 00:30 on 1 April in the UK
    (datetime(2025, 10, 25, 23, 30, tzinfo=UTC), date(2025, 10, 20), 6),  # BST until the 26th: the 26th
    (datetime(2025, 10, 26, 23, 30, tzinfo=UTC), date(2025, 10, 20), 6),  # GMT again: still the 26th
    (datetime(2025, 3, 19, 12, 0, tzinfo=UTC), date(2025, 3, 20), -1),
    (None, date(2025, 3, 20), 9999),
]


@pytest.mark.parametrize("deadline,as_of,days", DEADLINE_CASES)
def test_days_to_deadline_in_uk_calendar_days(deadline, as_of, days):
    f = pair_features(opp(deadline_at=deadline), party(), as_of=as_of)
    assert f["days_to_deadline"] == days
    assert f["deadline_known"] is (deadline is not None)


# --- opportunity and party facts ---------------------------------------------------------------------


def test_opportunity_fact_spells_out_unknowns():
    f = opportunity_fact(opp(), AS_OF)
    assert f["value_known"] is False and f["value_min_gbp"] == 0 and f["value_max_gbp"] == 0
    assert f["vcse_suitable"] == "unknown" and f["sme_suitable"] == "unknown"
    assert f["nationwide"] is True  # no place given
    assert f["notice_type"] == "" and f["opportunity_local_authority"] == ""
    g = opportunity_fact(opp(value_min_pence=1_234_599, value_max_pence=None, vcse_suitable=False,
                             local_authority="Walsall", notice_type="UK4"), AS_OF)
    assert (g["value_min_gbp"], g["value_max_gbp"], g["vcse_suitable"]) == (12_345, 12_345, "no")
    assert g["nationwide"] is False and g["opportunity_local_authority"] == "Walsall"


def test_party_fact():
    f = party_fact(party(capabilities="x", max_contract_value_pence=5_000_000, member_ids=("A", "B"),
                         party_type="consortium", cluster="Ward End"))
    assert f["capacity_known"] is True and f["max_contract_value_gbp"] == 50_000
    assert (f["member_count"], f["party_cluster"], f["party_type"]) == (2, "Ward End", "consortium")
    g = party_fact(party())
    assert g["has_capabilities"] is False and g["member_count"] == 1 and g["employees"] == 0


def test_facts_have_exactly_the_vocabulary_fields():
    p = party(capabilities="Youth work")
    assert set(opportunity_fact(DA_OPP, AS_OF)) == set(field_map("opportunity"))
    assert set(party_fact(p)) == set(field_map("party"))
    assert set(features(DA_OPP, p)) == set(field_map("pair"))


def test_vcse_suitability_is_copied_not_judged():
    yes = features(replace(DA_OPP, vcse_suitable=True), party(capabilities="domestic abuse refuge"))
    no = features(replace(DA_OPP, vcse_suitable=False), party(capabilities="domestic abuse refuge"))
    assert (yes["vcse_suitable"], no["vcse_suitable"]) == ("yes", "no")
    assert yes["capability_score"] == no["capability_score"]


# --- bulk --------------------------------------------------------------------------------------------

BULK_OPPS = [DA_OPP, replace(GROUNDS_OPP, id="O2"),
             opp(id="O3", title="Youth mentoring and youth work", description="Mentoring for NEET young people.",
                 value_min_pence=5_000_000, local_authority="Dudley", **WM)]
BULK_PARTIES = [
    party(id="P1", capabilities="Domestic abuse refuge and outreach", keywords=("refuge", "IDVA")),
    party(id="P2", capabilities="Grounds maintenence and gardening", exclude_keywords=("asbestos",)),
    party(id="P3", capabilities="Youth mentroing, detached youth work", keywords=("youth work",),
          max_contract_value_pence=4_000_000, service_areas=("Dudley",)),
]


class Pair:
    def __init__(self, o: str, p: str) -> None:
        self.opportunity_id, self.party_id = o, p


def test_bulk_equals_one_pair_at_a_time_in_any_batch():
    pairs = [Pair(o.id, p.id) for o in BULK_OPPS for p in BULK_PARTIES]
    opps = {o.id: o for o in BULK_OPPS}
    parties = {p.id: p for p in BULK_PARTIES}
    bulk = build_pair_facts(pairs, opps, parties, as_of=AS_OF)
    single = [pair_features(opps[c.opportunity_id], parties[c.party_id], as_of=AS_OF) for c in pairs]
    assert bulk == single
    shuffled = pairs[:]
    random.Random(7).shuffle(shuffled)
    again = build_pair_facts(shuffled, opps, parties, as_of=AS_OF)
    by_pair = {(c.opportunity_id, c.party_id): f for c, f in zip(shuffled, again, strict=True)}
    assert [by_pair[(c.opportunity_id, c.party_id)] for c in pairs] == bulk


def test_batches_of_any_size_give_the_same_facts():
    pairs = [Pair(o.id, p.id) for o in BULK_OPPS for p in BULK_PARTIES]
    opps, parties = {o.id: o for o in BULK_OPPS}, {p.id: p for p in BULK_PARTIES}
    whole = build_pair_facts(pairs, opps, parties, as_of=AS_OF)
    for size in (1, 2, 4):
        streamed = list(iter_pair_facts(iter(pairs), opps, parties, as_of=AS_OF, batch_pairs=size))
        assert [c for c, _ in streamed] == pairs
        assert [f for _, f in streamed] == whole


def test_bulk_raises_on_unknown_ids():
    with pytest.raises(KeyError):
        build_pair_facts([Pair("nope", "P1")], {}, {p.id: p for p in BULK_PARTIES}, as_of=AS_OF)


# --- properties --------------------------------------------------------------------------------------

WORDS = ["youth", "work", "mentoring", "domestic", "abuse", "refuge", "services", "support", "gardening",
         "grounds", "maintenance", "catering", "IT", "counselling", "mental", "health", "the", "and",
         "<b>", "&amp;", "well-being", "café", "Walsall", "élan", "mentroing", "", "12", "-", ","]
CODES = ["85311000", "85311200", "85312000", "55520000", "35611100", "60112000", "99999999", "junk",
         "45000000", "3000000"]
text = st.lists(st.sampled_from(WORDS), max_size=25).map(" ".join)
pence = st.one_of(st.none(), st.integers(min_value=0, max_value=10**12))
names = st.one_of(st.none(), st.sampled_from(["Walsall", "Dudley", "Leeds", "West Midlands", "Ward End"]))

opportunities = st.builds(
    OpportunityView, id=st.just("O"), title=text, description=text, buyer_name=text,
    cpv_codes=st.lists(st.sampled_from(CODES), max_size=3).map(tuple), value_min_pence=pence,
    value_max_pence=pence, deadline_at=st.one_of(st.none(), st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))),
    status=st.sampled_from(["planned", "open", "closed", "cancelled", "awarded"]),
    local_authority=names, cluster=names, region=names, nationwide=st.booleans(),
    in_west_midlands=st.booleans(), vcse_suitable=st.one_of(st.none(), st.booleans()),
    sme_suitable=st.one_of(st.none(), st.booleans()), notice_type=st.one_of(st.none(), st.just("UK4")))
parties = st.builds(
    PartyView, id=st.just("P"), party_type=st.sampled_from(["vcse", "consortium", "suggested_consortium"]),
    capabilities=text, keywords=st.lists(text, max_size=4).map(tuple),
    exclude_keywords=st.lists(text, max_size=3).map(tuple),
    cpv_codes=st.lists(st.sampled_from(CODES), max_size=3).map(tuple),
    service_areas=st.lists(st.sampled_from(["Walsall", "Dudley", "National", "West Midlands"]),
                           max_size=2).map(tuple),
    local_authority=names, cluster=names, region=names, min_contract_value_pence=pence,
    max_contract_value_pence=pence, annual_turnover_pence=pence,
    employees=st.one_of(st.none(), st.integers(0, 5000)),
    member_ids=st.lists(st.sampled_from(["A", "B", "C"]), max_size=3).map(tuple))


@settings(max_examples=150, deadline=None)
@given(o=opportunities, p=parties)
def test_pair_facts_always_fit_the_vocabulary(o, p):
    f = features(o, p)
    spec = field_map("pair")
    assert set(f) == set(spec)
    for name, value in f.items():
        assert type(value) is spec[name].type, name  # exactly bool, int or str: never None or float
        if spec[name].values:
            assert value in spec[name].values, (name, value)
    assert 0 <= f["capability_score"] <= 100
    assert f["capability_level"] == DEFAULT_LEVELS.capability_level(f["capability_score"])
    assert f["keyword_hits"] <= len(p.keywords) and f["exclude_hits"] <= len(p.exclude_keywords)
    assert (f["value_to_capacity_pct"] == -1) == (f["value_fit"] == "unknown" or (
        f["value_fit"] == "below_minimum" and not p.max_contract_value_pence))


@settings(max_examples=100, deadline=None)
@given(o=opportunities, p=parties)
def test_symmetric_relations(o, p):
    assert fit.cpv_relation(o.cpv_codes, p.cpv_codes) == fit.cpv_relation(p.cpv_codes, o.cpv_codes)
    # An opportunity's title offered as a party's capabilities shares terms exactly when the title has a
    # content word that is not one of the pair's place names.
    mirror_party = replace(p, capabilities=o.title, keywords=(), cpv_codes=())
    mirror = features(o, mirror_party)
    places = place_terms(fit.opportunity_place_names(o)) | place_terms(fit.party_place_names(mirror_party))
    assert (mirror["relevance_terms"] != "no shared terms") == bool(analyse(o.title).all - places)


def test_vocabulary_kinds_are_covered():
    assert set(VOCABULARY) == {"opportunity", "party", "pair"}
