"""GTP-U (TS 29.281) as the gNB and UPF put it on N3: UDP 2152, GTPv1-U G-PDUs with a QFI.

Every G-PDU the emulation sends carries one extension header, the PDU Session
Container (TS 38.415) with the QoS flow identifier, as real gNBs and UPFs do on
N3 (tshark: gtp.ext_hdr.pdu_ses_con.qos_flow_id; Scapy: GTPPDUSessionContainer):

    0  0x34        version 1, protocol type GTP, E=1 (S=0, PN=0)
    1  0xff        G-PDU
    2  u16 length  octets after the first 8: 4 optional + 4 extension + the inner packet
    4  u32 TEID    the receiver's tunnel endpoint
    8  u16 0       sequence number (unused: S=0)
    10 u8  0       N-PDU number (unused: PN=0)
    11 u8  0x85    next extension header: PDU Session Container
    12 u8  1       its length, in 4-octet units
    13 u8  type    PDU type << 4: 0 DL PDU SESSION INFORMATION, 1 UL PDU SESSION INFORMATION
    14 u8  QFI     (PPP/RQI, N3/N9 delay and new-IE flags all 0)
    15 u8  0       no further extension header
    16 ...         the inner IPv4 packet

`parse` reads any GTPv1-U header (optional fields, any chain of extension
headers), since a peer or an attacker may send other shapes. Echo Request is
answered with Echo Response (a path check both ends of N3 may run). The source
port of G-PDUs is any local port (TS 29.281 4.4.2.3); only the destination is
2152, so a sender may use one socket per outer DSCP value.

Stdlib only, no allocation on the fast path: the data loops keep HEADER_LEN
octets of headroom in front of each packet and write the header in place.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

PORT = 2152
ECHO_REQUEST, ECHO_RESPONSE, ERROR_INDICATION, END_MARKER, G_PDU = 1, 2, 26, 254, 255
EXT_PDU_SESSION_CONTAINER = 0x85
PDU_TYPE_DL, PDU_TYPE_UL = 0, 1
FLAGS_E = 0x34  # version 1, PT 1, E
HEADER_LEN = 16  # the G-PDU header above: 8 mandatory + 4 optional + 4 of the PDU Session Container
IE_RECOVERY = 14
_FIXED = struct.Struct("!BBHI")
_FULL = struct.Struct("!BBHIHBBBBBB")
_LEN = struct.Struct("!H")
MAX_QFI = 63


class GtpError(ValueError):
    """Octets that are not a GTPv1-U message."""


class Parsed(NamedTuple):
    msg_type: int
    teid: int
    offset: int  # where the payload (the inner packet of a G-PDU) starts
    length: int  # payload octets
    qfi: int | None  # from a PDU Session Container, if present
    seq: int | None  # sequence number, if the S flag is set


def header(teid: int, qfi: int, payload_len: int, uplink: bool) -> bytes:
    """The 16-octet G-PDU header for a payload of `payload_len` octets."""
    if not 0 <= qfi <= MAX_QFI:
        raise GtpError(f"QFI {qfi} outside 0..63")
    return _FULL.pack(FLAGS_E, G_PDU, payload_len + 8, teid, 0, 0, EXT_PDU_SESSION_CONTAINER, 1,
                      (PDU_TYPE_UL if uplink else PDU_TYPE_DL) << 4, qfi, 0)


def template(teid: int, qfi: int, uplink: bool) -> bytes:
    """The header with length 0: the data path copies it and then sets the length (`set_length`)."""
    return header(teid, qfi, 0, uplink)


def set_length(buf: bytearray | memoryview, offset: int, payload_len: int) -> None:
    _LEN.pack_into(buf, offset + 2, payload_len + 8)


def encapsulate(teid: int, qfi: int, inner: bytes, uplink: bool) -> bytes:
    return header(teid, qfi, len(inner), uplink) + inner


def parse(buf: bytes | bytearray | memoryview, n: int | None = None) -> Parsed:
    """The header of a GTPv1-U message in buf[:n] (raises GtpError when malformed)."""
    n = len(buf) if n is None else n
    if n < 8:
        raise GtpError(f"{n} octets: shorter than a GTP header")
    flags, msg_type, length, teid = _FIXED.unpack_from(buf, 0)
    if flags >> 5 != 1 or not flags & 0x10:
        raise GtpError(f"flags {flags:#04x}: not GTPv1 with protocol type GTP")
    if 8 + length > n:
        raise GtpError(f"length field {length} exceeds the {n - 8} octets received after the header")
    end = 8 + length
    if flags == FLAGS_E and n >= HEADER_LEN and buf[11] == EXT_PDU_SESSION_CONTAINER and buf[12] == 1 \
            and buf[15] == 0:  # the fast path: exactly what this emulation sends
        return Parsed(msg_type, teid, HEADER_LEN, end - HEADER_LEN, buf[14] & 0x3F, None)
    if not flags & 0x07:
        return Parsed(msg_type, teid, 8, length, None, None)
    if end < 12:
        raise GtpError("optional fields announced but missing")
    seq = (buf[8] << 8 | buf[9]) if flags & 0x02 else None
    offset, qfi = 12, None
    next_type = buf[11] if flags & 0x04 else 0
    while next_type:
        if offset >= end:
            raise GtpError("extension header chain runs past the message")
        ext_len = buf[offset] * 4
        if ext_len == 0 or offset + ext_len > end:
            raise GtpError(f"extension header {next_type:#04x} with bad length")
        if next_type == EXT_PDU_SESSION_CONTAINER and ext_len >= 4:
            qfi = buf[offset + 2] & 0x3F
        next_type = buf[offset + ext_len - 1]
        offset += ext_len
    return Parsed(msg_type, teid, offset, end - offset, qfi, seq)


def echo_request(seq: int) -> bytes:
    return struct.pack("!BBHIHBB", 0x32, ECHO_REQUEST, 4, 0, seq & 0xFFFF, 0, 0)


def echo_response(seq: int, restart_counter: int = 0) -> bytes:
    """Echo Response with its mandatory Recovery IE (TS 29.281 7.2.2)."""
    return struct.pack("!BBHIHBBBB", 0x32, ECHO_RESPONSE, 6, 0, (seq or 0) & 0xFFFF, 0, 0, IE_RECOVERY,
                       restart_counter & 0xFF)
