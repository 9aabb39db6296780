"""When the kernel took a datagram or frame in: SO_TIMESTAMPNS, read from a receive's control messages.

Why: a one-way delay measured when the reading program gets round to it includes
that program's own wake-up latency (a busy 2-core machine adds a fraction of a
millisecond); the kernel's receive stamp does not. The media receiver, the
impairment relay (its departures count from arrival) and the test probe read it
the same way, from here.
"""
from __future__ import annotations

import socket
import struct

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; Python names it only on some builds
TIMESPEC = struct.Struct("qq")
ANC_SPACE = socket.CMSG_SPACE(TIMESPEC.size)  # control octets a receive needs for the stamp


def enable(sock: socket.socket) -> None:
    """Stamp what this socket receives (CLOCK_REALTIME, taken as the packet entered the stack)."""
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)


def stamp_ns(ancdata: list) -> int | None:
    """The receive stamp among a recvmsg's control messages, in ns of CLOCK_REALTIME; None without one."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            sec, nsec = TIMESPEC.unpack_from(data)
            return sec * 1_000_000_000 + nsec
    return None
