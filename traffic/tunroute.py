"""What a 5G UE's kernel does with a packet its PDU session carries: out of uesimtunN, from the session's address.

The prober crafts Ethernet frames with a node's own addresses. On a UE of a
5G run, a packet to a destination one of its sessions routes (the UE program
installs a /32 per granted service through the session's TUN) leaves through
that TUN: as a bare IP packet (a TUN has no link layer), and with the
session's address as its source, the one the kernel would choose. `route()`
does the same to a crafted frame, so every probe, attack and evasion from a UE
travels the real path (UE -> RLS -> gNB -> GTP-U -> UPF -> N6) and is judged
where the slice's rules hold, on N6. Frames the kernel would not route that
way (another source address or MAC: a spoofing attack on the node's own link;
a VLAN tag, ARP, a destination no session routes) leave the node's own
interface unchanged.
"""
from __future__ import annotations

import socket
import struct

ETH_HLEN = 14
ETH_P_IP = 0x0800


def _fold(x: int) -> int:
    while x >> 16:
        x = (x & 0xFFFF) + (x >> 16)
    return x


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def ip_header_checksum(header: bytes) -> int:
    return ~_fold(_sum16(header)) & 0xFFFF


def adjust_checksum(csum: int, old: bytes, new: bytes) -> int:
    """RFC 1624 incremental update: the checksum once `old` (part of what it covers) became `new`."""
    x = (~csum & 0xFFFF) + _sum16(bytes(b ^ 0xFF for b in old)) + _sum16(new)
    return ~_fold(x) & 0xFFFF


def resource(packet: bytes, new_src: str) -> bytes:
    """An IPv4 packet with its source address replaced, IP and TCP/UDP checksums kept right."""
    p = bytearray(packet)
    ihl = (p[0] & 0x0F) * 4
    old, new = bytes(p[12:16]), socket.inet_aton(new_src)
    p[12:16] = new
    p[10:12] = b"\0\0"
    p[10:12] = struct.pack("!H", ip_header_checksum(bytes(p[:ihl])))
    frag_offset = struct.unpack_from("!H", p, 6)[0] & 0x1FFF
    proto = p[9]
    at = {6: ihl + 16, 17: ihl + 6}.get(proto)
    if frag_offset == 0 and at is not None and len(p) >= at + 2:
        csum = struct.unpack_from("!H", p, at)[0]
        if not (proto == 17 and csum == 0):  # a UDP datagram without a checksum stays without
            fixed = adjust_checksum(csum, old, new)
            p[at:at + 2] = struct.pack("!H", fixed if fixed or proto != 17 else 0xFFFF)
    return bytes(p)


class TunRoutes:
    """The node's address and its session routes: destination address -> (TUN name, session address)."""

    def __init__(self, node_ip: str | None, routes: dict[str, list[str]] | None, node_mac: str | None = None):
        self.node_ip = socket.inet_aton(node_ip) if node_ip else None
        self.node_mac = bytes.fromhex(node_mac.replace(":", "")) if node_mac else None
        self.routes = {socket.inet_aton(d): (tun, src) for d, (tun, src) in (routes or {}).items()}

    def route(self, frame: bytes) -> tuple[str | None, bytes]:
        """(TUN name, IP packet) when a session carries it; (None, the frame as it was) otherwise."""
        if (not self.routes or len(frame) < ETH_HLEN + 20 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IP
                or frame[ETH_HLEN + 12:ETH_HLEN + 16] != self.node_ip
                or (self.node_mac is not None and frame[6:12] != self.node_mac)):
            return None, frame
        hit = self.routes.get(frame[ETH_HLEN + 16:ETH_HLEN + 20])
        if hit is None:
            return None, frame
        tun, src = hit
        total = struct.unpack_from("!H", frame, ETH_HLEN + 2)[0]
        return tun, resource(frame[ETH_HLEN:ETH_HLEN + total], src)
