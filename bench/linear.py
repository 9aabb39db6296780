"""One timed up+down of a linear topology (N switches in a chain, one host each).

Run as a subprocess by bench/run.py, once with --mode testbed and once with
--mode mininet (a plain Mininet script with the same switch type and an os-ken
controller it waits for), so both start from the same clean process state.
Prints one JSON line: {"up_s": ..., "down_s": ...}.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def linear_yaml(n: int) -> str:
    lines = [f"name: linear-{n}", "defaults: {addressing: {pool: 10.99.0.0/16}}", "nodes:"]
    lines += [f"  - {{name: s{i}, kind: switch}}" for i in range(1, n + 1)]
    lines += [f"  - {{name: h{i}, kind: host}}" for i in range(1, n + 1)]
    lines.append("links:")
    lines += [f"  - {{endpoints: [h{i}, s{i}]}}" for i in range(1, n + 1)]
    lines += [f"  - {{endpoints: [s{i}, s{i + 1}]}}" for i in range(1, n)]
    return "\n".join(lines) + "\n"


def run_testbed(n: int) -> dict:
    from testbed.engine.testbed import Testbed
    from testbed.topology.loader import parse_text

    tb = Testbed(parse_text(linear_yaml(n), f"linear-{n}.yaml"))
    t0 = time.perf_counter()
    tb.up()
    t1 = time.perf_counter()
    tb.down()
    t2 = time.perf_counter()
    return {"up_s": t1 - t0, "down_s": t2 - t1}


def run_mininet(n: int) -> dict:
    from functools import partial

    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.node import OVSSwitch, RemoteController
    from mininet.topo import LinearTopo

    from testbed.engine.controller import free_port

    setLogLevel("critical")
    Mininet.inited = True  # neither side changes host-wide sysctls (the testbed only grows the ARP table, for large alliances)
    with tempfile.TemporaryDirectory() as d:
        plan = Path(d) / "plan.json"
        plan.write_text('{"switches": {}}')
        port = free_port()
        t0 = time.perf_counter()
        # The same controller process type the testbed uses, so both pay its start-up.
        ctrl = subprocess.Popen([sys.executable, "-m", "testbed.engine.osken_main", "--port", str(port),
                                 "controllers.forwarding"], env={"TESTBED_PLAN": str(plan),
                                 "TESTBED_STATUS": str(Path(d) / "st.json"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        switch = partial(OVSSwitch, datapath="user", protocols="OpenFlow13", batch=True)
        net = Mininet(topo=LinearTopo(n), switch=switch, controller=partial(RemoteController, port=port),
                      waitConnected=False)
        net.start()
        net.waitConnected(timeout=120)
        t1 = time.perf_counter()
        net.stop()
        ctrl.terminate()
        ctrl.wait()
        t2 = time.perf_counter()
    return {"up_s": t1 - t0, "down_s": t2 - t1}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("testbed", "mininet"), required=True)
    ap.add_argument("--n", type=int, required=True)
    a = ap.parse_args()
    print(json.dumps((run_testbed if a.mode == "testbed" else run_mininet)(a.n)))
