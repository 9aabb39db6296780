"""Throughput cost of the stateful slice rules (as root, from the repository root:
`python -m bench.stateful_bench [--seconds 5] [--rounds 2]`).

iperf3 TCP from a slice member to the iperf service its slice grants, across
three switches (ward edge -> core -> data-centre edge, so conntrack runs at both
edges), with the slicing app (stateful rules: ct() at both edges, commit,
+est checks, DSCP, no meter) and with allow-all (plain MAC forwarding, the
baseline) on one running network: the controller app is swapped between
measurements (same bridges, ports and namespaces, other rules), in pairs
measured back to back (A B, B A, A B...: both sides of a pair meet the same
machine load); the result is the median of the pairs' ratios.
Target: stateful / allow-all >= 0.9.
Prints the row, then one JSON line with the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

TOPOLOGY = """\
name: bench-stateful
defaults:
  addressing: {pool: 10.98.0.0/24}
nodes:
  - {name: ward-sw, kind: switch}
  - {name: core, kind: switch}
  - {name: dc-sw, kind: switch}
  - {name: tablet, kind: host}
  - {name: srv, kind: server, services: [iperf]}
links:
  - {endpoints: [tablet, ward-sw]}
  - {endpoints: [ward-sw, core]}
  - {endpoints: [core, dc-sw]}
  - {endpoints: [srv, dc-sw]}
slices:
  - {name: imaging, sst: 1, fiveqi: 9, members: [tablet], services: [iperf]}
"""
TARGET = 0.9


APPS = {"slicing": "controllers.slicing", "allow-all": "controllers.allow_all"}


def iperf(tb, seconds: int) -> float:
    """bits/s of one iperf3 TCP run tablet -> srv."""
    tab, srv = tb.node("tablet"), tb.node("srv")
    deadline = time.monotonic() + 20
    while tab.run(["ping", "-n", "-c1", "-W1", srv.ip], timeout=5).returncode != 0:
        if time.monotonic() > deadline:
            raise SystemExit("the tablet does not reach the server")
    for _ in range(3):  # the server may still be starting
        r = tab.run(["iperf3", "-c", srv.ip, "-p", "5201", "-t", str(seconds), "-J"], timeout=seconds + 30)
        if r.returncode == 0:
            return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"]
        time.sleep(1)
    raise SystemExit(f"iperf3 failed: {r.stdout[-500:]} {r.stderr[-500:]}")


def use_app(tb, app: str) -> None:
    """Swap the controller app on the running network: same bridges, ports and namespaces, other rules."""
    if tb.manifest.controller["app"] != APPS[app]:
        tb.manifest.controller["app"] = APPS[app]
        tb.restart_controller(timeout=60)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=5, help="iperf3 duration per measurement")
    ap.add_argument("--rounds", type=int, default=4, help="A/B pairs (the median of their ratios is reported)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, Open vSwitch)", file=sys.stderr)
        return 2
    from testbed.engine.testbed import Testbed
    from testbed.topology.loader import parse_text

    runs: dict[str, list[float]] = {"slicing": [], "allow-all": []}
    with Testbed(parse_text(TOPOLOGY, "bench-stateful.yaml"), controller_app="slicing") as tb:
        for i in range(a.rounds):
            for app in (("slicing", "allow-all") if i % 2 == 0 else ("allow-all", "slicing")):
                use_app(tb, app)
                runs[app].append(iperf(tb, a.seconds))
    ratios = [s / b for s, b in zip(runs["slicing"], runs["allow-all"])]
    ratio = statistics.median(ratios)
    stateful, base = (statistics.median(runs[k]) for k in ("slicing", "allow-all"))
    print(f"{'stateful slice rules':<21} {stateful / 1e9:>5.2f} Gbit/s | {'allow-all':<9} {base / 1e9:>5.2f} Gbit/s "
          f"| ratio {ratio:.2f} (median of {len(ratios)} pairs: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"target >= {TARGET}: {'met' if ratio >= TARGET else 'NOT met'})")
    print(json.dumps({"stateful_bps": runs["slicing"], "allow_all_bps": runs["allow-all"], "ratios": ratios,
                      "ratio": ratio}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
