"""Radio link simulation (RLS): the emulated air interface between a UE and its gNB, over UDP 4997.

UERANSIM replaces the radio by UDP datagrams on port 4997 between the UE's and
the gNB's addresses; the built-in emulation does the same with a smaller header
(8 octets, network order) in front of each payload:

    0  u8   0x03, UERANSIM's RLS compatibility octet (anything else is not RLS)
    1  u8   message type (below)
    2  u8   PDU session identity (DATA), 0 otherwise
    3  u8   reserved, 0
    4  u32  UE id: the UE's temporary identity on this radio link (like UERANSIM's STI)
    8  ...  payload: a NAS message (NAS), an IPv4 packet (DATA), nothing (the others)

Message types: HEARTBEAT (UE -> gNB: "I am here", cell search) answered by
HEARTBEAT_ACK; NAS, a 5G NAS message in either direction (the gNB relays it over
N2, the RRC layer being left out); DATA, one user-plane IP packet of a PDU
session; RELEASE (UE -> gNB), the UE leaves and the gNB forgets it.

This module is stdlib only: UE processes import it and must stay small.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

PORT = 4997
MAGIC = 0x03
HEARTBEAT, HEARTBEAT_ACK, NAS, DATA, RELEASE = 1, 2, 3, 4, 5
TYPE_NAMES = {HEARTBEAT: "heartbeat", HEARTBEAT_ACK: "heartbeat-ack", NAS: "nas", DATA: "data", RELEASE: "release"}
HEADER = struct.Struct("!BBBxI")
HEADER_LEN = HEADER.size  # 8
MAX_UE_ID = 0xFFFF_FFFF


class RlsError(ValueError):
    """A datagram that is not an RLS message."""


class Header(NamedTuple):
    type: int
    psi: int
    ue_id: int


def encode(msg_type: int, ue_id: int, payload: bytes = b"", psi: int = 0) -> bytes:
    if msg_type not in TYPE_NAMES:
        raise RlsError(f"unknown RLS message type {msg_type}")
    return HEADER.pack(MAGIC, msg_type, psi, ue_id) + payload


def pack_header(buf: bytearray | memoryview, offset: int, msg_type: int, ue_id: int, psi: int = 0) -> None:
    """Write a header in place (the data path keeps headroom in front of each packet)."""
    HEADER.pack_into(buf, offset, MAGIC, msg_type, psi, ue_id)


def parse(buf: bytes | bytearray | memoryview, n: int | None = None, offset: int = 0) -> Header:
    """The header of the datagram in buf[offset:offset+n]; the payload starts HEADER_LEN later."""
    n = len(buf) - offset if n is None else n
    if n < HEADER_LEN:
        raise RlsError(f"{n} octets: shorter than an RLS header")
    magic, msg_type, psi, ue_id = HEADER.unpack_from(buf, offset)
    if magic != MAGIC:
        raise RlsError(f"first octet {magic:#04x} is not RLS's {MAGIC:#04x}")
    if msg_type not in TYPE_NAMES:
        raise RlsError(f"unknown RLS message type {msg_type}")
    return Header(msg_type, psi, ue_id)


def decode(datagram: bytes) -> tuple[Header, bytes]:
    return parse(datagram), datagram[HEADER_LEN:]
