"""Deterministic synthetic VCSEs and opportunities for matching benchmarks.

Seeded (``random.Random(seed)``), so every run at a scale produces the same records. Vocabularies are
realistic rather than random: about ninety VCSE service areas, each with its CPV 2008 code and the words
people use for it; goods-and-works notices drawn from CPV labels outside those services (the noise a
brokerage has to ignore); and notice boilerplate. Descriptions come out at about 600 characters and
capability statements at about 25 words, as in the issue's measurements.

Scales: ``regional`` (2,000 VCSEs, 1,000 open opportunities of which 100 are new tonight) and ``national``
(20,000 VCSEs, 10,000 open opportunities of which 1,000 are new tonight). ``generate(scale)`` returns both
lists and the new ids. Every place name is a local authority ``broker.normalise.geography`` knows, under
its canonical name, so the views the store gives back (``opportunity_record``/``vcse_row`` written, then
read by ``broker.match.service.load_inputs``) equal the generated ones.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from broker.match.model import OpportunityView, PartyView
from broker.normalise.cpv import catalogue
from broker.normalise.record import OpportunityRecord, canonical_hash
from broker.paths import DATA_DIR

AS_OF = date(2025, 3, 20)  # the Thursday before the clocks change: deadlines straddle GMT and BST

# (service phrase, CPV code, related words used in notices and statements)
SERVICES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("domestic abuse support", "85312000", ("refuge", "survivors", "safeguarding", "outreach", "IDVA")),
    ("refuge accommodation", "85311000", ("women", "children", "safe housing", "domestic abuse")),
    ("supported housing", "85311000", ("tenancy sustainment", "homelessness", "move-on", "housing")),
    ("homelessness prevention", "85312400", ("rough sleeping", "housing advice", "tenancy", "outreach")),
    ("floating support", "85312400", ("tenancy sustainment", "independent living", "housing")),
    ("mental health counselling", "85312320", ("talking therapies", "wellbeing", "anxiety", "depression")),
    ("bereavement counselling", "85312320", ("loss", "grief", "families", "listening")),
    ("peer support groups", "85323000", ("lived experience", "recovery", "wellbeing", "volunteers")),
    ("social prescribing", "85323000", ("link workers", "GP practices", "wellbeing", "loneliness")),
    ("befriending older people", "85312400", ("loneliness", "isolation", "home visits", "volunteers")),
    ("dementia day care", "85312100", ("carers", "memory", "respite", "older people")),
    ("carers support", "85312400", ("respite", "young carers", "advice", "breaks")),
    ("young carers support", "85311300", ("carers", "schools", "respite", "young people")),
    ("youth work", "85311300", ("young people", "youth clubs", "detached youth work", "mentoring")),
    ("youth mentoring", "85311300", ("young people", "mentors", "NEET", "aspirations")),
    ("early help for families", "85311300", ("parenting", "family support", "children", "early years")),
    ("parenting programmes", "85312000", ("parents", "family support", "children", "early years")),
    ("children's centres", "85312100", ("early years", "play", "families", "stay and play")),
    ("holiday activities and food", "85311300", ("HAF", "school holidays", "healthy meals", "activities")),
    ("after-school clubs", "85312100", ("childcare", "play", "homework", "children")),
    ("special educational needs support", "80340000", ("SEND", "inclusion", "learning disabilities")),
    ("learning disability day opportunities", "85311200", ("day services", "independence", "skills")),
    ("supported employment", "85312000", ("job coaching", "disabled people", "employers", "work")),
    ("employment support", "79611000", ("job search", "CV writing", "interview skills", "unemployed")),
    ("skills training", "80530000", ("qualifications", "apprenticeships", "vocational training")),
    ("adult learning", "80400000", ("literacy", "numeracy", "ESOL", "community learning")),
    ("ESOL classes", "80400000", ("English language", "refugees", "migrants", "conversation clubs")),
    ("digital inclusion", "80500000", ("digital skills", "devices", "online", "older people")),
    ("welfare benefits advice", "75310000", ("benefits", "universal credit", "appeals", "debt advice")),
    ("debt advice", "79111000", ("money advice", "financial capability", "budgeting", "debt")),
    ("legal advice", "79111000", ("immigration advice", "housing law", "advocacy", "casework")),
    ("independent advocacy", "85312310", ("care act advocacy", "IMCA", "IMHA", "advocates")),
    ("drug and alcohol recovery", "85323000", ("substance misuse", "recovery", "harm reduction")),
    ("smoking cessation", "85323000", ("stop smoking", "tobacco", "health improvement")),
    ("healthy lifestyles", "85323000", ("weight management", "physical activity", "healthy eating")),
    ("community health checks", "85323000", ("health inequalities", "blood pressure", "outreach")),
    ("sexual health outreach", "85323000", ("testing", "contraception", "young people")),
    ("community transport", "60130000", ("dial-a-ride", "accessible minibus", "door-to-door")),
    ("patient transport", "60130000", ("hospital appointments", "volunteer drivers", "wheelchair")),
    ("meals on wheels", "55521200", ("hot meals", "home delivery", "older people", "nutrition")),
    ("community catering", "55520000", ("catering", "cafe", "meals", "events")),
    ("school meals", "55520000", ("catering", "healthy eating", "kitchens", "pupils")),
    ("food bank and food aid", "85312200", ("food parcels", "food poverty", "emergency food")),
    ("community cafe", "55520000", ("cafe", "social enterprise", "volunteers", "training kitchen")),
    ("grounds maintenance", "77310000", ("grass cutting", "hedge trimming", "parks", "shrub beds")),
    ("community gardening", "77311000", ("allotments", "growing", "food growing", "green spaces")),
    ("parks and open spaces", "77313000", ("litter picking", "tree planting", "green spaces")),
    ("environmental volunteering", "90720000", ("conservation", "biodiversity", "litter picking")),
    ("recycling and reuse", "90500000", ("furniture reuse", "waste reduction", "repair cafe")),
    ("bulky waste collection", "90511000", ("furniture collection", "waste", "reuse")),
    ("office cleaning", "90910000", ("cleaning", "janitorial", "hygiene", "buildings")),
    ("building cleaning", "90911200", ("cleaning", "deep clean", "windows", "premises")),
    ("painting and decorating", "45000000", ("decorating", "repairs", "void properties", "handyperson")),
    ("handyperson service", "50100000", ("small repairs", "home adaptations", "older people")),
    ("arts and culture programmes", "92310000", ("creative", "artists", "participatory arts")),
    ("community events", "79952000", ("festivals", "events", "celebrations", "engagement")),
    ("heritage projects", "92500000", ("museums", "archives", "local history", "heritage")),
    ("sport and physical activity", "92600000", ("sports coaching", "football", "swimming")),
    ("leisure centre management", "92610000", ("leisure", "swimming pools", "gyms", "facilities")),
    ("translation and interpreting", "79530000", ("interpreters", "languages", "BSL")),
    ("printing and design", "79810000", ("print", "graphic design", "leaflets", "publications")),
    ("community research", "73000000", ("research", "evaluation", "surveys", "insight")),
    ("community engagement and consultation", "79311000", ("consultation", "surveys", "engagement")),
    ("equality and diversity training", "98200000", ("equalities", "inclusion", "workshops")),
    ("volunteer recruitment", "79600000", ("volunteers", "volunteering", "training", "brokerage")),
    ("community development", "85322000", ("capacity building", "community groups", "resilience")),
    ("community centre management", "98133100", ("community centre", "room hire", "facilities")),
    ("IT support for charities", "72611000", ("IT", "technical support", "devices", "networks")),
    ("website development", "72000000", ("websites", "digital", "web design", "accessibility")),
    ("care at home", "85312400", ("domiciliary care", "personal care", "carers", "older people")),
    ("residential care", "85311000", ("care homes", "nursing care", "older people")),
    ("respite care", "85312100", ("short breaks", "carers", "disabled children")),
    ("hospital discharge support", "85312400", ("home from hospital", "reablement", "older people")),
    ("falls prevention", "85323000", ("strength and balance", "older people", "exercise classes")),
    ("veterans support", "85312000", ("armed forces", "veterans", "wellbeing", "housing")),
    ("refugee resettlement", "85312000", ("asylum seekers", "refugees", "integration", "housing")),
    ("ex-offender resettlement", "85312000", ("probation", "prison leavers", "mentoring")),
    ("gambling harm support", "85323000", ("gambling", "addiction", "counselling", "families")),
    ("suicide prevention", "85312320", ("crisis support", "listening", "training", "mental health")),
    ("eating disorder support", "85323000", ("eating disorders", "recovery", "peer support")),
    ("autism support", "85312000", ("autistic people", "diagnosis", "families", "social groups")),
    ("sensory impairment services", "85311200", ("sight loss", "deaf", "hearing loss", "BSL")),
    ("community safety", "75200000", ("anti-social behaviour", "street pastors", "crime prevention")),
    ("credit union services", "66000000", ("affordable credit", "savings", "financial inclusion")),
    ("social enterprise business support", "79998000", ("start-up", "coaching", "business advice")),
)

# Words that fill capability statements and notices whatever the service.
GROUPS = ("local people", "families", "older people", "young people", "disabled adults", "children",
          "residents", "women", "refugees", "people on low incomes", "communities", "carers")
FORMS = ("charity", "community interest company", "CIO", "social enterprise", "co-operative",
         "community benefit society", "community organisation", "voluntary organisation")
BOILERPLATE = (
    "The contract will run for three years with an option to extend for a further two years.",
    "Bidders must register on the e-tendering portal to access the tender documents.",
    "The Council is committed to social value and expects bidders to set out local benefits.",
    "Clarification questions must be submitted through the portal before the deadline.",
    "This opportunity is suitable for small and medium enterprises and voluntary organisations.",
    "TUPE may apply to this contract; bidders should take their own advice.",
    "The service must comply with safeguarding policies and data protection legislation.",
    "Payment will be made monthly in arrears against agreed key performance indicators.",
    "A market engagement event will be held online for interested providers.",
    "Tenders will be evaluated on the basis of 60% quality and 40% price.",
)
TITLE_FORMS = ("Provision of {s}", "{S} service", "{S}", "{S} in {la}", "{S} - {group}",
               "Delivery of {s} for {group}", "{S} framework", "Commissioning of {s}")
NOISE_TITLES = ("Supply of {l}", "{L}", "{L} framework agreement", "Framework for {l}",
                "Purchase of {l}", "{L} - {la}")
NOISE_DIVISIONS = ("03", "09", "14", "15", "18", "22", "24", "30", "31", "32", "33", "34", "35", "38",
                   "39", "42", "43", "44", "45", "48", "50", "51", "63", "64", "65", "71", "72", "79")

REGIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("West Midlands", ("Birmingham", "Coventry", "Dudley", "Sandwell", "Solihull", "Walsall",
                       "Wolverhampton", "Shropshire", "Herefordshire", "Stoke-on-Trent", "Telford and Wrekin")),
    ("East Midlands", ("Nottingham", "Leicester", "Derby", "Lincoln", "West Northamptonshire")),
    ("North West", ("Manchester", "Liverpool", "Salford", "Bolton", "Wigan", "Preston", "Cheshire East")),
    ("North East", ("Newcastle upon Tyne", "Sunderland", "Gateshead", "County Durham", "Middlesbrough")),
    ("Yorkshire and The Humber", ("Leeds", "Sheffield", "Bradford", "Kingston upon Hull", "Wakefield", "York")),
    ("East of England", ("Norwich", "Ipswich", "Cambridge", "Chelmsford", "St Albans", "Luton")),
    ("London", ("Camden", "Hackney", "Lambeth", "Newham", "Tower Hamlets", "Croydon", "Barnet")),
    ("South East", ("Maidstone", "Guildford", "Brighton and Hove", "Oxford", "Southampton", "Reading")),
    ("South West", ("Bristol", "Exeter", "Cornwall", "Plymouth", "Somerset", "Gloucester")),
)
CLUSTERS = {"Birmingham": ("Ward End", "Perry Barr"), "Walsall": ("St Matthews Quarter",),
            "Sandwell": ("Sandwell",), "Wolverhampton": ("Central Wolverhampton",)}

# (parties, open opportunities, of which new tonight): a tenth of the open ones are new, at both scales.
SCALES = {"regional": (2_000, 1_000, 100), "national": (20_000, 10_000, 1_000)}


@dataclass(frozen=True)
class Synthetic:
    opportunities: list[OpportunityView]
    parties: list[PartyView]
    new_opportunity_ids: list[str]


def generate(scale: str, seed: int = 20250320) -> Synthetic:
    """Parties and open opportunities at ``regional`` or ``national`` scale (see ``SCALES``)."""
    n_parties, n_opps, n_new = SCALES[scale]
    regional = scale == "regional"
    rng = random.Random(f"{scale}:{seed}")
    noise = _noise_codes()
    parties = [_party(rng, i, regional) for i in range(n_parties)]
    opps = [_opportunity(rng, i, regional, noise) for i in range(n_opps)]
    new_ids = [o.id for o in opps[-n_new:]]
    return Synthetic(opps, parties, new_ids)


def _noise_codes() -> list[str]:
    with open(DATA_DIR / "cpv2008_en.json", encoding="utf-8") as fh:
        return [c for c in sorted(json.load(fh)) if c[:2] in NOISE_DIVISIONS]


def _place(rng: random.Random, regional: bool) -> tuple[str, str]:
    region, las = REGIONS[0] if regional or rng.random() < 0.2 else rng.choice(REGIONS[1:])
    return region, rng.choice(las)


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 6:
        return word
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def _party(rng: random.Random, i: int, regional: bool) -> PartyView:
    region, la = _place(rng, regional)
    services = rng.sample(SERVICES, rng.choice((1, 2, 2, 3, 3, 4)))
    phrases = [s[0] for s in services]
    extras = [w for s in services for w in rng.sample(s[2], min(2, len(s[2])))]
    capabilities = (f"We are a {rng.choice(FORMS)} in {la} providing {', '.join(phrases[:-1])}"
                    f"{' and ' if len(phrases) > 1 else ''}{phrases[-1]} for {rng.choice(GROUPS)}, "
                    f"including {', '.join(extras[:3])}.")
    keywords = tuple(rng.sample(phrases + extras, min(len(phrases + extras), rng.choice((0, 0, 1, 2, 3)))))
    if keywords and rng.random() < 0.1:
        keywords = (_typo(rng, keywords[0]), *keywords[1:])
    excludes = tuple(rng.sample(("construction", "alcohol", "gambling", "vehicles", "medical equipment",
                                 "security guarding", "asbestos"), rng.choice((0, 0, 0, 1, 2))))
    areas = _service_areas(rng, region, la)
    cpv = tuple(s[1] for s in services) if rng.random() < 0.2 else ()
    turnover = int(rng.lognormvariate(12.0, 1.4)) * 100
    cluster = rng.choice(CLUSTERS[la]) if la in CLUSTERS else None
    return PartyView(
        id=f"V{i:06d}", party_type="vcse", name=f"{la} {phrases[0].title()} {rng.choice(FORMS).title()}",
        capabilities=capabilities, keywords=keywords, exclude_keywords=excludes, cpv_codes=cpv,
        service_areas=areas, local_authority=la, cluster=cluster, region=region,
        min_contract_value_pence=rng.choice((None, None, 500_000, 1_000_000)),
        max_contract_value_pence=rng.choice((None, turnover // 2, turnover)),
        annual_turnover_pence=turnover, employees=rng.randrange(0, 80),
        digest_opt_in=rng.random() < 0.8)


def _service_areas(rng: random.Random, region: str, la: str) -> tuple[str, ...]:
    roll = rng.random()
    if roll < 0.5:
        return ()
    if roll < 0.7:
        return (region,)
    if roll < 0.8:
        return ("National",)
    las = dict(REGIONS)[region]
    return tuple(sorted({la, *rng.sample(las, min(len(las), rng.randrange(1, 4)))}))


def _opportunity(rng: random.Random, i: int, regional: bool, noise: list[str]) -> OpportunityView:
    region, la = _place(rng, regional)
    group = rng.choice(GROUPS)
    if rng.random() < 0.6:
        phrase, code, words = rng.choice(SERVICES)
        title = rng.choice(TITLE_FORMS).format(s=phrase, S=phrase[0].upper() + phrase[1:], la=la, group=group)
        related = rng.sample(words, min(3, len(words)))
        body = (f"{la} Council is seeking a provider to deliver {phrase} for {group}. The service will "
                f"include {', '.join(related)}. ")
        codes = (code,)
    else:
        code = rng.choice(noise)
        label = catalogue().label(code) or "goods"
        title = rng.choice(NOISE_TITLES).format(l=label.lower(), L=label, la=la)
        body = f"{la} Council requires {label.lower()} as described in the specification. "
        codes = (code,)
    body += " ".join(rng.sample(BOILERPLATE, 4))
    nationwide = rng.random() < 0.12
    value = int(rng.lognormvariate(11.5, 1.5)) * 100 if rng.random() < 0.9 else None
    deadline = datetime.combine(AS_OF + timedelta(days=rng.randrange(-3, 75)), time(11, 0), tzinfo=UTC)
    return OpportunityView(
        id=f"O{i:06d}", title=title, description=body, buyer_name=f"{la} Council", cpv_codes=codes,
        value_min_pence=value, value_max_pence=None if value is None else value * rng.choice((1, 1, 2)),
        deadline_at=deadline, status="open", local_authority=None if nationwide else la,
        cluster=rng.choice(CLUSTERS[la]) if la in CLUSTERS and rng.random() < 0.5 else None,
        region=None if nationwide else region, nationwide=nationwide,
        in_west_midlands=region == "West Midlands" and not nationwide,
        vcse_suitable=rng.choice((True, False, None)), sme_suitable=rng.choice((True, None)),
        notice_type="UK4", source="synthetic")


# --- as store rows ---------------------------------------------------------------------------------------

def opportunity_record(view: OpportunityView) -> OpportunityRecord:
    """The normalised record that ``broker.store.opportunities.upsert_record`` stores for ``view``."""
    return OpportunityRecord(
        id=view.id, source=view.source, title=view.title, buyer_name=view.buyer_name, status=view.status,
        raw_hash=hashlib.sha256(view.id.encode()).hexdigest(), description=view.description,
        source_ids=(view.id,), notice_type=view.notice_type, deadline_at=view.deadline_at,
        value_min_pence=view.value_min_pence, value_max_pence=view.value_max_pence, value_currency="GBP",
        cpv_codes=view.cpv_codes, local_authority=view.local_authority, region=view.region,
        regions=(view.region,) if view.region else (), cluster=view.cluster, nationwide=view.nationwide,
        sme_suitable=view.sme_suitable, vcse_suitable=view.vcse_suitable, is_framework=view.is_framework,
        is_dps=view.is_dps)


def vcse_row(view: PartyView) -> dict[str, Any]:
    """The ``broker.store.models.Vcse`` columns for ``view`` (content hash as the directory importer's)."""
    rec: dict[str, Any] = {
        "id": view.id, "name": view.name, "legal_form": None, "charity_number": None, "company_number": None,
        "cluster": view.cluster, "cluster_derived": False, "local_authority": view.local_authority,
        "postcode": None, "service_areas": list(view.service_areas), "capabilities": view.capabilities,
        "keywords": list(view.keywords), "exclude_keywords": list(view.exclude_keywords),
        "cpv_codes": list(view.cpv_codes), "annual_turnover_pence": view.annual_turnover_pence,
        "employees": view.employees, "min_contract_value_pence": view.min_contract_value_pence,
        "max_contract_value_pence": view.max_contract_value_pence, "certifications": [],
        "contact_email": None, "digest_opt_in": view.digest_opt_in}
    return {**rec, "content_hash": canonical_hash(rec)}
