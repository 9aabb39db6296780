"""The plain forwarding plan (a topology without slices): every rule each switch gets, up front.

The testbed knows the whole topology, so forwarding is proactive: the controller
app only installs this plan and admitted traffic never causes a packet-in.
Unicast follows per-destination shortest-path trees, broadcast one spanning tree.
"""
from __future__ import annotations

from testbed.openflow.wiring import Wiring, spanning_tree_ports, toward

BROADCAST = "ff:ff:ff:ff:ff:ff"
PRIO_UNICAST = 100
PRIO_BROADCAST = 50


def flow(priority: int, match: dict, outputs: list[int], note: str) -> dict:
    return {"priority": priority, "match": match, "actions": [{"output": p} for p in outputs], "note": note}


def forwarding_plan(w: Wiring) -> dict[str, list[dict]]:
    """dpid -> flows. Unicast by destination MAC; broadcast (ARP) along the spanning tree."""
    plan: dict[str, list[dict]] = {dp: [] for dp in w.dpids.values()}
    for host, (home, port, mac) in sorted(w.hosts.items()):
        plan[w.dpids[home]].append(flow(PRIO_UNICAST, {"eth_dst": mac}, [port], f"to {host}"))
        for sw, out_port in toward(w, home).items():
            plan[w.dpids[sw]].append(flow(PRIO_UNICAST, {"eth_dst": mac}, [out_port], f"to {host} via trunk"))
    tree = spanning_tree_ports(w)
    host_ports: dict[str, set[int]] = {sw: set() for sw in w.dpids}
    for _h, (sw, port, _m) in w.hosts.items():
        host_ports[sw].add(port)
    for sw, dp in w.dpids.items():
        flood = tree[sw] | host_ports[sw]
        for in_port in sorted(flood):
            outs = sorted(flood - {in_port})
            if outs:
                plan[dp].append(flow(PRIO_BROADCAST, {"in_port": in_port, "eth_dst": BROADCAST}, outs, "broadcast (ARP)"))
    return plan
