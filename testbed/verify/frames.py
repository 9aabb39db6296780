"""A verified header as a real frame on the wire, with the prober's token, so a counterexample can be replayed.

The BDD says which header; this writes it byte for byte (traffic.packets: the
same builders the prober uses), with the token in the payload, or in the
Ethernet padding for ARP, so the capture at the far end can tell it arrived.
"""
from __future__ import annotations

import struct

from traffic import packets as pk
from testbed.slicing import conntrack as ct
from testbed.verify.headers import ETH_ARP, ETH_IP, from_int

LATER_OFFSET = 1480  # where a non-first fragment of the replay sits (bytes; a multiple of 8)


def _flags(bits: int) -> str:
    return "".join(name for i, name in enumerate(pk.TCP_FLAGS) if bits >> i & 1)


def _icmp(kind: int, code: int, tok: bytes) -> bytes:
    hdr = struct.pack("!BBHHH", kind, code, 0, 0x7462, 1)
    return hdr[:2] + struct.pack("!H", pk.checksum(hdr + tok)) + hdr[4:] + tok


def frame(h: dict[str, int], tok: bytes) -> bytes:
    """The Ethernet frame of header `h` (fields as ints, headers.FIELDS names) carrying token `tok`."""
    smac, dmac = from_int("eth_src", h["eth_src"]), from_int("eth_dst", h["eth_dst"])
    vlans = (h["vlan_vid"] & 0xFFF,) if h.get("vlan_vid", 0) & 0x1000 else ()
    et = h["eth_type"]
    if et == ETH_ARP:
        body = pk.arp(h["arp_op"], from_int("arp_sha", h["arp_sha"]), from_int("arp_spa", h["arp_spa"]),
                      from_int("arp_tha", h.get("arp_tha", 0)), from_int("arp_tpa", h["arp_tpa"]))
        return pk.ether(dmac, smac, ETH_ARP, body + tok, vlans)
    if et != ETH_IP:
        return pk.ether(dmac, smac, et, tok + b"\0" * 32, vlans)
    sip, dip = from_int("ipv4_src", h["ipv4_src"]), from_int("ipv4_dst", h["ipv4_dst"])
    proto, tos, frag = h["ip_proto"], h.get("ip_dscp", 0) << 2, h.get("ip_frag", 0)
    if frag & ct.FRAG_LATER:
        ip = pk.ipv4(sip, dip, proto, tok + b"\0" * 8, tos=tos, ident=0x7462, frag=LATER_OFFSET // 8)
        return pk.ether(dmac, smac, ETH_IP, ip, vlans)
    if proto == 6:
        l4 = pk.tcp(sip, dip, h["tp_src"], h["tp_dst"], _flags(h.get("tcp_flags", 0)), tok)
    elif proto == 17:
        l4 = pk.udp(sip, dip, h["tp_src"], h["tp_dst"], tok)
    elif proto == 1:
        l4 = _icmp(h.get("icmpv4_type", 0), h.get("icmpv4_code", 0), tok)
    else:
        l4 = tok
    if frag & ct.FRAG_ANY:  # a first fragment: offset 0, more to come (they never will)
        ip = pk.ipv4(sip, dip, proto, l4 + b"\0" * 8, tos=tos, ident=0x7462, frag=0, more=True)
    else:
        ip = pk.ipv4(sip, dip, proto, l4, tos=tos)
    return pk.ether(dmac, smac, ETH_IP, ip, vlans)

