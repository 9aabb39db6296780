"""An SLO that cannot be met fails the run and names itself; the same file without the squeeze passes.

A clinic's doctor stores a small study to the PACS. The imaging slice's meter is squeezed to 4 Mbit/s,
so the 20 Mbit/s throughput SLO cannot hold: `testbed run` must exit 1 and name the workload and the
SLO, with the measured figure in report.json (and raw samples to recompute it). The control run,
identical but for the slice rate, passes the same SLO.
"""
from __future__ import annotations

import json

import pytest

from tests.helpers import cli

pytestmark = pytest.mark.integration

TOPO = """\
name: slo-squeeze
defaults: {{addressing: {{pool: 10.77.0.0/24}}}}
nodes:
  - {{name: core, kind: switch}}
  - {{name: pacs, kind: server, services: [pacs]}}
  - {{name: tablet, kind: ue}}
links:
  - {{endpoints: [pacs, core]}}
  - {{endpoints: [tablet, core], delay: 2ms}}
slices:
  - {{name: imaging, fiveqi: 8, members: [tablet], services: [pacs]{rate}}}
workloads:
  - {{name: small-study, type: dicom, from: [tablet], to: pacs, slice: imaging, duration: 40s, study_size: 2m,
     slo: {{throughput_min: 20Mbit}}}}
"""


def _run(tmp_path, rate: str):
    path = tmp_path / f"topo{len(rate)}.yaml"
    path.write_text(TOPO.format(rate=rate))
    out = tmp_path / f"report{len(rate)}"
    r = cli("run", "--no-isolation", "--report-dir", str(out), str(path), check=False, timeout=240)
    return r, json.loads((out / "report.json").read_text())


def test_unmeetable_slo_fails_the_run_naming_it(state_dir, tmp_path):
    r, rep = _run(tmp_path, ", rate: 4Mbit")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "small-study" in r.stdout and "throughput" in r.stdout
    [verdict] = [c for c in rep["checks"] if c["kind"] == "workload" and c["name"].endswith("throughput_min")]
    assert verdict["status"] == "fail"
    assert 0 < verdict["metrics"]["measured"] <= 4.5e6  # the meter holds the transfer to the slice rate
    [m] = [m for m in rep["measurements"] if m["workload"] == "small-study"]
    assert m["samples"]["throughput_bps"] and max(m["samples"]["throughput_bps"]) <= 4.5e6


def test_same_slo_passes_without_the_squeeze(state_dir, tmp_path):
    r, rep = _run(tmp_path, "")
    assert r.returncode == 0, r.stdout + r.stderr
    [verdict] = [c for c in rep["checks"] if c["kind"] == "workload" and c["name"].endswith("throughput_min")]
    assert verdict["status"] == "pass" and verdict["metrics"]["measured"] > 20e6
