"""Bring your own Ryu app: a reactive L2 switch written for the Ryu API controls a run, unmodified.

controllers/examples/ryu_l2_switch.py imports only `ryu.*` and knows nothing of the
testbed. `testbed run` takes it from the topology file (`controller.app`, relative
to the file) and from `--controller-app` (relative to the current directory); every
host must reach every service provider through its learnt rules. The topology has
no slices, so the run's slicing checks (isolation matrix, attacks) do not apply.
"""
from __future__ import annotations

import json
import shutil

from tests.helpers import REPO, cli, leftovers

EXAMPLE = REPO / "controllers" / "examples" / "ryu_l2_switch.py"

TOPO = """\
name: byo-ryu
description: Two switches in a line, no slices, under a user's own Ryu app.
defaults: {{addressing: {{pool: 10.78.0.0/24}}}}
{controller}
nodes:
  - {{name: core, kind: switch}}
  - {{name: edge, kind: switch}}
  - {{name: emr, kind: server, services: [emr]}}
  - {{name: pacs, kind: server, services: [pacs]}}
  - {{name: tablet, kind: ue}}
  - {{name: desk, kind: host}}
links:
  - {{endpoints: [emr, core]}}
  - {{endpoints: [pacs, core]}}
  - {{endpoints: [edge, core]}}
  - {{endpoints: [tablet, edge]}}
  - {{endpoints: [desk, edge], delay: 1ms}}
"""


def _check(r, out, state_dir) -> dict:
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["platform"]["controller"].endswith("ryu_l2_switch.py")
    reach = [c for c in rep["checks"] if c["kind"] == "reachability"]
    # every host to every service provider: 2 terminals x 2 servers + the servers to each other
    assert len(reach) == 6 and all(c["status"] == "pass" for c in reach), reach
    assert {c["kind"] for c in rep["checks"]} == {"reachability"}  # no slices: no isolation matrix, no attacks
    assert rep["timings"]["controller_packet_in"] > 0  # reactive: it learnt from packet-ins
    assert leftovers(rep["run_id"], state_dir) == []
    return rep


def test_ryu_app_from_the_topology_file(state_dir, tmp_path):
    apps = tmp_path / "apps"
    apps.mkdir()
    shutil.copy(EXAMPLE, apps / "ryu_l2_switch.py")  # the user's file, byte for byte
    topo = tmp_path / "byo.yaml"
    topo.write_text(TOPO.format(controller="controller: {app: apps/ryu_l2_switch.py}"))
    out = tmp_path / "report"
    r = cli("run", "--report-dir", str(out), str(topo), check=False, timeout=180)
    _check(r, out, state_dir)


def test_ryu_app_from_the_command_line(state_dir, tmp_path):
    topo = tmp_path / "byo.yaml"
    topo.write_text(TOPO.format(controller=""))
    out = tmp_path / "report"
    # relative to the current directory (the repository: tests.helpers.cli runs there)
    r = cli("run", "--controller-app", "controllers/examples/ryu_l2_switch.py", "--report-dir", str(out), str(topo),
            check=False, timeout=180)
    _check(r, out, state_dir)
