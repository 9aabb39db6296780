"""The remote-display wire format shared by traffic.vdi_server and traffic.vdi_client.

Inside the TLS stream every message is one frame: a 1-byte type, a 4-byte
big-endian body length, the body. A real display protocol (PCoIP, Blast)
multiplexes input events up and screen updates down on one encrypted
channel in the same way; what matters for the network is the shape: small
frequent frames up, bursty larger frames down, and an update that answers an
input carrying that input's id so the client can time input -> screen.

  HELLO   client -> server  JSON {"mode": "office"|"video", "session": n}
  WELCOME server -> client  JSON {"mode", "tick_ms", "avg_bps", "peak_bps"}
  INPUT   client -> server  id u32, client clock ns u64, kind u8, x u16, y u16, padding
  UPDATE  server -> client  input id u32 (0: pushed by the server), echoed clock ns u64, pixels
  BYE     either way        empty: the session ends
"""
from __future__ import annotations

import asyncio
import struct

HELLO, WELCOME, INPUT, UPDATE, BYE = b"H", b"W", b"I", b"U", b"B"
HEADER = struct.Struct("!cI")
INPUT_BODY = struct.Struct("!IQBHH")  # 17 bytes; padded to INPUT_SIZE like a real input report
INPUT_SIZE = 32
UPDATE_HEAD = struct.Struct("!IQ")
MAX_BODY = 4 << 20  # a frame larger than this is a protocol error, not a screen update
KEY, MOUSE = 1, 2


def frame(kind: bytes, body: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(body)) + body


def input_frame(input_id: int, clock_ns: int, kind: int, x: int = 0, y: int = 0) -> bytes:
    body = INPUT_BODY.pack(input_id, clock_ns, kind, x & 0xFFFF, y & 0xFFFF)
    return frame(INPUT, body.ljust(INPUT_SIZE, b"\0"))


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(type, body) of the next frame; raises asyncio.IncompleteReadError at end of stream."""
    kind, n = HEADER.unpack(await reader.readexactly(HEADER.size))
    if n > MAX_BODY:
        raise ValueError(f"frame of {n} bytes")
    return kind, await reader.readexactly(n) if n else b""
