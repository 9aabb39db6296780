"""Slice policy -> OpenFlow rules: what each switch holds so that only granted flows pass.

Pure functions over the Policy (testbed.slicing.policy) and the Wiring
(testbed.openflow.wiring), so the whole rule set is unit-testable without root
(tests/slicing/test_flows.py pushes frames through it with the fake flow table
of testbed.slicing.simulate, connection tracking included).

The stateful pipeline (OpenFlow 1.3 plus Open vSwitch's conntrack extension;
four tables, default drop in each, no packet-in ever). Only the granted side
opens connections: a member may open a flow its slice grants; the provider's
packets pass only as part of a connection the member opened.

table 0, admission. On a host-facing port a frame passes only if it belongs to
  a host pair with a grant, with the sender's true MAC and IP (anti-spoofing)
  and no VLAN tag (so double-tagged frames are dropped):
  - IP between the two ends of a grant (either direction, any protocol or
    fragment) goes through the connection tracker, `ct(zone=Z, table=1)`:
    conntrack runs at the edges only, on the packet's way in from a host, at
    the member's edge switch and at the provider's; all switches of a run share
    one datapath and tracker, so what the member's edge committed is what the
    provider's edge looks up. Z is the run's zone (conntrack.ct_zone: runs
    share the tracker and reuse addresses); the slice lives in the connection's
    ct_mark. The tracker reassembles fragments (the userspace datapath's ipf,
    the kernel's defrag), so table 1 sees a datagram's state on every fragment;
    with the switch's fragment mode `nx-match` (the plan's "frag_mode") a first
    fragment carries its ports.
  - ARP between the two ends of a grant only, with the sender's true
    arp_sha/arp_spa (anti ARP-spoofing). ARP requests are not flooded: their
    eth_dst is rewritten to the target's MAC, so broadcast never reaches
    another slice and the target answers as usual. ARP is not tracked.
  Frames from trunk ports (switch <-> switch, untagged) go to table 3: they
  were admitted at their edge switch already.
table 1, connection state (`+trk`, never `+inv`):
  - new (`+new`, at the member's edge, from the member's port): a TCP SYN
    (no ACK/FIN/RST), a first UDP datagram, to a port its slice grants; an ICMP
    echo request to a granted peer; the non-first fragments of a new datagram
    (the first one decides: the tracker holds the fragments until the
    datagram is whole, and lets them go only together) -> DSCP of the slice,
    its meter, `ct(commit, zone=Z, mark=slice id, table=2)`.
  - established or related (`+est` / `+rel`, e.g. ICMP errors) of a
    connection whose ct_mark is the slice's id -> DSCP, meter, table 3.
  Anything else (a provider's new connection from whatever source port, stray
  ACK/FIN/RST/Xmas/NULL segments, replies to nothing, invalid or orphaned
  fragments) meets the table's drop.
table 2, committed: a committed packet that is tracked and valid goes to table 3.
  Every ct() action recirculates (and is a rule's last action), and every rule
  after one requires `+trk-inv`: fragments the tracker gives up on come back
  marked invalid (OVS 3.1 releases them into whichever ct() batch is running),
  so they can only meet a drop.
table 3, forwarding: by eth_dst along shortest paths (plan.py's per-destination
  BFS trees), so loops and redundant links are harmless.

IP rules set the slice's DSCP (from its 5QI) and go through the slice's meter on
that switch (per-slice rate limit), once per packet: at its commit or as
established traffic.

The stateless rule set (`stateless=True`, controllers/stateless.py) is the
pipeline before connection tracking, kept as a deliberately weaker negative
control for the prober: table 0 admits a granted flow (member -> provider,
ip_proto + tp_dst) and, separately, its "replies" (provider -> member,
tp_src = the service port, any destination port, any TCP flags), ICMP echo
request one way and echo reply the other, ARP as above; then table 3.

Cookies say which slice a rule serves (see `cookie()`), so `testbed flows` can
group rules per slice and a live update can tell rules apart.
"""
from __future__ import annotations

from dataclasses import dataclass

from testbed.openflow.wiring import Wiring, toward
from testbed.slicing import conntrack as ct
from testbed.slicing.cookies import COMMON, cookie
from testbed.slicing.policy import INFRA, Grant, Policy
from testbed.topology.model import Topology

TABLE_ADMIT = 0
TABLE_CT = 1
TABLE_COMMITTED = 2
TABLE_FORWARD = 3
STATEFUL_TABLES = [TABLE_ADMIT, TABLE_CT, TABLE_COMMITTED, TABLE_FORWARD]
STATELESS_TABLES = [TABLE_ADMIT, TABLE_FORWARD]
PRIO_DIRECT = 210
PRIO_HOST = 200
PRIO_STATE = 150
PRIO_TRUNK = 100
PRIO_FORWARD = 100
FRAG_NX_MATCH = "nx-match"  # first fragments carry their L4 ports (OpenFlow's "normal" zeroes them)
FRAG_NORMAL = "normal"

ETH_IP = 0x0800
ETH_ARP = 0x0806
IP_PROTO = {"icmp": 1, "tcp": 6, "udp": 17}
VLAN_NONE = 0x0000  # OFPVID_NONE: matches only frames without an 802.1Q tag

NEW = ct.state("+trk+new-est-rel-inv")  # the first packet of a connection, not yet committed
ESTABLISHED = ct.state("+trk+est-rel-inv")  # (OVS never sets +est and +rel together)
RELATED = ct.state("+trk+rel-est-inv")
VALID = ct.state("+trk-inv")
SYN_ONLY = [ct.SYN, ct.SYN | ct.ACK | ct.FIN | ct.RST]  # tcp_flags: SYN set; ACK, FIN, RST clear
LATER_FRAGMENT = [ct.FRAG_LATER, ct.FRAG_LATER]  # ip_frag: a fragment with a nonzero offset
ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY = 8, 0


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


def _mark(s: SliceInfo) -> list[dict]:
    return [{"set_field": {"ip_dscp": s.dscp}}] if s.dscp is not None else []


def _commit(zone: int, s: SliceInfo) -> dict:
    """Commit the connection, remember its slice in ct_mark, continue in the committed table."""
    return {"ct": {"commit": True, "zone": zone, "mark": s.id, "table": TABLE_COMMITTED}}


Hosts = dict[str, tuple[str, int, str]]  # host -> (edge switch, port, MAC)


# -- the stateful pipeline ------------------------------------------------------------
def _track_rules(src: str, dst: str, s: SliceInfo, hosts: Hosts, ips: dict[str, str], zone: int,
                 seq: int) -> list[tuple[str, dict]]:
    """Table 0: IP of a granted pair, both directions, into conntrack at each end's edge."""
    out = []
    (ssw, sport, smac), (dsw, dport, dmac) = hosts[src], hosts[dst]
    for sw, port, mac, peer_mac, me, peer in ((ssw, sport, smac, dmac, src, dst), (dsw, dport, dmac, smac, dst, src)):
        m = {"in_port": port, "eth_src": mac, "eth_dst": peer_mac, "eth_type": ETH_IP, "vlan_vid": VLAN_NONE,
             "ipv4_src": ips[me], "ipv4_dst": ips[peer]}
        out.append((sw, _rule(TABLE_ADMIT, PRIO_HOST, m, cookie(s.id, "track", seq),
                              f"{me} -> {peer} IP: track (zone {zone})",
                              actions=[{"ct": {"zone": zone, "table": TABLE_CT}}])))
    return out


def _new_rules(g: Grant, s: SliceInfo, hosts: Hosts, ips: dict[str, str], zone: int,
               seq: int) -> list[tuple[str, dict]]:
    """Table 1 at the member's edge: the member opens the granted flow (TCP: a SYN only)."""
    ssw, sport, _ = hosts[g.src]
    m = {"in_port": sport, "eth_type": ETH_IP, "ipv4_src": ips[g.src], "ipv4_dst": ips[g.dst],
         "ip_proto": IP_PROTO[g.proto], f"{g.proto}_dst": g.port, "ct_state": NEW}
    if g.proto == "tcp":
        m["tcp_flags"] = SYN_ONLY
    return [(ssw, _rule(TABLE_CT, PRIO_HOST, m, cookie(s.id, "service", seq),
                        f"{g.src} -> {g.dst} {g.service} ({g.proto}/{g.port})",
                        actions=[*_mark(s), _commit(zone, s)], meter=s.meter_id))]


def _pair_new_rules(src: str, dst: str, s: SliceInfo, hosts: Hosts, ips: dict[str, str], zone: int,
                    seq: int) -> list[tuple[str, dict]]:
    """Table 1 at the member's edge: its ICMP echo request, and the later fragments of its new datagrams."""
    ssw, sport, _ = hosts[src]
    base = {"in_port": sport, "eth_type": ETH_IP, "ipv4_src": ips[src], "ipv4_dst": ips[dst], "ct_state": NEW}
    echo = {**base, "ip_proto": IP_PROTO["icmp"], "icmpv4_type": ICMP_ECHO_REQUEST}
    later = {**base, "ip_frag": LATER_FRAGMENT}
    act = [*_mark(s), _commit(zone, s)]
    return [(ssw, _rule(TABLE_CT, PRIO_HOST, echo, cookie(s.id, "icmp", seq),
                        f"{src} -> {dst} ICMP echo request: new", actions=act, meter=s.meter_id)),
            (ssw, _rule(TABLE_CT, PRIO_HOST, later, cookie(s.id, "fragment", seq),
                        f"{src} -> {dst} non-first fragments of a new datagram (the first decides)",
                        actions=act, meter=s.meter_id))]


def _state_rules(sw: str, s: SliceInfo) -> list[tuple[str, dict]]:
    """Table 1: established and related traffic of the slice's connections (by their ct_mark)."""
    return [(sw, _rule(TABLE_CT, PRIO_STATE, {"eth_type": ETH_IP, "ct_state": st, "ct_mark": s.id},
                       cookie(s.id, "state"), f"{s.name}: {what} connection",
                       actions=_mark(s), meter=s.meter_id, goto=TABLE_FORWARD))
            for st, what in ((ESTABLISHED, "established"), (RELATED, "related to a"))]


def _committed_rule(sw: str) -> tuple[str, dict]:
    return (sw, _rule(TABLE_COMMITTED, PRIO_STATE, {"eth_type": ETH_IP, "ct_state": VALID},
                      cookie(0, "committed"), "committed: on to forwarding", goto=TABLE_FORWARD))


def symmetric(grants: list[Grant]) -> set[Grant]:
    """The UDP grants whose mirror (same slice, ends swapped, same port) is granted too: GTP-U between a
    gNB and a UPF, or a media port both ends offer. Either end may send to the other's port at any time,
    so a datagram from that port to it needs no tracker: it takes the direct rule (`_direct_rule`)."""
    have = {(g.slice, g.src, g.dst, g.port) for g in grants if g.proto == "udp"}
    return {g for g in grants if g.proto == "udp" and (g.slice, g.dst, g.src, g.port) in have}


def _direct_rule(g: Grant, s: SliceInfo, hosts: Hosts, ips: dict[str, str], seq: int) -> tuple[str, dict]:
    """Table 0 at the sender's edge: a whole (unfragmented) datagram of a symmetric UDP grant *from* the
    granted port *to* it goes straight to forwarding, with the sender's true MAC and IP, without the tracker.

    Why: a one-way UDP flow never becomes established, so the tracker sees every
    GTP-U datagram as new and commits it again: three datapath passes and two
    tracker operations per packet at each edge, on the 5G path's hottest flow.
    This rule is one pass. It is no wider than the grants: the sender may open the
    port from any port, and the answer, from the port to the port, is the mirror
    grant. A datagram from any other port still goes through the tracker, so its
    answer (to that port) is let through as the reply of a tracked flow, and as
    nothing else. Fragments too (`_new_rules` stays): the tracker reassembles them.
    """
    (ssw, sport, smac), (_dsw, _dport, dmac) = hosts[g.src], hosts[g.dst]
    m = {"in_port": sport, "eth_src": smac, "eth_dst": dmac, "eth_type": ETH_IP, "vlan_vid": VLAN_NONE,
         "ipv4_src": ips[g.src], "ipv4_dst": ips[g.dst], "ip_proto": IP_PROTO["udp"], "ip_frag": [0, ct.FRAG_ANY],
         "udp_src": g.port, "udp_dst": g.port}
    return (ssw, _rule(TABLE_ADMIT, PRIO_DIRECT, m, cookie(s.id, "direct", seq),
                       f"{g.src} -> {g.dst} {g.service} (udp/{g.port} from udp/{g.port}, granted both ways): direct",
                       actions=_mark(s), meter=s.meter_id, goto=TABLE_FORWARD))


# -- the stateless rule set (negative control) ----------------------------------------
def _grant_rules_stateless(g: Grant, s: SliceInfo, hosts: Hosts, ips: dict[str, str],
                           seq: int) -> list[tuple[str, dict]]:
    """(edge switch, rule) for one grant: the request at the member's edge, the 'reply' at the provider's."""
    (ssw, sport, smac), (dsw, dport, dmac) = hosts[g.src], hosts[g.dst]
    base = {"eth_type": ETH_IP, "vlan_vid": VLAN_NONE, "ip_proto": IP_PROTO[g.proto]}
    fwd = {"in_port": sport, "eth_src": smac, "eth_dst": dmac, **base, "ipv4_src": ips[g.src],
           "ipv4_dst": ips[g.dst], f"{g.proto}_dst": g.port}
    rev = {"in_port": dport, "eth_src": dmac, "eth_dst": smac, **base, "ipv4_src": ips[g.dst],
           "ipv4_dst": ips[g.src], f"{g.proto}_src": g.port}
    return [
        (ssw, _rule(TABLE_ADMIT, PRIO_HOST, fwd, cookie(s.id, "service", seq),
                    f"{g.src} -> {g.dst} {g.service} ({g.proto}/{g.port})", actions=_mark(s), meter=s.meter_id,
                    goto=TABLE_FORWARD)),
        (dsw, _rule(TABLE_ADMIT, PRIO_HOST, rev, cookie(s.id, "reply", seq),
                    f"{g.dst} -> {g.src} {g.service} reply", actions=_mark(s), meter=s.meter_id,
                    goto=TABLE_FORWARD)),
    ]


def _icmp_rules_stateless(src: str, dst: str, s: SliceInfo, hosts: Hosts, ips: dict[str, str],
                          seq: int) -> list[tuple[str, dict]]:
    """ICMP echo request src -> dst and echo reply back, stateless."""
    out = []
    (ssw, sport, smac), (dsw, dport, dmac) = hosts[src], hosts[dst]
    icmp = {"eth_type": ETH_IP, "vlan_vid": VLAN_NONE, "ip_proto": IP_PROTO["icmp"]}
    for sw, port, mac, peer_mac, me, peer, icmp_type, what in (
            (ssw, sport, smac, dmac, src, dst, ICMP_ECHO_REQUEST, "echo request"),
            (dsw, dport, dmac, smac, dst, src, ICMP_ECHO_REPLY, "echo reply")):
        m = {"in_port": port, "eth_src": mac, "eth_dst": peer_mac, **icmp, "ipv4_src": ips[me], "ipv4_dst": ips[peer],
             "icmpv4_type": icmp_type}
        out.append((sw, _rule(TABLE_ADMIT, PRIO_HOST, m, cookie(s.id, "icmp", seq), f"{me} -> {peer} ICMP {what}",
                              actions=_mark(s), meter=s.meter_id, goto=TABLE_FORWARD)))
    return out


# -- both -----------------------------------------------------------------------------
def _arp_rules(src: str, dst: str, s: SliceInfo, hosts: Hosts, ips: dict[str, str], seq: int) -> list[tuple[str, dict]]:
    """ARP both ways between src and dst, requests delivered to the target only (`ips`: the ARP addresses)."""
    out = []
    (ssw, sport, smac), (dsw, dport, dmac) = hosts[src], hosts[dst]
    for sw, port, mac, peer_mac, me, peer in ((ssw, sport, smac, dmac, src, dst), (dsw, dport, dmac, smac, dst, src)):
        for op, what in ((1, "request"), (2, "reply")):
            m = {"in_port": port, "eth_src": mac, "eth_type": ETH_ARP, "vlan_vid": VLAN_NONE, "arp_op": op,
                 "arp_sha": mac, "arp_spa": ips[me], "arp_tpa": ips[peer]}
            # Requests are broadcast: deliver them to the target only (it answers as usual).
            out.append((sw, _rule(TABLE_ADMIT, PRIO_HOST, m, cookie(s.id, "arp", seq), f"{me} -> {peer} ARP {what}",
                                  actions=[{"set_field": {"eth_dst": peer_mac}}], goto=TABLE_FORWARD)))
    return out


def compile_rules(wiring: Wiring, grants: list[Grant], slices: dict[str, SliceInfo], ips: dict[str, str], *,
                  zone: int = 0, stateless: bool = False, arp_ips: dict[str, str] | None = None) -> dict:
    """Rules and meters per dpid for `grants` on `wiring`: {"switches", "meters", "tables", "frag_mode", "grants"}.

    A flow granted in two slices gets the rules of the first one (identical
    matches cannot coexist); a host pair's ICMP, fragments and ARP go with the
    first slice that grants the pair anything. `arp_ips` gives the address a
    host answers ARP for when it is not its IP: a PDU session's packets leave
    its UPF's port with the session's address, but ARP is the UPF's own.
    Hosts that share a port and MAC (a UPF and its sessions) share one
    forwarding rule.
    """
    arp_of = {**ips, **(arp_ips or {})}
    switches: dict[str, list[dict]] = {dp: [] for dp in wiring.dpids.values()}
    seen: set[tuple] = set()
    used_meters: dict[str, set[int]] = {dp: set() for dp in wiring.dpids.values()}

    def add(sw: str, rule: dict) -> None:
        dp = wiring.dpids[sw]
        key = (dp, rule["table"], rule["priority"], repr(sorted(rule["match"].items())))
        if key in seen:
            return
        seen.add(key)
        switches[dp].append(rule)
        if rule.get("meter") is not None:
            used_meters[dp].add(rule["meter"])

    placed = [g for g in grants if g.src in wiring.hosts and g.dst in wiring.hosts]
    pair_slice: dict[tuple[str, str], str] = {}
    for g in placed:
        pair_slice.setdefault((g.src, g.dst), g.slice)
    hosts = wiring.hosts
    state_on: dict[str, list[str]] = {}  # edge switch -> slices whose connections pass through it
    direct = set() if stateless else symmetric(placed)
    for seq, g in enumerate(placed):
        s = slices[g.slice]
        if stateless:
            rules = _grant_rules_stateless(g, s, hosts, ips, seq)
        else:
            rules = _new_rules(g, s, hosts, ips, zone, seq)
            if g in direct:
                rules.append(_direct_rule(g, s, hosts, ips, seq))
            for end in (g.src, g.dst):
                state_on.setdefault(hosts[end][0], []).append(g.slice)
        for sw, rule in rules:
            add(sw, rule)
    for seq, ((src, dst), sl) in enumerate(pair_slice.items()):
        s = slices[sl]
        if stateless:
            rules = _icmp_rules_stateless(src, dst, s, hosts, ips, seq)
        else:
            rules = (_track_rules(src, dst, s, hosts, ips, zone, seq)
                     + _pair_new_rules(src, dst, s, hosts, ips, zone, seq))
            for end in (src, dst):
                state_on.setdefault(hosts[end][0], []).append(sl)
        for sw, rule in rules + _arp_rules(src, dst, s, hosts, arp_of, seq):
            add(sw, rule)
    for sw in sorted(state_on):
        for sl in dict.fromkeys(state_on[sw]):
            for _, rule in _state_rules(sw, slices[sl]):
                add(sw, rule)
        add(*_committed_rule(sw))

    common = slices[COMMON].id
    for sw, dp in wiring.dpids.items():
        for port, _peer in wiring.neighbours(sw):
            switches[dp].append(_rule(TABLE_ADMIT, PRIO_TRUNK, {"in_port": port, "vlan_vid": VLAN_NONE},
                                      cookie(common, "trunk"), f"trunk port {port}: admitted at its edge",
                                      goto=TABLE_FORWARD))
    for dp, rules in forward_rules(wiring).items():
        switches[dp] += rules
    by_id = {s.meter_id: s for s in slices.values() if s.meter_id}
    meters = {dp: [{"meter_id": mid, "rate_kbps": max(1, by_id[mid].rate_bps // 1000),
                    "burst_kb": max(16, by_id[mid].rate_bps // 1000 // 10), "slice": by_id[mid].name}
                   for mid in sorted(ids)] for dp, ids in used_meters.items() if ids}
    return {"switches": switches, "meters": meters,
            "tables": STATELESS_TABLES if stateless else STATEFUL_TABLES,
            "frag_mode": FRAG_NORMAL if stateless else FRAG_NX_MATCH, "grants": placed}


def forward_rules(wiring: Wiring) -> dict[str, list[dict]]:
    """Table 3 of every switch: by destination MAC along the shortest-path trees of `wiring` (dpid -> rules).

    Hosts that share a port and MAC (a UPF and its sessions) share one rule. The
    controller recomputes these alone when a trunk fails (testbed.slicing.reroute).
    """
    common = cookie(0, "forward")
    out: dict[str, list[dict]] = {dp: [] for dp in wiring.dpids.values()}
    forwarded: set[str] = set()
    for host, (home, port, mac) in sorted(wiring.hosts.items()):
        if mac in forwarded:
            continue
        forwarded.add(mac)
        out[wiring.dpids[home]].append(_rule(TABLE_FORWARD, PRIO_FORWARD, {"eth_dst": mac}, common, f"to {host}",
                                             actions=[{"output": port}]))
        for sw, out_port in toward(wiring, home).items():
            out[wiring.dpids[sw]].append(_rule(TABLE_FORWARD, PRIO_FORWARD, {"eth_dst": mac}, common,
                                               f"to {host} via trunk", actions=[{"output": out_port}]))
    return out


def slicing_plan(topo: Topology, policy: Policy, wiring: Wiring, ips: dict[str, str], zone: int = 0,
                 arp_ips: dict[str, str] | None = None) -> dict:
    """The controller plan for a sliced topology: the stateful rules and meters per dpid, and what they mean.

    `ips` maps host names to their address (no prefix); `zone` is the run's
    conntrack zone (conntrack.ct_zone). The plan keeps what it was compiled
    from (slices, grants; plan.py adds hosts and trunks), so an app can compile
    another variant of the same policy (stateless_rules).
    """
    slices = slice_table(topo)
    compiled = compile_rules(wiring, policy.grants, slices, ips, zone=zone, arp_ips=arp_ips)
    return {
        "mode": "slicing",
        "pipeline": "stateful",
        "tables": compiled["tables"],
        "frag_mode": compiled["frag_mode"],
        "conntrack": {"zone": zone},
        "drop_cookie": cookie(slices[COMMON].id, "drop"),
        "switches": compiled["switches"],
        "meters": compiled["meters"],
        "slices": {s.name: {"id": s.id, "fiveqi": s.fiveqi, "dscp": s.dscp, "rate_bps": s.rate_bps,
                            "meter_id": s.meter_id, "members": policy.members.get(s.name, [])}
                   for s in slices.values()},
        "grants": [[g.slice, g.src, g.dst, g.proto, g.port, g.service] for g in compiled["grants"]],
    }


def wiring_from_plan(plan: dict) -> Wiring:
    """The Wiring a plan was compiled for, from what the plan records (hosts, trunks, switch names)."""
    w = Wiring(dpids={sw: dp for dp, sw in plan["switch_names"].items()})
    for a, pa, b, pb in plan.get("trunks", []):
        w.ports.setdefault(a, []).append((pa, b, pb))
        w.ports.setdefault(b, []).append((pb, a, pa))
    for h, rec in plan["hosts"].items():
        w.ports.setdefault(rec["switch"], []).append((rec["port"], h, None))
        w.hosts[h] = (rec["switch"], rec["port"], rec["mac"])
    return w


def stateless_rules(plan: dict) -> dict:
    """The stateless rule set for the same policy as a (stateful) slicing plan: {"switches", "meters",
    "tables", "frag_mode"}. For the negative-control app (controllers/stateless.py) only."""
    slices = {name: SliceInfo(name, s["id"], s.get("fiveqi"), s.get("dscp"), s.get("rate_bps"), s.get("meter_id"))
              for name, s in plan["slices"].items()}
    grants = [Grant(*g) for g in plan["grants"]]
    ips = {h: rec["ip"] for h, rec in plan["hosts"].items() if rec.get("ip")}
    arp_ips = {h: rec["arp_ip"] for h, rec in plan["hosts"].items() if rec.get("arp_ip")}
    return compile_rules(wiring_from_plan(plan), grants, slices, ips, stateless=True, arp_ips=arp_ips)
