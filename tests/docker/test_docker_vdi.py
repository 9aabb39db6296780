"""The remote display server in a container node (as the reference topology's VDI pool runs it):
started by the testbed from the bind-mounted code, reached over verified TLS from a namespace node."""
from __future__ import annotations

from testbed.engine.testbed import Testbed
from testbed.topology.loader import load
from testbed.topology.model import Workload
from testbed.workloads import slo, vdi
from testbed.workloads.base import LATENCY_MS, THROUGHPUT_BPS

from tests.helpers import leftovers

from .conftest import HERE


def test_vdi_session_to_a_container_desktop(state_dir):
    topo = load(HERE / "one-docker.yaml")
    with Testbed(topo) as tb:
        rid = tb.run_id
        assert tb.manifest.nodes["vdi-01"].runtime == "docker"
        ca = tb.manifest.dir / "pki" / "ca.crt"
        r = tb.node("tablet").run(["sh", "-c", f"echo | openssl s_client -connect vdi-01:4172 -servername vdi-01 "
                                               f"-verify_hostname vdi-01 -CAfile {ca} -verify_return_error"])
        assert r.returncode == 0 and "Verify return code: 0 (ok)" in r.stdout, r.stdout + r.stderr
        w = Workload.model_validate({"name": "desk", "type": "vdi", "from": ["tablet"], "to": "vdi",
                                     "duration": "4s"})
        [m] = vdi.TYPE.run(tb, w, vdi.VdiParams(mode="video"), print)
        print(f"vdi video to a container (0.5 CPU): {slo.mean(m.samples[THROUGHPUT_BPS]) / 1e6:.2f} Mbit/s, "
              f"input->update p95 {slo.percentile(m.samples[LATENCY_MS], 95):.2f} ms")
        assert m.dst == "vdi-01" and not m.errors and m.received == m.sent > 30
        assert 1.6e6 <= slo.mean(m.samples[THROUGHPUT_BPS]) <= 2.4e6
    assert leftovers(rid, state_dir) == []
