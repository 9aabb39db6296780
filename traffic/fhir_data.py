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

import calendar
import datetime as dt
import math
import random
import re
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
# what each kind of match is as a FHIR search parameter type, and the modifiers it takes
PARAM_TYPE = {"id": "token", "token": "token", "code": "token", "category": "token", "gender": "token",
              "status": "token", "patient": "reference", "encounter": "reference", "birthDate": "date",
              "name": "string", "family": "string", "given": "string"}
MODIFIERS = {"string": ("exact", "contains"), "reference": ("Patient", "Encounter"), "token": (), "date": ()}
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
_DATE_HELP = (f"a date (YYYY, YYYY-MM or YYYY-MM-DD) with an optional prefix {', '.join(DATE_PREFIXES[:-1])} "
              f"or {DATE_PREFIXES[-1]} (default eq)")
PARAM_DOC = {
    "string": "case-insensitive, matches the start of any part of the name; :exact matches a whole part, "
              "case-sensitive; :contains matches anywhere in a part, case-insensitive",
    "token": "[system|]code",
    "reference": "[Patient/]id (or [Encounter/]id for encounter)",
    "date": _DATE_HELP,
}


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
        an unsupported parameter or modifier, or a bad value.

        Repeated parameters must all match (AND); a comma separates values any of which may match (OR).
        String parameters match the start of any part, case-insensitive (:exact a whole part, case-sensitive;
        :contains anywhere); dates take the prefixes eq, ne, gt, lt, ge, le, sa, eb; tokens are [system|]code."""
        if rtype not in SEARCH:
            raise LookupError(f"unknown resource type {rtype}")
        allowed = SEARCH[rtype]
        unknown = sorted(k for k in params if k not in COMMON and k.partition(":")[0] not in allowed)
        if unknown:
            raise ValueError(f"unsupported search parameter(s) for {rtype}: {', '.join(unknown)} "
                             f"(supported: {', '.join(allowed)})")
        count = DEFAULT_COUNT
        if "_count" in params:
            try:
                count = max(0, min(MAX_COUNT, int(params["_count"][-1])))
            except ValueError:
                raise ValueError("_count must be an integer") from None
        if params.get("_summary", [""])[-1] == "count":
            count = 0
        criteria: list[tuple[str, str, list[Any]]] = []  # (what, modifier, alternatives): all must match one
        for key, vals in params.items():
            if key in COMMON:
                continue
            name, _, modifier = key.partition(":")
            what = allowed[name]
            kind = PARAM_TYPE[what]
            taken_here = (("Patient",) if what == "patient" else ("Encounter",)) if kind == "reference" \
                else MODIFIERS[kind]
            if modifier and modifier not in taken_here:
                taken = ", ".join(f":{m}" for m in taken_here) or "none"
                raise ValueError(f"unsupported modifier in {key} (a {kind} parameter; modifiers taken: {taken})")
            for v in vals:
                criteria.append((what, modifier, [self._value(name, what, modifier, x) for x in _split(v)]))
        with self._lock:
            candidates = self._candidates(rtype, criteria)
            matches = [r for r in candidates
                       if all(any(self._match(r, what, mod, x) for x in alts) for what, mod, alts in criteria)]
        return matches[:count], len(matches)

    @staticmethod
    def _value(name: str, what: str, modifier: str, value: str) -> Any:
        """A search value as matching needs it (parsed once per search, not once per resource)."""
        if what == "birthDate":
            return _date_range(name, value)
        if what in ("patient", "encounter", "id"):
            return value.rsplit("/", 1)[-1]
        if what in ("name", "family", "given"):
            return value if modifier == "exact" else value.strip().lower() if not modifier else value.lower()
        return value

    def _candidates(self, rtype: str, criteria: list[tuple[str, str, list[Any]]]) -> list[dict[str, Any]]:
        """Resources worth matching: the named patients' (via the index) or the named ids, when the search
        names them; else all, in id order."""
        table = self.res[rtype]
        for what, _mod, alts in criteria:
            if what == "id":
                return sorted((table[i] for i in set(alts) if i in table), key=lambda r: int(r["id"]))
            if what == "patient" and rtype in self.by_patient:
                got = [table[i] for pid in dict.fromkeys(alts) for i in self.by_patient[rtype].get(pid, ())]
                return got if len(alts) == 1 else sorted(got, key=lambda r: int(r["id"]))
        return list(table.values())

    @staticmethod
    def _match(r: dict[str, Any], what: str, modifier: str, value: Any) -> bool:
        if what == "id":
            return r["id"] == value
        if what == "patient":
            return r["subject"]["reference"] == "Patient/" + value
        if what == "encounter":
            return r.get("encounter", {}).get("reference") == "Encounter/" + value
        if what in ("name", "family", "given"):  # FHIR string search: any part of any name
            for n in r.get("name", []):
                if what == "name":
                    parts = [n.get("family", ""), *n.get("given", []), n.get("text", "")]
                else:
                    parts = [n.get("family", "")] if what == "family" else n.get("given", [])
                if modifier == "exact":
                    if value in parts:
                        return True
                elif modifier == "contains":
                    if any(value in p.lower() for p in parts):
                        return True
                elif any(p.lower().startswith(value) for p in parts):
                    return True
            return False
        if what in ("token", "code", "category"):  # [system|]code
            system, _, code = value.strip().rpartition("|")
            key = {"token": "identifier", "code": "code", "category": "category"}[what]
            got = r.get(key, [])
            codings = [c for g in (got if isinstance(got, list) else [got]) for c in g.get("coding", [g])]
            return any(c.get("code", c.get("value")) == code and (not system or c.get("system") == system)
                       for c in codings)
        if what == "birthDate":
            prefix, lo, hi = value
            d = r.get("birthDate")
            if not isinstance(d, str):
                return False
            d = d[:10]
            return {"eq": lo <= d <= hi, "ne": not lo <= d <= hi, "gt": d > hi, "sa": d > hi, "lt": d < lo,
                    "eb": d < lo, "ge": d >= lo, "le": d <= hi}[prefix]
        return str(r.get(what, "")) == value.strip()  # gender, status: exact

    def create(self, r: Any) -> dict[str, Any]:
        """Store a posted resource under a new id; Invalid (a ValueError) says what makes it invalid: 400 for
        a resource that is not a well-formed Observation (types, codes, unknown or missing elements), 422 for
        one that is but references what this EMR does not hold."""
        if not isinstance(r, dict):
            raise Invalid(400, [("structure", "", "body is not a JSON object")])
        rtype = r.get("resourceType")
        if not isinstance(rtype, str) or rtype not in CREATABLE:
            raise Invalid(400, [("invalid", "resourceType",
                                 f"cannot create resourceType {_show(rtype)} (only {', '.join(sorted(CREATABLE))})")])
        problems: list[tuple[str, str, str]] = []
        _check_fields(r, OBSERVATION, "Observation", problems, 0, skip=("resourceType",))
        if problems:
            raise Invalid(400, problems)
        ref = r.get("subject", {}).get("reference", "")
        if not ref.startswith("Patient/") or self.read("Patient", ref.split("/", 1)[1]) is None:
            raise Invalid(422, [("processing", "Observation.subject",
                                 f"Observation.subject must reference an existing Patient (got {ref or 'nothing'!r})")])
        eref = r.get("encounter", {}).get("reference")
        if eref is not None and (not eref.startswith("Encounter/")
                                 or self.read("Encounter", eref.split("/", 1)[1]) is None):
            raise Invalid(422, [("processing", "Observation.encounter",
                                 f"Observation.encounter must reference an existing Encounter (got {eref!r})")])
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
    """What this server does, as FHIR's /metadata says it (built from SEARCH and CREATABLE, so it cannot drift):
    read, vread (the one version) and search-type of every type, create of CREATABLE only; JSON only."""
    return {
        "resourceType": "CapabilityStatement", "status": "active", "date": EPOCH.date().isoformat(),
        "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"],
        "software": {"name": "medalliance testbed EMR", "version": "1"},
        "implementation": {"description": "Emulated EMR of the alliance (generated records)", "url": base},
        "rest": [{"mode": "server",
                  "documentation": "JSON only (application/fhir+json or application/json; _format=json): a request "
                                   "for XML or Turtle is refused with 406, a body of another type with 415. Search "
                                   "by GET [type]?params or POST [type]/_search (form-encoded); repeated "
                                   "parameters must all match, a comma separates alternatives. Posted "
                                   "Observations are kept in memory, the oldest dropped first.",
                  "resource": [
            {"type": t, "interaction": [{"code": "read"}, {"code": "vread"}, {"code": "search-type"}]
             + ([{"code": "create"}] if t in CREATABLE else []),
             "versioning": "versioned", "readHistory": False, "updateCreate": False,
             "conditionalCreate": False, "conditionalRead": "not-supported", "conditionalUpdate": False,
             "conditionalDelete": "not-supported",
             "searchParam": [{"name": n, "type": PARAM_TYPE[k], "documentation": PARAM_DOC[PARAM_TYPE[k]]}
                             for n, k in params.items()]}
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


def outcome(severity: str, code: str, text: str, expression: str = "") -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": text}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


class Invalid(ValueError):
    """A resource this server will not store: the HTTP status (400 or 422) and its problems, each
    (issue type, FHIRPath expression, text), as an OperationOutcome with one issue each."""

    def __init__(self, status: int, problems: list[tuple[str, str, str]]):
        self.status = status
        self.problems = problems[:20]
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__("; ".join(text for _c, _e, text in self.problems) + more)

    def outcome(self) -> dict[str, Any]:
        issues = []
        for code, expr, text in self.problems:
            issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": text}
            if expr:
                issue["expression"] = [expr]
            issues.append(issue)
        return {"resourceType": "OperationOutcome", "issue": issues}


# -- search values ---------------------------------------------------------------------------------------------
def _split(value: str) -> list[str]:
    """A search value's alternatives: a comma means OR, a backslash escapes a comma."""
    if "\\" not in value:
        return value.split(",")
    return [p.replace("\\,", ",") for p in re.split(r"(?<!\\),", value)]


_SEARCH_DATE = re.compile(r"([a-z]{2})?([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")


def _date_range(name: str, value: str) -> tuple[str, str, str]:
    """'ge1980-01' -> ('ge', '1980-01-01', '1980-01-31'): the prefix and the first and last day the value means."""
    m = _SEARCH_DATE.fullmatch(value.strip())
    prefix = (m.group(1) or "eq") if m else ""
    if not m or prefix not in DATE_PREFIXES:
        raise ValueError(f"{name} takes {_DATE_HELP}: got {value!r}")
    y, mo, d = int(m.group(2)), m.group(3), m.group(4)
    try:
        if mo is None:
            lo, hi = dt.date(y, 1, 1), dt.date(y, 12, 31)
        elif d is None:
            lo = dt.date(y, int(mo), 1)
            hi = lo.replace(day=calendar.monthrange(y, int(mo))[1])
        else:
            lo = hi = dt.date(y, int(mo), int(d))
    except ValueError:
        raise ValueError(f"{name} takes {_DATE_HELP}: {value!r} is not a calendar date") from None
    return prefix, lo.isoformat(), hi.isoformat()


# -- what a posted Observation may hold (FHIR R4), checked before it is stored -----------------------------------
# A type is a primitive (a name in _PRIMITIVE), a complex type (a name in _COMPLEX: element -> (type, many,
# required)), "object" (any non-empty JSON object, not looked into) or a tuple of types for a choice
# element `name[x]` (valueQuantity, valueString ...).
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TZ = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_DATE_RE = re.compile(_YEAR + r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?")
_DATETIME_RE = re.compile(_YEAR + r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T" + _TIME + _TZ + r")?)?)?")
_INSTANT_RE = re.compile(_YEAR + r"-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T" + _TIME + _TZ)
_TIME_RE = re.compile(_TIME)
_CODE_RE = re.compile(r"[^\s]+( [^\s]+)*")
_URI_RE = re.compile(r"\S+")


def _calendar_ok(v: str) -> bool:
    """A full date in a date/dateTime/instant is a real day (the regular expressions allow 2021-02-31)."""
    if len(v) >= 10:
        try:
            dt.date.fromisoformat(v[:10])
        except ValueError:
            return False
    return True


def _decimal_ok(v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return abs(v) < 10 ** 28 if isinstance(v, int) else math.isfinite(v)


_PRIMITIVE: dict[str, tuple[Any, str]] = {  # name -> (test, what it must be)
    "string": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "markdown": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "code": (lambda v: isinstance(v, str) and _CODE_RE.fullmatch(v) is not None, "a code (a string)"),
    "uri": (lambda v: isinstance(v, str) and _URI_RE.fullmatch(v) is not None, "a URI (a string)"),
    "boolean": (lambda v: isinstance(v, bool), "true or false"),
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool) and -2 ** 31 <= v < 2 ** 31,
                "an integer"),
    "positiveInt": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2 ** 31,
                    "a positive integer"),
    "decimal": (_decimal_ok, "a finite number"),
    "date": (lambda v: isinstance(v, str) and _DATE_RE.fullmatch(v) is not None and _calendar_ok(v),
             "a date (YYYY, YYYY-MM or YYYY-MM-DD)"),
    "dateTime": (lambda v: isinstance(v, str) and _DATETIME_RE.fullmatch(v) is not None and _calendar_ok(v),
                 "a dateTime (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a time zone)"),
    "instant": (lambda v: isinstance(v, str) and _INSTANT_RE.fullmatch(v) is not None and _calendar_ok(v),
                "an instant (YYYY-MM-DDThh:mm:ss[.sss] with a time zone)"),
    "time": (lambda v: isinstance(v, str) and _TIME_RE.fullmatch(v) is not None, "a time (hh:mm:ss)"),
}
_VALUE_X = ("Quantity", "CodeableConcept", "string", "boolean", "integer", "Range", "Ratio", "SampledData", "time",
            "dateTime", "Period")
_ELEMENT = {"id": ("string", False, False), "extension": ("Extension", True, False)}
_COMPLEX: dict[str, dict[str, tuple[Any, bool, bool]]] = {
    "Extension": {"id": ("string", False, False), "url": ("uri", False, True),
                  "extension": ("Extension", True, False), "value[x]": ("any", False, False)},
    "Coding": {**_ELEMENT, "system": ("uri", False, False), "version": ("string", False, False),
               "code": ("code", False, False), "display": ("string", False, False),
               "userSelected": ("boolean", False, False)},
    "CodeableConcept": {**_ELEMENT, "coding": ("Coding", True, False), "text": ("string", False, False)},
    "Identifier": {**_ELEMENT, "use": ("code", False, False), "type": ("CodeableConcept", False, False),
                   "system": ("uri", False, False), "value": ("string", False, False),
                   "period": ("Period", False, False), "assigner": ("Reference", False, False)},
    "Reference": {**_ELEMENT, "reference": ("string", False, False), "type": ("uri", False, False),
                  "identifier": ("Identifier", False, False), "display": ("string", False, False)},
    "Quantity": {**_ELEMENT, "value": ("decimal", False, False), "comparator": ("comparator", False, False),
                 "unit": ("string", False, False), "system": ("uri", False, False), "code": ("code", False, False)},
    "Period": {**_ELEMENT, "start": ("dateTime", False, False), "end": ("dateTime", False, False)},
    "Range": {**_ELEMENT, "low": ("Quantity", False, False), "high": ("Quantity", False, False)},
    "Ratio": {**_ELEMENT, "numerator": ("Quantity", False, False), "denominator": ("Quantity", False, False)},
    "SampledData": {**_ELEMENT, "origin": ("Quantity", False, True), "period": ("decimal", False, True),
                    "factor": ("decimal", False, False), "lowerLimit": ("decimal", False, False),
                    "upperLimit": ("decimal", False, False), "dimensions": ("positiveInt", False, True),
                    "data": ("string", False, False)},
    "Annotation": {**_ELEMENT, "author[x]": (("Reference", "string"), False, False),
                   "time": ("dateTime", False, False), "text": ("markdown", False, True)},
    "Narrative": {**_ELEMENT, "status": ("narrativeStatus", False, True), "div": ("string", False, True)},
    "Timing": {**_ELEMENT, "modifierExtension": ("Extension", True, False), "event": ("dateTime", True, False),
               "repeat": ("object", False, False), "code": ("CodeableConcept", False, False)},
    "ReferenceRange": {**_ELEMENT, "modifierExtension": ("Extension", True, False),
                       "low": ("Quantity", False, False), "high": ("Quantity", False, False),
                       "type": ("CodeableConcept", False, False), "appliesTo": ("CodeableConcept", True, False),
                       "age": ("Range", False, False), "text": ("string", False, False)},
    "Component": {**_ELEMENT, "modifierExtension": ("Extension", True, False),
                  "code": ("CodeableConcept", False, True), "value[x]": (_VALUE_X, False, False),
                  "dataAbsentReason": ("CodeableConcept", False, False),
                  "interpretation": ("CodeableConcept", True, False),
                  "referenceRange": ("ReferenceRange", True, False)},
}
_CODES = {"comparator": {"<", "<=", ">=", ">"}, "narrativeStatus": {"generated", "extensions", "additional", "empty"},
          "observationStatus": OBS_STATUS}
OBSERVATION: dict[str, tuple[Any, bool, bool]] = {
    "id": ("ignored", False, False), "meta": ("ignored", False, False),  # both replaced by the server
    "implicitRules": ("uri", False, False), "language": ("code", False, False), "text": ("Narrative", False, False),
    "contained": ("object", True, False), "extension": ("Extension", True, False),
    "modifierExtension": ("Extension", True, False),
    "identifier": ("Identifier", True, False), "basedOn": ("Reference", True, False),
    "partOf": ("Reference", True, False), "status": ("observationStatus", False, True),
    "category": ("CodeableConcept", True, False), "code": ("CodeableConcept", False, True),
    "subject": ("Reference", False, False), "focus": ("Reference", True, False),
    "encounter": ("Reference", False, False),
    "effective[x]": (("dateTime", "Period", "Timing", "instant"), False, False),
    "issued": ("instant", False, False), "performer": ("Reference", True, False),
    "value[x]": (_VALUE_X, False, False), "dataAbsentReason": ("CodeableConcept", False, False),
    "interpretation": ("CodeableConcept", True, False), "note": ("Annotation", True, False),
    "bodySite": ("CodeableConcept", False, False), "method": ("CodeableConcept", False, False),
    "specimen": ("Reference", False, False), "device": ("Reference", False, False),
    "referenceRange": ("ReferenceRange", True, False), "hasMember": ("Reference", True, False),
    "derivedFrom": ("Reference", True, False), "component": ("Component", True, False),
}
MAX_DEPTH = 12  # nesting of complex elements a posted resource may have


def _show(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _jtype(v: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(v), type(v).__name__)


def _elements(spec: dict[str, tuple[Any, bool, bool]]) -> dict[str, tuple[str, Any, bool]]:
    """JSON member name -> (element name, its type, many): a choice name[x] is one member per type."""
    out: dict[str, tuple[str, Any, bool]] = {}
    for name, (typ, many, _req) in spec.items():
        if name.endswith("[x]"):
            base = name[:-3]
            for t in typ if isinstance(typ, tuple) else ():
                out[base + t[0].upper() + t[1:]] = (name, t, many)
        else:
            out[name] = (name, typ, many)
    return out


_MEMBERS: dict[int, dict[str, tuple[str, Any, bool]]] = {}


def _members(spec: dict[str, tuple[Any, bool, bool]]) -> dict[str, tuple[str, Any, bool]]:
    got = _MEMBERS.get(id(spec))
    if got is None:
        got = _MEMBERS[id(spec)] = _elements(spec)
    return got


def _check_fields(obj: dict[str, Any], spec: dict[str, tuple[Any, bool, bool]], path: str,
                  problems: list[tuple[str, str, str]], depth: int, skip: tuple[str, ...] = ()) -> None:
    members = _members(spec)
    seen: dict[str, str] = {}  # element -> the member that gave it (one per choice)
    for key, v in obj.items():
        if key in skip:
            continue
        where = f"{path}.{key}"
        if key.startswith("_") and key[1:] in members:  # a primitive's id/extensions
            if not isinstance(v, (dict, list)):
                problems.append(("structure", where, f"{where} must be an object (a primitive's extensions)"))
            continue
        if key not in members:
            if key.startswith("value") and spec is _COMPLEX["Extension"]:
                continue  # an extension's value[x]: any type, not looked into
            problems.append(("structure", where, f"{where} is not an element this server knows "
                                                  f"(unknown elements are refused, not stored)"))
            continue
        element, typ, many = members[key]
        if element in seen:
            problems.append(("structure", f"{path}.{element}",
                             f"{path}.{element}: only one of {seen[element]} and {key} may be given"))
            continue
        seen[element] = key
        if many:
            if not isinstance(v, list) or not v:
                problems.append(("structure", where, f"{where} must be a non-empty array (got {_jtype(v)})"))
                continue
            for i, x in enumerate(v):
                _check_value(x, typ, f"{where}[{i}]", problems, depth)
        else:
            _check_value(v, typ, where, problems, depth)
    for name, (_typ, _many, required) in spec.items():
        if required and name not in seen and not any(k == name for k in skip):
            where = f"{path}.{name}"
            problems.append(("required", where, f"{where} is required"))


def _check_value(v: Any, typ: Any, where: str, problems: list[tuple[str, str, str]], depth: int) -> None:
    if typ == "ignored":
        pass
    elif v is None:
        problems.append(("structure", where, f"{where} is null (FHIR JSON leaves out what has no value)"))
    elif typ in _PRIMITIVE:
        ok, what = _PRIMITIVE[typ]
        if not ok(v):
            problems.append(("structure" if not isinstance(v, str) or typ in ("string", "markdown") else "value",
                             where, f"{where} must be {what} (got {_show(v)})"))
    elif typ in _CODES:
        if not isinstance(v, str):
            problems.append(("structure", where, f"{where} must be a code (a string; got {_jtype(v)})"))
        elif v not in _CODES[typ]:
            problems.append(("value", where, f"{where} is not a valid code (got {_show(v)}; one of "
                                             f"{', '.join(sorted(_CODES[typ]))})"))
    elif not isinstance(v, dict) or not v:
        problems.append(("structure", where, f"{where} must be a non-empty object (got {_jtype(v)})"))
    elif typ in ("object", "any"):
        pass
    elif depth >= MAX_DEPTH:
        problems.append(("structure", where, f"{where} is nested too deeply"))
    else:
        _check_fields(v, _COMPLEX[typ], where, problems, depth + 1)
