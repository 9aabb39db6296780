"""A hand-built RunReport over a small alliance: what a run writes, without root or a network.

Verdicts come from the real scoring (workloads.slo) on synthetic samples, and the
isolation rows carry the prober's names and metrics, so the writers see the shapes
they meet in a real run: a passing and a failing SLO, a throughput series, a LEAK
and a FALSE BLOCK in the matrix, a skipped workload.
"""
from __future__ import annotations

import random
from testbed.checks.result import CheckResult
from testbed.report.model import RunReport
from testbed.report.network import describe
from testbed.topology.loader import parse_text
from testbed.topology.model import Slo, Topology
from testbed.workloads import slo
from testbed.workloads.base import Measurement

# Its own copy of a small alliance (like topologies/minimal.yaml, which may grow): the tests count on it.
TOPOLOGY = """
name: minimal
description: One clinic reaching the tertiary hospital's EMR and PACS.
defaults: {addressing: {pool: 10.77.0.0/24}}
sites:
  - {name: xch-dc, type: datacentre}
  - {name: clinic-1, type: clinic, uplink: {bw: 100Mbit}}
nodes:
  - {name: core, kind: switch, site: xch-dc}
  - {name: emr, kind: server, site: xch-dc, services: [emr]}
  - {name: pacs, kind: server, site: xch-dc, services: [pacs]}
  - {name: clinic-sw, kind: switch, site: clinic-1}
  - {name: gnb-clinic, kind: gnb, site: clinic-1}
  - {name: dr-tablet-01, kind: ue, site: clinic-1}
  - {name: kiosk-01, kind: ue, site: clinic-1}
links:
  - {endpoints: [emr, core]}
  - {endpoints: [pacs, core]}
  - {endpoints: [clinic-sw, core]}
  - {endpoints: [gnb-clinic, clinic-sw]}
  - {endpoints: [dr-tablet-01, clinic-sw]}
  - {endpoints: [kiosk-01, clinic-sw]}
slices:
  - {name: clinical, sst: 1, sd: "000001", fiveqi: 7, members: [dr-tablet-01], services: [emr, pacs],
     latency_budget: 100ms}
  - {name: kiosk, sst: 3, sd: "000003", fiveqi: 9, members: [kiosk-01], services: [emr]}
workloads:
  - {name: tablet-emr-rtt, type: ping, from: [dr-tablet-01], to: emr, slice: clinical, duration: 3s,
     slo: {latency_p95: 50ms, jitter: 10ms, loss_max: 1%}}
"""


def topology() -> Topology:
    return parse_text(TOPOLOGY, "sample.yaml")


def _iso(src: str, dst: str, what: str, expect: str, verdict: str, kind: str = "isolation") -> CheckResult:
    status = "pass" if verdict == "pass" else "fail"
    detail = {"pass": "as intended", "LEAK": f"LEAK: captured at {dst}", "FALSE BLOCK": "FALSE BLOCK: not captured"}
    return CheckResult(kind, f"{src} -> {dst} {what} (expect {expect})", status, detail[verdict],
                       {"id": "0000002a", "category": "service", "expect": expect, "sent": "crafted tcp frame",
                        "captured_at": [dst] if verdict != "FALSE BLOCK" and expect == "fail" else [],
                        "verdict": verdict}, 1.5)


def measurements() -> list[Measurement]:
    rnd = random.Random(7)
    ping = Measurement("tablet-emr-rtt", "ping", "dr-tablet-01", "emr", slice="clinical", sent=60, received=60,
                       seconds=3.0, samples={"latency_ms": [round(2 + rnd.random() * 3 + (40 if i % 19 == 0 else 0), 3)
                                                            for i in range(60)]})
    dicom = Measurement("study-transfer", "dicom", "dr-tablet-01", "pacs", slice="clinical", sent=1, received=1,
                        seconds=10.0, info={"interval_s": 0.5},
                        samples={"throughput_bps": [rnd.uniform(30e6, 60e6) for _ in range(20)],
                                 "completion_ms": [9800.0]})
    return [ping, dicom]


SLOS = {"tablet-emr-rtt": Slo(latency_p95=50, jitter=10, loss_max=1),
        "study-transfer": Slo(throughput_min=50_000_000, completion_time=20_000)}


def sample_report() -> RunReport:
    topo = topology()
    rep = RunReport(topology="sample.yaml", name=topo.name, run_id="a1b2", started=1_764_000_000.0,
                    platform={"datapath": "netdev", "impairments": "userspace", "ovs": "ovs-vsctl (Open vSwitch) 3.1.0",
                              "controller": "controllers.slicing", "kernel": "6.1.0-test", "python": "3.11.2",
                              "os_ken": "4.2.2", "features": {"openvswitch_module": False, "netem": False, "sctp": False}},
                    timings={"up_s": 4.2, "checks_s": 12.5, "down_s": 1.1, "total_s": 18.0},
                    counts={"nodes": 7, "hosts": 5, "switches": 2, "links": 6, "slices": 2, "sites": 2},
                    **describe(topo))
    rep.checks += [CheckResult("reachability", "dr-tablet-01 -> emr", "pass", "reached", {"rtt_ms": 1.2}, 0.1)]
    rep.checks += [_iso("dr-tablet-01", "emr", "emr (tcp/443)", "pass", "pass"),
                   _iso("dr-tablet-01", "pacs", "pacs (tcp/104)", "pass", "FALSE BLOCK"),
                   _iso("kiosk-01", "pacs", "pacs (tcp/104)", "fail", "LEAK"),
                   _iso("kiosk-01", "emr", "emr (tcp/443)", "pass", "pass"),
                   _iso("kiosk-01", "dr-tablet-01", "icmp echo", "fail", "pass"),
                   _iso("emr", "kiosk-01", "icmp echo", "fail", "pass"),
                   _iso("dr-tablet-01", "emr", "tcp/22 (tcp/22)", "fail", "pass", kind="attack:forbidden-port"),
                   CheckResult("isolation", "delivery control", "pass", "60/60 crafted frames arrived", {}, 1.5)]
    for m in measurements():
        rep.measurements.append(m.to_dict() | {"summary": slo.summary(m)})
        rep.checks += slo.verdicts(m, SLOS[m.workload])
    rep.checks.append(CheckResult("slice", "clinical: latency budget", "pass",
                                  "p98 one-way 21.45 ms at worst, budget 100.00 ms",
                                  {"slice": "clinical", "budget_ms": 100.0, "percentile": 98.0,
                                   "worst_flow": "tablet-emr-rtt: dr-tablet-01 -> emr", "measured": 21.45,
                                   "margin": 78.55}, 3.0))
    rep.checks.append(CheckResult("workload", "kiosk-payments", "skip", "emr workloads are not implemented yet"))
    rep.network["workloads"].append({"name": "kiosk-payments", "type": "emr", "slice": "kiosk", "from": ["kiosk-01"],
                                     "to": "emr", "duration_ms": 5000.0, "slo": {"latency_p95": 200.0}})
    rep.warnings.append("impairments run in the userspace relay (no sch_netem)")
    return rep
