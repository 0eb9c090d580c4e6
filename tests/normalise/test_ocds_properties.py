"""Properties of OCDS normalisation over generated releases: deterministic, never negative money,
and only InputError for bad input (never a crash)."""

from __future__ import annotations

import json
import random
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.errors import InputError
from broker.normalise.compile import compile_releases
from broker.normalise.ocds import normalise_compiled

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**15), st.text(max_size=12),
                    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**6, max_value=10**13),
                    st.just(Decimal("1e9999")), st.just(Decimal("0.01")))
amounts = st.one_of(scalars, st.fixed_dictionaries({"amount": scalars},
                                                   optional={"currency": st.sampled_from(["GBP", "EUR", "", None])}))
dates = st.one_of(st.none(), st.sampled_from(["2025-07-07", "2025-07-07T12:00:00", "2025-01-01T00:00:00Z",
                                              "2025-03-30T01:30:00+01:00", "2001-01-01T00:00:00Z"]))
codes = st.one_of(st.sampled_from(["85000000", "85311000-2", "98000000", "99999999", "x"]), st.integers(0, 10**8))
classification = st.fixed_dictionaries({"id": codes}, optional={"scheme": st.sampled_from(["CPV", "cpv", "CPVS", ""])})
address = st.fixed_dictionaries({}, optional={
    "region": st.sampled_from(["UKG31", "West Midlands", "England", "United Kingdom", ""]),
    "postalCode": st.sampled_from(["B1 1BB", "dy1 1hf", ""]),
    "countryName": st.sampled_from(["United Kingdom", "Rest of the World", "France"])})
item = st.fixed_dictionaries({"id": st.sampled_from(["1", "2"])}, optional={
    "relatedLot": st.sampled_from(["A", "B", "Z"]), "classification": classification,
    "additionalClassifications": st.lists(classification, max_size=2),
    "deliveryAddresses": st.lists(address, max_size=3)})
lot = st.fixed_dictionaries({"id": st.sampled_from(["A", "B", "C"])}, optional={
    "title": st.one_of(st.none(), st.text(max_size=20), st.just("Lot 2")), "value": amounts,
    "status": st.sampled_from(["active", "cancelled", "complete", "", "weird"]),
    "suitability": st.fixed_dictionaries({}, optional={"sme": scalars, "vcse": scalars}),
    "tenderPeriod": st.fixed_dictionaries({"endDate": dates})})
tender = st.fixed_dictionaries({"title": st.text(min_size=1, max_size=40).filter(str.strip)}, optional={
    "description": st.text(max_size=80), "status": st.sampled_from(["planning", "active", "complete", "cancelled", ""]),
    "value": amounts, "minValue": amounts, "tenderPeriod": st.fixed_dictionaries({"endDate": dates}),
    "classification": classification, "items": st.lists(item, max_size=3), "lots": st.lists(lot, max_size=3),
    "suitability": st.fixed_dictionaries({}, optional={"sme": scalars, "vcse": scalars}),
    "otherRequirements": st.fixed_dictionaries({"reservedParticipation": st.lists(st.sampled_from(["smeVcse", "x"]))}),
    "techniques": st.fixed_dictionaries({}, optional={"hasFrameworkAgreement": scalars}),
    "procurementMethodDetails": st.sampled_from(["Open procedure", "Call-off from a framework agreement", ""]),
    "documents": st.lists(st.fixed_dictionaries({"id": st.sampled_from(["1", "2"])}, optional={
        "noticeType": st.sampled_from(["UK1", "UK4", "UK6", "UK12", "UK14"]),
        "documentType": st.sampled_from(["tenderNotice", "awardNotice"]),
        "url": st.sampled_from(["https://example.org/n", "javascript:x", 5])}), max_size=2)})
award = st.fixed_dictionaries({"id": st.sampled_from(["1", "2"])}, optional={
    "status": st.sampled_from(["active", "pending", "cancelled", ""]), "value": amounts,
    "relatedLots": st.lists(st.sampled_from(["A", "B"]), max_size=2)})
release = st.fixed_dictionaries({
    "ocid": st.sampled_from(["ocds-b5fd17-1", "ocds-h6vhtk-1", "ocds-kuma6s-1", "ocds-zzz-1"]),
    "id": st.text(min_size=1, max_size=8),
    "date": st.sampled_from(["2025-06-01T10:00:00Z", "2025-06-01T10:30:00+01:00", "2025-06-02"]),
    "tag": st.lists(st.sampled_from(["planning", "tender", "award", "tenderCancellation"]), min_size=1, max_size=2),
    "tender": tender,
}, optional={"buyer": st.fixed_dictionaries({"id": st.just("b"), "name": st.text(max_size=20)}),
             "awards": st.lists(award, max_size=2)})


def _normalise(releases: list[dict]) -> list[dict] | str:
    try:
        records = normalise_compiled(compile_releases(releases, warnings_out=[]))
    except InputError as exc:
        return f"InputError: {exc.reason}"
    return [r.to_json() for r in records]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(releases=st.lists(release, min_size=1, max_size=3), seed=st.integers(0, 1000))
def test_normalisation_is_deterministic_and_money_never_negative(releases, seed):
    ocid = releases[0]["ocid"]
    releases = [{**r, "ocid": ocid} for r in releases]
    first = _normalise(releases)
    shuffled = list(releases)
    random.Random(seed).shuffle(shuffled)
    assert json.dumps(_normalise(shuffled), sort_keys=True, default=str) == \
        json.dumps(first, sort_keys=True, default=str)
    if isinstance(first, str):
        return
    for record in first:
        for name in ("value_min_pence", "value_max_pence"):
            assert record[name] is None or (isinstance(record[name], int) and record[name] >= 0)
        if record["value_min_pence"] is not None:
            assert record["value_min_pence"] <= record["value_max_pence"]
        assert record["status"] in ("planned", "open", "closed", "cancelled", "awarded")
        assert record["url"] is None or record["url"].startswith("https://")
