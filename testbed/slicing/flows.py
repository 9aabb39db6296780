"""Slice policy -> OpenFlow rules: what each switch holds so that only granted flows pass.

Pure functions over the Policy (testbed.slicing.policy) and the Wiring
(testbed.openflow.wiring), so the whole rule set is unit-testable without root.

Pipeline (OpenFlow 1.3, two tables, default drop in both, no packet-in ever):

table 0, admission. On a host-facing port a frame passes only if a rule of the
  sender's own grants matches it, including the sender's true MAC and IP
  (anti-spoofing) and no VLAN tag (so double-tagged frames are dropped):
  - a granted flow (member -> provider: ip_proto + tp_dst), and its replies
    (provider -> member, tp_src = the service port);
  - ICMP echo request from member to provider, echo reply back;
  - ARP between the two ends of a grant only, with the sender's true
    arp_sha/arp_spa (anti ARP-spoofing). ARP requests are not flooded: their
    eth_dst is rewritten to the target's MAC, so broadcast never reaches
    another slice and the target answers as usual.
  IP rules set the slice's DSCP (from its 5QI) and go through the slice's meter
  on that switch (per-slice rate limit), then to table 1. Frames from trunk
  ports (switch <-> switch, untagged) go to table 1: they were admitted at
  their edge switch already.
table 1, forwarding: by eth_dst along shortest paths (plan.py's per-destination
  BFS trees), so loops and redundant links are harmless.

Cookies say which slice a rule serves (see `cookie()`), so `testbed flows` can
group rules per slice and a live update can tell rules apart.
"""
from __future__ import annotations

from dataclasses import dataclass

from testbed.openflow.wiring import Wiring, toward
from testbed.slicing.cookies import COMMON, cookie
from testbed.slicing.policy import INFRA, Grant, Policy
from testbed.topology.model import Topology

TABLE_ADMIT = 0
TABLE_FORWARD = 1
PRIO_HOST = 200
PRIO_TRUNK = 100
PRIO_FORWARD = 100

ETH_IP = 0x0800
ETH_ARP = 0x0806
IP_PROTO = {"icmp": 1, "tcp": 6, "udp": 17}
VLAN_NONE = 0x0000  # OFPVID_NONE: matches only frames without an 802.1Q tag


# 5QI -> DSCP. 3GPP leaves the transport marking to the operator; this follows the
# traffic-class mapping of GSMA IR.34 (conversational EF, streaming AF4x,
# interactive AF3x/AF2x by priority, background BE) and puts signalling on CS5
# and the delay-critical GBR 5QIs on EF. Unlisted 5QIs are best effort (0).
FIVEQI_DSCP: dict[int, int] = {
    1: 46, 65: 46, 66: 46,                      # conversational voice: EF
    2: 34, 4: 34, 67: 34, 71: 34, 72: 34, 73: 34, 74: 34, 76: 34,  # video / streaming: AF41
    3: 26, 79: 26, 80: 26,                      # real-time control, V2X, low-latency eMBB: AF31
    5: 40, 69: 40, 70: 40,                      # IMS and mission-critical signalling: CS5
    6: 26,                                      # buffered video, high priority TCP: AF31
    7: 18,                                      # interactive (voice/video/gaming, cloud desktop): AF21
    8: 10,                                      # buffered TCP, premium: AF11
    9: 0,                                       # buffered TCP, default: BE
    82: 46, 83: 46, 84: 46, 85: 46, 86: 46, 87: 46, 88: 46, 89: 46, 90: 46,  # delay-critical GBR: EF
}


def fiveqi_dscp(fiveqi: int | None) -> int:
    return FIVEQI_DSCP.get(fiveqi or 9, 0)


@dataclass(frozen=True)
class SliceInfo:
    name: str
    id: int
    fiveqi: int | None
    dscp: int | None  # None: leave the marking alone (infra)
    rate_bps: int | None
    meter_id: int | None


def slice_table(topo: Topology) -> dict[str, SliceInfo]:
    """Stable ids: 0 common rules, 1 infra, 2.. slices in file order (survive grant/revoke)."""
    out = {COMMON: SliceInfo(COMMON, 0, None, None, None, None),
           INFRA: SliceInfo(INFRA, 1, None, None, None, None)}
    for i, sl in enumerate(topo.slices):
        sid = i + 2
        out[sl.name] = SliceInfo(sl.name, sid, sl.fiveqi, fiveqi_dscp(sl.fiveqi), sl.rate,
                                 sid if sl.rate else None)
    return out


def _rule(table: int, priority: int, match: dict, cookie_: int, note: str, *, actions: list | None = None,
          meter: int | None = None, goto: int | None = None) -> dict:
    r = {"table": table, "priority": priority, "match": match, "actions": actions or [], "cookie": cookie_,
         "note": note}
    if meter is not None:
        r["meter"] = meter
    if goto is not None:
        r["goto"] = goto
    return r


def _grant_rules(g: Grant, s: SliceInfo, hosts: dict[str, tuple[str, int, str]], ips: dict[str, str],
                 seq: int) -> list[tuple[str, dict]]:
    """(edge switch, rule) for one grant: the request at the member's edge, the reply at the provider's."""
    (ssw, sport, smac), (dsw, dport, dmac) = hosts[g.src], hosts[g.dst]
    proto = IP_PROTO[g.proto]
    base = {"eth_type": ETH_IP, "vlan_vid": VLAN_NONE, "ip_proto": proto}
    mark = [{"set_field": {"ip_dscp": s.dscp}}] if s.dscp is not None else []
    fwd = {"in_port": sport, "eth_src": smac, "eth_dst": dmac, **base, "ipv4_src": ips[g.src],
           "ipv4_dst": ips[g.dst], f"{g.proto}_dst": g.port}
    rev = {"in_port": dport, "eth_src": dmac, "eth_dst": smac, **base, "ipv4_src": ips[g.dst],
           "ipv4_dst": ips[g.src], f"{g.proto}_src": g.port}
    return [
        (ssw, _rule(TABLE_ADMIT, PRIO_HOST, fwd, cookie(s.id, "service", seq),
                    f"{g.src} -> {g.dst} {g.service} ({g.proto}/{g.port})", actions=mark, meter=s.meter_id,
                    goto=TABLE_FORWARD)),
        (dsw, _rule(TABLE_ADMIT, PRIO_HOST, rev, cookie(s.id, "reply", seq),
                    f"{g.dst} -> {g.src} {g.service} reply", actions=mark, meter=s.meter_id, goto=TABLE_FORWARD)),
    ]


def _pair_rules(src: str, dst: str, s: SliceInfo, hosts, ips, seq: int) -> list[tuple[str, dict]]:
    """ICMP echo src -> dst (and its reply), ARP both ways between src and dst."""
    out = []
    (ssw, sport, smac), (dsw, dport, dmac) = hosts[src], hosts[dst]
    icmp = {"eth_type": ETH_IP, "vlan_vid": VLAN_NONE, "ip_proto": IP_PROTO["icmp"]}
    mark = [{"set_field": {"ip_dscp": s.dscp}}] if s.dscp is not None else []
    for sw, port, mac, peer_mac, me, peer, icmp_type, what in (
            (ssw, sport, smac, dmac, src, dst, 8, "echo request"), (dsw, dport, dmac, smac, dst, src, 0, "echo reply")):
        m = {"in_port": port, "eth_src": mac, "eth_dst": peer_mac, **icmp, "ipv4_src": ips[me], "ipv4_dst": ips[peer],
             "icmpv4_type": icmp_type}
        out.append((sw, _rule(TABLE_ADMIT, PRIO_HOST, m, cookie(s.id, "icmp", seq), f"{me} -> {peer} ICMP {what}",
                              actions=mark, meter=s.meter_id, goto=TABLE_FORWARD)))
    for sw, port, mac, peer_mac, me, peer in ((ssw, sport, smac, dmac, src, dst), (dsw, dport, dmac, smac, dst, src)):
        for op, what in ((1, "request"), (2, "reply")):
            m = {"in_port": port, "eth_src": mac, "eth_type": ETH_ARP, "vlan_vid": VLAN_NONE, "arp_op": op,
                 "arp_sha": mac, "arp_spa": ips[me], "arp_tpa": ips[peer]}
            # Requests are broadcast: deliver them to the target only (it answers as usual).
            out.append((sw, _rule(TABLE_ADMIT, PRIO_HOST, m, cookie(s.id, "arp", seq), f"{me} -> {peer} ARP {what}",
                                  actions=[{"set_field": {"eth_dst": peer_mac}}], goto=TABLE_FORWARD)))
    return out


def slicing_plan(topo: Topology, policy: Policy, wiring: Wiring, ips: dict[str, str]) -> dict:
    """The controller plan for a sliced topology: rules and meters per dpid, and what they mean.

    `ips` maps host names to their address (no prefix). A flow granted in two
    slices gets the rules of the first one (identical matches cannot coexist).
    """
    slices = slice_table(topo)
    switches: dict[str, list[dict]] = {dp: [] for dp in wiring.dpids.values()}
    seen: dict[tuple, dict] = {}
    used_meters: dict[str, set[int]] = {dp: set() for dp in wiring.dpids.values()}

    def add(sw: str, rule: dict) -> None:
        dp = wiring.dpids[sw]
        key = (dp, rule["table"], rule["priority"], tuple(sorted(rule["match"].items())))
        if key in seen:
            return
        seen[key] = rule
        switches[dp].append(rule)
        if rule.get("meter") is not None:
            used_meters[dp].add(rule["meter"])

    placed = [g for g in policy.grants if g.src in wiring.hosts and g.dst in wiring.hosts]
    for seq, g in enumerate(placed):
        for sw, rule in _grant_rules(g, slices[g.slice], wiring.hosts, ips, seq):
            add(sw, rule)
    pair_slice: dict[tuple[str, str], str] = {}
    for g in placed:
        pair_slice.setdefault((g.src, g.dst), g.slice)
    for seq, ((src, dst), sl) in enumerate(pair_slice.items()):
        for sw, rule in _pair_rules(src, dst, slices[sl], wiring.hosts, ips, seq):
            add(sw, rule)

    common = slices[COMMON].id
    for sw, dp in wiring.dpids.items():
        for port, _peer in wiring.neighbours(sw):
            switches[dp].append(_rule(TABLE_ADMIT, PRIO_TRUNK, {"in_port": port, "vlan_vid": VLAN_NONE},
                                      cookie(common, "trunk"), f"trunk port {port}: admitted at its edge",
                                      goto=TABLE_FORWARD))
    for host, (home, port, mac) in sorted(wiring.hosts.items()):
        switches[wiring.dpids[home]].append(_rule(TABLE_FORWARD, PRIO_FORWARD, {"eth_dst": mac},
                                                  cookie(common, "forward"), f"to {host}",
                                                  actions=[{"output": port}]))
        for sw, out_port in toward(wiring, home).items():
            switches[wiring.dpids[sw]].append(_rule(TABLE_FORWARD, PRIO_FORWARD, {"eth_dst": mac},
                                                    cookie(common, "forward"), f"to {host} via trunk",
                                                    actions=[{"output": out_port}]))
    by_id = {s.meter_id: s for s in slices.values() if s.meter_id}
    meters = {dp: [{"meter_id": mid, "rate_kbps": max(1, by_id[mid].rate_bps // 1000),
                    "burst_kb": max(16, by_id[mid].rate_bps // 1000 // 10), "slice": by_id[mid].name}
                   for mid in sorted(ids)] for dp, ids in used_meters.items() if ids}
    return {
        "mode": "slicing",
        "tables": [TABLE_ADMIT, TABLE_FORWARD],
        "drop_cookie": cookie(common, "drop"),
        "switches": switches,
        "meters": meters,
        "slices": {s.name: {"id": s.id, "fiveqi": s.fiveqi, "dscp": s.dscp, "rate_bps": s.rate_bps,
                            "meter_id": s.meter_id, "members": policy.members.get(s.name, [])}
                   for s in slices.values()},
        "grants": [[g.slice, g.src, g.dst, g.proto, g.port, g.service] for g in placed],
    }
