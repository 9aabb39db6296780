"""The emr and iot workload types without a network: their keys, their targets, the agent's report."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from testbed.errors import TopologyError
from testbed.runner import check_workloads
from testbed.topology.loader import parse_text
from testbed.workloads import params_of
from testbed.workloads.agents import Job, last_json
from testbed.workloads.httpagent import Endpoint, endpoints, measurement
from testbed.workloads.base import LATENCY_MS

BASE = """\
name: http-types
nodes:
  - {name: sw, kind: switch}
  - {name: emr-a, kind: server, services: [emr]}
  - {name: emr-b, kind: server, services: [{name: emr, port: 9443, proto: tcp}, oa]}
  - {name: pay-1, kind: server, services: [payment, oa]}
  - {name: term, kind: host}
links:
  - {endpoints: [emr-a, sw]}
  - {endpoints: [emr-b, sw]}
  - {endpoints: [pay-1, sw]}
  - {endpoints: [term, sw]}
"""


def topo(*entries: str):
    text = BASE + ("workloads:\n" + "".join(f"  - {e}\n" for e in entries) if entries else "")
    return parse_text(text, "http-types.yaml")


def test_defaults_and_own_keys():
    t = topo("{name: e, type: emr, from: [term], to: emr}",
             "{name: e2, type: emr, from: [term], to: emr, rate_per_s: 50, mix: {read: 1, post: 1}, timeout: 2s}",
             "{name: k, type: iot, from: [term], to: payment}",
             "{name: h, type: iot, from: [term], to: oa, request: heartbeat, interval: 30s}")
    check_workloads(t)
    e, e2, k, h = (params_of(w) for w in t.workloads)
    assert e.rate_per_s == 5 and e.mix == {"read": 50, "search": 30, "find": 10, "post": 10} and e.timeout == 5000
    assert e2.rate_per_s == 50 and e2.mix == {"read": 1, "post": 1} and e2.timeout == 2000
    assert k.request == "payment" and k.interval == 1000
    assert h.request == "heartbeat" and h.interval == 30000


@pytest.mark.parametrize("entry, where, msg", [
    ("{name: e, type: emr, from: [term], to: emr, mix: {write: 3}}", "mix.write", "'read'"),
    ("{name: e, type: emr, from: [term], to: emr, mix: {read: 0}}", "mix", "positive sum"),
    ("{name: e, type: emr, from: [term], to: emr, rate_per_s: 0}", "rate_per_s", "greater than 0"),
    ("{name: e, type: emr, from: [term], to: emr, interval: 1s}", "interval", "unknown key"),
    ("{name: k, type: iot, from: [term], to: payment, request: refund}", "request", "'payment'"),
    ("{name: k, type: iot, from: [term], to: payment, interval: 1ms}", "interval", "greater than or equal"),
])
def test_bad_keys_are_located(entry, where, msg):
    with pytest.raises(TopologyError) as exc:
        check_workloads(topo(entry))
    text = str(exc.value)
    assert f"workloads[0].{where}" in text and msg in text and "http-types.yaml:14" in text, text


def test_endpoints_by_service_and_by_node():
    t = topo()
    tb = SimpleNamespace(topo=t)
    # a service name: every node offering it, on that node's own port
    assert endpoints(tb, "emr", ("emr",)) == [("emr-a", Endpoint("emr-a", "emr", 443, True)),
                                            ("emr-b", Endpoint("emr-b", "emr", 9443, True))]
    assert endpoints(tb, "emr-b", ("emr",)) == [("emr-b", Endpoint("emr-b", "emr", 9443, True))]
    # a node: its first service among those wanted, in the order wanted
    assert endpoints(tb, "pay-1", ("payment", "emr", "mec-cache", "oa")) == [
        ("pay-1", Endpoint("pay-1", "payment", 8443, True))]
    assert endpoints(tb, "emr-b", ("payment", "oa")) == [("emr-b", Endpoint("emr-b", "oa", 80, False))]
    assert endpoints(tb, "term", ("emr",)) == [("term", None)]  # offers nothing the type can talk to


def test_agent_report_becomes_a_measurement():
    ep = Endpoint("emr", "emr", 443, True)
    doc = {"latency_ms": [1.5, 2.5], "sent": 3, "received": 2, "errors": ["1.00s read: HTTP 503"],
           "ops": {"read": 3}, "status": {"200": 2, "503": 1}, "late": 0, "tls": "TLSv1.3 X", "seconds": 1.0}
    m = measurement("w", "emr", Job("term", "emr", [], result=last_json("noise\n" + json.dumps(doc) + "\n"),
                                    extra={"endpoint": ep}))
    assert m.samples[LATENCY_MS] == [1.5, 2.5] and (m.sent, m.received) == (3, 2)
    assert m.errors == ["1.00s read: HTTP 503"] and m.loss_pct == pytest.approx(100 / 3)
    assert m.info["status"] == {"200": 2, "503": 1} and m.info["https"] and m.info["tls"] == "TLSv1.3 X"
    bad = measurement("w", "emr", Job("term", "emr", [], error="exit 1: Traceback | ImportError: x",
                                      extra={"endpoint": ep}))
    assert bad.received == 0 and bad.errors == ["exit 1: Traceback | ImportError: x"] and bad.info["https"]
