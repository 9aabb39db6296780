"""The header space: every field a slice rule can match, as bits of a binary decision diagram.

Header Space Analysis (Kazemian et al., NSDI 2012) treats a header as a point in
{0,1}^L and a rule as a subset; a BDD holds any such subset compactly, so the
set of *every* header that can get from A to B is one object, not a sample.
The BDD engine is CUDD through the `dd` package (not hand-rolled).

Fields carry the plan's names (testbed.slicing.flows): TCP and UDP ports share
tp_src/tp_dst (a rule always pins ip_proto, OVS refuses it otherwise).
`ct_state` and `ct_mark` are metadata: the switch, not the sender, sets them;
the ingress port is not a header bit at all but where a packet is (network.py
dispatches on it). `well_formed()` keeps the space to packets a host can send: fields
of a protocol the frame does not carry are zero, as in OVS's flow key (a later
fragment has no L4 header, so its ports and flags read 0).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from dd import cudd

from testbed.slicing import conntrack as ct
from testbed.units import int_to_mac, mac_to_int

ETH_IP, ETH_ARP = 0x0800, 0x0806
VLAN_PRESENT = 0x1000

# (name, width). The order is the BDD's variable order: what rules match together sits close.
FIELDS: list[tuple[str, int]] = [
    ("eth_type", 16), ("vlan_vid", 13), ("eth_src", 48), ("eth_dst", 48),
    ("ipv4_src", 32), ("ipv4_dst", 32), ("ip_proto", 8), ("ip_frag", 2), ("tp_src", 16), ("tp_dst", 16),
    ("tcp_flags", 12), ("icmpv4_type", 8), ("icmpv4_code", 8), ("ct_state", 6), ("ct_mark", 32),
    ("ip_dscp", 6), ("arp_op", 16), ("arp_sha", 48), ("arp_spa", 32), ("arp_tpa", 32),
    ("arp_tha", 48),
]
WIDTH = dict(FIELDS)
METADATA = ("ct_state", "ct_mark")
HEADER = tuple(f for f, _ in FIELDS if f not in METADATA)
KEY = ("ipv4_src", "ipv4_dst", "ip_proto", "tp_src", "tp_dst")  # the tracker's 5-tuple
ALIASES = {"tcp_src": "tp_src", "udp_src": "tp_src", "tcp_dst": "tp_dst", "udp_dst": "tp_dst"}


def bits(field: str) -> list[str]:
    """Variable names of a field, most significant bit first."""
    return [f"{field}_{i}" for i in range(WIDTH[field] - 1, -1, -1)]


def to_int(field: str, value: object) -> int:
    """A plan value (int, MAC or IPv4 text) as the field's integer."""
    if isinstance(value, int):
        return value
    text = str(value)
    if field in ("eth_src", "eth_dst", "arp_sha", "arp_tha"):
        return mac_to_int(text)
    if field in ("ipv4_src", "ipv4_dst", "arp_spa", "arp_tpa"):
        return int(ipaddress.IPv4Address(text))
    return int(text, 0)


def from_int(field: str, value: int) -> object:
    """The readable form of a field's integer (MACs and addresses as text)."""
    if field in ("eth_src", "eth_dst", "arp_sha", "arp_tha"):
        return int_to_mac(value)
    if field in ("ipv4_src", "ipv4_dst", "arp_spa", "arp_tpa"):
        return str(ipaddress.IPv4Address(value))
    return value


@dataclass(frozen=True)
class Protocols:
    """Header sets the tracker and the policy both speak of (OVS conntrack-tcp.c, conntrack-icmp.c)."""
    tcp: object
    udp: object
    icmp: object
    bad_tcp: object  # tcp_invalid_flags(): OVS marks such segments +inv, connection or not
    synack: object
    syn_only: object  # a connection's first segment: SYN, no ACK/FIN/RST (and valid)
    echo_req: object
    echo_rep: object
    icmp_err: object
    later: object  # a non-first fragment (no L4 header)
    frag: object


ICMP_ERRORS = (3, 4, 5, 11, 12)


class Space:
    """One BDD manager with the header variables declared; builds and reads header sets."""

    def __init__(self) -> None:
        self.bdd = cudd.BDD()
        self.bdd.configure(reordering=False)  # the field order above is the good one; reordering costs more
        for f, _ in FIELDS:
            self.bdd.declare(*bits(f))
        self.true, self.false = self.bdd.true, self.bdd.false
        self._meta = [v for f in METADATA for v in bits(f)]
        self.wf = self._well_formed()
        self.p = self._protocols()

    def _protocols(self) -> Protocols:
        f = self.field
        tcp, udp, icmp = f("ip_proto", 6), f("ip_proto", 17), f("ip_proto", 1)
        flags = lambda v, m: f("tcp_flags", v, m)  # noqa: E731
        SYN, ACK, FIN, RST, PSH, URG = ct.SYN, ct.ACK, ct.FIN, ct.RST, ct.PSH, ct.URG
        invalid = (flags(SYN, SYN) & (flags(RST, RST) | flags(FIN, FIN))) \
            | (flags(0, SYN) & flags(0, ACK | RST)) \
            | (flags(0, ACK) & (flags(FIN, FIN) | flags(PSH, PSH) | flags(URG, URG)))
        bad_tcp = tcp & invalid
        return Protocols(
            tcp=tcp, udp=udp, icmp=icmp, bad_tcp=bad_tcp, synack=tcp & flags(SYN | ACK, SYN | ACK),
            syn_only=tcp & flags(SYN, SYN | ACK | FIN | RST) & ~invalid,
            echo_req=icmp & f("icmpv4_type", 8), echo_rep=icmp & f("icmpv4_type", 0),
            icmp_err=icmp & self.any_of("icmpv4_type", ICMP_ERRORS),
            later=f("ip_frag", ct.FRAG_LATER, ct.FRAG_LATER), frag=f("ip_frag", ct.FRAG_ANY, ct.FRAG_ANY))

    # -- building sets ---------------------------------------------------------------
    def field(self, name: str, value: object, mask: object = None):
        """The set of headers whose field equals value on the mask's bits (a MAC mask may be written as
        a MAC, as an aggregated forwarding rule's is)."""
        name = ALIASES.get(name, name)
        v, w = to_int(name, value), WIDTH[name]
        m = (1 << w) - 1 if mask is None else to_int(name, mask) & ((1 << w) - 1)
        return self.bdd.cube({b: bool(v >> (w - 1 - i) & 1) for i, b in enumerate(bits(name)) if m >> (w - 1 - i) & 1})

    def match(self, match: dict):
        """A plan rule's match as a set ([value, mask] for masked fields)."""
        u = self.true
        for k, v in match.items():
            if k == "in_port":
                continue  # where the packet is, not a header bit: the caller dispatches on it
            u &= self.field(k, v[0], v[1]) if isinstance(v, list) else self.field(k, v)
        return u

    def any_of(self, name: str, values: Iterable[int]):
        u = self.false
        for v in values:
            u |= self.field(name, v)
        return u

    def zero(self, *names: str):
        return self.match({n: 0 for n in names})

    def _well_formed(self):
        """Frames a host can put on the wire, as OVS keys them (absent protocol fields read 0)."""
        ip_fields = ("ipv4_src", "ipv4_dst", "ip_proto", "ip_frag", "ip_dscp")
        l4 = ("tp_src", "tp_dst", "tcp_flags", "icmpv4_type", "icmpv4_code")
        arp = ("arp_op", "arp_sha", "arp_spa", "arp_tpa", "arp_tha")
        is_ip, is_arp = self.field("eth_type", ETH_IP), self.field("eth_type", ETH_ARP)
        tcp, udp, icmp = (self.field("ip_proto", p) for p in (6, 17, 1))
        later = self.field("ip_frag", ct.FRAG_LATER, ct.FRAG_LATER)
        no_frag_bits_wrong = ~self.field("ip_frag", ct.FRAG_LATER, ct.FRAG_ANY | ct.FRAG_LATER)  # LATER implies ANY
        u = self.zero("ct_state", "ct_mark")
        u &= is_ip | self.zero(*ip_fields, *l4)
        u &= is_arp | self.zero(*arp)
        u &= no_frag_bits_wrong
        u &= ~later | self.zero(*l4)
        u &= tcp | self.zero("tcp_flags")
        u &= tcp | udp | self.zero("tp_src", "tp_dst")
        u &= icmp | self.zero("icmpv4_type", "icmpv4_code")
        return u

    # -- reading sets ------------------------------------------------------------------
    def headers_only(self, u):
        """Forget the metadata (port, tracker state): the sender's header set."""
        return self.bdd.exist(self._meta, u)

    def forget(self, u, *names: str):
        return self.bdd.exist([v for n in names for v in bits(n)], u)

    def set_to(self, u, name: str, value: int):
        """Every header of u with one field overwritten (a set_field, the switch setting in_port)."""
        return self.forget(u, name) & self.field(name, value)

    def rename(self, u, pairs: dict[str, str]):
        """Swap fields (ipv4_src <-> ipv4_dst ...) simultaneously: the reverse direction of a key set."""
        sub = {}
        for a, b in pairs.items():
            sub.update(dict(zip(bits(a), bits(b))))
        return self.bdd.let(sub, u)

    def restrict(self, u, values: dict[str, int]):
        """u with fields fixed to constants (a header whose fields were rewritten, seen by a later match)."""
        sub = {}
        for name, v in values.items():
            w = WIDTH[name]
            sub.update({b: bool(v >> (w - 1 - i) & 1) for i, b in enumerate(bits(name))})
        return self.bdd.let(sub, u) if sub else u

    def pick(self, u, prefer: dict | None = None) -> dict[str, int] | None:
        """One concrete header of u (fields as ints), as close to `prefer` as u allows (readable counterexamples).
        A preferred value may be a list of alternatives, the first that u allows winning."""
        if u == self.false:
            return None
        for name, v in (prefer or {}).items():
            for alt in (v if isinstance(v, list) else [v]):
                narrowed = u & self.field(name, alt)
                if narrowed != self.false:
                    u = narrowed
                    break
        a = self.bdd.pick(u, care_vars=None) or {}
        out = {}
        for f, w in FIELDS:
            val = 0
            for i, b in enumerate(bits(f)):
                if a.get(b):
                    val |= 1 << (w - 1 - i)
            out[f] = val
        return out

    def count(self, u, fields: Iterable[str] = HEADER) -> int:
        """How many headers u holds over these fields (the others quantified away)."""
        names = [v for f in fields for v in bits(f)]
        keep = set(names)
        drop = [v for f, _ in FIELDS for v in bits(f) if v not in keep]
        return int(self.bdd.count(self.bdd.exist(drop, u), nvars=len(names)))
