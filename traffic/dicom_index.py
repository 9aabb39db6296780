"""What the PACS holds and how C-FIND matches it: the index of stored instances, pure of any networking.

Kept apart from the server (`dicom_scp.py`) because it is the part with rules
to get right (PS3.4 C.2.2.2 matching, C.4.1.1.3 responses, least-recently-used
bookkeeping for eviction) and the part the unit tests exercise without an
association. Thread-safe: every association runs in its own thread.
"""
from __future__ import annotations

import fnmatch
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

# The attributes indexed per level (what C-FIND can match on and return).
LEVELS: dict[str, tuple[str, ...]] = {
    "PATIENT": ("PatientID", "PatientName", "PatientBirthDate", "PatientSex"),
    "STUDY": ("StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID", "StudyDescription",
              "ReferringPhysicianName"),
    "SERIES": ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription"),
    "IMAGE": ("SOPInstanceUID", "SOPClassUID", "InstanceNumber"),
}
ORDER = ("PATIENT", "STUDY", "SERIES", "IMAGE")
UNIQUE = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
          "IMAGE": "SOPInstanceUID"}
INDEXED = tuple(k for lv in ORDER for k in LEVELS[lv])
_UIDS = {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"}
_DATES = {"StudyDate", "PatientBirthDate"}
_TIMES = {"StudyTime"}  # TM: range matching as for dates (PS3.4 C.2.2.2.5)


def _time(value: str, end: bool = False) -> str:
    """A TM value comparable as text: HHMMSS.FFFFFF. A bound given to the hour or minute covers all of it
    when it ends a range ('10' up to 10:59:59.999999); an old-style '10:30' reads as 1030."""
    whole, _, frac = value.strip().replace(":", "").partition(".")
    whole = whole[:6]
    if end and not frac:
        return (whole + "595959"[len(whole):]).ljust(6, "9") + ".999999"
    return whole.ljust(6, "0") + "." + frac.ljust(6, "0")[:6]


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def matches(key: str, wanted: str, have: str) -> bool:
    """DICOM C-FIND matching of one attribute (PS3.4 C.2.2.2): universal (empty), UID list,
    date or time range, wildcard (* ?), else single value."""
    if wanted in ("", "*"):
        return True
    if key in _UIDS:
        return have in wanted.split("\\")
    if key in _DATES and "-" in wanted:
        lo, _, hi = wanted.partition("-")
        return (not lo or have >= lo) and (not hi or have <= hi)
    if key in _TIMES and "-" in wanted:
        lo, _, hi = wanted.partition("-")
        t = _time(have)
        return (not lo or t >= _time(lo)) and (not hi or t <= _time(hi, end=True))
    if "*" in wanted or "?" in wanted:
        return fnmatch.fnmatchcase(have, wanted.replace("[", "[[]"))
    return have == wanted


@dataclass
class Instance:
    attrs: dict[str, str]
    path: Path
    size: int


@dataclass
class Study:
    uid: str
    instances: dict[str, Instance] = field(default_factory=dict)
    size: int = 0
    used: float = 0.0  # last store, query or retrieve (monotonic): eviction takes the least recently used first


class Index:
    """What the PACS holds, by study; thread-safe (every association runs in its own thread)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.studies: dict[str, Study] = {}
        self.total = 0

    def add(self, attrs: dict[str, str], path: Path, size: int) -> None:
        with self.lock:
            st = self.studies.setdefault(attrs["StudyInstanceUID"], Study(attrs["StudyInstanceUID"]))
            old = st.instances.pop(attrs["SOPInstanceUID"], None)
            if old is not None:
                st.size -= old.size
                self.total -= old.size
            st.instances[attrs["SOPInstanceUID"]] = Instance(attrs, path, size)
            st.size += size
            self.total += size
            st.used = time.monotonic()

    def evict(self, study_uid: str) -> list[Path]:
        """Forget a study; its files (for the caller to delete)."""
        with self.lock:
            st = self.studies.pop(study_uid, None)
            if st is None:
                return []
            self.total -= st.size
            return [i.path for i in st.instances.values()]

    def lru(self, keep: str) -> str | None:
        """The least recently used study other than `keep`."""
        with self.lock:
            others = [s for s in self.studies.values() if s.uid != keep]
            return min(others, key=lambda s: s.used).uid if others else None

    def search(self, identifier: Dataset, level: str) -> list[list[Instance]]:
        """Instances matching the identifier, grouped by the level's unique key (in store order)."""
        if level not in UNIQUE:
            raise ValueError(f"unsupported QueryRetrieveLevel {level!r}")
        wanted = {kw: _text(identifier.get(kw)) for kw in INDEXED if kw in identifier}
        groups: dict[str, list[Instance]] = {}
        with self.lock:
            touched = []
            for st in self.studies.values():
                for inst in st.instances.values():
                    if all(matches(k, v, inst.attrs.get(k, "")) for k, v in wanted.items()):
                        groups.setdefault(inst.attrs.get(UNIQUE[level], ""), []).append(inst)
                        touched.append(st)
            now = time.monotonic()
            for st in touched:
                st.used = now
        return list(groups.values())


def attributes(ds: Dataset) -> dict[str, str]:
    return {kw: _text(ds.get(kw)) for kw in INDEXED}


def response(identifier: Dataset, level: str, group: list[Instance], ae_title: str) -> Dataset:
    """The C-FIND answer for one matched entity: the requested keys, filled in (PS3.4 C.4.1.1.3)."""
    first = group[0].attrs
    out = Dataset()
    for elem in identifier:
        kw = elem.keyword
        if kw in INDEXED and ORDER.index(_level_of(kw)) <= ORDER.index(level):
            setattr(out, kw, first.get(kw, "") or None)
        elif kw == "ModalitiesInStudy":
            out.ModalitiesInStudy = sorted({i.attrs["Modality"] for i in group if i.attrs.get("Modality")})
        elif kw in ("NumberOfStudyRelatedInstances", "NumberOfSeriesRelatedInstances",
                    "NumberOfPatientRelatedInstances"):
            setattr(out, kw, len(group))
        elif kw == "NumberOfStudyRelatedSeries":
            out.NumberOfStudyRelatedSeries = len({i.attrs["SeriesInstanceUID"] for i in group})
        elif kw == "NumberOfPatientRelatedStudies":
            out.NumberOfPatientRelatedStudies = len({i.attrs["StudyInstanceUID"] for i in group})
        elif kw == "RetrieveAETitle":
            out.RetrieveAETitle = ae_title
        elif kw not in ("QueryRetrieveLevel", "SpecificCharacterSet"):
            out.add_new(elem.tag, elem.VR, None)  # a key we do not hold: returned empty
    out.QueryRetrieveLevel = level
    if "SpecificCharacterSet" in identifier:
        out.SpecificCharacterSet = identifier.SpecificCharacterSet
    return out


def _level_of(keyword: str) -> str:
    return next(lv for lv in ORDER if keyword in LEVELS[lv])
