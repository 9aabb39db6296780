"""5G rows of `make bench`, each against its baseline measured in the same run.

1. iperf3 TCP from a UE to a server through the 5G path (UE -> uesimtun -> gNB
   -> GTP-U -> UPF -> server, all on the testbed's userspace switches under the
   slicing rules) against the same two nodes over the plain switch path (the
   same file with `ran: {backend: off}`: the UE is a plain host in the slice).
   Target: at least 0.7x.
2. UE registration + 2 PDU sessions for 200 UEs (UEs per second), memory per UE
   (target: under 20 MiB), and 500 UEs with 2 sessions each coming up on this
   machine (tests/tools/ranscale.py: every UE in its own namespace, as a testbed
   UE node).

    sudo .venv/bin/python -m bench.ran_bench [--seconds 5] [--ues 200,500]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TOPO = """
name: ran-bench
defaults: {addressing: {pool: 10.77.0.0/24}}
sites:
  - {name: dc, type: datacentre}
  - {name: clinic, type: clinic}
nodes:
  - {name: dc-sw, kind: switch, site: dc}
  - {name: pacs, kind: server, site: dc, services: [iperf]}
  - {name: upf, kind: upf, site: dc}
  - {name: clinic-sw, kind: switch, site: clinic}
  - {name: gnb, kind: gnb, site: clinic}
  - {name: tablet, kind: ue, site: clinic}
links:
  - {endpoints: [pacs, dc-sw]}
  - {endpoints: [upf, dc-sw]}
  - {endpoints: [clinic-sw, dc-sw]}
  - {endpoints: [gnb, clinic-sw]}
  - {endpoints: [tablet, clinic-sw]}
slices:
  - {name: imaging, sst: 1, sd: "000002", fiveqi: 8, members: [tablet], services: [iperf]}
ran: {backend: BACKEND}
"""


def iperf(backend: str, seconds: int) -> dict:
    """iperf3 TCP tablet -> pacs in a testbed of TOPO with the given RAN backend: bits/s received, path."""
    from testbed.engine.testbed import Testbed
    from testbed.topology.loader import parse_text

    with Testbed(parse_text(TOPO.replace("BACKEND", backend), "ran-bench.yaml")) as tb:
        dst = str(tb.layout.ips["pacs"].ip)
        route = tb.node("tablet").run(["ip", "route", "get", dst]).stdout.split("\n")[0]
        t0, c0 = time.monotonic(), _daemon_cpu_s()
        r = tb.node("tablet").run(["iperf3", "-c", dst, "-t", str(seconds), "-J"], timeout=seconds + 60)
        share = (_daemon_cpu_s() - c0) / (time.monotonic() - t0)
        data = json.loads(r.stdout or "{}")
        if "end" not in data:
            raise SystemExit(f"iperf3 ({backend}) failed: {data.get('error', r.stderr[-300:])}")
        return {"bps": float(data["end"]["sum_received"]["bits_per_second"]),
                "retransmits": data["end"]["sum_sent"].get("retransmits"), "route": route, "switch_cpu": share}


def _daemon_cpu_s() -> float:
    """CPU seconds ovs-vswitchd has used so far: its datapath thread is the one the two paths share."""
    try:
        pid = int(Path("/var/run/openvswitch/ovs-vswitchd.pid").read_text())
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def switch_bound(plain: dict, five_g: dict) -> str:
    """Why the ratio is what it is: the switch daemon's CPU per Mbit/s on each path, and the most the 5G path
    could carry with the daemon's one datapath thread at a whole core, against the plain path's figure."""
    per_plain = plain["switch_cpu"] / plain["bps"] * 1e6
    per_5g = five_g["switch_cpu"] / five_g["bps"] * 1e6
    cap = 1 / per_5g * 1e6 if per_5g > 0 else float("nan")
    return (f"ovs-vswitchd: {plain['switch_cpu']:.0%} of a core on the plain path, {five_g['switch_cpu']:.0%} on the "
            f"5G path; {per_5g / per_plain:.2f}x its CPU per bit on the 5G path (more switch crossings per "
            f"packet); with its datapath thread at a whole core the 5G path carries at most "
            f"{cap / 1e6:.0f} Mbit/s, {cap / plain['bps']:.2f}x the plain path's figure here")


def throughput_row(seconds: int) -> bool:
    """The 5G path against the plain path as the testbed builds it (userspace TSO where the daemon runs it),
    then, for the record, against the plain path in MTU frames (TESTBED_TSO=0): the baseline of issue 9."""
    plain = iperf("off", seconds)
    five_g = iperf("builtin", seconds)
    ratio = five_g["bps"] / plain["bps"]
    print("## iperf3 TCP UE -> server: the 5G path against the plain switch path (same nodes, same run)")
    print(f"plain switch path ({plain['route'].strip()}): {plain['bps'] / 1e6:8.1f} Mbit/s")
    print(f"5G path           ({five_g['route'].strip()}): {five_g['bps'] / 1e6:8.1f} Mbit/s "
          f"(retransmits {five_g['retransmits']})")
    print(f"ratio {ratio:.2f} (target >= 0.7: {'met' if ratio >= 0.7 else 'NOT met'})", flush=True)
    from testbed import platform

    if platform.userspace_tso()[0]:
        os.environ["TESTBED_TSO"] = "0"
        try:
            mtu = iperf("off", seconds)
        finally:
            del os.environ["TESTBED_TSO"]
        print(f"plain switch path in MTU frames (TESTBED_TSO=0): {mtu['bps'] / 1e6:8.1f} Mbit/s; "
              f"the 5G path against it: {five_g['bps'] / mtu['bps']:.2f}", flush=True)
        print(switch_bound(mtu, five_g), flush=True)
    return ratio >= 0.7


def scale_row(n: int) -> dict:
    r = subprocess.run([sys.executable, "-m", "tests.tools.ranscale", str(n)], capture_output=True, text=True,
                       timeout=900, cwd=REPO)
    if r.returncode != 0:
        raise SystemExit(f"ranscale {n} failed:\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--ues", default="200,500")
    ap.add_argument("--skip-throughput", action="store_true")
    a = ap.parse_args(argv)
    ok = True
    if not a.skip_throughput:
        ok &= throughput_row(a.seconds)
    print("\n## UEs registering with 2 PDU sessions each (one namespace per UE)")
    for n in (int(x) for x in a.ues.split(",") if x):
        s = scale_row(n)
        rss, pss = s["ue_rss_kib_median"] / 1024, s["ue_pss_kib_median"] / 1024
        ok &= bool(s["all_sessions_up"]) and rss < 20
        print(f"{n:>4} UEs: {'all' if s['all_sessions_up'] else 'NOT all'} {2 * n} sessions up in {s['all_up_s']} s "
              f"= {s['ues_per_s']} UEs/s; registration median {s['registration_ms_median']} ms, session set-up "
              f"median {s['session_ms_median']} ms; memory per UE {rss:.1f} MiB RSS, {pss:.1f} MiB PSS "
              f"(target < 20 MiB)", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
