"""The priority queues a rate-limited switch port gets: classes, order, bounds, tc lines (no root)."""
from __future__ import annotations

import re

import pytest
from mininet.link import TCIntf

from testbed.impair.backends import REGISTRY
from testbed.impair.qos import (CLASSES, DEFAULT, MAX_QUEUE, MIN_QUEUE, floor_rate, queue_limit, tc_batch,
                                traffic_class)
from testbed.impair.qoslink import QosIntf
from testbed.openflow.layout import make_layout
from testbed.slicing.flows import FIVEQI_DSCP
from testbed.topology.loader import parse_text
from testbed.topology.model import FIVEQI_PDB_MS

# RFC 4594 / IR.34 names of the DSCPs the slices mark, and the class each must land in.
EXPECTED = {46: "EF", 40: "EF", 34: "AF4x", 36: "AF4x", 38: "AF4x", 26: "AF3x", 18: "AF2x", 20: "AF2x",
            10: "AF1x", 14: "AF1x", 0: "BE", 48: "EF", 56: "EF", 32: "AF4x", 8: "AF1x"}


def rank(name: str) -> int:
    return [c.name for c in CLASSES].index(name)


@pytest.mark.parametrize(("dscp", "name"), sorted(EXPECTED.items()))
def test_dscp_lands_in_its_class(dscp, name):
    assert traffic_class(dscp).name == name


def test_every_dscp_has_exactly_one_class_and_bad_ones_are_refused():
    assert all(traffic_class(d) in CLASSES for d in range(64))
    precedences = [p for c in CLASSES for p in c.precedences]
    assert sorted(precedences) == list(range(8))
    with pytest.raises(ValueError):
        traffic_class(64)


def test_5qi_priority_follows_the_marking():
    """A 5QI marked higher (EF > AF4x > ... > BE) is never queued behind one marked lower, and the
    delay-critical 5QIs (PDB <= 10 ms) are in the top class."""
    for q, dscp in FIVEQI_DSCP.items():
        if FIVEQI_PDB_MS[q] <= 10 and dscp == 46:
            assert traffic_class(dscp).name == "EF", q
    assert rank(traffic_class(FIVEQI_DSCP[7]).name) < rank(traffic_class(FIVEQI_DSCP[8]).name)  # desktops > imaging
    assert rank(traffic_class(FIVEQI_DSCP[8]).name) < rank(traffic_class(FIVEQI_DSCP[9]).name)
    assert traffic_class(FIVEQI_DSCP[9]) is DEFAULT


def test_queue_limits_are_bounded_in_frames_and_time():
    assert queue_limit(1_000_000) == MIN_QUEUE  # 20 ms at 1 Mbit/s is under 2 frames: the floor holds
    assert queue_limit(10_000_000) == 17  # 20 ms at 10 Mbit/s: 25000 bytes, 16.5 frames of 1514
    assert queue_limit(50_000_000) == queue_limit(10_000_000_000) == MAX_QUEUE
    assert queue_limit(10_000_000, mtu=9000) == MIN_QUEUE  # jumbo frames: fewer of them
    assert MAX_QUEUE <= 32  # under the shared AF_PACKET send buffer (~87 full frames), see qos.py


def _parse(lines: list[str]) -> dict:
    classes = {m["id"]: m for line in lines if (m := re.match(
        r"class add dev eth9 parent (?P<parent>\S+) classid (?P<id>\S+) htb rate (?P<rate>\d+)bit "
        r"ceil (?P<ceil>\d+)bit.*?(?:prio (?P<prio>\d))?", line))}
    fifos = {m[1]: int(m[2]) for line in lines if (m := re.match(r"qdisc add dev eth9 parent (\S+) handle \w+: "
                                                                  r"pfifo limit (\d+)$", line))}
    filters = {m[1]: m[2] for line in lines if (m := re.match(r"filter add dev eth9 parent 5: protocol ip prio 1 "
                                                               r"u32 match ip tos (0x[0-9a-f]+) 0xe0 flowid (\S+)$",
                                                               line))}
    return {"classes": classes, "fifos": fifos, "filters": filters}


def test_tc_lines_build_priority_classes_that_borrow_the_whole_rate():
    lines = tc_batch("eth9", 50_000_000)
    assert lines[0] == f"qdisc replace dev eth9 root handle 5: htb default {DEFAULT.minor:x}"
    got = _parse(lines)
    parent = got["classes"]["5:1"]
    assert parent["parent"] == "5:" and parent["rate"] == parent["ceil"] == "50000000"
    leaves = [got["classes"][f"5:{c.minor:x}"] for c in CLASSES]
    assert [int(re.search(r"prio (\d)", ln).group(1)) for ln in lines if "parent 5:1 classid" in ln] == [0, 1, 2, 3, 4, 5]
    for leaf in leaves:
        assert leaf["parent"] == "5:1" and leaf["ceil"] == "50000000"  # borrows everything when the others idle
        assert int(leaf["rate"]) == floor_rate(50_000_000) == 500_000
    assert sum(int(leaf["rate"]) for leaf in leaves) <= 50_000_000
    assert got["fifos"] == {f"5:{c.minor:x}": MAX_QUEUE for c in CLASSES}  # every class bounded
    # each non-zero precedence has one filter, to its class; precedence 0 goes to the default class
    assert {int(tos, 16) >> 5: flow for tos, flow in got["filters"].items()} == {
        p: f"5:{c.minor:x}" for c in CLASSES if c is not DEFAULT for p in c.precedences}
    assert lines[-1].endswith(f"protocol arp prio 2 u32 match u32 0 0 flowid 5:{CLASSES[0].minor:x}")


def test_tc_lines_refuse_a_zero_rate():
    with pytest.raises(ValueError):
        tc_batch("eth9", 0)


TOPO = """
name: q
defaults: {link: {mtu: 1400}}
sites:
  - {name: dc, type: datacentre}
  - {name: far, type: clinic, uplink: {bw: 20Mbit, qos: false}}
  - {name: near, type: clinic, uplink: {bw: 30Mbit}}
nodes:
  - {name: core, kind: switch, site: dc}
  - {name: far-sw, kind: switch, site: far}
  - {name: near-sw, kind: switch, site: near}
  - {name: h, kind: host, site: near}
  - {name: core2, kind: switch, site: dc}
links:
  - {endpoints: [far-sw, core]}
  - {endpoints: [near-sw, core]}
  - {endpoints: [h, near-sw], bw: 10Mbit, qos: false}
  - {endpoints: [core2, core]}
"""


@pytest.mark.parametrize("backend", sorted(REGISTRY))
def test_wiring_asks_for_queues_where_a_rate_is_and_qos_is_not_off(backend):
    """`qos` layers like every link setting (link > site uplink > defaults); on by default."""
    lay = make_layout(parse_text(TOPO, "q.yaml"), "0abc")
    wiring = [REGISTRY[backend]().wiring(ln, "0abc") for ln in lay.links]
    assert all(issubclass(w.get("cls1", QosIntf), TCIntf) for w in wiring)
    assert wiring[0]["params1"] == {"bw": 20.0, "qos": False, "queue_mtu": 1400}  # the site's uplink says off
    assert wiring[1]["params2"] == {"bw": 30.0, "qos": True, "queue_mtu": 1400}
    assert wiring[2]["params1"]["qos"] is False  # the link itself says off
    assert "params1" not in wiring[3]  # no rate (inside the data centre), no shaping
