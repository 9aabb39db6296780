"""reachability: can each source reach each target at all? Real pings, all sources concurrently.

The runner uses it for every intended pair of the slice policy (each member to
each node offering a service its slice allows, gNBs to UPFs; without slices,
every host to every service provider) and for the file's reachability probes;
a file may also declare it as a workload. One small shell loop per source
node, its targets TARGETS_AT_ONCE at a time, each warmed up first (the userspace datapath drops the very
first packets of a fresh port), then three timed pings.
"""
from __future__ import annotations

import re
import subprocess
import time
from collections import defaultdict

from testbed.checks.result import CheckResult
from testbed.ran.network import run_policy
from testbed.ran.plan import RanPlan
from testbed.topology.model import Topology
from testbed.workloads.base import LATENCY_MS, Measurement, NoParams
from testbed.workloads.targets import resolve

_RTT = re.compile(r"= [\d.]+/([\d.]+)/([\d.]+)/")

# per target: warm up (up to 5 tries of 2 s: a loaded 2-core machine can take a
# second to move the first packets through a fresh userspace datapath), then 3
# timed pings at 0.2 s; a source's targets TARGETS_AT_ONCE at a time (one after
# the other, a source with 15 services took 8 s of the reference run's 14.5).
TARGETS_AT_ONCE = 8
_SCRIPT = """
n=0
for t in {targets}; do
  (
    ok=1
    for i in 1 2 3 4 5; do if ping -n -c1 -W2 -q "$t" >/dev/null 2>&1; then ok=0; break; fi; done
    if [ $ok -eq 0 ]; then out=$(ping -n -c3 -i0.2 -W2 -q "$t" 2>&1 | tail -1); else out=unreachable; fi
    echo "RESULT $t $ok $out"
  ) &
  n=$((n + 1)); if [ $n -ge {at_once} ]; then wait; n=0; fi
done
wait
"""


def intended_pairs(topo: Topology, ran: RanPlan | None = None) -> list[tuple[str, str]]:
    """Pairs the run's policy grants (with slices; the 5G path's own flows too), else every host to
    every service provider."""
    if topo.slices:
        return run_policy(topo, ran).pairs()
    providers = [n.name for n in topo.nodes if n.services]
    hosts = [n.name for n in topo.hosts]
    return [(h, t) for h in hosts for t in (providers or hosts) if t != h]


MAX_SOURCES = 100  # sources pinging at once: a thousand at once is a storm of ARP and first-packet upcalls


def ping_pairs(tb, pairs: list[tuple[str, str]], workload: str = "reachability",
               timeout: float = 120.0) -> dict[tuple[str, str], Measurement]:
    """Ping every pair, up to MAX_SOURCES sources concurrently (waves of them; `timeout` per wave);
    (src, dst) -> Measurement (received 1 when reached, its RTTs)."""
    by_src: dict[str, list[str]] = defaultdict(list)
    for s, d in pairs:
        by_src[s].append(d)
    t0 = time.monotonic()
    srcs = list(by_src)
    out: dict[tuple[str, str], Measurement] = {}
    for i in range(0, len(srcs), MAX_SOURCES):
        out.update(_wave(tb, {s: by_src[s] for s in srcs[i:i + MAX_SOURCES]}, workload, timeout))
    for m in out.values():
        m.seconds = time.monotonic() - t0
    return out


def _wave(tb, by_src: dict[str, list[str]], workload: str, timeout: float) -> dict[tuple[str, str], Measurement]:
    t0 = time.monotonic()
    procs = {src: tb.node(src).popen(["sh", "-c", _SCRIPT.format(targets=" ".join(tb.node(d).ip for d in dsts),
                                                                        at_once=TARGETS_AT_ONCE)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for src, dsts in by_src.items()}
    ip_name = {tb.node(n).ip: n for s, ds in by_src.items() for n in (s, *ds)}
    out: dict[tuple[str, str], Measurement] = {}
    for src, proc in procs.items():
        try:
            text, _ = proc.communicate(timeout=max(1.0, timeout - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            proc.kill()
            text, _ = proc.communicate()
        for line in text.splitlines():
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[0] != "RESULT":
                continue
            dst = ip_name.get(parts[1], parts[1])
            m = Measurement(workload, "reachability", src, dst, sent=1)
            rtt = _RTT.search(line)
            if parts[2] == "0":
                m.received = 1
                if rtt:
                    m.samples[LATENCY_MS] = [float(rtt.group(1))]
                    m.info["rtt_max_ms"] = float(rtt.group(2))
            else:
                m.errors.append("no reply")
            out[(src, dst)] = m
        for dst in by_src[src]:
            out.setdefault((src, dst), Measurement(workload, "reachability", src, dst, sent=1, errors=["timed out"]))
    return out


def as_check(m: Measurement, kind: str = "reachability") -> CheckResult:
    """The report row of one pair: reached (with its RTT) or not."""
    lat = m.samples.get(LATENCY_MS)
    metrics = {"rtt_avg_ms": lat[0], "rtt_max_ms": m.info.get("rtt_max_ms")} if lat else {}
    ok = m.received > 0
    detail = (f"rtt {lat[0]:.2f} ms" if lat else "reached") if ok else (m.errors[0] if m.errors else "no reply")
    return CheckResult(kind, f"{m.src} -> {m.dst}", "pass" if ok else "fail", detail, metrics, m.seconds)


def check_reachability(tb, pairs: list[tuple[str, str]] | None = None, timeout: float = 120.0) -> list[CheckResult]:
    """Ping every pair concurrently; one CheckResult per pair with its RTT."""
    pairs = intended_pairs(tb.topo, getattr(tb, "ran", None)) if pairs is None else pairs
    got = ping_pairs(tb, pairs, timeout=timeout)
    return [as_check(got[p]) for p in dict.fromkeys(pairs)]


class Reachability:
    name = "reachability"
    summary = "each source reaches each target (ping): pass or fail, with the RTT"
    Params = NoParams
    agent = None

    def run(self, tb, w, params, emit) -> list[Measurement]:
        pairs = [(s, t) for s in w.src for t in resolve(tb.topo, w.dst) if t != s]
        return list(ping_pairs(tb, pairs, workload=w.name, timeout=max(30.0, w.duration / 1000 + 60)).values())


TYPE = Reachability()
