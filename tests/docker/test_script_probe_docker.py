"""A security tester's probe script in a container node: the script, kept outside the repository,
is staged into the run directory (what a container sees) and runs with Scapy inside the container."""
from __future__ import annotations

import shutil

from testbed.engine.testbed import Testbed
from testbed.probe.script import run_script_probes

from tests.helpers import REPO, leftovers

from .conftest import HERE

PROBES = """
probes:
  - {name: from-container, type: script, script: syn.py, from: [vdi-01], to: [tablet], expect: arrive}
"""


def test_script_probe_runs_inside_a_container_node(tmp_path, state_dir):
    # Outside the repository (which containers see bind-mounted): only the run directory carries it.
    shutil.copy(REPO / "topologies" / "probes" / "syn-from-service-port.py", tmp_path / "syn.py")
    topo = tmp_path / "one-docker-script.yaml"
    topo.write_text((HERE / "one-docker.yaml").read_text() + PROBES)
    with Testbed.from_file(topo) as tb:
        rid = tb.run_id
        (c,) = run_script_probes(tb)
    assert leftovers(rid, state_dir) == []
    assert (c.status, c.metrics["verdict"]) == ("pass", "arrived"), c.detail
    assert c.metrics["frames_sent"] == 6
    assert {f["sport"] for f in c.metrics["sent"]} == {4172}  # vdi-01's own service port, read from TESTBED_HOSTS
