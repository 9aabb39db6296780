"""The PACS and HIS servers in a container node, and the study/HL7 clients in another: the programs run
from the bind-mounted venv and code, bind the container's own address, and keep their data in the run dir."""
from __future__ import annotations

from pathlib import Path

from testbed import Testbed
from testbed.topology.loader import parse_text

from tests.helpers import leftovers, run_workload

TOPO = """
name: pacs-docker
defaults:
  addressing: {pool: 10.79.0.0/24}
nodes:
  - {name: sw, kind: switch}
  - {name: archive, kind: server, runtime: docker, memory: 512m, services: [pacs, his]}
  - {name: tablet, kind: host, runtime: docker, memory: 512m}
  - {name: ws, kind: host}
links:
  - {endpoints: [archive, sw]}
  - {endpoints: [tablet, sw]}
  - {endpoints: [ws, sw]}
workloads:
  - {name: study, type: dicom, from: [tablet, ws], to: pacs, duration: 60s, study_size: 16m,
     slo: {completion_time: 30s, errors_max: 0}}
  - {name: adt, type: hl7, from: [tablet, ws], to: his, duration: 2s, rate_per_s: 10,
     slo: {latency_p95: 50ms, loss_max: 0%, errors_max: 0}}
"""


def test_pacs_and_his_in_containers(state_dir):
    with Testbed(parse_text(TOPO, "pacs-docker.yaml")) as tb:
        rid = tb.run_id
        for w in tb.topo.workloads:
            _, measured, verdicts = run_workload(tb, w.name)
            assert {m.src for m in measured} == {"tablet", "ws"}
            assert all(c.status == "pass" for c in verdicts), [(c.name, c.detail) for c in verdicts]
        stored = Path(tb.manifest.dir) / "data" / "archive" / "pacs" / "studies"
        assert len(list(stored.iterdir())) == 2  # one study per source, on the host's run dir
    assert leftovers(rid, state_dir) == []
