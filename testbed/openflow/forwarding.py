"""The plain forwarding plan (a topology without slices): every rule each switch gets, up front.

The testbed knows the whole topology, so forwarding is proactive: the controller
app only installs this plan and admitted traffic never causes a packet-in.
Unicast follows per-destination shortest-path trees, each switch's destinations
aggregated into masked MAC rules (a switch of a long chain needs ~20, not one per
host: 500 hosts made 250,000 rules that took ovs-vswitchd 25 s to install);
broadcast follows one spanning tree.
"""
from __future__ import annotations

from bisect import bisect_left

from testbed.openflow.wiring import Wiring, spanning_tree_ports, toward
from testbed.units import int_to_mac, mac_to_int

BROADCAST = "ff:ff:ff:ff:ff:ff"
PRIO_UNICAST = 100
PRIO_BROADCAST = 50


def flow(priority: int, match: dict, outputs: list[int], note: str) -> dict:
    return {"priority": priority, "match": match, "actions": [{"output": p} for p in outputs], "note": note}


def forwarding_plan(w: Wiring) -> dict[str, list[dict]]:
    """dpid -> flows. Unicast by destination MAC, aggregated (`aggregate`); broadcast (ARP) along the
    spanning tree."""
    ports: dict[str, dict[str, int | None]] = {sw: {} for sw in w.dpids}  # switch -> host -> out port
    for host, (home, port, _mac) in sorted(w.hosts.items()):
        ports[home][host] = port
        for sw, out_port in toward(w, home).items():
            ports[sw][host] = out_port
    macs = {host: mac_to_int(mac) for host, (_home, _port, mac) in w.hosts.items()}
    by_mac = sorted((m, host) for host, m in macs.items())  # for the rules' notes
    plan: dict[str, list[dict]] = {dp: [] for dp in w.dpids.values()}
    for sw, dp in w.dpids.items():
        for value, length, port in aggregate({m: ports[sw].get(host) for host, m in macs.items()}):
            mac = int_to_mac(value)
            match = {"eth_dst": mac if length == 48 else [mac, int_to_mac(((1 << length) - 1) << (48 - length))]}
            plan[dp].append(flow(PRIO_UNICAST, match, [port], f"to {hosts_in(by_mac, value, length)}"))
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


MIN_PREFIX = 24  # never wider than an OUI: no aggregate can take in broadcast or multicast addresses


def aggregate(table: dict[int, int | None]) -> list[tuple[int, int, int]]:
    """(value, prefix length, port) rules equivalent to an exact-match table of MACs -> port (None: no
    rule, the frame is dropped) for every MAC the table names; MACs it does not name are nobody's.

    A binary trie over the 48 bits: a subtree whose named MACs all go out the same port is one masked
    rule (at least MIN_PREFIX bits long). In a chain of 500 switches with MACs numbered along it, a switch
    needs about 20 rules instead of 500: proactive forwarding stops growing with N squared."""
    items = sorted(table.items())
    keys = [m for m, _ in items]
    out: list[tuple[int, int, int]] = []

    def cover(lo: int, hi: int, prefix: int, length: int) -> None:  # items[lo:hi] share `prefix`
        if length >= MIN_PREFIX and all(items[k][1] == items[lo][1] for k in range(lo + 1, hi)):
            if items[lo][1] is not None:
                out.append((prefix, length, items[lo][1]))
            return
        if length == 48:  # two ports for one MAC cannot happen (a dict)
            return
        high = prefix | 1 << (47 - length)
        mid = bisect_left(keys, high, lo, hi)
        for a, b, p in ((lo, mid, prefix), (mid, hi, high)):
            if a < b:
                cover(a, b, p, length + 1)

    if items:
        cover(0, len(items), 0, 0)
    return out


def hosts_in(by_mac: list[tuple[int, str]], value: int, length: int) -> str:
    """The rule's note: the hosts it carries frames to (a few named, then how many); `by_mac` sorted."""
    lo = bisect_left(by_mac, (value, ""))
    hi = bisect_left(by_mac, (value + (1 << (48 - length)), ""))
    names = sorted(h for _, h in by_mac[lo:hi])
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
