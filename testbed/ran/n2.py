"""The N2 transport between gNB and AMF: NGAP over SCTP where the kernel has it, else over TCP.

NGAP runs over SCTP, port 38412, payload protocol identifier 60 (TS 38.412).
Kernels without SCTP (this project's development VM, WSL2, minimal RHEL) cannot
open `socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP)`; there the built-in emulation
falls back to TCP on the same port, each NGAP PDU prefixed by its length (4
octets, big endian), since TCP keeps no message boundaries. The NGAP bytes are
the same either way; `transport` in each program's log and status says which
one ran. The AMF listens on both where SCTP exists, so a gNB of either kind
connects.

SCTP here is the one-to-one style (SOCK_STREAM): each NGAP PDU is one SCTP
message (recvmsg returns it, MSG_EOR marks its end), sent on stream 0 with
PPID 60 set once through SCTP_DEFAULT_SEND_PARAM.
"""
from __future__ import annotations

import socket
import struct

PORT = 38412
NGAP_PPID = 60
SOL_SCTP = 132
SCTP_DEFAULT_SEND_PARAM = 10
MSG_EOR = getattr(socket, "MSG_EOR", 0x80)
MAX_PDU = 1 << 16  # no NGAP message the emulation exchanges comes near it
SCTP, TCP = "sctp", "tcp"
_LEN = struct.Struct("!I")


class N2Error(OSError):
    """The peer sent something that cannot be NGAP framing (too long, or cut off)."""


def sctp_available() -> bool:
    """Whether this kernel opens SCTP sockets (the `sctp` module is built in or loaded)."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
        return True
    except OSError:
        return False


def choose(preference: str = "auto") -> str:
    """'auto' picks SCTP when available, else TCP; 'sctp' insists (OSError where missing); 'tcp' forces TCP."""
    if preference == TCP:
        return TCP
    if sctp_available():
        return SCTP
    if preference == SCTP:
        raise OSError("SCTP was required for N2 but this kernel has no SCTP (IPPROTO_SCTP)")
    return TCP


def _socket(transport: str) -> socket.socket:
    if transport == SCTP:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
        # struct sctp_sndrcvinfo: stream, ssn, flags, ppid (network order), context, ttl, tsn, cumtsn, assoc id
        info = struct.pack("=HHHxxIIIIIi", 0, 0, 0, socket.htonl(NGAP_PPID), 0, 0, 0, 0, 0)
        s.setsockopt(SOL_SCTP, SCTP_DEFAULT_SEND_PARAM, info)
        return s
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def listen(address: str, port: int, transport: str, backlog: int = 64) -> socket.socket:
    s = _socket(transport)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((address, port))
        s.listen(backlog)
    except OSError:
        s.close()
        raise
    s.setblocking(False)
    return s


def connect(address: str, port: int, transport: str, source: str | None = None,
            timeout: float = 3.0) -> socket.socket:
    s = _socket(transport)
    try:
        if source:
            s.bind((source, 0))
        s.settimeout(timeout)
        s.connect((address, port))
    except OSError:
        s.close()
        raise
    return s


class Conn:
    """One N2 association: `send` a PDU; `receive` what arrived (call when readable; None once closed)."""

    def __init__(self, sock: socket.socket, transport: str, peer: tuple[str, int]) -> None:
        self.sock = sock
        self.transport = transport
        self.peer = peer
        self._buf = bytearray()
        sock.settimeout(3.0)  # sends are small; a peer that stops reading fails the send, not the loop

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, pdu: bytes) -> None:
        if self.transport == SCTP:
            self.sock.sendall(pdu)  # one message per call on a one-to-one SCTP socket
        else:
            self.sock.sendall(_LEN.pack(len(pdu)) + pdu)

    def receive(self) -> list[bytes] | None:
        if self.transport == SCTP:
            data, _anc, flags, _addr = self.sock.recvmsg(MAX_PDU)
            if not data:
                return None
            self._buf += data
            if len(self._buf) > MAX_PDU:
                raise N2Error(f"NGAP message from {self.peer[0]} longer than {MAX_PDU} octets")
            if not flags & MSG_EOR:
                return []
            out, self._buf = [bytes(self._buf)], bytearray()
            return out
        data = self.sock.recv(MAX_PDU)
        if not data:
            return None
        self._buf += data
        out = []
        while len(self._buf) >= 4:
            (n,) = _LEN.unpack_from(self._buf, 0)
            if n > MAX_PDU:
                raise N2Error(f"NGAP frame of {n} octets from {self.peer[0]}: longer than {MAX_PDU}")
            if len(self._buf) < 4 + n:
                break
            out.append(bytes(self._buf[4:4 + n]))
            del self._buf[:4 + n]
        return out

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
