"""Synthetic DICOM studies of a realistic size, made fast enough not to disturb the measurement.

A study transfer is judged by its size and instance count, not by its pixels,
so every instance of a study shares one buffer of random pixel bytes (random,
so that nothing on the path could compress it) and only its header differs:
UIDs, instance number, slice position. Instances are produced one at a time
from a template (a 3 GB CT study is never in memory at once), and the pixel
buffer is made once per study (os.urandom: about 0.1 s for a 40 MB
mammography view).

Geometry per modality follows common acquisitions: a CT slice is 512x512 of
16-bit (512 KiB), an MR slice 256x256, a CR/DX plate about 10-18 MB, an
ultrasound frame 640x480 RGB, a mammography view 4096x5120 (40 MiB; four views
make the ~160 MB study of DOMAIN.md).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid


@dataclass(frozen=True)
class Geometry:
    sop_class: str
    columns: int
    rows: int
    samples: int  # 1 grey, 3 RGB
    bits: int  # allocated per sample: 8 or 16
    description: str

    @property
    def bytes_per_row(self) -> int:
        return self.columns * self.samples * self.bits // 8


MODALITIES: dict[str, Geometry] = {
    "CT": Geometry("1.2.840.10008.5.1.4.1.1.2", 512, 512, 1, 16, "CT chest"),
    "MR": Geometry("1.2.840.10008.5.1.4.1.1.4", 256, 256, 1, 16, "MR brain"),
    "CR": Geometry("1.2.840.10008.5.1.4.1.1.1", 2048, 2500, 1, 16, "CR chest PA"),
    "DX": Geometry("1.2.840.10008.5.1.4.1.1.1.1", 3000, 3000, 1, 16, "DX chest"),
    "US": Geometry("1.2.840.10008.5.1.4.1.1.6.1", 640, 480, 3, 8, "US abdomen"),
    "MG": Geometry("1.2.840.10008.5.1.4.1.1.1.2", 4096, 5120, 1, 16, "MG screening"),
}

MAX_INSTANCE_BYTES = 256 * 2**20  # one instance held in memory at a time: keep it bounded
MAX_INSTANCES = 20_000


def default_instance_size(modality: str) -> int:
    g = MODALITIES[modality]
    return g.rows * g.bytes_per_row


@dataclass(frozen=True)
class StudyPlan:
    """What will be sent: `count` instances of `rows` x geometry columns, UIDs fixed up front."""

    modality: str
    count: int
    rows: int
    patient_id: str
    study_uid: str
    series_uid: str
    accession: str

    @property
    def geometry(self) -> Geometry:
        return MODALITIES[self.modality]

    @property
    def pixel_bytes(self) -> int:
        return self.rows * self.geometry.bytes_per_row

    @property
    def total_pixel_bytes(self) -> int:
        return self.count * self.pixel_bytes


def plan(modality: str, study_size: int, instance_size: int | None = None, patient_id: str = "TB0001",
         tag: str = "") -> StudyPlan:
    """How many instances of which height make a study of about `study_size` bytes of pixels."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; known: {', '.join(MODALITIES)}")
    g = MODALITIES[modality]
    size = instance_size or default_instance_size(modality)
    if not 0 < size <= MAX_INSTANCE_BYTES:
        raise ValueError(f"instance size must be 1 byte .. {MAX_INSTANCE_BYTES} bytes, got {size}")
    rows = max(1, min(65535, round(size / g.bytes_per_row)))
    per = rows * g.bytes_per_row
    count = max(1, round(study_size / per))
    if count > MAX_INSTANCES:
        raise ValueError(f"{count} instances: more than {MAX_INSTANCES}; use a larger instance size")
    suffix = f"-{tag}" if tag else ""
    return StudyPlan(modality, count, rows, patient_id, generate_uid(), generate_uid(),
                     f"ACC{os.getpid() % 100000:05d}{suffix}"[:16])


def template(p: StudyPlan) -> Dataset:
    """The header every instance of the study shares (patient, study, series, image pixel module)."""
    g = p.geometry
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = g.sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = g.sop_class
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20260101"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "090000"
    ds.AccessionNumber = p.accession
    ds.Modality = p.modality
    ds.Manufacturer = "medalliance-testbed"
    ds.InstitutionName = "Xiangtan Central Hospital"
    ds.ReferringPhysicianName = "Referrer^Testbed"
    ds.StudyDescription = g.description
    ds.SeriesDescription = f"{g.description} synthetic"
    ds.PatientName = f"Synthetic^{p.patient_id}"
    ds.PatientID = p.patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = p.study_uid
    ds.SeriesInstanceUID = p.series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.SamplesPerPixel = g.samples
    ds.PhotometricInterpretation = "RGB" if g.samples == 3 else "MONOCHROME2"
    if g.samples == 3:
        ds.PlanarConfiguration = 0
    ds.Rows = p.rows
    ds.Columns = g.columns
    ds.BitsAllocated = ds.BitsStored = g.bits
    ds.HighBit = g.bits - 1
    ds.PixelRepresentation = 0
    return ds


def pixels(p: StudyPlan) -> bytes:
    """One buffer of random pixel bytes, shared by every instance of the study."""
    return os.urandom(p.pixel_bytes)


def instances(p: StudyPlan, pixel_data: bytes | None = None) -> Iterator[Dataset]:
    """The study's instances, one at a time (each a new Dataset sharing the pixel buffer)."""
    base = template(p)
    data = pixels(p) if pixel_data is None else pixel_data
    for i in range(1, p.count + 1):
        ds = Dataset()
        ds.update(base)
        ds.file_meta = FileMetaDataset(base.file_meta)
        uid = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.SOPInstanceUID = uid
        ds.InstanceNumber = i
        if p.modality in ("CT", "MR"):
            ds.ImagePositionPatient = [0, 0, float(i)]
            ds.SliceThickness = 1.0
        ds.PixelData = data
        yield ds
