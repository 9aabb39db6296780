"""Reachability: every intended pair of nodes can talk, measured with real pings.

"Intended" comes from the slice policy (testbed.slicing.policy): each member to
each node offering a service its slice allows, gNBs to UPFs; without slices, every host to every service
provider (or every other host when nobody offers services). Pings for all
sources run concurrently, one small shell loop per source node, each warmed up
(the userspace datapath drops the very first packets of a fresh port).
"""
from __future__ import annotations

import re
import subprocess
import time
from collections import defaultdict

from testbed.checks.result import CheckResult
from testbed.topology.model import Topology
from testbed.slicing.policy import compile_policy

_RTT = re.compile(r"= [\d.]+/([\d.]+)/([\d.]+)/")

# per target: warm up (up to 5 tries of 2 s: a loaded 2-core machine can take a
# second to move the first packets through a fresh userspace datapath), then 3
# timed pings at 0.2 s.
_SCRIPT = """
for t in {targets}; do
  ok=1
  for i in 1 2 3 4 5; do if ping -n -c1 -W2 -q "$t" >/dev/null 2>&1; then ok=0; break; fi; done
  if [ $ok -eq 0 ]; then out=$(ping -n -c3 -i0.2 -W2 -q "$t" 2>&1 | tail -1); else out=unreachable; fi
  echo "RESULT $t $ok $out"
done
"""


def intended_pairs(topo: Topology) -> list[tuple[str, str]]:
    """Pairs the policy grants (with slices), else every host to every service provider."""
    if topo.slices:
        return compile_policy(topo).pairs()
    providers = [n.name for n in topo.nodes if n.services]
    hosts = [n.name for n in topo.hosts]
    return [(h, t) for h in hosts for t in (providers or hosts) if t != h]


def check_reachability(tb, pairs: list[tuple[str, str]] | None = None, timeout: float = 120.0) -> list[CheckResult]:
    """Ping every pair concurrently; one CheckResult per pair with its RTT."""
    pairs = intended_pairs(tb.topo) if pairs is None else pairs
    by_src: dict[str, list[str]] = defaultdict(list)
    for s, d in pairs:
        by_src[s].append(d)
    t0 = time.monotonic()
    procs = {}
    for src, dsts in by_src.items():
        ips = " ".join(tb.node(d).ip for d in dsts)
        procs[src] = tb.node(src).popen(["sh", "-c", _SCRIPT.format(targets=ips)],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ip_name = {tb.node(n).ip: n for s, d in pairs for n in (s, d)}
    results: list[CheckResult] = []
    for src, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=max(1.0, timeout - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        seen = set()
        for line in out.splitlines():
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[0] != "RESULT":
                continue
            dst = ip_name.get(parts[1], parts[1])
            seen.add(dst)
            m = _RTT.search(line)
            metrics = {"rtt_avg_ms": float(m.group(1)), "rtt_max_ms": float(m.group(2))} if m else {}
            ok = parts[2] == "0"
            results.append(CheckResult("reachability", f"{src} -> {dst}", "pass" if ok else "fail",
                                       f"rtt {metrics['rtt_avg_ms']:.2f} ms" if metrics else "no reply",
                                       metrics))
        for dst in by_src[src]:
            if dst not in seen:
                results.append(CheckResult("reachability", f"{src} -> {dst}", "fail", "timed out"))
    for r in results:
        r.seconds = time.monotonic() - t0
    return results
