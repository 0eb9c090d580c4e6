"""Compiled OCDS releases → OpportunityRecords: spot checks against real values and the FTS fixture."""

from __future__ import annotations

import collections
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from testpaths import FIXTURES, OCDS_FILES, real_file

from broker.errors import InputError
from broker.normalise import ocds_fields
from broker.normalise.compile import compile_releases
from broker.normalise.geography import Location
from broker.normalise.ocds import normalise_compiled
from broker.normalise.record import OpportunityRecord
from broker.sources.detect import detect_format
from broker.sources.ocds import read_ocds

FTS = FIXTURES / "opportunities" / "fts_uk_extension_sample.json"


def normalise_file(path: Path) -> dict[str, OpportunityRecord]:
    """Read, compile per ocid and normalise a file, as the ingest does; records by id."""
    groups: dict[str, list[dict]] = collections.defaultdict(list)
    meta = None
    for item in read_ocds(path, detect_format(path)):
        assert item.kind == "release", item.error
        groups[item.release["ocid"]].append(item.release)
        meta = item.package_meta
    records: dict[str, OpportunityRecord] = {}
    for releases in groups.values():
        for record in normalise_compiled(compile_releases(releases, warnings_out=[]), package_meta=meta):
            assert record.id not in records
            records[record.id] = record
    return records


def _real(name: str) -> Path:
    return real_file(name)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(scope="module")
def fts() -> dict[str, OpportunityRecord]:
    return normalise_file(FTS)


@pytest.mark.parametrize("name", OCDS_FILES)
def test_every_real_ocds_file_normalises(name):
    records = normalise_file(_real(name))
    assert records
    for record in records.values():
        assert record.title and record.raw_hash and record.source_ids[0] == record.ocid
        assert record.value_min_pence is None or record.value_min_pence <= record.value_max_pence
        assert record.match_keys


def test_dudley_domestic_abuse_children():
    records = normalise_file(_real("cf_ocds_releases_2025_part1.json"))
    r = records["ocds-b5fd17-a5e45aec-2d31-48df-97dc-e6dff1d22609"]
    assert r.source == "contracts_finder"
    assert r.title == "Domestic Abuse Support Services - Children"
    assert r.buyer_name == "Dudley Metropolitan Borough Council" and r.buyer_id == "GB-CFS-83384"
    assert (r.value_min_pence, r.value_max_pence, r.value_currency) == (4_800_000, 6_000_000, "GBP")
    assert r.deadline_at == _utc(2025, 2, 14, 14)
    assert r.cpv_codes == ("85000000", "85310000", "85300000")
    assert (r.sme_suitable, r.vcse_suitable) == (True, False)
    assert r.status == "open" and r.notice_type == "tender"
    assert r.postcode == "DY1 1HF"
    assert r.url == "https://www.contractsfinder.service.gov.uk/Notice/43fda075-f559-47d2-96de-038f2d1633c4"
    assert r.contract_start == _utc(2025, 4, 1, 0) and r.contract_end == _utc(2026, 3, 31, 22, 59, 59)
    assert "cf-ref:IT-9-3815-24137" in r.source_ids
    assert "cfref:dudley metropolitan borough council|it 9 3815 24137" in r.match_keys
    assert "title:dudley metropolitan borough council|domestic abuse support services children|2025-02-14" \
        in r.match_keys
    assert "Domestic Abuse Act 2021" in r.description


def test_sandwell_domestic_abuse_accommodation():
    records = normalise_file(_real("cf_ocds_search_2022-10-20_100releases.json"))
    r = records["ocds-b5fd17-215e2699-242c-4047-b254-b525a4f7887f"]
    assert r.buyer_name == "Sandwell Metropolitan Borough Council"
    assert r.title == "Provision of Accommodation Based Support Services for Victims of Domestic Abuse"
    assert r.status == "open" and r.notice_type == "tenderAmendment"
    assert r.source_ids[1:3] == ("07e9844f-6d88-43d3-ae74-b59472de03cb-582273",
                                 "07e9844f-6d88-43d3-ae74-b59472de03cb-582274")
    assert r.deadline_at == _utc(2022, 11, 14, 23, 59, 59)
    assert r.vcse_suitable is True
    assert r.cpv_codes[:2] == ("85300000", "85310000")
    assert (r.value_min_pence, r.value_max_pence) == (None, None)


def test_2022_page_statuses_and_call_offs():
    records = normalise_file(_real("cf_ocds_search_2022-10-20_100releases.json"))
    statuses = collections.Counter(r.status for r in records.values())
    assert statuses == {"awarded": 48, "open": 36, "planned": 2}
    call_offs = [r for r in records.values() if r.title == "Laundry Services"]
    assert call_offs and not any(r.is_framework or r.is_dps for r in call_offs)


def test_sell2wales_placeholder_value_is_unknown():
    records = normalise_file(_real("sell2wales_ocds_releases_2025_part1.json"))
    boiler = records["ocds-kuma6s-148440"]
    assert (boiler.value_min_pence, boiler.value_max_pence, boiler.value_currency) == (None, None, None)
    assert boiler.source == "sell2wales"
    lift = records["ocds-kuma6s-148097"]
    assert lift.value_max_pence == 30_000_000


def test_sell2wales_lots_and_frameworks():
    records = normalise_file(_real("sell2wales_ocds_releases_2025_part1.json"))
    lots = sorted(k for k in records if k.startswith("ocds-kuma6s-148410/lot/"))
    assert lots == [f"ocds-kuma6s-148410/lot/{i}" for i in range(1, 5)]
    roofing = records["ocds-kuma6s-148410/lot/1"]
    assert roofing.title == "Roofing" and roofing.lot_id == "1" and roofing.is_framework
    assert roofing.value_max_pence == 500_000_000  # the lot's £5m, not the £20m framework total
    assert roofing.cpv_codes == ("45000000", "45261000")
    assert records["ocds-kuma6s-147915/lot/2"].title == "EQA Material – Lot 2"
    dps = records["ocds-kuma6s-148346/lot/1"]
    assert dps.is_dps  # "System Brynu Ddynamig … / Dynamic Purchasing System" in the title
    assert records["ocds-kuma6s-148223"].reserved_participation == ("shelteredWorkshop",)


def test_pcs_lot_split():
    records = normalise_file(_real("pcs_scotland_ocds_releases_2019_part1.json"))
    lots = {k: r for k, r in records.items() if k.startswith("ocds-r6ebe6-0000581665/")}
    assert set(lots) == {"ocds-r6ebe6-0000581665/lot/1", "ocds-r6ebe6-0000581665/lot/2"}
    north = lots["ocds-r6ebe6-0000581665/lot/1"]
    assert north.title == "Lot 1 - North of the Authority"
    assert north.description.startswith("Collection from a central location within the north of authority")
    assert north.buyer_name == "East Ayrshire Council" and north.source == "public_contracts_scotland"
    assert north.buyer_type == "Regional or local authority"
    assert north.url == "https://www.publiccontractsscotland.gov.uk/search/show/search_view.aspx?ID=APR352578"
    assert north.raw_hash == lots["ocds-r6ebe6-0000581665/lot/2"].raw_hash
    single = records["ocds-r6ebe6-0000581860"]  # one lot: one record, id = ocid
    assert single.lot_id is None and single.cpv_codes == ("50711000",)


def test_legacy_record():
    records = normalise_file(_real("cf_legacy_2017_record_ocds-b5fd17-2c330cf9.json"))
    (r,) = records.values()
    assert r.title == "Climate Science for Service Partnership (CSSP): Calls for Expressions of Interest"
    assert r.status == "closed"  # unsuccessful, no award
    assert (r.sme_suitable, r.vcse_suitable) == (False, False)  # xClassifications
    assert (r.value_min_pence, r.value_max_pence) == (4_067_600, 46_450_000)
    assert r.cpv_codes == ("73000000",)
    assert r.postcode == "EX1 3PB"  # buyer address: the notice names no delivery place


def test_fts_lots_zone_less_deadline_and_reserved(fts):
    assert {"ocds-h6vhtk-04f1a2/lot/1", "ocds-h6vhtk-04f1a2/lot/2"} <= set(fts)
    ward_end = fts["ocds-h6vhtk-04f1a2/lot/1"]
    perry_barr = fts["ocds-h6vhtk-04f1a2/lot/2"]
    assert ward_end.title == "Ward End and Washwood Heath"
    assert (ward_end.value_min_pence, perry_barr.value_max_pence) == (12_000_000, 9_500_000)
    # "2025-07-07" with no zone: the end of that day in UK summer time.
    assert ward_end.deadline_at == _utc(2025, 7, 7, 22, 59, 59)
    assert ward_end.contract_start == _utc(2025, 8, 31, 23)
    assert ward_end.reserved_participation == ("smeVcse",) and ward_end.vcse_suitable is True
    assert ward_end.notice_type == "UK4" and ward_end.status == "open"
    assert ward_end.buyer_id == "GB-PPON-PXRT-4821-KQWM"
    assert ward_end.buyer_type == "publicAuthoritySubCentralGovernment"
    assert ward_end.cpv_codes == ("85312000", "85312400")
    assert perry_barr.cpv_codes == ("85312000", "85323000") and perry_barr.postcode == "B42 1DY"
    assert ward_end.url == "https://www.find-tender.service.gov.uk/Notice/018734-2025"


def test_fts_statuses(fts):
    assert fts["ocds-h6vhtk-04f1b7"].status == "planned" and fts["ocds-h6vhtk-04f1b7"].notice_type == "UK1"
    cancelled = fts["ocds-h6vhtk-04f1c3"]
    assert cancelled.status == "cancelled" and cancelled.notice_type == "UK12"
    assert cancelled.source_ids == ("ocds-h6vhtk-04f1c3", "015520-2025", "017201-2025")
    assert cancelled.title == "Community Grants Administration Service"  # kept from the UK4 release
    assert cancelled.deadline_at == _utc(2025, 5, 23, 11)  # expression of interest comes first
    award = fts["ocds-h6vhtk-04f1e5"]
    assert award.status == "awarded" and award.notice_type == "UK6"
    assert award.value_max_pence == 15_000_000  # only the award states a value


def test_fts_framework_with_1e9999(fts):
    framework = fts["ocds-h6vhtk-04f1d9"]
    assert framework.is_framework and not framework.is_dps
    assert framework.deadline_at == _utc(2025, 7, 21, 11)  # 12:00 zone-less = BST
    assert framework.value_max_pence == 400_000_000


def test_same_notice_on_contracts_finder_and_find_a_tender_shares_a_key(fts):
    cf = normalise_file(_real("cf_ocds_releases_2025_part1.json"))["ocds-b5fd17-a5e45aec-2d31-48df-97dc-e6dff1d22609"]
    on_fts = fts["ocds-h6vhtk-04f1f0"]
    assert on_fts.source == "find_a_tender" and cf.source == "contracts_finder"
    assert set(cf.match_keys) & set(on_fts.match_keys) == {
        "title:dudley metropolitan borough council|domestic abuse support services children|2025-02-14"}


def test_real_data_has_distinct_notices_sharing_a_title_key():
    # Three North Yorkshire award notices (different suppliers and references) share buyer, title and
    # deadline: title keys alone must not merge notices of one source (see broker.normalise.keys).
    records = normalise_file(_real("cf_ocds_releases_2025_part1.json")).values()
    same = [r for r in records if r.title == "The supply of SRMA to the Department for Education"]
    assert len(same) == 3
    assert len({k for r in same for k in r.match_keys if k.startswith("title:")}) == 1
    assert len({k for r in same for k in r.match_keys if k.startswith("cfref:")}) == 3


# --- rules on small hand-made releases -------------------------------------------------------------

def _compiled(**tender) -> dict:
    release = {"ocid": "ocds-b5fd17-t", "id": "t-1", "date": "2025-03-01T09:00:00Z", "tag": ["tender"],
               "buyer": {"id": "b", "name": "Walsall Council"},
               "parties": [{"id": "b", "name": "Walsall Council", "roles": ["buyer"],
                            "address": {"postalCode": "WS1 1TP"}}],
               "tender": {"id": "REF-1", "title": "Befriending service", "status": "active", **tender}}
    return compile_releases([release])


def _one(**tender) -> OpportunityRecord:
    (record,) = normalise_compiled(_compiled(**tender))
    return record


def test_no_title_anywhere_is_an_input_error():
    compiled = _compiled(title="  ")
    with pytest.raises(InputError) as info:
        normalise_compiled(compiled)
    assert info.value.field == "tender.title" and "ocds-b5fd17-t" in info.value.locator


def test_bad_deadline_names_the_field():
    with pytest.raises(InputError) as info:
        _one(tenderPeriod={"endDate": "31st of never"})
    assert info.value.field == "tender.tenderPeriod.endDate"


@pytest.mark.parametrize(("value", "expected"), [
    ({"amount": 0, "currency": "GBP"}, (None, None, None, None)),
    ({"amount": Decimal("0.01"), "currency": "GBP"}, (None, None, None, None)),
    ({"amount": Decimal("1e9999"), "currency": "GBP"}, (None, None, None, None)),
    ({"amount": "lots", "currency": "GBP"}, (None, None, None, None)),
    ({"amount": 1000, "currency": "EUR"}, (None, None, "EUR", "1000")),
    ({"amount": Decimal("12.345")}, (1235, 1235, "GBP", None)),
])
def test_values(value, expected):
    r = _one(value=value)
    assert (r.value_min_pence, r.value_max_pence, r.value_currency, r.value_original) == expected


def test_a_negative_amount_is_refused_naming_the_field_as_the_csv_readers_do():
    with pytest.raises(InputError) as info:
        _one(value={"amount": -5, "currency": "GBP"})
    assert info.value.field == "value.amount" and "negative amount -5" in info.value.reason


def test_min_value_only_and_reversed_range():
    assert (_one(minValue={"amount": 500}).value_min_pence, _one(minValue={"amount": 500}).value_max_pence) == \
        (50_000, 50_000)
    r = _one(minValue={"amount": 900}, value={"amount": 100})
    assert (r.value_min_pence, r.value_max_pence) == (10_000, 90_000)


@pytest.mark.parametrize(("tender", "status"), [
    ({"status": "planning"}, "planned"),
    ({"status": "planned"}, "planned"),
    ({"status": "active"}, "open"),
    ({"status": "cancelled"}, "cancelled"),
    ({"status": "withdrawn"}, "cancelled"),
    ({"status": "unsuccessful"}, "closed"),
    ({"status": "complete"}, "closed"),
    ({"status": "active", "documents": [{"id": "d", "noticeType": "UK5"}]}, "closed"),
    ({"status": "active", "documents": [{"id": "d", "noticeType": "UK2"}]}, "planned"),
    ({"status": "active", "documents": [{"id": "d", "noticeType": "UK12"}]}, "cancelled"),
])
def test_status_rules(tender, status):
    assert _one(**tender).status == status


def test_award_rules():
    base = _compiled(status="complete")
    base["awards"] = [{"id": "1", "status": "active"}]
    assert normalise_compiled(base)[0].status == "awarded"
    base["awards"] = [{"id": "1", "status": "cancelled"}]
    assert normalise_compiled(base)[0].status == "closed"
    base["awards"] = [{"id": "1", "suppliers": [{"id": "s", "name": "CIC"}]}]  # no status, a supplier
    assert normalise_compiled(base)[0].status == "awarded"


def test_lot_awards_and_cancellations_are_per_lot():
    compiled = _compiled(lots=[{"id": "A", "title": "North"}, {"id": "B", "title": "South"},
                               {"id": "C", "title": "East", "status": "cancelled"}], status="active")
    compiled["awards"] = [{"id": "1", "status": "active", "relatedLots": ["A"], "value": {"amount": 700}}]
    by_lot = {r.lot_id: r for r in normalise_compiled(compiled)}
    assert {k: r.status for k, r in by_lot.items()} == {"A": "awarded", "B": "open", "C": "cancelled"}
    assert by_lot["A"].value_max_pence == 70_000 and by_lot["B"].value_max_pence is None
    assert by_lot["A"].id == "ocds-b5fd17-t/lot/A"
    assert not any(k.startswith("cfref:") for r in by_lot.values() for k in r.match_keys)


def test_lot_suitability_overrides_tender():
    compiled = _compiled(suitability={"sme": True, "vcse": False},
                         lots=[{"id": "1", "title": "One", "suitability": {"vcse": True}}, {"id": "2", "title": "Two"}])
    records = normalise_compiled(compiled)
    assert [(r.sme_suitable, r.vcse_suitable) for r in records] == [(True, True), (True, False)]


@pytest.mark.parametrize(("tender", "framework", "dps"), [
    ({"techniques": {"hasFrameworkAgreement": True}}, True, False),
    ({"techniques": {"hasDynamicPurchasingSystem": True}}, False, True),
    ({"procurementMethodDetails": "Call-off from a framework agreement"}, False, False),
    ({"procurementMethodDetails": "Call-off from a dynamic purchasing system"}, False, False),
    ({"title": "Grounds Maintenance Framework 2025-2029"}, True, False),
    ({"title": "Dynamic Purchasing System for Home to School Transport"}, False, True),
    ({"title": "Outcomes framework evaluation"}, False, False),
    ({"documents": [{"id": "d", "noticeType": "UK13"}]}, False, True),
])
def test_framework_and_dps(tender, framework, dps):
    r = _one(**tender)
    assert (r.is_framework, r.is_dps) == (framework, dps)


def test_cpv_schemes_and_unknown_codes():
    r = _one(classification={"scheme": "CPV", "id": "85311000-2"},
             additionalClassifications=[{"scheme": "CPVS", "id": "TA01-1"}, {"id": "99999999"}, {"id": 98000000}],
             items=[{"id": "1", "classification": {"scheme": "cpv", "id": "85312100"}}])
    assert r.cpv_codes == ("85311000", "98000000", "85312100")
    assert r.cpv_unknown == ("99999999",)


def test_location_evidence(monkeypatch):
    calls: list[dict] = []

    def fake(**kw):
        calls.append({k: list(v) if not isinstance(v, bool) else v for k, v in kw.items()})
        return Location(local_authority="Walsall", postcode=(kw["postcodes"] or [None])[0])

    monkeypatch.setattr(ocds_fields, "resolve_location", fake)
    monkeypatch.setattr(ocds_fields, "cluster_for", lambda la, pc: f"cluster-of-{la}")
    r = _one(items=[{"id": "1", "deliveryAddresses": [{"region": "West Midlands", "countryName": "United Kingdom"},
                                                      {"region": "UKG38"}, {"postalCode": "ws2 8ea"}],
                     "deliveryLocation": {"description": "St Matthews Quarter"}}])
    assert calls[-1] == {"postcodes": ["WS2 8EA"], "region_names": ["West Midlands"], "nuts_codes": ["UKG38"],
                         "place_names": ["St Matthews Quarter"], "nationwide": False}
    assert (r.local_authority, r.cluster) == ("Walsall", "cluster-of-Walsall")
    _one(items=[{"id": "1", "deliveryAddresses": [{"countryName": "United Kingdom"},
                                                  {"countryName": "Rest of the World"}]}])
    assert calls[-1]["nationwide"] is True and calls[-1]["postcodes"] == []
    _one()  # nothing about delivery: the buyer's address is the evidence
    assert calls[-1]["postcodes"] == ["WS1 1TP"]


def test_untrusted_urls_and_markup():
    r = _one(description="<script>alert(1)</script><p>Befriending &amp; support</p>",
             documents=[{"id": "1", "documentType": "tenderNotice", "url": "javascript:alert(1)"},
                        {"id": "2", "documentType": "contractNotice", "url": "https://example.org/n/1"}])
    assert r.description == "Befriending & support"
    assert r.url == "https://example.org/n/1"


def test_source_from_package_when_prefix_unknown():
    compiled = _compiled()
    compiled["ocid"] = "ocds-zzzzzz-1"
    (r,) = normalise_compiled(compiled, package_meta={"uri": "https://www.find-tender.service.gov.uk/api/1.0/x"})
    assert r.source == "find_a_tender"
    (r,) = normalise_compiled(compiled)
    assert r.source == "ocds"
    assert r.match_keys == ("title:walsall council|befriending service|none",)


@pytest.mark.parametrize(("tag", "status"), [("planning", "planned"), ("tender", "open"), ("award", "awarded"),
                                             ("contract", "awarded"), ("tenderCancellation", "cancelled")])
def test_status_from_the_latest_tag_when_nothing_else_says(tag, status):
    release = {"ocid": "ocds-b5fd17-t", "id": "t-1", "date": "2025-03-01T09:00:00Z", "tag": [tag],
               "tender": {"title": "Befriending service"}}
    (record,) = normalise_compiled(compile_releases([release]))
    assert record.status == status and record.notice_type == tag


def test_a_single_release_can_be_normalised_without_compiling():
    release = {"ocid": "ocds-b5fd17-t", "id": "t-1", "date": "2025-03-01T09:00:00Z", "tag": ["tender"],
               "tender": {"title": "Befriending service", "status": "active"}}
    (record,) = normalise_compiled(release)
    assert record.source_ids == ("ocds-b5fd17-t", "t-1") and record.notice_type == "tender"
    assert record.published_at == _utc(2025, 3, 1, 9)


def test_a_publishers_compiled_release_read_from_a_record():
    compiled = {"ocid": "ocds-b5fd17-t", "id": "ocds-b5fd17-t-2025-03-01T09:00:00Z", "date": "2025-03-01T09:00:00Z",
                "tag": ["compiled"], "tender": {"title": "Befriending service",
                                                "documents": [{"id": "1", "noticeType": "UK6"}]}}
    for given in (compiled, compile_releases([compiled])):
        (record,) = normalise_compiled(given)
        assert record.notice_type == "UK6" and record.status == "awarded"


def test_the_one_lot_of_an_undivided_tender_only_fills_gaps():
    (r,) = normalise_compiled(_compiled(suitability={"sme": True}, value={"amount": 100},
                                       lots=[{"id": "1", "suitability": {"sme": False, "vcse": True},
                                              "value": {"amount": 999}}]))
    assert (r.id, r.lot_id) == ("ocds-b5fd17-t", None)
    assert (r.sme_suitable, r.vcse_suitable, r.value_max_pence) == (True, True, 10_000)
