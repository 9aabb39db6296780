"""The PACS and HIS/LIS services inside a real testbed: reference clients, then the workloads, scored.

One small network: an archive server offering pacs, his and lis (started by
the engine, as in any run), a data-centre workstation on an unlimited link, a
clinic workstation behind a 100 Mbit/s link, both in the imaging slice, and a
kiosk outside it. dcmtk's echoscu/storescu/findscu/getscu and a bash /dev/tcp
HL7 sender are the independent clients; then the dicom and hl7 workload types
are run and scored against their SLOs (the common scoring). The measured numbers are printed
(run with -s to see them).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from testbed.workloads import slo
from testbed.workloads.base import COMPLETION_MS, LATENCY_MS, THROUGHPUT_BPS
from traffic import dicom_study

from tests.helpers import built, run_workload

TOPO = """
name: pacs-his
nodes:
  - {name: s1, kind: switch}
  - {name: archive, kind: server, services: [pacs, his, lis]}
  - {name: dc-ws, kind: host}
  - {name: clinic-ws, kind: host}
  - {name: kiosk, kind: host}
links:
  - {endpoints: [archive, s1]}
  - {endpoints: [dc-ws, s1]}
  - {endpoints: [clinic-ws, s1], bw: 100Mbit}
  - {endpoints: [kiosk, s1]}
slices:
  - {name: imaging, sst: 1, sd: "000002", fiveqi: 8, members: [dc-ws, clinic-ws], services: [pacs, his, lis]}
  - {name: iot, sst: 3, sd: "000004", fiveqi: 9, members: [kiosk], services: []}
workloads:
  - {name: study-dc, type: dicom, from: [dc-ws], to: pacs, duration: 60s, study_size: 64m,
     slo: {completion_time: 30s, errors_max: 0}}
  - {name: study-clinic, type: dicom, from: [clinic-ws], to: pacs, duration: 60s, study_size: 64m,
     slo: {throughput_min: 50Mbit, completion_time: 15s, errors_max: 0}}
  - {name: study-kiosk, type: dicom, from: [kiosk], to: pacs, duration: 5s, study_size: 1m}
  - {name: adt-his, type: hl7, from: [clinic-ws], to: his, duration: 3s, rate_per_s: 20, messages: [ADT^A01],
     slo: {latency_p95: 50ms, loss_max: 0%, errors_max: 0}}
  - {name: lab-lis, type: hl7, from: [dc-ws, clinic-ws], to: lis, duration: 3s, rate_per_s: 20,
     messages: [ORM^O01, ORU^R01], slo: {latency_p95: 50ms, loss_max: 0%, errors_max: 0}}
"""

needs_dcmtk = pytest.mark.skipif(shutil.which("findscu") is None, reason="dcmtk is not installed (scripts/setup.sh)")


@pytest.fixture(scope="module")
def tb(tmp_path_factory):
    yield from built(TOPO, "pacs-his.yaml", tmp_path_factory)


def _run(tb, node: str, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return tb.node(node).run(argv, timeout=timeout)


@needs_dcmtk
def test_dcmtk_echo_store_find_get(tb, tmp_path):
    ip = tb.node("archive").ip
    p = dicom_study.plan("MR", 3 * 128 * 1024, patient_id="DCMTK-IT")
    files = []
    for i, ds in enumerate(dicom_study.instances(p)):
        files.append(str(tmp_path / f"mr{i}.dcm"))
        ds.save_as(files[-1], enforce_file_format=True)
    r = _run(tb, "dc-ws", ["echoscu", "-v", "-aec", "PACS", ip, "104"])
    assert r.returncode == 0 and "Received Echo Response (Success)" in r.stdout + r.stderr, r.stderr
    r = _run(tb, "dc-ws", ["storescu", "-v", "-aec", "PACS", ip, "104", *files])
    assert r.returncode == 0 and (r.stdout + r.stderr).count("Received Store Response (Success)") == 3, r.stderr
    r = _run(tb, "dc-ws", ["findscu", "-v", "-S", "-aec", "PACS", "-k", "QueryRetrieveLevel=STUDY",
                           "-k", "PatientID=DCMTK-IT", "-k", "StudyInstanceUID", "-k", "ModalitiesInStudy",
                           "-k", "NumberOfStudyRelatedInstances", ip, "104"])
    out = r.stdout + r.stderr
    assert r.returncode == 0 and p.study_uid in out and "MR" in out, out
    assert "(0020,1208) IS [3 ]" in out, out  # NumberOfStudyRelatedInstances
    dest = tmp_path / "got"
    dest.mkdir()
    r = _run(tb, "dc-ws", ["getscu", "-aec", "PACS", "-S", "-od", str(dest), "-k", "QueryRetrieveLevel=STUDY",
                           "-k", f"StudyInstanceUID={p.study_uid}", ip, "104"])
    assert r.returncode == 0, r.stderr
    assert len(list(dest.iterdir())) == 3
    # the kiosk is outside the imaging slice: no association at all
    r = _run(tb, "kiosk", ["echoscu", "-to", "3", "-aec", "PACS", ip, "104"], timeout=30)
    assert r.returncode != 0


def _bash_mllp(tb, node: str, port: int, control: str, msg_type: str = "ADT^A01") -> str:
    """One HL7 message sent by bash's /dev/tcp (no HL7 library on this side), the ACK it read back."""
    msg = f"MSH|^~\\\\&|BASH|CLINIC|HIS|XTCH|20260101120000||{msg_type}|{control}|P|2.5\\rPID|1||P77^^^XTCH^MR\\r"
    script = (f"exec 3<>/dev/tcp/{tb.node('archive').ip}/{port} || exit 3; printf '\\x0b{msg}\\x1c\\r' >&3; "
              "IFS= read -r -d $'\\x1c' -t 5 ack <&3; printf '%s' \"$ack\" | tr '\\r' '\\n'")
    r = _run(tb, node, ["timeout", "8", "bash", "-c", script], timeout=20)
    return r.stdout


def test_hl7_from_a_raw_socket(tb):
    out = _bash_mllp(tb, "clinic-ws", 2575, "BASH0001")
    assert "MSA|AA|BASH0001" in out and "|HIS|" in out, out
    out = _bash_mllp(tb, "dc-ws", 2576, "BASH0002", "ORU^R01")
    assert "MSA|AA|BASH0002" in out and "|LIS|" in out, out
    assert "MSA|" not in _bash_mllp(tb, "kiosk", 2575, "BASH0003")  # outside the slice


def _report(w, measured) -> None:
    for m in measured:
        t = m.info.get("transfers", [])
        print(f"\n{w.name} {m.src} -> {m.dst}: errors={m.errors}")
        for x in t:
            print(f"  {x['op']:5s} {x['instances']} instances, {x['bytes'] / 2**20:.1f} MiB in {x['ms']:.0f} ms "
                  f"= {x['bytes'] * 8 / x['ms'] / 1e3:.1f} Mbit/s (association set-up {x['setup_ms']:.1f} ms)")
        lat = sorted(m.samples.get(LATENCY_MS, []))
        if lat:
            print(f"  latency n={len(lat)} p50={slo.percentile(lat, 50):.2f} ms p95={slo.percentile(lat, 95):.2f} ms "
                  f"max={lat[-1]:.2f} ms " + " ".join(f"{k}={v}" for k, v in m.info.items()
                                                       if k in ("echo_ms", "find_ms", "acks")))


def test_dicom_study_over_an_unlimited_and_a_100_mbit_link(tb):
    w, measured, verdicts = run_workload(tb, "study-dc")
    _report(w, measured)
    assert all(c.status == "pass" for c in verdicts), [(c.name, c.detail) for c in verdicts]
    (m,) = measured
    assert len(m.samples[COMPLETION_MS]) == 2 and m.received == m.sent
    fast = m.samples[THROUGHPUT_BPS]

    w, measured, verdicts = run_workload(tb, "study-clinic")
    _report(w, measured)
    assert all(c.status == "pass" for c in verdicts), [(c.name, c.detail) for c in verdicts]
    (m,) = measured
    store, got = m.info["transfers"]
    assert store["ok"] == got["ok"] == store["instances"] == 128
    slow = m.samples[THROUGHPUT_BPS]
    assert all(50e6 < bps < 100e6 for bps in slow), slow  # the link's 100 Mbit/s caps the transfer
    assert max(fast) > 100e6, (fast, slow)  # while the unlimited link is not capped there


def test_dicom_outside_the_slice_fails_within_its_time(tb):
    w, measured, verdicts = run_workload(tb, "study-kiosk")
    (m,) = measured
    assert m.received == 0 and any("association" in e for e in m.errors), m.errors
    assert m.seconds < 5 + 30 and [c.status for c in verdicts] == ["fail"]


def test_hl7_workloads_his_and_lis(tb):
    for name, pairs in (("adt-his", 1), ("lab-lis", 2)):
        w, measured, verdicts = run_workload(tb, name)
        _report(w, measured)
        assert len(measured) == pairs
        assert all(c.status == "pass" for c in verdicts), [(c.name, c.detail) for c in verdicts]
        for m in measured:
            assert m.sent == m.received == 60 and m.info["acks"] == {"CA": 60}  # accept ACKs (MSH-15 AL, MSH-16 NE)


def test_pacs_keeps_what_it_stored_on_disk(tb):
    data = Path(tb.manifest.dir) / "data" / "archive" / "pacs" / "studies"
    assert len(list(data.iterdir())) >= 2  # one per dicom workload source (and dcmtk's study)
    assert os.path.getsize(next(data.glob("*/*.dcm"))) > 0
    for svc in ("pacs", "his", "lis"):  # the servers' own logs: one line per association/connection, no crash
        log = (Path(tb.manifest.dir) / "daemons" / f"archive-{svc}.log").read_text()
        assert "Traceback" not in log and len(log.splitlines()) < 100, log[-2000:]
