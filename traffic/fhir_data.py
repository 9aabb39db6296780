"""The EMR's records: FHIR R4 resources generated deterministically, with read, search and create.

Why generated and not loaded: the testbed must start an EMR anywhere without
patient data, and every run must serve the same records (a client's request
mix, and its results, are then reproducible). A seed and a patient count
decide everything; a few hundred patients give a realistic spread of
encounters, vital-sign observations and imaging reports (LOINC-coded) in a few
MB. Dates are fixed (the paper's year), never "now", except for what clients
post. Posted observations are kept in memory up to a bound, the oldest dropped
first, so a long run cannot grow the server.
"""
from __future__ import annotations

import datetime as dt
import random
import threading
from collections import deque
from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MRN = "urn:oid:2.16.840.1.113883.2.23.1.1"  # the hospital's medical record numbers (illustrative OID)
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MAX_PATIENTS = 5000
MAX_COUNT = 200  # largest page a search returns
DEFAULT_COUNT = 20

FAMILY = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu",
          "Hu", "Guo", "He", "Lin", "Luo", "Gao", "Tan", "Peng", "Deng", "Xiao"]
GIVEN = ["Wei", "Fang", "Min", "Jing", "Lei", "Jun", "Yan", "Tao", "Hui", "Qiang", "Li", "Ping", "Gang", "Xiu",
         "Hong", "Ming", "Yun", "Bo", "Lan", "Hao", "Ying", "Chao", "Na", "Jie"]
# (LOINC, display, UCUM unit, mean, spread, decimals): the vital signs a ward round records
VITALS = [("8867-4", "Heart rate", "/min", 78, 12, 0),
          ("8480-6", "Systolic blood pressure", "mm[Hg]", 128, 16, 0),
          ("8462-4", "Diastolic blood pressure", "mm[Hg]", 80, 9, 0),
          ("8310-5", "Body temperature", "Cel", 36.8, 0.5, 1),
          ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 97, 1.5, 0),
          ("9279-1", "Respiratory rate", "/min", 16, 3, 0),
          ("15074-8", "Glucose [Moles/volume] in Blood", "mmol/L", 6.2, 1.4, 1)]
REPORTS = [("24627-2", "CT Chest"), ("36643-5", "XR Chest 2 Views"), ("24725-4", "CT Head"),
           ("24558-9", "US Abdomen"), ("26346-7", "MG Breast Screening")]
CLASSES = [("AMB", "ambulatory"), ("IMP", "inpatient encounter"), ("EMER", "emergency")]
OBS_STATUS = {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error",
              "unknown"}
EPOCH = dt.datetime(2021, 1, 4, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))  # Xiangtan, the paper's year

# type -> search parameter -> what it matches (the CapabilityStatement is built from this too)
SEARCH: dict[str, dict[str, str]] = {
    "Patient": {"_id": "id", "name": "name", "family": "family", "given": "given", "identifier": "token",
                "gender": "gender", "birthdate": "birthDate"},
    "Encounter": {"_id": "id", "patient": "patient", "subject": "patient", "status": "status"},
    "Observation": {"_id": "id", "patient": "patient", "subject": "patient", "code": "code",
                    "category": "category", "encounter": "encounter", "status": "status"},
    "DiagnosticReport": {"_id": "id", "patient": "patient", "subject": "patient", "code": "code",
                         "status": "status", "encounter": "encounter"},
}
COMMON = {"_count", "_summary", "_format", "_pretty"}
CREATABLE = {"Observation"}


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds")


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


class Store:
    """Every resource by type and id, plus per-patient indexes; safe to use from many threads."""

    def __init__(self, patients: int = 300, seed: int = 1, max_posted: int = 10000):
        if not 1 <= patients <= MAX_PATIENTS:
            raise ValueError(f"patients must be 1..{MAX_PATIENTS}")
        self.max_posted = max_posted
        self.res: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in SEARCH}
        self.by_patient: dict[str, dict[str, list[str]]] = {t: {} for t in SEARCH if t != "Patient"}
        self._posted: deque[str] = deque()
        self._next_id: dict[str, int] = {t: 1 for t in SEARCH}
        self._lock = threading.Lock()
        self._generate(patients, random.Random(seed))

    # -- generation -------------------------------------------------------------------------------------
    def _add(self, r: dict[str, Any]) -> dict[str, Any]:
        t = r["resourceType"]
        r = {"resourceType": t, "id": str(self._next_id[t]),
             "meta": r.get("meta") or {"versionId": "1", "lastUpdated": _iso(EPOCH)},
             **{k: v for k, v in r.items() if k not in ("resourceType", "id", "meta")}}
        self._next_id[t] += 1
        self.res[t][r["id"]] = r
        if t in self.by_patient:
            self.by_patient[t].setdefault(r["subject"]["reference"].split("/", 1)[1], []).append(r["id"])
        return r

    def _generate(self, patients: int, rng: random.Random) -> None:
        for i in range(patients):
            family, given = rng.choice(FAMILY), rng.choice(GIVEN) + rng.choice(["", "", *GIVEN]).lower()
            born = dt.date(1935, 1, 1) + dt.timedelta(days=rng.randrange(365 * 85))
            p = self._add({"resourceType": "Patient", "active": True,
                           "identifier": [{"system": MRN, "value": f"XCH{100000 + i:07d}"}],
                           "name": [{"use": "official", "family": family, "given": [given],
                                     "text": f"{family} {given}"}],
                           "gender": rng.choice(["male", "female"]), "birthDate": born.isoformat(),
                           "address": [{"city": "Xiangtan", "state": "Hunan", "country": "CN"}]})
            ref = {"reference": f"Patient/{p['id']}", "display": p["name"][0]["text"]}
            for _ in range(rng.randint(1, 3)):
                start = EPOCH + dt.timedelta(minutes=rng.randrange(60 * 24 * 365))
                cls = rng.choice(CLASSES)
                end = start + dt.timedelta(minutes=rng.randint(10, 240))
                e = self._add({"resourceType": "Encounter", "status": "finished",
                               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                         "code": cls[0], "display": cls[1]},
                               "subject": ref, "period": {"start": _iso(start), "end": _iso(end)}})
                eref = {"reference": f"Encounter/{e['id']}"}
                for code, display, unit, mean, spread, dec in rng.sample(VITALS, rng.randint(3, 5)):
                    value = round(rng.gauss(mean, spread), dec) if dec else int(round(rng.gauss(mean, spread)))
                    self._add({"resourceType": "Observation", "status": "final",
                               "category": [_coding(OBS_CATEGORY, "vital-signs", "Vital Signs")],
                               "code": _coding(LOINC, code, display), "subject": ref, "encounter": eref,
                               "effectiveDateTime": _iso(start + dt.timedelta(minutes=rng.randint(0, 10))),
                               "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}})
                if rng.random() < 0.4:
                    code, display = rng.choice(REPORTS)
                    self._add({"resourceType": "DiagnosticReport", "status": "final",
                               "category": [_coding("http://terminology.hl7.org/CodeSystem/v2-0074", "RAD",
                                                    "Radiology")],
                               "code": _coding(LOINC, code, display), "subject": ref, "encounter": eref,
                               "effectiveDateTime": _iso(start), "issued": _iso(start + dt.timedelta(hours=2)),
                               "conclusion": rng.choice(["No acute abnormality.", "Findings stable since prior study.",
                                                         "Small nodule; follow-up in 6 months advised."])})

    # -- interactions -----------------------------------------------------------------------------------
    def read(self, rtype: str, rid: str) -> dict[str, Any] | None:
        return self.res.get(rtype, {}).get(rid)

    def search(self, rtype: str, params: dict[str, list[str]]) -> tuple[list[dict[str, Any]], int]:
        """(the first page of matches, total matches); LookupError for an unknown type, ValueError for
        an unsupported parameter or a bad value."""
        if rtype not in SEARCH:
            raise LookupError(f"unknown resource type {rtype}")
        allowed = SEARCH[rtype]
        unknown = sorted(set(params) - set(allowed) - COMMON)
        if unknown:
            raise ValueError(f"unsupported search parameter(s) for {rtype}: {', '.join(unknown)}")
        count = DEFAULT_COUNT
        if "_count" in params:
            try:
                count = max(0, min(MAX_COUNT, int(params["_count"][-1])))
            except ValueError:
                raise ValueError("_count must be an integer") from None
        if params.get("_summary", [""])[-1] == "count":
            count = 0
        with self._lock:
            candidates = self._candidates(rtype, params)
            matches = [r for r in candidates
                       if all(self._match(r, allowed[k], v) for k, vals in params.items() if k in allowed
                              for v in vals)]
        return matches[:count], len(matches)

    def _candidates(self, rtype: str, params: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Resources worth matching: one patient's, via the index, when the search names a patient."""
        pid = next((v.rsplit("/", 1)[-1] for k in ("patient", "subject") for v in params.get(k, [])), None)
        table = self.res[rtype]
        if pid is not None and rtype in self.by_patient:
            return [table[i] for i in self.by_patient[rtype].get(pid, ())]
        return list(table.values())

    @staticmethod
    def _match(r: dict[str, Any], what: str, value: str) -> bool:
        value = value.strip()
        if what == "id":
            return r["id"] in value.split(",")
        if what == "patient":
            return r["subject"]["reference"] == "Patient/" + value.rsplit("/", 1)[-1]
        if what == "encounter":
            return r.get("encounter", {}).get("reference") == "Encounter/" + value.rsplit("/", 1)[-1]
        if what in ("name", "family", "given"):  # FHIR string search: case-insensitive, starts-with, any part
            v = value.lower()
            for n in r.get("name", []):
                parts = {"name": [n.get("family", ""), *n.get("given", []), n.get("text", "")],
                         "family": [n.get("family", "")], "given": n.get("given", [])}[what]
                if any(p.lower().startswith(v) for p in parts):
                    return True
            return False
        if what in ("token", "code", "category"):  # [system|]code
            system, _, code = value.rpartition("|")
            key = {"token": "identifier", "code": "code", "category": "category"}[what]
            got = r.get(key, [])
            codings = [c for g in (got if isinstance(got, list) else [got]) for c in g.get("coding", [g])]
            return any(c.get("code", c.get("value")) == code and (not system or c.get("system") == system)
                       for c in codings)
        return str(r.get(what, "")) == value  # gender, status, birthDate: exact

    def create(self, r: Any) -> dict[str, Any]:
        """Store a posted resource under a new id; ValueError says what makes it invalid."""
        if not isinstance(r, dict):
            raise ValueError("body is not a JSON object")
        rtype = r.get("resourceType")
        if rtype not in CREATABLE:
            raise ValueError(f"cannot create resourceType {rtype!r} (only {', '.join(sorted(CREATABLE))})")
        if r.get("status") not in OBS_STATUS:
            raise ValueError("Observation.status is missing or not a valid code")
        code = r.get("code")
        if not isinstance(code, dict) or not (code.get("coding") or code.get("text")):
            raise ValueError("Observation.code is required")
        ref = (r.get("subject") or {}).get("reference", "") if isinstance(r.get("subject"), dict) else ""
        if not ref.startswith("Patient/") or self.read("Patient", ref.split("/", 1)[1]) is None:
            raise ValueError(f"Observation.subject must reference an existing Patient (got {ref or 'nothing'!r})")
        r = {**r, "meta": {"versionId": "1", "lastUpdated": _iso(dt.datetime.now(dt.timezone.utc))}}
        with self._lock:
            r = self._add(r)
            self._posted.append(r["id"])
            while len(self._posted) > self.max_posted:
                self._drop("Observation", self._posted.popleft())
        return r

    def _drop(self, rtype: str, rid: str) -> None:
        r = self.res[rtype].pop(rid, None)
        if r is not None:
            ids = self.by_patient[rtype].get(r["subject"]["reference"].split("/", 1)[1], [])
            if rid in ids:
                ids.remove(rid)

    def counts(self) -> dict[str, int]:
        return {t: len(v) for t, v in self.res.items()}


def capability_statement(base: str) -> dict[str, Any]:
    """What this server does, as FHIR's /metadata says it (built from SEARCH, so it cannot drift)."""
    return {
        "resourceType": "CapabilityStatement", "status": "active", "date": EPOCH.date().isoformat(),
        "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"],
        "software": {"name": "medalliance testbed EMR", "version": "1"},
        "implementation": {"description": "Emulated EMR of the alliance (generated records)", "url": base},
        "rest": [{"mode": "server", "resource": [
            {"type": t, "interaction": [{"code": "read"}, {"code": "search-type"}]
             + ([{"code": "create"}] if t in CREATABLE else []),
             "searchParam": [{"name": n, "type": "token" if k in ("id", "token", "code", "category", "gender",
                                                                    "status") else
                              "reference" if k in ("patient", "encounter") else
                              "date" if k == "birthDate" else "string"} for n, k in params.items()]}
            for t, params in SEARCH.items()]}],
    }


def bundle(base: str, rtype: str, query: str, entries: list[dict[str, Any]], total: int) -> dict[str, Any]:
    """A searchset Bundle of one page of matches."""
    b = {"resourceType": "Bundle", "type": "searchset", "total": total,
         "link": [{"relation": "self", "url": f"{base}/{rtype}" + (f"?{query}" if query else "")}]}
    if entries:  # FHIR JSON has no empty arrays
        b["entry"] = [{"fullUrl": f"{base}/{rtype}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                      for r in entries]
    return b


def outcome(severity: str, code: str, text: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": text}]}
