"""Eligibility before relevance: capacity, frameworks, the business date and UK-wide notices.

The unit tests pin the classifiers; the store tests run the nightly job end to end on a small fictional
directory and private notices (SQLite and PostgreSQL) and check what reaches digests and the target.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from testpaths import ROOT

from broker.match import fit
from broker.match.model import OpportunityView, PartyView
from broker.match.vocabulary import SUBCONTRACTING_FLAG
from broker.normalise.geography import Location
from broker.normalise.places import place_names, sharpen
from broker.normalise.procurement import Kind, procurement_kind
from broker.sources.cf_csv import read_cf_csv
from broker.store.engine import make_engine, session_factory
from broker.store.models import Digest, DigestItem, Match, TargetEntry
from broker.target.config import TargetConfig
from broker.target.progress import compute_progress

sys.path.insert(0, str(ROOT / "bench"))
from eligibility_check import check  # noqa: E402

REAL_ROWS = ROOT / "tests" / "data" / "cf_2020_dpv_and_dreadnought.csv"
AS_OF = "2020-04-16"


# --- frameworks, DPS and call-offs from the words ---------------------------------------------------

@pytest.mark.parametrize(("title", "procedure", "description", "kind"), [
    ("Dynamic Purchasing Vehicle for Semi-Independent Accommodation and Support", "Other DPS", "", "dps"),
    ("Home care", "Other DPS", "", "dps"),
    ("Supported living DPV", "", "", "dps"),
    ("Youth services", "", "Providers are invited to join the Dynamic Purchasing System.", "dps"),
    ("Framework Agreement for advocacy", "", "", "framework"),
    ("Advocacy Services Framework 2020-2023 (SDF)", "", "", "framework"),
    ("Homecare approved provider list", "", "", "framework"),
    ("Youth work", "", "We invite providers to apply to join our approved provider list.", "framework"),
    ("Youth work", "", "The Council wishes to establish a framework agreement. Call-offs by mini-competition.",
     "framework"),
    # a call-off from one is a real contract with its own value
    ("Call-off from the YPO framework: cleaning", "", "", "call_off"),
    ("Cleaning", "CallOffFromFrameworkAgreement", "", "call_off"),
    ("Cleaning", "", "This is a call-off from the ESPO framework agreement 123.", "call_off"),
    ("Youth work", "", "Providers must be on the council's approved list.", "contract"),
    ("Youth work", "", "Tenders must be submitted online by the deadline.", "contract"),
    ("Dps notice", "", "", "contract"),  # the acronym counts only as written, in capitals
])
def test_procurement_kind(title: str, procedure: str, description: str, kind: str) -> None:
    expected = {"dps": Kind(dps=True), "framework": Kind(framework=True), "call_off": Kind(call_off=True),
                "contract": Kind()}[kind]
    assert procurement_kind(title, procedure, description) == expected


def test_real_dpv_is_a_dps_in_the_councils_area() -> None:
    records = {i.record.title: i.record for i in read_cf_csv(str(REAL_ROWS)) if i.kind == "record"}
    dpv = records["Dynamic Purchasing Vehicle for Semi-Independent Accommodation and Support"]
    assert dpv.is_dps and dpv.value_max_pence == 300_000_000_000
    # "Any region", bought by a London borough: the borough's area, not the whole country
    assert (dpv.local_authority, dpv.region, dpv.nationwide) == ("Hammersmith and Fulham", "London", False)
    crew = records["Dreadnought Crew Training - Prime and Integrator"]
    assert not (crew.is_dps or crew.is_framework) and crew.value_min_pence == 10_000_000_000


# --- place from the notice's words -----------------------------------------------------------------

def test_vague_places_are_read_from_title_buyer_and_description() -> None:
    wide = Location(nationwide=True)
    assert sharpen(wide, title="Oxfordshire Domestic Abuse Champion's Network").region == "South East"
    lincs = sharpen(wide, title="Domestic Abuse Support Service", buyer="Lincolnshire County Council")
    assert (lincs.region, lincs.nationwide) == ("East Midlands", False)
    walsall = sharpen(Location(), title="Youth work", description="Sessions at the centre, WS1 1TP.")
    assert walsall.local_authority == "Walsall" and walsall.cluster == "St Matthews Quarter"
    # national words keep a council's notice national; a specific location is never changed
    assert sharpen(wide, title="National helpline", buyer="Birmingham City Council") == wide
    local = Location(local_authority="Dudley", region="West Midlands", regions=("West Midlands",))
    assert sharpen(local, title="Oxfordshire network") is local
    assert sharpen(wide, title="Training", buyer="Ministry of Defence") == wide


def test_place_names_are_whole_names_and_skip_ordinary_words() -> None:
    text = "Reading sessions in Stoke-on-Trent and Newcastle-under-Lyme, and across the West Midlands."
    assert list(place_names(text)) == ["Stoke-on-Trent", "Newcastle-under-Lyme", "West Midlands"]


# --- capacity and remote delivery facts --------------------------------------------------------------

def _opp(**kw: object) -> OpportunityView:
    return OpportunityView(id="o", title=str(kw.pop("title", "Work")), **kw)  # type: ignore[arg-type]


def test_value_over_capacity_is_rounded_up() -> None:
    party = PartyView(id="p", max_contract_value_pence=3_000_000, annual_turnover_pence=4_000_000)
    assert fit.value_over_max_pct(_opp(value_min_pence=6_000_000), party) == 200  # exactly twice: not more
    assert fit.value_over_max_pct(_opp(value_min_pence=6_000_001), party) == 201
    assert fit.value_over_turnover_pct(_opp(value_min_pence=2_000_001), party) == 51
    assert fit.value_over_max_pct(_opp(), party) == -1
    assert fit.value_over_turnover_pct(_opp(value_min_pence=1), PartyView(id="q")) == -1


@pytest.mark.parametrize(("text", "remote"), [
    ("Support can be delivered remotely or by telephone", True),
    ("A telephone helpline for carers", True),
    ("Online training courses for volunteers", True),
    ("Sessions will be delivered online", True),
    ("Tenders must be submitted online via the portal", False),
    ("Face to face support in Walsall", False),
])
def test_remote_delivery(text: str, remote: bool) -> None:
    assert fit.remote_delivery(_opp(description=text)) is remote


# --- end to end on the store -------------------------------------------------------------------------

VCSE_COLUMNS = ("id,name,legal_form,charity_number,company_number,cluster,local_authority,postcode,service_areas,"
                "capabilities,keywords,exclude_keywords,cpv_codes,annual_turnover_gbp,employees,"
                "min_contract_value_gbp,max_contract_value_gbp,certifications,contact_email,digest_opt_in")
CAPS = ("Specialist domestic abuse support for women and children: outreach caseworkers, refuge "
        "accommodation, safety planning and counselling")
PRIVATE_COLUMNS = ("id,buyer,buyer_type,title,description,value_min_gbp,value_max_gbp,published,deadline,"
                   "cpv_codes,postcode,local_authority,suitable_for_vcse,url,contact_email")


def _world(tmp_path: Path) -> tuple[Path, Path, Path]:
    vcses = tmp_path / "vcses.csv"
    rows = [
        ("t-small", "Small Refuge CIC", "Birmingham", "Birmingham", "", "30000"),
        ("t-turnover", "Turnover Only Trust", "Birmingham", "Birmingham", "40000", ""),
        ("t-national", "National Refuge Network", "Birmingham", "National", "", "5000000"),
    ]
    with vcses.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(VCSE_COLUMNS.split(","))
        for vid, name, la, areas, turnover, cap in rows:
            w.writerow([vid, name, "CIC", "", "", "", la, "", areas, CAPS, "domestic abuse", "", "", turnover, "",
                        "", cap, "", f"{vid}@example.org", "yes"])
    consortia = tmp_path / "consortia.csv"
    consortia.write_text("id,name,lead_id,member_ids,capabilities,max_contract_value_gbp\n"
                         f"c-big,Birmingham Refuge Partnership,t-small,t-small;t-turnover,\"{CAPS}\",500000\n",
                         encoding="utf-8")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    notices = [
        ("n-big", "Domestic abuse support service for Birmingham", "Refuge accommodation and outreach caseworkers.",
         "100000", "2020-03-01", "Birmingham"),
        ("n-small", "Domestic abuse outreach caseworkers in Birmingham", "Outreach and safety planning.",
         "20000", "2020-03-02", "Birmingham"),
        ("n-dpv", "Dynamic Purchasing Vehicle for domestic abuse support and refuge accommodation",
         "Refuge accommodation and outreach.", "3000000000", "2020-03-03", "Birmingham"),
        ("n-later", "Domestic abuse refuge accommodation in Birmingham", "Published after the business date.",
         "20000", "2020-04-17", "Birmingham"),
        ("n-anywhere", "Domestic abuse refuge accommodation and outreach", "Face to face support for women.",
         "20000", "2020-03-04", ""),
        ("n-remote", "Domestic abuse helpline and outreach", "Support delivered by telephone for women.",
         "20000", "2020-03-05", ""),
    ]
    with (inbox / "private.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(PRIVATE_COLUMNS.split(","))
        for nid, title, desc, value, published, la in notices:
            w.writerow([nid, "Westmere Hospitals NHS Trust", "nhs_trust", title, desc, value, value, published,
                        "2020-05-29T12:00:00Z", "85312000", "", la, "yes", "", ""])
    return vcses, consortia, inbox


@pytest.fixture
def nightly(run, tmp_path: Path) -> Path:
    vcses, consortia, inbox = _world(tmp_path)
    result = run("directory", "import", str(vcses), "--consortia", str(consortia))
    assert result.exit_code == 0, result.output
    outbox = tmp_path / "outbox"
    result = run("nightly", "--inbox", str(inbox), "--outbox", str(outbox), "--as-of", AS_OF)
    assert result.exit_code in (0, 4), result.output
    # Outbox only: the officer sends the digests and marks them sent, so their items are introduced.
    result = run("digest", "mark-sent", "--all-pending", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    return outbox


def _matches(db_url: str) -> dict[tuple[str, str], Match]:
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        found = {(m.opportunity_id.removeprefix("private:"), m.party_id): m
                 for m in s.scalars(select(Match).where(Match.status == "active"))}
        s.expunge_all()
    engine.dispose()
    return found


def test_too_big_for_a_vcse_is_a_prospect_and_goes_to_the_consortium(db_url, nightly) -> None:
    m = _matches(db_url)
    # £100,000 against a £30,000 maximum, and against half of a £40,000 turnover: prospects only
    for party in ("t-small", "t-turnover"):
        assert SUBCONTRACTING_FLAG in m[("n-big", party)].flags, party
        assert "subcontracting prospect" in m[("n-big", party)].reasons[0]
    assert SUBCONTRACTING_FLAG not in m[("n-big", "c-big")].flags  # the partnership can take it on
    assert SUBCONTRACTING_FLAG not in m[("n-small", "t-small")].flags  # £20,000: within capacity
    # a DPS's ceiling is not a contract: never a prospect, never counted
    assert SUBCONTRACTING_FLAG not in m[("n-dpv", "t-small")].flags


def test_the_target_counts_no_prospect_and_no_ceiling(db_url, nightly) -> None:
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        progress = compute_progress(s, date.fromisoformat(AS_OF), TargetConfig(counting_stage="introduced"))
        counted = {c.id.removeprefix("private:"): c.value for c in progress.counted}
        bases = set(s.scalars(select(TargetEntry.basis).where(
            TargetEntry.kind == "stage", TargetEntry.party_id == "t-small",
            TargetEntry.opportunity_id == "private:n-big")))
        report = check(s, date.fromisoformat(AS_OF))
    engine.dispose()
    assert bases == {"subcontracting"}
    assert counted["n-big"].amount_pence == 10_000_000  # through the consortium, once
    assert counted["n-dpv"].basis == "framework" and counted["n-dpv"].amount_pence == 0
    assert "n-later" not in counted
    assert report["ok"], report
    assert report["beyond_capacity"] == [] and report["framework_ceilings_counted"] == []


def test_a_digest_as_of_d_holds_only_notices_published_by_d(db_url, nightly) -> None:
    m = _matches(db_url)
    assert not any(o == "n-later" for o, _ in m)  # the run never saw it
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        items = {(i.recipient_id, i.opportunity_id.removeprefix("private:"), i.party_id)
                 for i in s.scalars(select(DigestItem))}
        assert check(s, date.fromisoformat(AS_OF))["digest_items_published_after"] == []
    engine.dispose()
    assert items and not any(o == "n-later" for _, o, _ in items)
    # the lead receives the consortium's bid, not its own too-big match
    assert ("t-small", "n-big", "c-big") in items
    texts = "\n".join(p.read_text(encoding="utf-8") for p in nightly.rglob("*.eml"))
    assert "n-later" not in texts


def test_uk_wide_notices_reach_national_or_remote_work_only(db_url, nightly) -> None:
    m = _matches(db_url)
    assert ("n-anywhere", "t-national") in m
    assert ("n-anywhere", "t-small") not in m and ("n-anywhere", "t-turnover") not in m
    assert ("n-remote", "t-small") in m  # delivered by telephone: anyone can


def test_a_prospect_shows_its_reason_in_the_digest(db_url, run, tmp_path) -> None:
    vcses, _, inbox = _world(tmp_path)
    # without the consortium the lead's own too-big match is what it receives, marked as a prospect
    assert run("directory", "import", str(vcses)).exit_code == 0
    outbox = tmp_path / "outbox"
    result = run("nightly", "--inbox", str(inbox), "--outbox", str(outbox), "--as-of", AS_OF)
    assert result.exit_code in (0, 4), result.output
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        digest_id = s.scalars(select(Digest.id).where(Digest.recipient_id == "t-small")).one()
    engine.dispose()
    text = run("digest", "show", "--outbox", str(outbox), "--text", digest_id).output
    block = text[text.index("Domestic abuse support service for Birmingham"):]
    block = block[:block.index("Reference:")]
    assert "Size:      too big to take on alone: a subcontracting prospect" in block
    # the capacity reason is the first reason given
    why = block[block.index("Why it matched:"):].splitlines()[1]
    assert "more than twice your largest contract (£30,000)" in why
    small = text[text.index("Domestic abuse outreach caseworkers in Birmingham"):]
    assert "subcontracting prospect" not in small[:small.index("Reference:")]


def test_the_shipped_demo_tells_the_truth(db_url, run, tmp_path) -> None:
    """The real shipped notices, the fictional directory and its outcomes, as `make demo` runs them."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for pattern in ("*.json", "*.csv", "*.jsonl"):
        for path in sorted((ROOT / "fixtures" / "opportunities").glob(pattern)):
            (inbox / path.name).write_bytes(path.read_bytes())
    directory = ROOT / "fixtures" / "directory"
    assert run("directory", "import", str(directory / "vcses.csv"), "--consortia",
               str(directory / "consortia.csv")).exit_code == 0
    config = str(directory / "target.toml")
    result = run("nightly", "--inbox", str(inbox), "--outbox", str(tmp_path / "outbox"), "--as-of", AS_OF,
                 "--target-config", config)
    assert result.exit_code in (0, 4), result.output
    imported = run("outcome", "import", str(directory / "outcomes.csv"), "--as-of", "2020-06-01", "--config", config)
    assert imported.exit_code == 0 and "7 recorded" in imported.output and "0 rejected" in imported.output
    doc = json.loads(run("target", "--as-of", "2020-06-01", "--config", config, "--json").output)
    assert 0 < doc["counted_pence"] < doc["target_pence"]  # a plausible programme, not the target in a night
    assert doc["counting_stage"] == "interested" and doc["counted_opportunities"] == 5
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        report = check(s, date.fromisoformat(AS_OF))  # as of the night, at the default counting stage
        later = check(s, date.fromisoformat("2020-06-01"))
    engine.dispose()
    for r in (report, later):
        assert r["ok"] and r["beyond_capacity"] == [] and r["framework_ceilings_counted"] == [], r
        assert r["digest_items"] > 0 and r["digest_items_published_after"] == []


def test_real_dreadnought_notice_is_a_prospect_for_a_small_national_cic() -> None:
    """The real £100m MoD contract against a CIC whose largest contract is £30,000 (its own capacity case)."""
    from broker.match.features import pair_features
    from broker.match.rulefiles import load_rules
    from broker.match.rules import RuleEngine

    rec = next(i.record for i in read_cf_csv(str(REAL_ROWS))
               if i.kind == "record" and i.record.title.startswith("Dreadnought"))
    opp = OpportunityView(id=rec.id, title=rec.title, description=rec.description, buyer_name=rec.buyer_name,
                          cpv_codes=tuple(rec.cpv_codes), value_min_pence=rec.value_min_pence,
                          value_max_pence=rec.value_max_pence, deadline_at=rec.deadline_at,
                          local_authority=rec.local_authority, region=rec.region, nationwide=rec.nationwide)
    cic = PartyView(id="cic", capabilities="Crew training and simulation for naval engineers",
                    service_areas=("National",), max_contract_value_pence=3_000_000)
    fact = pair_features(opp, cic, as_of=date(2020, 4, 16))
    assert fact["value_over_max_pct"] > 200
    with RuleEngine(load_rules(ROOT / "rules")) as engine:
        (result,) = engine.evaluate("pair", [{**fact, "id": "p1"}])
    fired = {f.rule_id for f in result.firings}
    assert "value-beyond-capacity" in fired and result.needs_consortium and not result.rejected
