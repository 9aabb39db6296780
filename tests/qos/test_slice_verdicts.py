"""Per-slice latency budget verdicts from workload samples (no root): p98 of one-way delay, per flow."""
from __future__ import annotations

from testbed.topology.loader import parse_text
from testbed.workloads.base import LATENCY_MS, THROUGHPUT_BPS, Measurement
from testbed.workloads.slo import PDB_PERCENTILE, one_way_ms, slice_verdicts

TOPO = parse_text("""
name: v
nodes:
  - {name: sw, kind: switch}
  - {name: emr, kind: server, services: [emr]}
  - {name: a, kind: host}
  - {name: b, kind: host}
links:
  - {endpoints: [emr, sw]}
  - {endpoints: [a, sw]}
  - {endpoints: [b, sw]}
slices:
  - {name: clinical, sd: "000001", fiveqi: 7, members: [a, b], services: [emr], latency_budget: 20ms}
  - {name: bulk, sd: "000002", fiveqi: 8, members: [a], services: [emr]}
  - {name: idle, sd: "000003", members: [b], services: [emr]}
""", "v.yaml")


def m(workload: str, src: str, samples: list[float], slice_: str | None = "clinical", **info) -> Measurement:
    out = Measurement(workload, "ping", src, "emr", samples={LATENCY_MS: samples}, sent=len(samples),
                      received=len(samples), seconds=3.0, info=info)
    out.slice = slice_
    return out


def by_name(results):
    return {r.name: r for r in results}


def test_round_trips_count_half_one_way_samples_count_whole():
    assert one_way_ms(m("w", "a", [10.0, 30.0])) == [5.0, 15.0]
    assert one_way_ms(m("w", "a", [10.0, 30.0], one_way=True)) == [10.0, 30.0]


def test_p98_of_each_flow_against_the_budget():
    # 100 RTTs: 97 of 10 ms, 3 of 100 ms. p98 (nearest rank: the 98th) is 100 ms RTT -> 50 ms one way.
    late = m("rtt", "a", [10.0] * 97 + [100.0] * 3)
    # 2 late of 100: the 98th value is 10 ms RTT -> 5 ms one way: within the budget
    fine = m("rtt", "b", [10.0] * 98 + [100.0] * 2)
    res = by_name(slice_verdicts(TOPO, [fine]))["clinical: latency budget"]
    assert (res.kind, res.status, res.metrics["measured"], res.metrics["budget_ms"]) == ("slice", "pass", 5.0, 20.0)
    assert res.metrics["percentile"] == PDB_PERCENTILE == 98
    res = by_name(slice_verdicts(TOPO, [fine, late]))["clinical: latency budget"]
    assert res.status == "fail"  # judged by its worst flow, not the pooled samples (pooled p98 would be 5 ms)
    assert res.metrics["worst_flow"] == "rtt: a -> emr" and res.metrics["measured"] == 50.0
    assert res.metrics["p98_one_way_ms"] == {"rtt: b -> emr": 5.0, "rtt: a -> emr": 50.0}
    assert res.metrics["margin"] == -30.0 and "50.00 ms" in res.detail and "20.00 ms" in res.detail


def test_budget_defaults_to_the_5qi_packet_delay_budget():
    res = by_name(slice_verdicts(TOPO, [m("bulk", "a", [500.0] * 10, "bulk")]))["bulk: latency budget"]
    assert res.metrics["budget_ms"] == 300.0 and res.metrics["budget_from"] == "5QI 8"
    assert res.status == "pass"  # 250 ms one way
    res = by_name(slice_verdicts(TOPO, [m("bulk", "a", [250.0] * 10, "bulk", one_way=True)]))["bulk: latency budget"]
    assert res.status == "pass" and res.metrics["basis"] == {"bulk: a -> emr": "one way"}
    res = by_name(slice_verdicts(TOPO, [m("bulk", "a", [301.0] * 10, "bulk", one_way=True)]))["bulk: latency budget"]
    assert res.status == "fail"


def test_only_slices_with_latency_samples_are_judged():
    no_latency = Measurement("tput", "iperf", "a", "emr", samples={THROUGHPUT_BPS: [1e6]})
    no_latency.slice = "bulk"
    unsliced = m("rtt", "a", [1000.0], slice_=None)
    no_reply = m("rtt", "b", [], "idle")
    assert slice_verdicts(TOPO, [no_latency, unsliced, no_reply]) == []
    assert list(by_name(slice_verdicts(TOPO, [m("rtt", "a", [1.0]), unsliced]))) == ["clinical: latency budget"]
