"""The EMR's generated records (traffic.fhir_data): deterministic, bounded, consistent, searchable."""
from __future__ import annotations

import json

import pytest

from traffic import fhir_data
from traffic.fhir_data import Store


@pytest.fixture(scope="module")
def store() -> Store:
    return Store(patients=300, seed=1)


def dump(s: Store) -> str:
    return json.dumps(s.res, sort_keys=True)


def test_same_seed_same_records_other_seed_other_records(store):
    assert dump(Store(patients=300, seed=1)) == dump(store)
    assert dump(Store(patients=300, seed=2)) != dump(store)


def test_sizes_are_bounded_by_the_patient_count(store):
    c = store.counts()
    assert c["Patient"] == 300
    assert 300 <= c["Encounter"] <= 900  # 1..3 per patient
    assert 3 * c["Encounter"] <= c["Observation"] <= 5 * c["Encounter"]  # 3..5 vital signs per encounter
    assert 0 < c["DiagnosticReport"] < c["Encounter"]
    assert len(json.dumps(store.res)) < 5_000_000
    with pytest.raises(ValueError):
        Store(patients=fhir_data.MAX_PATIENTS + 1)
    with pytest.raises(ValueError):
        Store(patients=0)


def test_every_reference_resolves_and_ids_are_unique(store):
    for rtype, table in store.res.items():
        assert all(r["resourceType"] == rtype and r["id"] == rid for rid, r in table.items())
        for r in table.values():
            if "subject" in r:
                kind, pid = r["subject"]["reference"].split("/")
                assert kind == "Patient" and pid in store.res["Patient"]
            if "encounter" in r:
                kind, eid = r["encounter"]["reference"].split("/")
                assert kind == "Encounter" and eid in store.res["Encounter"]
                assert store.res["Encounter"][eid]["subject"] == r["subject"]
    vitals = {v[0] for v in fhir_data.VITALS}
    assert {o["code"]["coding"][0]["code"] for o in store.res["Observation"].values()} == vitals
    assert len({p["identifier"][0]["value"] for p in store.res["Patient"].values()}) == 300


def test_read(store):
    p = store.read("Patient", "1")
    assert p["resourceType"] == "Patient" and p["id"] == "1" and p["name"][0]["family"]
    assert store.read("Patient", "999999") is None
    assert store.read("Nope", "1") is None


def test_search_a_patients_observations_matches_a_full_scan(store):
    for pid in ("1", "17", "300"):
        page, total = store.search("Observation", {"patient": [pid], "_count": ["200"]})
        scan = [o["id"] for o in store.res["Observation"].values() if o["subject"]["reference"] == f"Patient/{pid}"]
        assert total == len(scan) > 0
        assert [o["id"] for o in page] == scan
        # subject=Patient/ID is the same search
        assert store.search("Observation", {"subject": [f"Patient/{pid}"], "_count": ["200"]})[1] == total


def test_search_by_code_with_and_without_system(store):
    hr = [o for o in store.res["Observation"].values() if o["code"]["coding"][0]["code"] == "8867-4"]
    assert store.search("Observation", {"code": ["8867-4"]})[1] == len(hr) > 0
    assert store.search("Observation", {"code": ["http://loinc.org|8867-4"]})[1] == len(hr)
    assert store.search("Observation", {"code": ["http://snomed.info/sct|8867-4"]})[1] == 0


def test_name_search_is_case_insensitive_starts_with_on_any_part(store):
    p = store.read("Patient", "5")
    family, given = p["name"][0]["family"], p["name"][0]["given"][0]
    for q in (family.lower(), family.upper()[:3], given[:2].lower()):
        page, total = store.search("Patient", {"name": [q], "_count": ["200"]})
        assert "5" in {r["id"] for r in page}
        for r in page:
            n = r["name"][0]
            assert any(part.lower().startswith(q.lower()) for part in [n["family"], *n["given"], n["text"]])
    assert store.search("Patient", {"name": ["zzzz"]})[1] == 0
    assert store.search("Patient", {"family": [given[:2]]})[1] == sum(
        r["name"][0]["family"].lower().startswith(given[:2].lower()) for r in store.res["Patient"].values())


def test_identifier_gender_and_id_search(store):
    mrn = store.read("Patient", "42")["identifier"][0]["value"]
    page, total = store.search("Patient", {"identifier": [f"{fhir_data.MRN}|{mrn}"]})
    assert total == 1 and page[0]["id"] == "42"
    assert store.search("Patient", {"identifier": [mrn]})[1] == 1
    females = sum(p["gender"] == "female" for p in store.res["Patient"].values())
    assert store.search("Patient", {"gender": ["female"]})[1] == females
    assert store.search("Encounter", {"_id": ["1,2,3"]})[1] == 3


def test_paging_and_count(store):
    page, total = store.search("Patient", {})
    assert total == 300 and len(page) == fhir_data.DEFAULT_COUNT
    assert len(store.search("Patient", {"_count": ["100000"]})[0]) == fhir_data.MAX_COUNT
    page, total = store.search("Patient", {"_summary": ["count"]})
    assert page == [] and total == 300
    b = fhir_data.bundle("https://emr/fhir", "Patient", "_summary=count", page, total)
    assert b["type"] == "searchset" and b["total"] == 300 and "entry" not in b  # FHIR JSON has no empty arrays


def test_bad_searches_are_refused(store):
    with pytest.raises(ValueError, match="bogus"):
        store.search("Observation", {"bogus": ["1"]})
    with pytest.raises(ValueError, match="_count"):
        store.search("Patient", {"_count": ["many"]})
    with pytest.raises(LookupError):
        store.search("Medication", {})


def _obs(pid: str = "3", **kw) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "Heart rate"},
            "subject": {"reference": f"Patient/{pid}"}, "valueQuantity": {"value": 72}, **kw}


def test_create_stores_and_indexes_an_observation():
    s = Store(patients=10, seed=1)
    before = s.search("Observation", {"patient": ["3"], "_count": ["200"]})[1]
    r = s.create(_obs(id="client-chosen"))
    assert r["id"] != "client-chosen" and r["id"] not in {"", None}
    assert r["meta"]["versionId"] == "1"
    assert s.read("Observation", r["id"]) == r
    page, total = s.search("Observation", {"patient": ["3"], "_count": ["200"]})
    assert total == before + 1 and page[-1]["id"] == r["id"]


@pytest.mark.parametrize("bad, why", [
    ([], "JSON object"),
    ({"resourceType": "Patient"}, "cannot create"),
    (_obs(status="done"), "status"),
    ({k: v for k, v in _obs().items() if k != "code"}, "code"),
    (_obs(pid="9999"), "existing Patient"),
    ({k: v for k, v in _obs().items() if k != "subject"}, "existing Patient"),
])
def test_create_refuses_invalid_resources(bad, why):
    with pytest.raises(ValueError, match=why):
        Store(patients=10).create(bad)


def test_posted_observations_are_bounded_oldest_dropped():
    s = Store(patients=5, seed=1, max_posted=4)
    generated = s.counts()["Observation"]
    ids = [s.create(_obs(pid="2"))["id"] for _ in range(10)]
    assert s.counts()["Observation"] == generated + 4
    assert all(s.read("Observation", i) is None for i in ids[:6])
    assert all(s.read("Observation", i) is not None for i in ids[6:])
    listed = {o["id"] for o in s.search("Observation", {"patient": ["2"], "_count": ["200"]})[0]}
    assert not listed & set(ids[:6]) and set(ids[6:]) <= listed


def test_capability_statement_lists_what_the_store_does():
    cs = fhir_data.capability_statement("https://emr/fhir")
    assert cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"].startswith("4.")
    res = {r["type"]: r for r in cs["rest"][0]["resource"]}
    assert set(res) == set(fhir_data.SEARCH)
    assert {"code": "create"} in res["Observation"]["interaction"]
    assert {"code": "create"} not in res["Patient"]["interaction"]
    assert {p["name"] for p in res["Observation"]["searchParam"]} >= {"patient", "code", "category"}
