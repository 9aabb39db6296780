"""Attack probes a security tester expects, derived from the policy (pure planning).

Each attack is one or more crafted frames sent from an attacker host, plus the
set of hosts where the frame's arrival is a LEAK (decided by the captures at
those hosts, never by the lack of a reply). Attackers are the first member of
each slice, victims and targets are picked from the policy:

  spoof-ip         attacker's MAC, another host's IP (a member of another slice
                   that may reach the target; or a co-member, to a service the
                   attacker may reach: anti-spoofing must drop both)
  spoof-mac        another member's MAC and IP (full impersonation), and
                   another member's MAC with the attacker's own IP
  arp-poison       unsolicited ARP replies telling a client the server is at the
                   attacker's MAC, telling the server the client is, and a
                   gratuitous ARP broadcast claiming the server's IP
  vlan-double-tag  802.1Q-in-802.1Q frames (outer 1, inner one per slice) to a
                   forbidden service, unicast and broadcast
  broadcast        IPv4 broadcast, link-local and site multicast datagrams, and an
                   ARP request for a host of another slice: no host outside the
                   attacker's slices and granted peers may receive them
  flood            admitted traffic at 3x the slice's rate: what arrives must stay
                   within the rate (the slice meter holds)
  gtpu-teid, gtpu-non-gnb, spoof-inner   on the 5G user plane: see gtpu.py
The forbidden-port attack is the matrix's `port` rows (see matrix.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from traffic import packets as P

from testbed.slicing.policy import INFRA, Policy
from testbed.topology.model import Topology

MULTICASTS = (("mdns", "224.0.0.251", 5353), ("ssdp", "239.255.255.250", 1900))
FLOOD_FACTOR = 3.0
FLOOD_MAX_BPS = 400e6  # what one Python sender reaches here is about 300 Mbit/s
FLOOD_MIN_FACTOR = 1.4  # below this multiple of the rate, a broken meter could not be told apart
FLOOD_SECONDS = 2.0
FLOOD_FRAME = 1360  # TCP payload bytes per flood frame: with its headers, a 1400-octet IP packet (a 5G session TUN's MTU)
METER_TOLERANCE = 1.2
FLOOD_CONCLUSIVE = 0.7  # below this share of the rate arriving, the path (not the meter) was the limit  # received rate may exceed the slice rate by this factor (meter burst)
NO_RAN = "the topology has no 5G path (no gNB and UE, or ran.backend off): no GTP-U session to attack"


@dataclass
class Hosts:
    """Addresses of the running network (from the layout), by host name; `via`: a 5G UE's session routes."""

    ip: dict[str, str]
    mac: dict[str, str]
    via: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)

    def src_ip(self, src: str, dst: str) -> str:
        """The source address `src`'s packets to `dst` arrive with: a PDU session's when one carries them."""
        hit = self.via.get(src, {}).get(self.ip.get(dst, ""))
        return hit[1] if hit else self.ip[src]


@dataclass
class Attack:
    id: str
    kind: str
    name: str
    src: str
    frames: list[bytes]
    forbidden_at: list[str]
    sent: str
    flush_arp: list[tuple[str, str]] = field(default_factory=list)  # (host, ip) to forget afterwards
    rate_bps: int = 0  # flood only
    flood_target: str = ""
    via: str | None = None  # the interface its frames leave by (a UE's TUN: bare IP packets); None: the node's
    tunnelled_at: list[str] = field(default_factory=list)  # hosts where even the tunnelled token is a LEAK


class Ids:
    """Probe ids of one planner: its prefix letter and a counter. The prefixes are not hex digits, so they
    never clash with matrix ids, nor with each other: x attacks, v evasions, g GTP-U attacks, t twins."""

    def __init__(self, prefix: str = "x") -> None:
        self.prefix = prefix
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.n:07d}"


def _attackers(pol: Policy) -> list[tuple[str, str]]:
    """(slice, attacker): the first member of each slice with members."""
    return [(s, ms[0]) for s, ms in pol.members.items() if ms]


def _peers(pol: Policy, host: str) -> set[str]:
    """Hosts `host` may legitimately exchange packets with: its slices' members, grant peers."""
    out = {m for s in pol.slices_of(host) for m in pol.members[s]}
    out |= {g.dst for g in pol.grants if g.src == host} | {g.src for g in pol.grants if g.dst == host}
    out |= {b for a, b in pol.neighbours if a == host} | {a for a, b in pol.neighbours if b == host}
    out.discard(host)
    return out


def _forbidden_grant(pol: Policy, a: str):
    """A grant to some other host for a service `a` may not use (tcp preferred)."""
    cands = [g for g in pol.grants if g.src != a and g.dst != a and not pol.allowed(a, g.dst, g.proto, g.port)]
    cands.sort(key=lambda g: (g.proto != "tcp", g.slice == INFRA, g.src, g.dst))
    return cands[0] if cands else None


def _own_grant(pol: Policy, a: str):
    own = sorted((g for g in pol.grants if g.src == a), key=lambda g: (g.proto != "tcp", g.dst))
    return own[0] if own else None


def _l4(proto: str, smac, dmac, sip, dip, sport, dport, tok, vlans=()):
    if proto == "tcp":
        return P.tcp_frame(smac, dmac, sip, dip, sport, dport, tok, vlans=vlans)
    return P.udp_frame(smac, dmac, sip, dip, sport, dport, tok, vlans=vlans)


def plan_attacks(topo: Topology, pol: Policy, h: Hosts) -> list[Attack]:
    ids = Ids()
    hosts = [n.name for n in topo.hosts]
    out: list[Attack] = []
    n_slices = len([s for s in pol.members if s != INFRA])
    for sl, a in _attackers(pol):
        g = _forbidden_grant(pol, a)
        own = _own_grant(pol, a)
        mates = [m for m in pol.members[sl] if m != a]
        if g:
            b, d = g.src, g.dst
            i = ids()
            out.append(Attack(i, "spoof-ip", f"{a} ({sl}) spoofs {b}'s IP -> {d} {g.service} ({g.proto}/{g.port})",
                              a, [_l4(g.proto, h.mac[a], h.mac[d], h.ip[b], h.ip[d], 40001, g.port, P.token(i))],
                              [d], f"{g.proto} to {h.ip[d]}:{g.port} from ip {h.ip[b]} (mac {h.mac[a]}, own)"))
            i = ids()
            out.append(Attack(i, "spoof-mac", f"{a} ({sl}) impersonates {b} (MAC+IP) -> {d} {g.service}",
                              a, [_l4(g.proto, h.mac[b], h.mac[d], h.ip[b], h.ip[d], 40002, g.port, P.token(i))],
                              [d], f"{g.proto} to {h.ip[d]}:{g.port} from mac {h.mac[b]} ip {h.ip[b]}"))
            # ARP poisoning of the server and of a client that may use it.
            i = ids()
            out.append(Attack(i, "arp-poison", f"{a} tells {b} that {d} ({h.ip[d]}) is at {a}'s MAC", a,
                              [P.arp_frame(h.mac[a], h.mac[b], 2, h.mac[a], h.ip[d], h.mac[b], h.ip[b], P.token(i))],
                              [b], f"ARP reply {h.ip[d]} is-at {h.mac[a]} to {b}", flush_arp=[(b, h.ip[d])]))
            i = ids()
            out.append(Attack(i, "arp-poison", f"{a} tells server {d} that {b} ({h.ip[b]}) is at {a}'s MAC", a,
                              [P.arp_frame(h.mac[a], h.mac[d], 2, h.mac[a], h.ip[b], h.mac[d], h.ip[d], P.token(i))],
                              [d], f"ARP reply {h.ip[b]} is-at {h.mac[a]} to {d}", flush_arp=[(d, h.ip[b])]))
            i = ids()
            others = [x for x in hosts if x != a]
            out.append(Attack(i, "arp-poison", f"{a} broadcasts a gratuitous ARP claiming {d}'s IP", a,
                              [P.arp_frame(h.mac[a], P.BROADCAST, 1, h.mac[a], h.ip[d], "00:00:00:00:00:00",
                                           h.ip[d], P.token(i))],
                              others, f"gratuitous ARP {h.ip[d]} is-at {h.mac[a]}, broadcast",
                              flush_arp=[(x, h.ip[d]) for x in others if x != d]))
            i = ids()
            inner = list(range(1, n_slices + 2))
            frames = [_l4(g.proto, h.mac[a], h.mac[d], h.ip[a], h.ip[d], 40003, g.port, P.token(i), vlans=(1, v))
                      for v in inner]
            out.append(Attack(i, "vlan-double-tag", f"{a} ({sl}) double-tagged -> {d} {g.service}", a, frames,
                              others, f"{len(frames)} frames 802.1Q 1 / 802.1Q {inner[0]}..{inner[-1]} "
                                      f"/ {g.proto} {h.ip[d]}:{g.port}, to {d}'s MAC"))
            i = ids()
            frames = [_l4(g.proto, h.mac[a], P.BROADCAST, h.ip[a], h.ip[d], 40004, g.port, P.token(i), vlans=(1, v))
                      for v in inner]
            out.append(Attack(i, "vlan-double-tag", f"{a} ({sl}) double-tagged broadcast -> {d} {g.service}", a,
                              frames, others, f"{len(frames)} frames 802.1Q 1 / 802.1Q n / {g.proto} "
                                              f"{h.ip[d]}:{g.port}, to ff:ff:ff:ff:ff:ff"))
        if own and mates:
            c = mates[0]
            i = ids()
            out.append(Attack(i, "spoof-ip", f"{a} ({sl}) spoofs co-member {c}'s IP -> {own.dst} {own.service}", a,
                              [_l4(own.proto, h.mac[a], h.mac[own.dst], h.ip[c], h.ip[own.dst], 40005, own.port,
                                   P.token(i))],
                              [own.dst], f"{own.proto} to {h.ip[own.dst]}:{own.port} from ip {h.ip[c]} (own mac)"))
            i = ids()
            out.append(Attack(i, "spoof-mac", f"{a} ({sl}) uses {c}'s MAC -> {own.dst} {own.service}", a,
                              [_l4(own.proto, h.mac[c], h.mac[own.dst], h.ip[a], h.ip[own.dst], 40006, own.port,
                                   P.token(i))],
                              [own.dst], f"{own.proto} to {h.ip[own.dst]}:{own.port} from mac {h.mac[c]} (own ip)"))
        # Broadcast / multicast must not cross into other slices.
        outside = [x for x in hosts if x != a and x not in _peers(pol, a)]
        if outside:
            casts = [("IPv4 broadcast", P.BROADCAST, "255.255.255.255", 9)]
            casts += [(f"multicast {n}", multicast_mac(ip), ip, p) for n, ip, p in MULTICASTS]
            for label, dmac, dip, port in casts:
                i = ids()
                out.append(Attack(i, "broadcast", f"{a} ({sl}) {label} to {dip}:{port}", a,
                                  [P.udp_frame(h.mac[a], dmac, h.ip[a], dip, 40007, port, P.token(i))],
                                  outside, f"udp {dip}:{port} to {dmac}"))
            x = outside[0]
            i = ids()
            out.append(Attack(i, "broadcast", f"{a} ({sl}) ARP who-has {x} (other slice)", a,
                              [P.arp_frame(h.mac[a], P.BROADCAST, 1, h.mac[a], h.ip[a], "00:00:00:00:00:00",
                                           h.ip[x], P.token(i))],
                              outside, f"ARP request who-has {h.ip[x]} tell {h.ip[a]}, broadcast",
                              flush_arp=[(y, h.ip[a]) for y in outside]))
    # Flooding beyond the slice rate: admitted traffic, so only the meter can stop it. The frames are
    # SYNs (a SYN flood, with a payload to fill the pipe): the stateful rules admit a connection's
    # opening segment from the member, while a stray ACK would be dropped as not part of any connection.
    for s in topo.slices:
        if not s.rate:
            continue
        g = next((g for g in sorted(pol.grants) if g.slice == s.name and g.proto == "tcp"), None)
        if g is None:
            continue
        i = ids()
        frame = P.tcp_frame(h.mac[g.src], h.mac[g.dst], h.ip[g.src], h.ip[g.dst], 40008, g.port, P.token(i),
                            flags="S", pad_to=FLOOD_FRAME)
        out.append(Attack(i, "flood", f"{g.src} ({s.name}, rate {s.rate / 1e6:g} Mbit/s) floods {g.dst} {g.service}",
                          g.src, [frame], [], f"tcp SYN {len(frame)} B frames to {h.ip[g.dst]}:{g.port} at "
                                             f"{min(FLOOD_FACTOR * s.rate, FLOOD_MAX_BPS) / 1e6:g} Mbit/s for "
                                             f"{FLOOD_SECONDS:g} s", rate_bps=s.rate, flood_target=g.dst))
    return out


def multicast_mac(ip: str) -> str:
    o = [int(x) for x in ip.split(".")]
    return f"01:00:5e:{o[1] & 0x7F:02x}:{o[2]:02x}:{o[3]:02x}"
