"""The dicom and hl7 workload types' own keys, and how an agent's document becomes scored samples."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from testbed.topology.loader import parse_text
from testbed.topology.model import Slo
from testbed.workloads import params_of, slo, validate
from testbed.workloads.agents import Job
from testbed.workloads.base import COMPLETION_MS, LATENCY_MS, THROUGHPUT_BPS
from testbed.workloads.dicom import measurement
from testbed.workloads.hl7 import target_service

TOPO = """
name: wl
nodes:
  - {name: s1, kind: switch}
  - {name: archive, kind: server, services: [pacs, his, {name: lis, port: 3576}]}
  - {name: ws, kind: host}
links:
  - {endpoints: [archive, s1]}
  - {endpoints: [ws, s1]}
workloads:
  - {name: ct, type: dicom, from: [ws], to: pacs}
  - {name: mg, type: dicom, from: [ws], to: archive, modality: MG, study_size: 160m, instance_size: 40MiB,
     studies: 2, retrieve: false}
  - {name: adt, type: hl7, from: [ws], to: archive}
  - {name: lab, type: hl7, from: [ws], to: archive, service: lis, rate_per_s: 50, messages: [ORM^O01, ORU^R01],
     timeout: 2s}
"""


def test_defaults_and_sizes():
    topo = parse_text(TOPO, "wl.yaml")
    assert validate(topo) == []
    ct, mg, adt, lab = (params_of(w) for w in topo.workloads)
    assert (ct.modality, ct.study_size, ct.instance_size, ct.studies, ct.retrieve) == ("CT", 64 * 2**20, None, 1, True)
    assert (mg.study_size, mg.instance_size, mg.studies, mg.retrieve) == (160 * 2**20, 40 * 2**20, 2, False)
    assert (adt.rate_per_s, adt.messages, adt.timeout) == (10.0, ["ADT^A01", "ORU^R01"], 5000.0)
    assert (lab.rate_per_s, lab.timeout) == (50.0, 2000.0)
    w_adt, w_lab = topo.workloads[2:]
    assert target_service(topo, w_adt, adt, "archive") == "his"  # a node offering both: his first
    assert target_service(topo, w_lab, lab, "archive") == "lis"


@pytest.mark.parametrize("entry,field", [
    ("{name: x, type: dicom, from: [ws], to: pacs, modality: PET}", "modality"),
    ("{name: x, type: dicom, from: [ws], to: pacs, study_size: 5g}", "study_size"),
    ("{name: x, type: dicom, from: [ws], to: pacs, instance_size: 10}", "instance_size"),
    ("{name: x, type: dicom, from: [ws], to: pacs, study_szie: 1m}", "study_szie"),
    ("{name: x, type: hl7, from: [ws], to: his, messages: [ADT^A99]}", "messages"),
    ("{name: x, type: hl7, from: [ws], to: his, messages: []}", "messages"),
    ("{name: x, type: hl7, from: [ws], to: his, rate_per_s: 0}", "rate_per_s"),
])
def test_bad_keys_are_located(entry, field):
    text = TOPO.split("workloads:")[0] + "workloads:\n  - " + entry + "\n"
    problems = validate(parse_text(text, "bad.yaml"))
    assert problems and field in str(problems[0]), problems


DOC = {"echo_ms": [4.0, 5.0], "find_ms": [6.0, 7.0], "sent": 9, "received": 9, "errors": [],
       "transfers": [{"op": "store", "study": "1.2", "instances": 2, "ok": 2, "bytes": 12_500_000, "ms": 1000.0,
                      "setup_ms": 50.0},
                     {"op": "get", "study": "1.2", "instances": 2, "ok": 2, "bytes": 12_500_000, "ms": 2000.0,
                      "setup_ms": 40.0}]}


def test_agent_document_to_samples_and_verdicts():
    w = SimpleNamespace(name="ct")
    m = measurement(w, "dicom", Job("ws", "archive", [], result=DOC, seconds=3.5))
    assert m.samples[LATENCY_MS] == [4.0, 5.0, 6.0, 7.0]
    assert m.samples[COMPLETION_MS] == [1000.0, 2000.0]
    assert m.samples[THROUGHPUT_BPS] == [100e6, 50e6]
    passing = slo.verdicts(m, Slo(throughput_min=70_000_000, completion_time=2500, errors_max=0))
    assert [c.status for c in passing] == ["pass", "pass", "pass"]
    failing = slo.verdicts(m, Slo(throughput_min=80_000_000, completion_time=1500))
    assert [c.status for c in failing] == ["fail", "fail"]


def test_a_failed_agent_is_an_error_with_no_samples():
    m = measurement(SimpleNamespace(name="ct"), "dicom",
                    Job("ws", "archive", [], error="no result within 35s", seconds=35.0))
    assert m.errors == ["no result within 35s"] and not m.samples
    assert [c.status for c in slo.verdicts(m, Slo(completion_time=1000))] == ["fail"]
