"""The configured one-way delay between a slice member and its services, along the controller's path (no root)."""
from __future__ import annotations

import pytest

from testbed.errors import TopologyError
from testbed.openflow.layout import make_layout
from testbed.openflow.wiring import toward
from testbed.topology.loader import parse_text
from testbed.topology.resolve import Routes
from testbed.topology.validate import MAX_BUDGET_PROBLEMS

# A ring with a redundant cross link and equal-hop alternatives, so that tie-breaking matters.
RING = """
name: ring
sites:
  - {name: dc, type: datacentre}
  - {name: county, type: county-hospital, uplink: {delay: 8ms}}
  - {name: clinic, type: clinic, uplink: {delay: 5ms}}
defaults: {link: {delay: 1ms}}
nodes:
  - {name: core, kind: switch, site: dc}
  - {name: emr, kind: server, site: dc, services: [emr]}
  - {name: agg-a, kind: switch}
  - {name: agg-b, kind: switch}
  - {name: county-sw, kind: switch, site: county}
  - {name: clinic-sw, kind: switch, site: clinic}
  - {name: ward, kind: ue, site: county}
  - {name: tab, kind: ue, site: clinic}
links:
  - {endpoints: [emr, core], delay: 0ms}
  - {endpoints: [agg-a, core], delay: 2ms}
  - {endpoints: [agg-b, core], delay: 3ms}
  - {endpoints: [agg-a, agg-b]}
  - {endpoints: [county-sw, agg-b]}
  - {endpoints: [county-sw, agg-a]}
  - {endpoints: [clinic-sw, agg-a], a_to_b: {delay: 9ms}}
  - {endpoints: [ward, county-sw], delay: 4ms}
  - {endpoints: [tab, clinic-sw], delay: 4ms}
"""


def _controller_path(topo, src: str, dst: str) -> list[str]:
    """The switches a frame src -> dst crosses by the controller's own trees (openflow.wiring.toward)."""
    lay = make_layout(topo, "0abc")
    w = lay.wiring()
    home_src, home_dst = w.hosts[src][0], w.hosts[dst][0]
    port_peer = {(sw, port): peer for sw, ports in w.ports.items() for port, peer, _pp in ports}
    tree = toward(w, home_dst)
    path, sw = [home_src], home_src
    while sw != home_dst:
        sw = port_peer[(sw, tree[sw])]
        path.append(sw)
    return path


def test_paths_are_the_controllers_including_its_tie_breaks():
    topo = parse_text(RING, "ring.yaml")
    routes = Routes(topo)
    hosts = [n.name for n in topo.hosts]
    for src in hosts:
        for dst in hosts:
            if src != dst:
                _delay, nodes = routes.delay_ms(src, dst)
                assert nodes[1:-1] == _controller_path(topo, src, dst), (src, dst)
    # county-sw reaches core in two hops either way. Trees grow from the destination, breadth first:
    # core's lower port leads to agg-a, which reaches county-sw first, so that way wins toward emr
    # (though county-sw's own first link is to agg-b), and toward ward it is the other way round.
    assert routes.delay_ms("ward", "emr")[1] == ["ward", "county-sw", "agg-a", "core", "emr"]
    assert routes.delay_ms("emr", "ward")[1] == ["emr", "core", "agg-b", "county-sw", "ward"]


def test_delay_layers_defaults_and_takes_each_direction_on_its_own():
    routes = Routes(parse_text(RING, "ring.yaml"))
    # 4 (own link) + 8 (the county's uplink) + 2 (agg-a - core, its own) + 0 (emr's, its own over the default)
    assert routes.delay_ms("ward", "emr")[0] == 14.0
    assert routes.delay_ms("emr", "ward")[0] == 3 + 8 + 4  # back via agg-b
    # tab: clinic-sw -> agg-a is overridden (a_to_b: 9 ms), the other direction keeps the uplink's 5 ms
    assert routes.delay_ms("tab", "emr")[0] == 4 + 9 + 2
    assert routes.delay_ms("emr", "tab")[0] == 2 + 5 + 4
    delay, nodes = routes.delay_ms("ward", "tab")
    assert nodes == ["ward", "county-sw", "agg-a", "clinic-sw", "tab"]  # across the ring, not through core
    assert delay == 4 + 8 + 5 + 4


def test_validate_flags_only_pairs_over_budget_in_their_worse_direction():
    text = RING + """
slices:
  - {name: rounds, members: [ward, tab], services: [emr], latency_budget: 15ms}
  - {name: tight, sd: "000002", members: [ward, tab], services: [emr], latency_budget: 14ms}
"""
    with pytest.raises(TopologyError) as info:
        parse_text(text, "ring.yaml")
    problems = info.value.problems
    assert [p.field for p in problems] == ["slices[1].latency_budget"] * 2
    assert sorted(p.message for p in problems) == [
        "tab <-> emr (emr): 15 ms configured one-way delay along tab - clinic-sw - agg-a - core - emr "
        "exceeds the slice's 14 ms latency budget",
        "ward <-> emr (emr): 15 ms configured one-way delay along emr - core - agg-b - county-sw - ward "
        "exceeds the slice's 14 ms latency budget"]


def test_many_pairs_over_budget_are_summed_up():
    """Seven clinic terminals over a 5QI 85 budget (5 ms): the worst five, then a count."""
    clinic = RING.replace("  - {name: tab, kind: ue, site: clinic}\n", "".join(
        f"  - {{name: tab{i}, kind: ue, site: clinic}}\n" for i in range(7))).replace(
        "  - {endpoints: [tab, clinic-sw], delay: 4ms}\n", "".join(
            f"  - {{endpoints: [tab{i}, clinic-sw]}}\n" for i in range(7)))
    with pytest.raises(TopologyError) as info:
        parse_text(clinic + """
slices:
  - {name: tight, fiveqi: 85, members: ["site:clinic"], services: [emr]}
""", "ring.yaml")
    problems = info.value.problems
    assert all(p.field == "slices[0].fiveqi" for p in problems)
    assert len(problems) == MAX_BUDGET_PROBLEMS + 1
    assert "5QI 85's packet delay budget" in problems[0].message
    assert problems[-1].message == ("and 2 more member -> service pairs exceed the slice's 5 ms budget "
                                    "(5QI 85's packet delay budget)")
