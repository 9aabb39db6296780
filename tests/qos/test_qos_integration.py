"""Priority queues, measured: the clinical slice keeps its latency budget while the imaging slice
saturates the clinic's shared uplink, and it does not when the same file turns the queues off.

Two sites over one 20 Mbit/s uplink. An imaging workstation (imaging slice, 5QI 8: AF11) pushes
iperf3 TCP to the PACS across it for a bounded time; meanwhile the doctor's tablet (clinical
slice, 5QI 80: AF31, a 10 ms one-way budget) pings the EMR with the ping workload, and the run's
own workload step judges the slice against its budget. Without queues every frame waits behind
the bulk in one FIFO (on the userspace datapath that FIFO is bounded by ovs-vswitchd's shared
AF_PACKET send buffer, about 87 full frames: 50 ms at 20 Mbit/s); with them the AF31 frames
overtake it.
"""
from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from testbed.engine.testbed import Testbed
from testbed.events import Emitter
from testbed.runner import run_workloads
from testbed.topology.loader import parse_text
from testbed.workloads.slo import percentile

from tests.helpers import leftovers

pytestmark = pytest.mark.integration

UPLINK = "20Mbit"
BUDGET_MS = 10.0  # 5QI 80's packet delay budget
PING_S = 8  # 400 pings: a scheduler stall of ovs-vswitchd on a busy host (~100 ms, ~5 pings) stays under 2%
LOAD_S = PING_S + 8  # iperf3 outlasts the pings (warm-up, start-up); it stops by itself

TOPO = """
name: qos-uplink
defaults:
  addressing: {{pool: 10.77.0.0/24}}
  link: {{qos: {qos}}}
sites:
  - {{name: dc, type: datacentre}}
  - {{name: clinic, type: clinic, uplink: {{bw: {uplink}}}}}
nodes:
  - {{name: core, kind: switch, site: dc}}
  # services of their own (no service server is started for them): iperf3 serves the bulk port
  - {{name: emr, kind: host, site: dc, services: [{{name: emr-api, port: 8081}}]}}
  - {{name: pacs, kind: host, site: dc, services: [{{name: bulk, port: 5201}}]}}
  - {{name: clinic-sw, kind: switch, site: clinic}}
  - {{name: dr-tablet, kind: host, site: clinic}}
  - {{name: imaging-ws, kind: host, site: clinic}}
links:
  - {{endpoints: [emr, core]}}
  - {{endpoints: [pacs, core]}}
  - {{endpoints: [clinic-sw, core]}}
  - {{endpoints: [dr-tablet, clinic-sw]}}
  - {{endpoints: [imaging-ws, clinic-sw]}}
slices:
  - {{name: clinical, sd: "000001", fiveqi: 80, members: [dr-tablet], services: [emr-api]}}
  - {{name: imaging, sd: "000002", fiveqi: 8, members: [imaging-ws], services: [bulk]}}
workloads:
  - {{name: tablet-emr-rtt, type: ping, from: [dr-tablet], to: emr, slice: clinical, duration: {ping}s,
     interval: 20ms}}
"""


def _uplink_classes(tb: Testbed) -> dict[str, int]:
    """Octets sent per HTB class on the clinic switch's uplink port (its egress toward the data centre).

    Octets, not packets: with userspace TSO a TCP sender's segments may reach the queue as one frame
    of a few (TCP sizes them to about a millisecond of its rate), segmented after the queue."""
    ln = next(ln for ln in tb.layout.links if {ln.a, ln.b} == {"clinic-sw", "core"})
    intf = ln.intf_a if ln.a == "clinic-sw" else ln.intf_b
    out = subprocess.run(["tc", "-s", "class", "show", "dev", intf], capture_output=True, text=True).stdout
    # "class htb 5:30 parent 5:1 leaf 30: prio 2 ..." then " Sent 2940 bytes 30 pkt (dropped 0, ...)"
    return {m[1]: int(m[2]) for m in re.finditer(r"^class htb (\S+) .*\n Sent (\d+) bytes \d+ pkt", out, re.M)}


def _loaded_run(qos: bool) -> dict:
    """Build, saturate the uplink with imaging TCP, run the ping workload under it."""
    topo = parse_text(TOPO.format(qos=str(qos).lower(), uplink=UPLINK, ping=PING_S), "qos-uplink.yaml")
    with Testbed(topo) as tb:
        got: dict = {"run_id": tb.run_id}
        pacs = tb.node("pacs")
        server = pacs.popen(["timeout", str(LOAD_S + 10), "iperf3", "-s", "-1", "-p", "5201"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = None
        try:
            deadline = time.monotonic() + 10
            while pacs.run(["sh", "-c", "ss -Hltn 'sport = :5201' | grep -q ."]).returncode != 0:
                assert time.monotonic() < deadline, "iperf3 did not listen"
                time.sleep(0.1)
            client = tb.node("imaging-ws").popen(
                ["timeout", str(LOAD_S + 10), "iperf3", "-c", pacs.ip, "-p", "5201", "-P", "4", "-t", str(LOAD_S),
                 "-J"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(2)  # TCP fills the queue
            assert client.poll() is None, client.communicate()[0]
            got["checks"] = {c.name: c for c in run_workloads(tb, Emitter(None))}
            got["rtt"] = tb.measurements[-1]["samples"]["latency_ms"]
            got["loss"] = tb.measurements[-1]["summary"].get("loss_max")
            got["classes"] = _uplink_classes(tb)
            out, _ = client.communicate(timeout=LOAD_S + 15)
            got["imaging_bps"] = json.loads(out)["end"]["sum_received"]["bits_per_second"]
        finally:
            for proc in (client, server):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
    return got


@pytest.mark.parametrize("qos", [True, False], ids=["queues", "no-queues"])
def test_clinical_slice_keeps_its_budget_only_with_queues(network, state_dir, qos):
    got = _loaded_run(qos)
    assert leftovers(got["run_id"], state_dir) == []
    rtts = got["rtt"]
    p95 = percentile(rtts, 95)
    print(f"qos={qos}: {len(rtts)} RTTs, p50 {percentile(rtts, 50):.2f} p95 {p95:.2f} max {max(rtts):.2f} ms, "
          f"loss {got['loss']}%; imaging {got['imaging_bps'] / 1e6:.1f} Mbit/s; uplink classes {got['classes']}")
    assert got["imaging_bps"] >= 15e6  # the imaging slice saturates the uplink either way (it borrows it all)
    verdict = got["checks"]["clinical: latency budget"]
    if qos:
        assert got["classes"]["5:30"] >= 64 * len(rtts)  # the echo requests (64 octets or more each) went through AF3x ...
        assert got["classes"]["5:50"] > 10 * 1500 * len(rtts)  # ... the bulk through AF1x
        assert p95 <= BUDGET_MS, rtts  # the whole round trip within the one-way budget
        assert verdict.status == "pass", verdict.detail
    else:
        assert set(got["classes"]) == {"5:1"}  # one class, one FIFO
        assert p95 > 2 * BUDGET_MS, rtts  # not even half of the round trip fits
        assert verdict.status == "fail", verdict.detail
