"""PFCP node-level path supervision between the SMF and its UPFs: Heartbeat Request/Response on UDP 8805.

The emulation programs UPF sessions over its own JSON N4 (testbed.ran.n4, TCP),
but *whether a UPF is alive* is decided the way a real SMF decides it: with
PFCP Heartbeat messages (TS 29.244 7.4.2), real PFCP on the wire, so tshark's
`pfcp` dissector shows them. Only these two messages are spoken:

    octet 1   version 1, no FO/MP, S=0 (node messages carry no SEID): 0x20
    octet 2   message type: 1 Heartbeat Request, 2 Heartbeat Response
    octet 3-4 length of what follows octet 4
    octet 5-7 sequence number; octet 8 spare
    IE        Recovery Time Stamp (type 96, length 4): when the sender started,
              NTP seconds (TS 29.244 8.2.65)

A peer whose Recovery Time Stamp changes has restarted (and lost its state).
The UPF answers (`Responder`); the SMF sends and watches (`Supervisor`).
"""
from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PORT = 8805
HEARTBEAT_INTERVAL_S = 0.5
LOST_AFTER_MISSES = 3  # heartbeats in a row unanswered: 1.5 s (Open5GS's default is 10 s; a drill wants seconds)
HEARTBEAT_REQUEST = 1
HEARTBEAT_RESPONSE = 2
IE_RECOVERY_TIME_STAMP = 96
NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
_HEADER = struct.Struct("!BBHI")  # flags, type, length, sequence (24 bits) << 8 | spare
_IE = struct.Struct("!HHI")
MESSAGE_LEN = _HEADER.size + _IE.size


class PfcpError(ValueError):
    pass


@dataclass(frozen=True)
class Heartbeat:
    request: bool
    sequence: int
    recovery: int  # the sender's start time, NTP seconds


def ntp_seconds(unix_time: float) -> int:
    return (int(unix_time) + NTP_EPOCH_OFFSET) & 0xFFFFFFFF


def encode(request: bool, sequence: int, recovery: int) -> bytes:
    """A Heartbeat Request (or Response) with its sequence number and the sender's Recovery Time Stamp."""
    msg_type = HEARTBEAT_REQUEST if request else HEARTBEAT_RESPONSE
    return (_HEADER.pack(0x20, msg_type, MESSAGE_LEN - 4, (sequence & 0xFFFFFF) << 8)
            + _IE.pack(IE_RECOVERY_TIME_STAMP, 4, recovery & 0xFFFFFFFF))


def decode(data: bytes) -> Heartbeat:
    """A heartbeat from its octets (PfcpError for anything else: other versions, messages, or broken IEs)."""
    if len(data) < _HEADER.size:
        raise PfcpError(f"{len(data)} octets: shorter than a PFCP header")
    flags, msg_type, length, seq = _HEADER.unpack_from(data)
    if flags >> 5 != 1 or flags & 0x01:
        raise PfcpError(f"not a PFCP version 1 node message (flags {flags:#04x})")
    if msg_type not in (HEARTBEAT_REQUEST, HEARTBEAT_RESPONSE):
        raise PfcpError(f"PFCP message type {msg_type} is not a heartbeat")
    if length + 4 != len(data):
        raise PfcpError(f"PFCP length {length} does not match {len(data)} octets")
    recovery, off = None, _HEADER.size
    while off + 4 <= len(data):
        ie_type, ie_len = struct.unpack_from("!HH", data, off)
        if off + 4 + ie_len > len(data):
            raise PfcpError(f"IE {ie_type} runs past the message")
        if ie_type == IE_RECOVERY_TIME_STAMP and ie_len == 4:
            recovery = struct.unpack_from("!I", data, off + 4)[0]
        off += 4 + ie_len
    if recovery is None:
        raise PfcpError("heartbeat without a Recovery Time Stamp")
    return Heartbeat(msg_type == HEARTBEAT_REQUEST, seq >> 8, recovery)


class Responder:
    """The UPF's side: answers Heartbeat Requests from its SMFs' addresses (others are counted and ignored)."""

    def __init__(self, address: str, smfs: set[str], port: int = PORT, started: float | None = None) -> None:
        self.address = address
        self.smfs = smfs
        self.port = port
        self.recovery = ntp_seconds(started if started is not None else time.time())
        self.sock: socket.socket | None = None
        self.answered = 0
        self.refused = 0

    def open(self) -> socket.socket:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.address, self.port))
        self.sock.setblocking(False)
        return self.sock

    def on_read(self) -> None:
        for _ in range(64):
            try:
                data, peer = self.sock.recvfrom(512)
            except BlockingIOError:
                return
            try:
                hb = decode(data)
            except PfcpError:
                self.refused += 1
                continue
            if peer[0] not in self.smfs or not hb.request:
                self.refused += 1
                continue
            try:
                self.sock.sendto(encode(False, hb.sequence, self.recovery), peer)
                self.answered += 1
            except OSError:
                pass

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Supervisor:
    """The SMF's side: a Heartbeat Request to every UPF each `interval`; a UPF that answered before and then
    leaves `misses` requests in a row unanswered is lost, one that answers again is back:
    `on_change(name, alive)` each time.

    Non-blocking (one UDP socket, the daemon's loop), so a dead UPF never stalls
    the core's N2 work. Silence is counted in requests sent, not in seconds: a
    core whose own loop stalled (a blocking N4 request) has sent nothing
    meanwhile and so takes no UPF for lost; and answers already waiting in the
    socket are read before anyone is judged.
    """

    def __init__(self, source: str, upfs: dict[str, str], on_change: Callable[[str, bool], None], log: Callable,
                 port: int = PORT, interval: float = HEARTBEAT_INTERVAL_S, misses: int = LOST_AFTER_MISSES) -> None:
        self.source = source
        self.upfs = upfs  # name -> address
        self.by_address = {a: n for n, a in upfs.items()}
        self.on_change = on_change
        self.log = log
        self.port = port
        self.interval = interval
        self.misses = misses
        self.lost_after = interval * misses
        self.recovery = ntp_seconds(time.time())
        self.sock: socket.socket | None = None
        self.seq = 0
        self.alive: dict[str, bool | None] = {n: None for n in upfs}  # None: never answered yet
        self.last_seen: dict[str, float] = {}
        self.unanswered: dict[str, int] = {n: 0 for n in upfs}
        self.peer_recovery: dict[str, int] = {}
        self.lost_at: dict[str, float] = {}  # wall clock of the last loss, for the status file

    def open(self) -> socket.socket:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.source, 0))
        self.sock.setblocking(False)
        return self.sock

    def tick(self) -> None:
        """Read the answers waiting, declare silent UPFs lost, then send the next round of requests."""
        self.on_read()
        now = time.monotonic()
        for name, alive in self.alive.items():
            if alive and self.unanswered[name] >= self.misses:
                self.alive[name] = False
                self.lost_at[name] = time.time()
                self.log("upf-lost", upf=name, address=self.upfs[name], silent_s=round(now - self.last_seen[name], 2))
                self.on_change(name, False)
        self.seq = (self.seq + 1) & 0xFFFFFF
        msg = encode(True, self.seq, self.recovery)
        for name, address in self.upfs.items():
            self.unanswered[name] += 1
            try:
                self.sock.sendto(msg, (address, self.port))
            except OSError:
                pass  # no route or ARP yet: silence, as the next rounds will see

    def on_read(self) -> None:
        for _ in range(64):
            try:
                data, (src, _port) = self.sock.recvfrom(512)
            except BlockingIOError:
                return
            name = self.by_address.get(src)
            try:
                hb = decode(data)
            except PfcpError:
                continue
            if name is None or hb.request:
                continue
            self.last_seen[name] = time.monotonic()
            self.unanswered[name] = 0
            before = self.peer_recovery.get(name)
            self.peer_recovery[name] = hb.recovery
            if before is not None and before != hb.recovery:
                self.log("upf-restarted", upf=name, recovery=hb.recovery)
            if not self.alive[name]:
                was = self.alive[name]
                self.alive[name] = True
                if was is False:
                    self.log("upf-back", upf=name, address=src)
                    self.on_change(name, True)

    def view(self) -> dict[str, Any]:
        return {"protocol": "PFCP Heartbeat over UDP 8805", "interval_s": self.interval, "lost_after_s": self.lost_after,
                "upfs": {n: ("unknown" if a is None else "alive" if a else "lost") for n, a in self.alive.items()},
                "lost_at": dict(self.lost_at)}

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
