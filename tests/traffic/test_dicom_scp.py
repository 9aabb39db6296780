"""The PACS's index and C-FIND matching, without a network."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from traffic import dicom_study
from traffic.dicom_index import Index, attributes, matches, response


@pytest.mark.parametrize("key,wanted,have,ok", [
    ("PatientID", "", "P1", True),
    ("PatientID", "P1", "P1", True),
    ("PatientID", "P1", "P2", False),
    ("PatientName", "Synth*", "Synthetic^A", True),
    ("PatientName", "Synth?tic*", "Synthetic^A", True),
    ("PatientName", "X*", "Synthetic^A", False),
    ("StudyInstanceUID", "1.2.3\\1.2.4", "1.2.4", True),
    ("StudyInstanceUID", "1.2.3\\1.2.4", "1.2.5", False),
    ("StudyInstanceUID", "1.2.*", "1.2.3", False),  # no wildcards on UIDs
    ("StudyDate", "20250101-20261231", "20260101", True),
    ("StudyDate", "-20251231", "20260101", False),
    ("StudyDate", "20260101-", "20260101", True),
])
def test_matching(key, wanted, have, ok):
    assert matches(key, wanted, have) is ok


def _fill(index: Index, patient: str, modality: str, n: int) -> dicom_study.StudyPlan:
    p = dicom_study.plan(modality, n * 1024, instance_size=1024, patient_id=patient)
    for ds in dicom_study.instances(p, b"\0" * p.pixel_bytes):
        index.add(attributes(ds), Path(f"/nonexistent/{ds.SOPInstanceUID}"), 1000)
    return p


def test_index_groups_by_level_and_answers_requested_keys():
    idx = Index()
    ct = _fill(idx, "P1", "CT", 3)
    _fill(idx, "P2", "MR", 2)
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    q.PatientID = "P1"
    q.StudyInstanceUID = ""
    q.ModalitiesInStudy = ""
    q.NumberOfStudyRelatedInstances = ""
    q.PatientComments = ""  # not held: returned empty
    groups = idx.search(q, "STUDY")
    assert len(groups) == 1
    r = response(q, "STUDY", groups[0], "PACS")
    assert r.StudyInstanceUID == ct.study_uid and r.ModalitiesInStudy == "CT"
    assert int(r.NumberOfStudyRelatedInstances) == 3 and r.PatientID == "P1"
    assert "PatientComments" in r and not r.PatientComments
    assert len(idx.search(q, "IMAGE")) == 3
    q.PatientID = ""
    assert len(idx.search(q, "PATIENT")) == 2 and idx.total == 5000


def test_eviction_takes_the_least_recently_used_study():
    idx = Index()
    a = _fill(idx, "P1", "CT", 2)
    b = _fill(idx, "P2", "CT", 2)
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    q.StudyInstanceUID = a.study_uid
    idx.search(q, "STUDY")  # a was used after b was stored
    assert idx.lru(keep="none") == b.study_uid
    assert len(idx.evict(b.study_uid)) == 2 and idx.total == 2000
    assert idx.lru(keep=a.study_uid) is None


def test_unknown_level_is_refused():
    q = Dataset()
    q.QueryRetrieveLevel = "FRAME"
    with pytest.raises(ValueError):
        Index().search(q, "FRAME")
