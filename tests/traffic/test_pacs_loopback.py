"""The PACS and the study client on the loopback interface: store, find, get, and the disk cap."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.traffic.loopback import free_port, serving

MIB = 2**20


def _client(port: int, *args: str, timeout: float = 60) -> dict:
    r = subprocess.run([sys.executable, "-m", "traffic.dicom_client", "--host", "127.0.0.1", "--port", str(port),
                        *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def pacs(tmp_path):
    with serving("traffic.dicom_scp", "--data", str(tmp_path / "pacs"), "--max-bytes", "5m", "--reserve", "0") as port:
        yield port, tmp_path / "pacs"


def test_store_find_and_get_a_study(pacs):
    port, data = pacs
    doc = _client(port, "--modality", "CT", "--study-size", str(2 * MIB), "--patient-id", "LOOP1")
    assert doc["errors"] == []
    store, get = doc["transfers"]
    assert (store["op"], store["instances"], store["ok"]) == ("store", 4, 4)
    assert (get["op"], get["ok"]) == ("get", 4)
    assert abs(get["bytes"] - store["bytes"]) < 4 * 64  # the same instances came back (± element padding)
    assert store["bytes"] > 2 * MIB and len(doc["echo_ms"]) == 3 and len(doc["find_ms"]) == 2
    assert doc["sent"] == doc["received"] == 3 + 4 + 2 + 4
    files = list((data / "studies").glob("*/*.dcm"))
    assert len(files) == 4 and not list((data / "incoming").iterdir())  # received straight into the store


def test_the_cap_evicts_the_oldest_study_and_refuses_what_cannot_fit(pacs):
    port, data = pacs
    doc = _client(port, "--study-size", str(2 * MIB), "--studies", "3", "--patient-id", "CAP")
    assert doc["errors"] == [], doc["errors"]  # each study is retrieved before the next one evicts it
    assert len(list((data / "studies").iterdir())) == 2  # 3 x 2 MiB under a 5 MiB cap: the first one went
    doc = _client(port, "--study-size", str(8 * MIB), "--no-retrieve", "--patient-id", "BIG")
    store = doc["transfers"][0]
    assert 0 < store["ok"] < store["instances"]
    assert any("status 0xA700" in e for e in doc["errors"]), doc["errors"]  # out of resources, said so


def test_unreachable_pacs_is_an_error_not_a_hang():
    doc = _client(free_port(), "--study-size", str(MIB), "--deadline", "10", timeout=30)
    assert doc["errors"] and "association" in doc["errors"][0] and doc["received"] == 0


@pytest.mark.skipif(shutil.which("movescu") is None, reason="dcmtk is not installed (scripts/setup.sh)")
def test_dcmtk_movescu_to_a_configured_destination(tmp_path):
    dest_port = free_port()
    with serving("traffic.dicom_scp", "--data", str(tmp_path / "pacs"), "--reserve", "0",
                 "--move-dest", f"MOVESCU=127.0.0.1:{dest_port}") as port:
        doc = _client(port, "--modality", "US", "--study-size", str(3 * 640 * 480 * 3), "--no-retrieve",
                      "--patient-id", "MOVE1")
        assert doc["errors"] == []
        out = tmp_path / "moved"
        out.mkdir()
        r = subprocess.run(["movescu", "-P", "-aet", "MOVESCU", "-aec", "PACS", "--port", str(dest_port), "-od",
                            str(out), "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=MOVE1", "127.0.0.1",
                            str(port)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert len(list(out.iterdir())) == 3
        # an AE the PACS was not told about: refused (0xA801), nothing sent
        r = subprocess.run(["movescu", "-v", "-P", "-aet", "OTHER", "-aem", "OTHER", "-aec", "PACS", "--port",
                            str(dest_port), "-od", str(out), "-k", "QueryRetrieveLevel=PATIENT", "-k",
                            "PatientID=MOVE1", "127.0.0.1", str(port)], capture_output=True, text=True, timeout=60)
        assert "Refused: MoveDestinationUnknown" in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("echoscu") is None, reason="dcmtk is not installed (scripts/setup.sh)")
def test_a_wrong_called_ae_title_is_refused_as_a_pacs_would(pacs):
    """A tester's `echoscu -aec WRONGAE` was accepted: the PACS now requires its own AE title (PS3.8 9.3.4)."""
    port, _ = pacs
    ok = subprocess.run(["echoscu", "-aet", "WS1", "-aec", "PACS", "127.0.0.1", str(port)],
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(["echoscu", "-v", "-aet", "WS1", "-aec", "WRONGAE", "127.0.0.1", str(port)],
                         capture_output=True, text=True, timeout=30)
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0 and "Association Rejected" in out and "Called AE Title Not Recognized" in out, out


def test_a_workstation_proposing_both_roles_can_store(pacs):
    """A requestor proposing SCU and SCP roles on a storage context (it stores, then retrieves with C-GET on the
    same association) was given the SCP role only, and could not store."""
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
    from pynetdicom import AE, build_role

    from traffic.dicom_study import instances, plan  # the workload's own study generator

    port, _ = pacs
    ae = AE(ae_title="WS1")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACS", ext_neg=[build_role(CTImageStorage, scu_role=True,
                                                                                  scp_role=True)])
    assert assoc.is_established
    try:
        ds = next(instances(plan("CT", 2 * MIB, patient_id="ROLES")))
        status = assoc.send_c_store(ds)
        assert status.Status == 0x0000, status
    finally:
        assoc.release()


def test_study_time_ranges_match_as_dates_do():
    """`StudyTime=080000-090000` found nothing while `StudyTime=083000` found the study (PS3.4 C.2.2.2.5)."""
    from traffic.dicom_index import matches

    for wanted, have, ok in [("080000-090000", "083000", True), ("080000-090000", "093000", False),
                             ("0800-0900", "085959.5", True), ("08-08", "084500", True), ("08-08", "090000", False),
                             ("-0830", "083000", True), ("0831-", "083000", False), ("083000", "083000", True)]:
        assert matches("StudyTime", wanted, have) is ok, (wanted, have)
