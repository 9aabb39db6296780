"""Build and parse the Ethernet frames the prober sends and captures.

Plain `struct`, so it is fast and works in any node without Scapy. Every frame
the prober crafts carries a probe token (`TOKEN_PREFIX` + 8 characters) in its
payload, or in the Ethernet padding for ARP and tiny fragments, so a capture can tell exactly
which probe arrived.
"""
from __future__ import annotations

import re
import socket
import struct

TOKEN_PREFIX = b"TBP-"
TOKEN_RE = re.compile(rb"TBP-([0-9a-z]{8})")
ETH_P_IP, ETH_P_ARP, ETH_P_8021Q = 0x0800, 0x0806, 0x8100
BROADCAST = "ff:ff:ff:ff:ff:ff"
TCP_FLAGS = "FSRPAUEC"  # bit 0 = FIN ... bit 7 = CWR


def token(probe_id: str) -> bytes:
    if not re.fullmatch(r"[0-9a-z]{8}", probe_id):
        raise ValueError(f"probe id must be 8 characters [0-9a-z]: {probe_id!r}")
    return TOKEN_PREFIX + probe_id.encode()


def mac_b(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def mac_s(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def ip_b(ip: str) -> bytes:
    return socket.inet_aton(ip)


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ether(dst: str, src: str, ethertype: int, payload: bytes, vlans: tuple[int, ...] = ()) -> bytes:
    """An Ethernet frame; `vlans` are 802.1Q tags, outermost first (two = double tagging)."""
    hdr = mac_b(dst) + mac_b(src)
    for vid in vlans:
        hdr += struct.pack("!HH", ETH_P_8021Q, vid & 0x0FFF)
    frame = hdr + struct.pack("!H", ethertype) + payload
    return frame + b"\0" * max(0, 60 - len(frame))


IP_DF, IP_MF = 0x4000, 0x2000


def ipv4(src: str, dst: str, proto: int, payload: bytes, ttl: int = 64, tos: int = 0, ident: int = 1,
         frag: int | None = None, more: bool = False) -> bytes:
    """An IPv4 packet. Unfragmented (DF set) unless `frag` is given: then a fragment at offset
    `frag` (in 8-byte units, as on the wire), with MF if `more`, and `payload` the bytes it carries."""
    flags = IP_DF if frag is None else (IP_MF if more else 0) | (frag & 0x1FFF)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload), ident & 0xFFFF, flags, ttl, proto, 0,
                      ip_b(src), ip_b(dst))
    return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:] + payload


def _pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    return ip_b(src) + ip_b(dst) + struct.pack("!BBH", 0, proto, length)


def tcp(src: str, dst: str, sport: int, dport: int, flags: str = "S", payload: bytes = b"",
        seq: int = 1000, ack: int = 0) -> bytes:
    bits = sum(1 << TCP_FLAGS.index(f) for f in flags)
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, bits, 65535, 0, 0)
    csum = checksum(_pseudo(src, dst, 6, len(hdr) + len(payload)) + hdr + payload)
    return hdr[:16] + struct.pack("!H", csum) + hdr[18:] + payload


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    hdr = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    csum = checksum(_pseudo(src, dst, 17, len(hdr) + len(payload)) + hdr + payload) or 0xFFFF
    return hdr[:6] + struct.pack("!H", csum) + payload


def icmp_echo(ident: int, seq: int, payload: bytes, kind: int = 8) -> bytes:
    hdr = struct.pack("!BBHHH", kind, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    return hdr[:2] + struct.pack("!H", checksum(hdr + payload)) + hdr[4:] + payload


def arp(op: int, sha: str, spa: str, tha: str, tpa: str) -> bytes:
    return struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, op, mac_b(sha), ip_b(spa), mac_b(tha), ip_b(tpa))


# -- whole frames ---------------------------------------------------------------
def tcp_frame(smac: str, dmac: str, sip: str, dip: str, sport: int, dport: int, tok: bytes = b"",
              flags: str = "S", vlans: tuple[int, ...] = (), pad_to: int = 0, ack: int = 0) -> bytes:
    payload = tok + b"\0" * max(0, pad_to - len(tok))
    return ether(dmac, smac, ETH_P_IP, ipv4(sip, dip, 6, tcp(sip, dip, sport, dport, flags, payload, ack=ack)), vlans)


def udp_frame(smac: str, dmac: str, sip: str, dip: str, sport: int, dport: int, tok: bytes = b"",
              vlans: tuple[int, ...] = ()) -> bytes:
    return ether(dmac, smac, ETH_P_IP, ipv4(sip, dip, 17, udp(sip, dip, sport, dport, tok)), vlans)


def icmp_frame(smac: str, dmac: str, sip: str, dip: str, ident: int, tok: bytes = b"") -> bytes:
    return ether(dmac, smac, ETH_P_IP, ipv4(sip, dip, 1, icmp_echo(ident, 1, tok)))


def fragment_frame(smac: str, dmac: str, sip: str, dip: str, proto: int, ident: int, offset: int, more: bool,
                   data: bytes, trailer: bytes = b"") -> bytes:
    """One IPv4 fragment carrying `data` at byte `offset` (a multiple of 8) of datagram `ident`.

    `trailer` goes after the IP packet, in the Ethernet padding: how a fragment too small to
    hold a token (a tiny first fragment) still carries one. The IP layer ignores it."""
    if offset % 8:
        raise ValueError(f"fragment offset must be a multiple of 8 bytes: {offset}")
    return ether(dmac, smac, ETH_P_IP, ipv4(sip, dip, proto, data, ident=ident, frag=offset // 8, more=more) + trailer)


def fragments(smac: str, dmac: str, sip: str, dip: str, proto: int, ident: int, l4: bytes,
              cuts: tuple[int, ...]) -> list[bytes]:
    """A datagram's L4 bytes split at `cuts` (byte offsets, multiples of 8) into in-order fragments."""
    edges = [0, *cuts, len(l4)]
    return [fragment_frame(smac, dmac, sip, dip, proto, ident, a, b < len(l4), l4[a:b])
            for a, b in zip(edges, edges[1:])]


def icmp_reply_frame(smac: str, dmac: str, sip: str, dip: str, ident: int, tok: bytes = b"") -> bytes:
    """An ICMP echo reply (type 0): what answers a ping, here sent to nobody's ping."""
    return ether(dmac, smac, ETH_P_IP, ipv4(sip, dip, 1, icmp_echo(ident, 1, tok, kind=0)))


def arp_frame(smac: str, dmac: str, op: int, sha: str, spa: str, tha: str, tpa: str, tok: bytes = b"") -> bytes:
    """ARP with the token in the Ethernet trailer (receivers ignore bytes after the ARP body)."""
    return ether(dmac, smac, ETH_P_ARP, arp(op, sha, spa, tha, tpa) + tok)


# -- parsing (the sink) -------------------------------------------------------------
TUNNEL_PORTS = {2152, 4997}  # GTP-U (N3) and the radio link simulation (UE <-> gNB) carry other packets


def parse(frame: bytes) -> dict:
    """A flat summary of a frame: addresses, tags, L4 ports or ICMP type, ARP fields, token.

    Fragments also say so (`frag` byte offset, `mf`, `ip_id`); a non-first fragment has no
    ports (its bytes are the middle of a datagram). The token is searched in the whole frame,
    Ethernet padding included."""
    out: dict = {"eth_dst": mac_s(frame[0:6]), "eth_src": mac_s(frame[6:12])}
    inner_at = len(frame)
    off, vlans = 12, []
    etype = struct.unpack_from("!H", frame, off)[0] if len(frame) >= 14 else 0
    while etype in (ETH_P_8021Q, 0x88A8) and len(frame) >= off + 6:
        vlans.append(struct.unpack_from("!H", frame, off + 2)[0] & 0x0FFF)
        off += 4
        etype = struct.unpack_from("!H", frame, off)[0]
    off += 2
    out["vlans"] = vlans
    out["type"] = etype
    try:
        if etype == ETH_P_IP and len(frame) >= off + 20:
            ihl = (frame[off] & 0x0F) * 4
            tot_len, ident, fl = struct.unpack_from("!HHH", frame, off + 2)
            proto = frame[off + 9]
            out.update(ip_src=socket.inet_ntoa(frame[off + 12:off + 16]),
                       ip_dst=socket.inet_ntoa(frame[off + 16:off + 20]), proto=proto)
            l4 = off + ihl
            inner_at = l4 + 8 + 8 + 20  # UDP header, the smallest tunnel header (RLS, GTP-U), an IPv4 header
            end = min(len(frame), off + tot_len)  # not the Ethernet padding
            frag_off = (fl & 0x1FFF) * 8
            if fl & IP_MF or frag_off:  # a fragment: only the first one has the L4 header (or its start)
                out.update(frag=frag_off, mf=bool(fl & IP_MF), ip_id=ident)
            if frag_off:
                pass  # the middle of a datagram: no header to read
            elif proto in (6, 17) and end >= l4 + 4:
                out["sport"], out["dport"] = struct.unpack_from("!HH", frame, l4)
                if proto == 6 and end >= l4 + 14:
                    bits = frame[l4 + 13]
                    out["flags"] = "".join(f for i, f in enumerate(TCP_FLAGS) if bits & (1 << i))
            elif proto == 1 and end >= l4 + 8:
                out["icmp_type"] = frame[l4]
                out["icmp_id"] = struct.unpack_from("!H", frame, l4 + 4)[0]
        elif etype == ETH_P_ARP and len(frame) >= off + 28:
            out.update(arp_op=struct.unpack_from("!H", frame, off + 6)[0],
                       arp_sha=mac_s(frame[off + 8:off + 14]), arp_spa=socket.inet_ntoa(frame[off + 14:off + 18]),
                       arp_tha=mac_s(frame[off + 18:off + 24]), arp_tpa=socket.inet_ntoa(frame[off + 24:off + 28]))
    except (struct.error, OSError, IndexError):
        out["truncated"] = True
    m = TOKEN_RE.search(frame)
    if m:
        # A packet inside a 5G tunnel (RLS or GTP-U) is on its way, not arrived: its token is the inner one's.
        # (A probe *to* a tunnel port carries its token right after the UDP header: that one has arrived.)
        tunnelled = (out.get("proto") == 17 and bool(TUNNEL_PORTS & {out.get("sport"), out.get("dport")})
                     and m.start() >= inner_at)
        out["tunnel_token" if tunnelled else "token"] = m.group(1).decode()
    return out
