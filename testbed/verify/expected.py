"""What the slice policy allows, as header sets per ordered pair of host ports.

This is the specification the switches are checked against, written from the
policy (the plan's grants and hosts), not from the rules: for a grant
member -> provider (proto, port):
- the member opens it: its true MAC and address, untagged, to the provider's,
  that protocol and destination port, any source port; TCP only as a SYN
  (no ACK/FIN/RST, valid flags);
- the connection's packets afterwards, both ways: the same 5-tuple from the
  member, the reversed one from the provider, with any valid TCP flags;
and for every pair with a grant, both ways unless said: an ICMP echo request
from the member and the echo reply back; ICMP errors (related to a tracked
connection); non-first fragments (they carry no ports: the tracker holds them
with their datagram, whose first fragment decides); ARP with the true sender
MAC and ARP address, asking for the peer's ARP address.
A port shared by several hosts (a UPF and its PDU sessions) allows the union.
"""
from __future__ import annotations

from testbed.verify.headers import ETH_ARP, ETH_IP, Space
from testbed.verify.network import SWAP, Port

PROTO = {"icmp": 1, "tcp": 6, "udp": 17}


def host_port(rec: dict) -> Port:
    return (str(rec["dpid"]), int(rec["port"]))


def _base(s: Space, a: dict, b: dict):
    return s.match({"eth_src": a["mac"], "eth_dst": b["mac"], "eth_type": ETH_IP, "vlan_vid": 0,
                    "ipv4_src": a["ip"], "ipv4_dst": b["ip"]})


def _arp(s: Space, me: dict, peer: dict):
    return s.match({"eth_src": me["mac"], "eth_type": ETH_ARP, "vlan_vid": 0, "arp_sha": me["mac"],
                    "arp_spa": me.get("arp_ip", me["ip"]), "arp_tpa": peer.get("arp_ip", peer["ip"])}) \
        & s.any_of("arp_op", (1, 2))


def expected(s: Space, plan: dict) -> dict[tuple[Port, Port], object]:
    """(src port, dst port) -> the headers the policy lets a host at src send to one at dst."""
    hosts = plan["hosts"]
    p = s.p
    out: dict[tuple[Port, Port], object] = {}

    def add(a: str, b: str, u) -> None:
        key = (host_port(hosts[a]), host_port(hosts[b]))
        if key[0] != key[1]:
            out[key] = out.get(key, s.false) | u

    pairs: dict[tuple[str, str], set[int]] = {}
    for _slice, src, dst, proto, port, _service in plan.get("grants", []):
        if src not in hosts or dst not in hosts or not hosts[src].get("ip") or not hosts[dst].get("ip"):
            continue
        pairs.setdefault((src, dst), {1}).add(PROTO[proto])
        a, b = hosts[src], hosts[dst]
        key = s.match({"ipv4_src": a["ip"], "ipv4_dst": b["ip"], "ip_proto": PROTO[proto], "tp_dst": int(port)})
        valid = ~p.bad_tcp
        first = p.syn_only if proto == "tcp" else s.true
        add(src, dst, _base(s, a, b) & key & ~p.later & first)
        add(src, dst, _base(s, a, b) & key & valid)
        add(dst, src, _base(s, b, a) & s.rename(key, SWAP) & valid)
    for (src, dst), protos in pairs.items():
        a, b = hosts[src], hosts[dst]
        ab, ba = _base(s, a, b), _base(s, b, a)
        add(src, dst, ab & p.echo_req)
        add(dst, src, ba & p.echo_rep)
        add(src, dst, ab & p.later)  # any protocol: the member's datagram is new, its first fragment decides
        add(dst, src, ba & p.later & s.any_of("ip_proto", protos))  # only as part of the pair's connections
        for x, y, base in ((src, dst, ab), (dst, src, ba)):
            add(x, y, base & p.icmp_err)
            add(x, y, _arp(s, hosts[x], hosts[y]))
    return {k: s.headers_only(u & s.wf) for k, u in out.items()}
