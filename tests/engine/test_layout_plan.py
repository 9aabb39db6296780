"""Layout (names, ports, addresses) and the proactive forwarding plan, as pure functions.

The plan is checked by simulation: unicast frames are followed rule by rule through the
Wiring's real (port -> peer, peer port) map, and ARP broadcasts are flooded from every
host, so a loop, a black hole or a duplicate shows up without building anything.
"""
from __future__ import annotations

from collections import Counter, deque

import pytest

from testbed import naming
from testbed.openflow.layout import Layout, make_layout
from testbed.openflow.forwarding import BROADCAST, MIN_PREFIX, PRIO_BROADCAST, PRIO_UNICAST, forwarding_plan
from testbed.units import mac_to_int as mac_int
from testbed.openflow.wiring import Wiring
from testbed.topology.loader import load
from testbed.topology.model import Topology
from testbed.topology.source import Source
from testbed.topology.validate import validate


# A ring of four switches with a chord and two parallel links (a-b twice, c-d twice),
# hosts attached before and after the trunks so port numbers interleave.
RING = """\
name: ring
nodes:
  - {name: sw-a, kind: switch}
  - {name: sw-b, kind: switch}
  - {name: sw-c, kind: switch}
  - {name: sw-d, kind: switch}
  - {name: h-a1, kind: server, services: [emr]}
  - {name: h-a2, kind: ue}
  - {name: h-b1, kind: vdi}
  - {name: h-c1, kind: ue}
  - {name: h-d1, kind: host}
  - {name: h-d2, kind: mec}
links:
  - {endpoints: [h-a1, sw-a]}
  - {endpoints: [sw-a, sw-b]}
  - {endpoints: [sw-b, sw-c]}
  - {endpoints: [h-c1, sw-c]}
  - {endpoints: [sw-c, sw-d]}
  - {endpoints: [sw-d, sw-a]}
  - {endpoints: [sw-b, sw-a]}
  - {endpoints: [h-b1, sw-b]}
  - {endpoints: [sw-a, sw-c]}
  - {endpoints: [h-d1, sw-d]}
  - {endpoints: [sw-d, sw-c]}
  - {endpoints: [h-a2, sw-a]}
  - {endpoints: [h-d2, sw-d]}
"""


@pytest.fixture(scope="module")
def ring(tmp_path_factory) -> Topology:
    path = tmp_path_factory.mktemp("ring") / "ring.yaml"
    path.write_text(RING)
    return load(path)


@pytest.fixture(scope="module", params=["reference", "ring", "minimal"])
def layout(request, reference: Topology, ring: Topology, minimal: Topology) -> Layout:
    return make_layout({"reference": reference, "ring": ring, "minimal": minimal}[request.param], "3fa2")


# --- simulation helpers ----------------------------------------------------------------


def _port_map(w: Wiring) -> dict[str, dict[int, tuple[str, int | None]]]:
    out: dict[str, dict[int, tuple[str, int | None]]] = {}
    for sw, ports in w.ports.items():
        for port, peer, peer_port in ports:
            assert port not in out.setdefault(sw, {}), f"{sw} port {port} used twice"
            out[sw][port] = (peer, peer_port)
    return out


def _components(w: Wiring) -> list[set[str]]:
    """Switch-graph components (hosts are leaves)."""
    left, out = set(w.dpids), []
    while left:
        start = min(left)
        comp, todo = {start}, deque([start])
        while todo:
            for _p, peer in w.neighbours(todo.popleft()):
                if peer not in comp:
                    comp.add(peer)
                    todo.append(peer)
        out.append(comp)
        left -= comp
    return out


Index = dict[str, dict[tuple, list[int]]]  # dpid -> {("unicast", mac) | ("broadcast", in_port): outputs}


def _index(plan: dict[str, list[dict]], macs: list[str] | None = None) -> Index:
    """Look-up table of a plan; fails on two rules for the same match (ambiguous). A masked unicast rule
    (aggregated) is entered for each of `macs` (the wiring's hosts) it matches."""
    out: Index = {}
    for dp, flows in plan.items():
        table = out.setdefault(dp, {})
        for f in flows:
            m = f["match"]
            if set(m) == {"eth_dst"}:
                assert m["eth_dst"] != BROADCAST and f["priority"] == PRIO_UNICAST
                value, mask = (m["eth_dst"], "ff:ff:ff:ff:ff:ff") if isinstance(m["eth_dst"], str) else m["eth_dst"]
                assert mac_int(mask) >> (48 - MIN_PREFIX) == (1 << MIN_PREFIX) - 1  # never wider than an OUI
                keys = [("unicast", mac) for mac in (macs or [value])
                        if mac_int(mac) & mac_int(mask) == mac_int(value)]
            else:
                assert set(m) == {"in_port", "eth_dst"} and m["eth_dst"] == BROADCAST
                assert f["priority"] == PRIO_BROADCAST
                keys = [("broadcast", m["in_port"])]
            for key in keys:
                assert key not in table, f"two rules for {key} on {dp}"
                table[key] = [a["output"] for a in f["actions"]]
    return out


def _macs(w: Wiring) -> list[str]:
    return [mac for _h, (_s, _p, mac) in w.hosts.items()]


def _deliver_unicast(w: Wiring, idx: Index, start: str, host: str) -> list[str]:
    """Follow `host`'s unicast rules from switch `start`; return the switches visited."""
    ports = _port_map(w)
    _home, _port, mac = w.hosts[host]
    sw, path = start, [start]
    while True:
        outs = idx[w.dpids[sw]].get(("unicast", mac), [])
        assert len(outs) == 1, f"{sw} has no single unicast rule for {host} ({mac})"
        peer, peer_port = ports[sw][outs[0]]
        if peer not in w.dpids:
            assert peer == host, f"frame for {host} delivered to {peer} via {path}"
            return path
        assert peer_port is not None
        assert peer not in path, f"unicast loop for {host}: {path + [peer]}"
        sw = peer
        path.append(sw)


def _flood(w: Wiring, idx: Index, host: str) -> tuple[Counter, Counter]:
    """Send one ARP broadcast from `host`; count copies each host receives and switch visits."""
    ports = _port_map(w)
    home, port, _mac = w.hosts[host]
    received: Counter = Counter()
    visits: Counter = Counter()
    todo = deque([(home, port)])
    budget = 10 * (sum(len(p) for p in ports.values()) + 1)
    while todo:
        budget -= 1
        assert budget > 0, f"broadcast from {host} loops: {visits}"
        sw, in_port = todo.popleft()
        visits[sw] += 1
        outs = idx[w.dpids[sw]].get(("broadcast", in_port))
        if outs is None:
            continue  # dropped by the default rule
        assert in_port not in outs
        for out in outs:
            peer, peer_port = ports[sw][out]
            if peer in w.dpids:
                todo.append((peer, peer_port))
            else:
                received[peer] += 1
    return received, visits


def _check_plan(w: Wiring) -> None:
    plan = forwarding_plan(w)
    assert set(plan) == set(w.dpids.values())
    idx = _index(plan, _macs(w))
    comp_of = {sw: i for i, comp in enumerate(_components(w)) for sw in comp}
    for host, (home, _port, mac) in w.hosts.items():
        for sw in w.dpids:
            if comp_of[sw] != comp_of[home]:
                assert ("unicast", mac) not in idx[w.dpids[sw]], f"{sw} forwards to {host} in another component"
                continue
            path = _deliver_unicast(w, idx, sw, host)
            assert path[-1] == home
    for host, (home, _port, _mac) in w.hosts.items():
        received, visits = _flood(w, idx, host)
        others = {h for h, (sw, _p, _m) in w.hosts.items() if h != host and comp_of[sw] == comp_of[home]}
        assert host not in received, f"{host} hears its own broadcast"
        assert set(received) == others, f"broadcast from {host} missed {others - set(received)}"
        assert all(n == 1 for n in received.values()), f"duplicates from {host}: {received}"
        component = {sw for sw in w.dpids if comp_of[sw] == comp_of[home]}
        assert set(visits) == component and all(n == 1 for n in visits.values()), visits


# --- layout ----------------------------------------------------------------------------


def test_interface_names_fit_linux_limit(reference: Topology) -> None:
    lay = make_layout(reference, "ffff")
    names = [n for ln in lay.links for n in (ln.intf_a, ln.intf_b)] + list(lay.internal.values())
    too_long = [n for n in names if len(n) > 15]
    assert not too_long
    assert len(set(lay.internal.values())) == len(lay.internal)
    assert all(n.startswith(naming.run_prefix("ffff")) for n in names)
    assert set(lay.root_interfaces()) <= set(names)


def test_ports_unique_per_switch_and_numbered_from_one(layout: Layout) -> None:
    w = layout.wiring()
    for sw, ports in w.ports.items():
        numbers = [p for p, _peer, _pp in ports]
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), (sw, numbers)


def test_hosts_have_one_interface_eth0(layout: Layout) -> None:
    host_ends = [(ln.b, ln.port_b, ln.intf_b) if ln.a in layout.dpids else (ln.a, ln.port_a, ln.intf_a)
                 for ln in layout.links if not (ln.a in layout.dpids and ln.b in layout.dpids)]
    assert len({h for h, _p, _i in host_ends}) == len(host_ends) == len(layout.ips)
    assert all(p == 0 and i.endswith("-eth0") for _h, p, i in host_ends)


def test_trunk_ports_are_reciprocal(layout: Layout) -> None:
    w = layout.wiring()
    ports = _port_map(w)
    for sw, pm in ports.items():
        for port, (peer, peer_port) in pm.items():
            if peer in w.dpids:
                assert ports[peer][peer_port] == (sw, port)
            else:
                assert peer_port is None and w.hosts[peer][:2] == (sw, port)


def test_addresses_macs_dpids_unique(layout: Layout) -> None:
    assert len(set(layout.ips.values())) == len(layout.ips)
    assert len(set(layout.macs.values())) == len(layout.macs)
    assert set(layout.ips) == set(layout.macs)
    assert len(set(layout.dpids.values())) == len(layout.dpids)
    assert all(len(d) == 16 and int(d, 16) for d in layout.dpids.values())


def test_ring_has_loops_and_parallel_links(ring: Topology) -> None:
    w = make_layout(ring, "0001").wiring()
    trunks = Counter(frozenset((sw, peer)) for sw in w.dpids for _p, peer in w.neighbours(sw))
    assert trunks[frozenset(("sw-a", "sw-b"))] == 4  # two links, seen from both ends
    assert trunks[frozenset(("sw-c", "sw-d"))] == 4
    assert len(trunks) == 5  # a-b, b-c, c-d, d-a, a-c: cycles


# --- plan ------------------------------------------------------------------------------


def test_every_host_mac_has_a_unicast_rule_on_every_switch(layout: Layout) -> None:
    w = layout.wiring()
    idx = _index(forwarding_plan(w), _macs(w))
    for host, (_home, _port, mac) in w.hosts.items():
        for sw, dp in w.dpids.items():
            assert len(idx[dp].get(("unicast", mac), [])) == 1, f"{sw} cannot reach {host}"


def test_plan_delivers_unicast_and_broadcast_without_loops(layout: Layout) -> None:
    _check_plan(layout.wiring())


def test_plan_with_two_components_stays_inside_each() -> None:
    w = Wiring(dpids={"s1": "1", "s2": "2", "s3": "3"})
    w.ports = {
        "s1": [(1, "s2", 1), (2, "h1", None)],
        "s2": [(1, "s1", 1), (2, "h2", None)],
        "s3": [(1, "h3", None), (2, "h4", None)],
    }
    w.hosts = {"h1": ("s1", 2, "02:00:00:00:00:01"), "h2": ("s2", 2, "02:00:00:00:00:02"),
               "h3": ("s3", 1, "02:00:00:00:00:03"), "h4": ("s3", 2, "02:00:00:00:00:04")}
    _check_plan(w)


def test_plan_is_deterministic(ring: Topology) -> None:
    assert forwarding_plan(make_layout(ring, "0001").wiring()) == forwarding_plan(make_layout(ring, "0001").wiring())


def test_broadcast_over_crossed_parallel_links() -> None:
    # Two links between s1 and s2 whose port numbers are crossed: s1:1<->s2:2 and s1:2<->s2:1.
    w = Wiring(dpids={"s1": "1", "s2": "2"})
    w.ports = {
        "s1": [(1, "s2", 2), (2, "s2", 1), (3, "h1", None)],
        "s2": [(1, "s1", 2), (2, "s1", 1), (3, "h2", None)],
    }
    w.hosts = {"h1": ("s1", 3, "02:00:00:00:00:01"), "h2": ("s2", 3, "02:00:00:00:00:02")}
    _check_plan(w)


def _star(n_hosts: int) -> Topology:
    """16 switches (a hub and 15 spokes) and `n_hosts` hosts spread over the spokes."""
    nodes = [{"name": f"s{i}", "kind": "switch"} for i in range(16)]
    links = [{"endpoints": [f"s{i}", "s0"]} for i in range(1, 16)]
    for h in range(n_hosts):
        nodes.append({"name": f"h{h}", "kind": "host"})
        links.append({"endpoints": [f"h{h}", f"s{1 + h % 15}"]})
    return Topology.model_validate({"name": "big", "nodes": nodes, "links": links})


def test_the_most_hosts_a_run_can_name_validate_and_lay_out() -> None:
    # Host names carry a 2-digit base-36 index: 36 * 36 = 1296 hosts fit.
    topo = _star(1296)
    assert validate(topo, Source("big.yaml", None)) == []
    lay = make_layout(topo, "abcd")
    names = [n for ln in lay.links for n in (ln.intf_a, ln.intf_b)]
    assert len(lay.ips) == 1296 and len(set(names)) == len(names) == 2 * (15 + 1296)
    assert max(len(n) for n in names) <= 15


def test_one_host_more_than_a_run_can_name_is_rejected_by_validation() -> None:
    problems = validate(_star(1297), Source("big.yaml", None))
    assert len(problems) == 1, problems
    # reported at the first host that does not fit: nodes[16 switches + 1296 hosts]
    assert problems[0].field == "nodes[1312].name"
    assert "1297 hosts" in problems[0].message and "1296" in problems[0].message


def test_a_long_chain_needs_few_rules_per_switch_and_still_delivers_everywhere() -> None:
    """Aggregated unicast: 60 switches in a line, MACs numbered along it: a handful of masked rules per
    switch (not 60), and every frame still reaches its host with no loop and no stray copy."""
    from bench.linear import linear_yaml
    from testbed.topology.loader import parse_text

    w = make_layout(parse_text(linear_yaml(60), "chain.yaml"), "0001").wiring()
    plan = forwarding_plan(w)
    unicast = [len([f for f in rules if f["priority"] == PRIO_UNICAST]) for rules in plan.values()]
    assert max(unicast) <= 12 < 60
    _check_plan(w)


def test_aggregation_never_covers_a_mac_that_goes_elsewhere_or_nowhere() -> None:
    from testbed.openflow.forwarding import aggregate

    table = {0x027B00000000 + i: (1 if i < 5 else 2) for i in range(8)} | {0x027B00000005: None}
    rules = aggregate(table)
    for mac, port in table.items():
        hits = [p for v, n, p in rules if mac >> (48 - n) == v >> (48 - n)]
        assert hits == ([] if port is None else [port]), (hex(mac), hits)
