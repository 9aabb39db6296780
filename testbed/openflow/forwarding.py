"""The plain forwarding plan (a topology without slices): every rule each switch gets, up front.

The testbed knows the whole topology, so forwarding is proactive: the controller
app only installs this plan and admitted traffic never causes a packet-in.
Unicast follows per-destination shortest-path trees, each switch's destinations
aggregated into masked MAC rules (a switch of a long chain needs ~20, not one per
host: 500 hosts made 250,000 rules that took ovs-vswitchd 25 s to install);
broadcast follows one spanning tree.
"""
from __future__ import annotations

from testbed.openflow.wiring import Wiring, spanning_tree_ports, toward

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
    plan: dict[str, list[dict]] = {dp: [] for dp in w.dpids.values()}
    for sw, dp in w.dpids.items():
        table = {mac_int(mac): ports[sw].get(host) for host, (_home, _port, mac) in w.hosts.items()}
        for value, length, port in aggregate(table):
            mac = int_mac(value)
            match = {"eth_dst": mac if length == 48 else [mac, int_mac(((1 << length) - 1) << (48 - length))]}
            plan[dp].append(flow(PRIO_UNICAST, match, [port], f"to {hosts_in(w, value, length)}"))
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
    out: list[tuple[int, int, int]] = []

    def cover(items: list[tuple[int, int | None]], length: int) -> None:
        found = {p for _, p in items}
        if len(found) == 1 and length >= MIN_PREFIX:
            port = found.pop()
            if port is not None:
                out.append((items[0][0] >> (48 - length) << (48 - length), length, port))
            return
        if length == 48:  # two ports for one MAC cannot happen (a dict)
            return
        bit = 1 << (47 - length)
        low, high = [x for x in items if not x[0] & bit], [x for x in items if x[0] & bit]
        for half in (low, high):
            if half:
                cover(half, length + 1)

    if table:
        cover(sorted(table.items()), 0)
    return out


def mac_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def int_mac(value: int) -> str:
    return ":".join(f"{(value >> s) & 0xFF:02x}" for s in range(40, -8, -8))


def hosts_in(w: Wiring, value: int, length: int) -> str:
    """The rule's note: the hosts it carries frames to (a few named, then how many)."""
    shift = 48 - length
    names = sorted(h for h, (_s, _p, mac) in w.hosts.items() if mac_int(mac) >> shift == value >> shift)
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
