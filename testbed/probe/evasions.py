"""Evasion probes: the other direction of every grant, and the tricks that get past a stateless
filter (pure planning; no root needed).

A grant lets a member open a service on a provider; nothing lets the provider open anything on
the member, and the provider's packets belong only to connections the member opened. A
compromised server (or a tester on it) tries exactly that. Every probe here is a crafted frame
with both ends' real MAC and IP, sent from the node the attack starts at, and a must-fail row:
its token captured at the target is a LEAK.

  reverse-syn        provider -> member, a new connection from a port that is not the service's:
                     TCP SYN to the member's ssh port and to the service's port number, a first
                     UDP datagram
  source-port        the service port as source port (nmap --source-port): TCP SYNs from it to the
                     member's well-known ports, UDP from it to member ports (from a TCP service's
                     number too: a rule must check the protocol), and the member -> provider
                     direction (the service port as source, to a port the provider does not grant)
  tcp-flags          ACK, FIN, Xmas (FIN+PSH+URG), NULL and RST segments from the service port to a
                     member port no connection uses (firewall-mapping scans)
  unsolicited-reply  replies to nothing: SYN-ACK and UDP from the service port, ICMP echo reply
  fragment           member -> provider: the first fragment of a SYN to a forbidden port (plus the
                     rest), a non-first fragment alone; provider -> member: overlapping fragments (a
                     'reply' ACK whose second fragment rewrites the flags to SYN), tiny fragments
                     (the first holds only the ports, the flags come in the second), a non-first
                     fragment alone

Sampling keeps the volume bounded (the reference alliance has ~400 grants between ~400
provider/member pairs): every (provider, member) pair gets the two headline rows (a SYN to the
member's ssh port from the service port and from another port); every (provider, slice) pair gets
every kind, against one of the slice's members (rotating by provider, so different providers probe
different members). Ports on the member side are above Linux's ephemeral range and the matrix's
crafted source ports, so no probe can be taken for part of a real or probed connection.
"""
from __future__ import annotations

import zlib
from collections import defaultdict

from traffic import packets as P

from testbed.probe.attacks import Attack, Hosts, Ids
from testbed.probe.matrix import Probe
from testbed.slicing.policy import Grant, Policy

KINDS = ("reverse-syn", "source-port", "tcp-flags", "unsolicited-reply", "fragment")
MEMBER_TCP_PORTS = (3389, 5900, 8080)  # what a terminal may listen on (besides ssh): remote desktop, VNC, web agents
MEMBER_UDP_PORTS = (53, 161, 5060)  # DNS, SNMP, SIP
SSH = 22
IDLE_PORT_BASE = 61000  # member-side ports no connection uses: above Linux's ephemeral range (32768-60999)
IDLE_PORTS = 2000  # and above the matrix's crafted source ports (20000-59999)
ATTACKER_PORT_BASE = 63000  # the attacker's own source ports (not a service port)
FLAG_SCANS = (("ACK", "A"), ("FIN", "F"), ("Xmas (FIN+PSH+URG)", "FPU"), ("NULL (no flags)", ""), ("RST", "R"))
FRAG_IDENT_BASE = 0x5400  # IP ids of crafted fragments (the datagram they belong to)


def _pick(items: list, key: str):
    """One of `items`, the same for the same key in every run (crc32, not Python's salted hash)."""
    return items[zlib.crc32(key.encode()) % len(items)]


def _grants_by_pair(pol: Policy) -> dict[tuple[str, str], list[Grant]]:
    """(provider, member) -> the member's grants on that provider, tcp first."""
    out: dict[tuple[str, str], list[Grant]] = defaultdict(list)
    for g in pol.grants:
        out[(g.dst, g.src)].append(g)
    for gs in out.values():
        gs.sort(key=lambda g: (g.proto != "tcp", g.port, g.slice))
    return out


def _echo_idents(rows: list[Probe]) -> dict[tuple[str, str], set[int]]:
    """ICMP idents the matrix's echo requests use per (src, dst): a crafted reply must match none."""
    out: dict[tuple[str, str], set[int]] = defaultdict(set)
    for r in rows:
        if r.proto == "icmp":
            n = int(r.id, 16)
            out[(r.src, r.dst)] |= {n & 0xFFFF, (n + 0x8000) & 0xFFFF}
    return out


class _Plan:
    """Builds the rows; skips frames the policy grants (a legitimate connection is no attack)."""

    def __init__(self, pol: Policy, h: Hosts, rows: list[Probe]):
        self.pol, self.h = pol, h
        self.ids = Ids("v")
        self.out: list[Attack] = []
        self.seen: set[tuple] = set()
        self.idents = _echo_idents(rows)
        self.n_idle = self.n_attacker = self.n_frag = 0

    def idle_port(self) -> int:
        self.n_idle += 1
        return IDLE_PORT_BASE + self.n_idle % IDLE_PORTS

    def attacker_port(self) -> int:
        self.n_attacker += 1
        return ATTACKER_PORT_BASE + self.n_attacker % IDLE_PORTS

    def frag_ident(self) -> int:
        self.n_frag += 1
        return (FRAG_IDENT_BASE + self.n_frag) & 0xFFFF

    def echo_ident(self, requester: str, replier: str) -> int:
        used = self.idents[(requester, replier)]
        ident = 0xFFFF
        while ident in used:
            ident -= 1
        used.add(ident)
        return ident

    def granted(self, src: str, dst: str, proto: str, dport: int) -> bool:
        return self.pol.allowed(src, dst, proto, dport)

    def add(self, kind: str, name: str, src: str, dst: str, build, sent: str, key: tuple) -> None:
        """`build(token)` -> frames; `key` says what the row probes, so no row is planned twice."""
        if (kind, src, dst, *key) in self.seen:
            return
        self.seen.add((kind, src, dst, *key))
        i = self.ids()
        frames = build(P.token(i))
        if frames:
            self.out.append(Attack(i, kind, name, src, frames, [dst], sent))

    # -- one frame kind each ------------------------------------------------------
    def l4(self, proto: str, src: str, dst: str, sport: int, dport: int, tok: bytes, flags: str = "S",
           ack: int = 0) -> bytes:
        h = self.h
        if proto == "tcp":
            return P.tcp_frame(h.mac[src], h.mac[dst], h.ip[src], h.ip[dst], sport, dport, tok, flags=flags, ack=ack)
        return P.udp_frame(h.mac[src], h.mac[dst], h.ip[src], h.ip[dst], sport, dport, tok)

    def frag(self, src: str, dst: str, proto: int, ident: int, offset: int, more: bool, data: bytes,
             trailer: bytes = b"") -> bytes:
        h = self.h
        return P.fragment_frame(h.mac[src], h.mac[dst], h.ip[src], h.ip[dst], proto, ident, offset, more, data,
                                trailer)


def _flags_text(flags: str) -> str:
    return "+".join({"F": "FIN", "S": "SYN", "R": "RST", "P": "PSH", "A": "ACK", "U": "URG"}[f] for f in flags) or "none"


def _pair_rows(pl: _Plan, p: str, m: str, g: Grant) -> None:
    """The headline rows for one (provider, member) pair: a SYN to the member's ssh port, from
    the service port (the stateless filter's hole) and from another port."""
    h = pl.h
    if g.proto == "tcp" and not pl.granted(p, m, "tcp", SSH):
        pl.add("source-port", f"{p} -> {m} TCP SYN from {g.service}'s port {g.port} to tcp/{SSH}", p, m,
               lambda t: [pl.l4("tcp", p, m, g.port, SSH, t)],
               f"tcp SYN {h.ip[p]}:{g.port} > {h.ip[m]}:{SSH}", ("tcp", g.port, SSH))
    elif g.proto == "udp" and not pl.granted(p, m, "udp", MEMBER_UDP_PORTS[1]):
        dport = MEMBER_UDP_PORTS[1]
        pl.add("source-port", f"{p} -> {m} UDP from {g.service}'s port {g.port} to udp/{dport}", p, m,
               lambda t: [pl.l4("udp", p, m, g.port, dport, t)],
               f"udp {h.ip[p]}:{g.port} > {h.ip[m]}:{dport}", ("udp", g.port, dport))
    sport = pl.attacker_port()
    if not pl.granted(p, m, "tcp", SSH):
        pl.add("reverse-syn", f"{p} -> {m} TCP SYN to tcp/{SSH} (a connection the member did not open)", p, m,
               lambda t: [pl.l4("tcp", p, m, sport, SSH, t)],
               f"tcp SYN {h.ip[p]}:{sport} > {h.ip[m]}:{SSH}", ("tcp", "other", SSH))


def _slice_rows(pl: _Plan, p: str, m: str, gs: list[Grant]) -> None:
    """Every evasion kind from provider `p` against member `m`, whose grants on `p` are `gs`."""
    h = pl.h
    g = gs[0]
    gt = next((x for x in gs if x.proto == "tcp"), None)
    gu = next((x for x in gs if x.proto == "udp"), None)
    tport = (gt or g).port  # the port a TCP 'reply' would come from (a UDP service's number if no TCP one)
    uport = (gu or g).port
    svc = f"{g.service}'s port"

    # reverse-syn: new connections provider -> member, from a port that is not the service's
    sport, idle = pl.attacker_port(), pl.idle_port()
    if not pl.granted(p, m, "tcp", g.port):
        pl.add("reverse-syn", f"{p} -> {m} TCP SYN to tcp/{g.port} (the service's number, on the member)", p, m,
               lambda t: [pl.l4("tcp", p, m, sport, g.port, t)],
               f"tcp SYN {h.ip[p]}:{sport} > {h.ip[m]}:{g.port}", ("tcp", "other", g.port))
    pl.add("reverse-syn", f"{p} -> {m} first UDP datagram to udp/{idle}", p, m,
           lambda t: [pl.l4("udp", p, m, sport, idle, t)],
           f"udp {h.ip[p]}:{sport} > {h.ip[m]}:{idle}", ("udp", "other", "idle"))

    # source-port: the service port as source port
    ports = [x for x in (*MEMBER_TCP_PORTS, pl.idle_port()) if not pl.granted(p, m, "tcp", x)]
    pl.add("source-port", f"{p} -> {m} TCP SYN scan from port {tport} to {len(ports)} member ports", p, m,
           lambda t: [pl.l4("tcp", p, m, tport, x, t) for x in ports],
           f"{len(ports)} tcp SYN {h.ip[p]}:{tport} > {h.ip[m]}:{','.join(map(str, ports))}",
           ("tcp", tport, "scan"))
    ports = [x for x in (*MEMBER_UDP_PORTS, pl.idle_port()) if not pl.granted(p, m, "udp", x)]
    pl.add("source-port", f"{p} -> {m} UDP from port {uport} to {len(ports)} member ports", p, m,
           lambda t: [pl.l4("udp", p, m, uport, x, t) for x in ports],
           f"{len(ports)} udp {h.ip[p]}:{uport} > {h.ip[m]}:{','.join(map(str, ports))}",
           ("udp", uport, "scan"))
    forbidden = next((x for x in (SSH, 23, 3389) if not pl.granted(m, p, "tcp", x)), None)
    if forbidden is not None:
        pl.add("source-port", f"{m} -> {p} TCP SYN from {svc} {g.port} to tcp/{forbidden}", m, p,
               lambda t: [pl.l4("tcp", m, p, g.port, forbidden, t)],
               f"tcp SYN {h.ip[m]}:{g.port} > {h.ip[p]}:{forbidden}", ("tcp", g.port, forbidden))

    # tcp-flags: segments of no connection, from the service port
    for label, flags in FLAG_SCANS:
        idle = pl.idle_port()
        pl.add("tcp-flags", f"{p} -> {m} TCP {label} from port {tport} to tcp/{idle}", p, m,
               lambda t, flags=flags, idle=idle: [pl.l4("tcp", p, m, tport, idle, t, flags=flags,
                                                        ack=1 if "A" in flags else 0)],
               f"tcp {_flags_text(flags)} {h.ip[p]}:{tport} > {h.ip[m]}:{idle}", ("tcp", tport, flags))

    # unsolicited-reply: replies to requests nobody sent
    idle = pl.idle_port()
    pl.add("unsolicited-reply", f"{p} -> {m} TCP SYN-ACK from port {tport} (no SYN was sent)", p, m,
           lambda t: [pl.l4("tcp", p, m, tport, idle, t, flags="SA", ack=1)],
           f"tcp SYN+ACK {h.ip[p]}:{tport} > {h.ip[m]}:{idle}", ("tcp", tport, "SA"))
    idle2 = pl.idle_port()
    pl.add("unsolicited-reply", f"{p} -> {m} UDP 'reply' from port {uport} (no request was sent)", p, m,
           lambda t: [pl.l4("udp", p, m, uport, idle2, t)],
           f"udp {h.ip[p]}:{uport} > {h.ip[m]}:{idle2}", ("udp", uport, "reply"))
    ident = pl.echo_ident(m, p)
    pl.add("unsolicited-reply", f"{p} -> {m} ICMP echo reply (no echo request was sent)", p, m,
           lambda t: [P.icmp_reply_frame(h.mac[p], h.mac[m], h.ip[p], h.ip[m], ident, t)],
           f"icmp echo reply {h.ip[p]} > {h.ip[m]} id {ident:#06x}", ("icmp", "reply"))

    # fragment tricks
    if forbidden is not None:
        idle, ident = pl.idle_port(), pl.frag_ident()
        pl.add("fragment", f"{m} -> {p} fragmented TCP SYN to tcp/{forbidden} (first fragment has the port)", m, p,
               lambda t: P.fragments(h.mac[m], h.mac[p], h.ip[m], h.ip[p], 6, ident,
                                     P.tcp(h.ip[m], h.ip[p], idle, forbidden, "S", t + t), (32,)),
               f"2 fragments (id {ident:#06x}) of tcp SYN {h.ip[m]}:{idle} > {h.ip[p]}:{forbidden}",
               ("frag", "first", forbidden))
    ident = pl.frag_ident()
    pl.add("fragment", f"{m} -> {p} a non-first UDP fragment alone", m, p,
           lambda t: [pl.frag(m, p, 17, ident, 16, True, t + b"\0" * 4)],
           f"udp fragment at offset 16, MF, id {ident:#06x}, {h.ip[m]} > {h.ip[p]}", ("frag", "alone", "udp"))
    idle, ident = pl.idle_port(), pl.frag_ident()

    def overlapping(t: bytes) -> list[bytes]:
        ack_seg = P.tcp(h.ip[p], h.ip[m], tport, idle, "A", t + t, ack=1)
        syn_seg = P.tcp(h.ip[p], h.ip[m], tport, idle, "S", t + t)
        return [pl.frag(p, m, 6, ident, 0, True, ack_seg[:32]), pl.frag(p, m, 6, ident, 8, False, syn_seg[8:])]

    pl.add("fragment", f"{p} -> {m} overlapping fragments: an ACK from port {tport} rewritten to a SYN", p, m,
           overlapping, f"2 fragments (id {ident:#06x}): tcp ACK {h.ip[p]}:{tport} > {h.ip[m]}:{idle} bytes 0-31, "
                        "then bytes 8-43 with SYN", ("frag", "overlap"))
    idle, ident = pl.idle_port(), pl.frag_ident()

    def tiny(t: bytes) -> list[bytes]:
        seg = P.tcp(h.ip[p], h.ip[m], tport, idle, "S", t)
        return [pl.frag(p, m, 6, ident, 0, True, seg[:8], trailer=t), pl.frag(p, m, 6, ident, 8, False, seg[8:])]

    pl.add("fragment", f"{p} -> {m} tiny fragments: ports in the first 8 bytes, SYN in the second", p, m, tiny,
           f"2 fragments (id {ident:#06x}) of tcp SYN {h.ip[p]}:{tport} > {h.ip[m]}:{idle}, first 8 bytes",
           ("frag", "tiny"))
    ident = pl.frag_ident()
    pl.add("fragment", f"{p} -> {m} a non-first TCP fragment alone", p, m,
           lambda t: [pl.frag(p, m, 6, ident, 16, False, t + b"\0" * 4)],
           f"tcp fragment at offset 16, last, id {ident:#06x}, {h.ip[p]} > {h.ip[m]}", ("frag", "alone", "tcp"))


def plan_evasions(pol: Policy, h: Hosts, rows: list[Probe] | None = None) -> list[Attack]:
    """Must-fail rows for the other direction of every grant and the classic evasions.

    `rows` (the matrix) tells which ICMP idents its echo requests use, so a crafted echo reply
    cannot be taken for the answer to one of them."""
    pl = _Plan(pol, h, rows or [])
    pairs = _grants_by_pair(pol)
    placed = {k: v for k, v in pairs.items() if k[0] in h.ip and k[1] in h.ip}
    for (p, m), gs in sorted(placed.items()):
        _pair_rows(pl, p, m, gs[0])
    by_slice: dict[tuple[str, str], list[str]] = defaultdict(list)
    for g in pol.grants:
        if (g.dst, g.src) in placed and g.src not in by_slice[(g.dst, g.slice)]:
            by_slice[(g.dst, g.slice)].append(g.src)
    for (p, sl), members in sorted(by_slice.items()):
        m = _pick(sorted(members), f"{p}/{sl}")
        _slice_rows(pl, p, m, [g for g in placed[(p, m)] if g.slice == sl] or placed[(p, m)])
    return pl.out


def counts(plan: list[Attack]) -> dict[str, dict[str, int]]:
    """kind -> {'rows': n, 'frames': n}: what a run sends, per kind."""
    out = {k: {"rows": 0, "frames": 0} for k in KINDS}
    for a in plan:
        out[a.kind]["rows"] += 1
        out[a.kind]["frames"] += len(a.frames)
    return out
