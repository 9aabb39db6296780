"""Synthetic studies: the size asked for, valid DICOM, distinct instances, made fast."""
from __future__ import annotations

import time
from io import BytesIO

import pytest
from pydicom import dcmread

from traffic import dicom_study


def test_ct_study_of_64_mib_is_128_slices_of_512_kib():
    p = dicom_study.plan("CT", 64 * 2**20)
    assert (p.count, p.rows, p.pixel_bytes) == (128, 512, 512 * 1024)
    assert p.total_pixel_bytes == 64 * 2**20


def test_mammography_study_of_160_mb_is_four_views():
    p = dicom_study.plan("MG", 160 * 2**20)
    assert p.count == 4 and p.pixel_bytes == 40 * 2**20


@pytest.mark.parametrize("modality", sorted(dicom_study.MODALITIES))
def test_instances_are_valid_dicom_with_their_own_uids(modality):
    p = dicom_study.plan(modality, 3 * 40_000, instance_size=40_000, patient_id="PX")
    seen = set()
    for i, ds in enumerate(dicom_study.instances(p), 1):
        buf = BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        back = dcmread(BytesIO(buf.getvalue()))
        assert back.SOPClassUID == dicom_study.MODALITIES[modality].sop_class
        assert back.Modality == modality and back.PatientID == "PX" and back.InstanceNumber == i
        assert back.StudyInstanceUID == p.study_uid and back.SeriesInstanceUID == p.series_uid
        assert len(back.PixelData) == back.Rows * back.Columns * back.SamplesPerPixel * back.BitsAllocated // 8
        seen.add(back.SOPInstanceUID)
    assert len(seen) == p.count == 3


def test_instance_size_rounds_to_whole_rows():
    p = dicom_study.plan("CT", 10 * 2**20, instance_size=100_000)
    assert p.pixel_bytes % (512 * 2) == 0 and abs(p.pixel_bytes - 100_000) <= 1024


def test_bounds_are_refused():
    with pytest.raises(ValueError, match="unknown modality"):
        dicom_study.plan("XX", 1)
    with pytest.raises(ValueError, match="instance size"):
        dicom_study.plan("CT", 1, instance_size=2**30)
    with pytest.raises(ValueError, match="instances"):
        dicom_study.plan("CT", 2**40, instance_size=1024)


def test_generating_a_64_mib_study_is_fast_and_shares_its_pixels():
    t0 = time.monotonic()
    p = dicom_study.plan("CT", 64 * 2**20)
    items = list(dicom_study.instances(p))
    assert time.monotonic() - t0 < 5.0
    assert len({id(ds.PixelData) for ds in items}) == 1  # one buffer, not 128 copies
