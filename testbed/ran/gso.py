"""Send a burst of datagrams for one destination in one system call: UDP generic segmentation (UDP_SEGMENT).

The relays (UE, gNB, UPF) spend most of their time in the kernel, once per
datagram sent: measured here, 5.6 us of CPU per 1416-octet datagram with
send() and 2.1 us with UDP_SEGMENT bursts of 40. A burst is one sendmsg with a
`UDP_SEGMENT` control message naming the segment size; the kernel cuts it into
ordinary datagrams, each with its own IP and UDP header, before they reach the
wire (node interfaces run with segmentation offload off, as the testbed sets
them), so captures show the same packets as one send() each.

The rule of UDP GSO: every segment has the segment size except the last, which
may be shorter. `Batch` keeps that: callers write each datagram straight into
the batch buffer at `batch.used` (after `batch.base` octets of headroom they
may use for headers) and `push` it with its socket, destination and length;
a datagram for another socket or destination, a longer one, or a full burst
sends what is queued first (the new datagram is moved to the front), a shorter
one ends the burst. Callers `flush` when their read loop runs dry, so nothing
waits. A kernel without UDP GSO (before 4.18) answers the first burst with an
error: then the batch sends each datagram on its own from then on.
"""
from __future__ import annotations

import errno
import socket
import struct

SOL_UDP = getattr(socket, "SOL_UDP", 17)
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
MAX_SEGMENTS = 64  # the kernel takes up to 64 (128 on newer kernels) segments per burst
MAX_BYTES = 65000  # one burst is one UDP datagram before segmentation: under 64 KiB
MAX_DATAGRAM = 65536
_NOT_SUPPORTED = (errno.EINVAL, errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP)


class Batch:
    __slots__ = ("buf", "view", "base", "used", "count", "seg", "sock", "addr", "gso", "_cmsg", "calls", "datagrams",
                 "errors", "last_error")

    def __init__(self, base: int = 0, gso: bool = True) -> None:
        self.base = base
        self.buf = bytearray(base + MAX_BYTES + MAX_DATAGRAM + 64)
        self.view = memoryview(self.buf)
        self.used = base
        self.count = 0
        self.seg = 0
        self.sock: socket.socket | None = None
        self.addr: tuple[str, int] | None = None
        self.gso = gso
        self._cmsg: dict[int, list] = {}
        self.calls = self.datagrams = self.errors = 0
        self.last_error: str | None = None

    def push(self, sock: socket.socket, addr: tuple[str, int] | None, length: int) -> None:
        """Queue the `length` octets written at `self.used` for `sock` (connected: addr None, else to addr)."""
        off = self.used
        if self.count and (sock is not self.sock or addr != self.addr or length > self.seg
                           or off + length - self.base > MAX_BYTES or self.count >= MAX_SEGMENTS):
            self._send()
            if off != self.base:  # the new datagram moves to the front (slice copy: safe when they overlap)
                self.buf[self.base:self.base + length] = self.buf[off:off + length]
            off = self.base
        if not self.count:
            self.sock, self.addr, self.seg = sock, addr, length
        self.used = off + length
        self.count += 1
        if length < self.seg or not self.gso:  # a short segment ends a burst; without GSO each goes alone
            self._send()

    def flush(self) -> None:
        if self.count:
            self._send()

    def _send(self) -> None:
        sock, data, count, seg = self.sock, self.view[self.base:self.used], self.count, self.seg
        self.used, self.count = self.base, 0
        try:
            if count == 1:
                if self.addr is None:
                    sock.send(data)
                else:
                    sock.sendto(data, self.addr)
            else:
                cmsg = self._cmsg.get(seg)
                if cmsg is None:
                    cmsg = self._cmsg[seg] = [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", seg))]
                if self.addr is None:
                    sock.sendmsg([data], cmsg)
                else:
                    sock.sendmsg([data], cmsg, 0, self.addr)
            self.calls += 1
            self.datagrams += count
        except OSError as exc:
            if count > 1 and exc.errno in _NOT_SUPPORTED and self.gso:
                self.gso = False  # no UDP GSO here: one datagram per call from now on
                self.last_error = f"UDP GSO unavailable ({exc.strerror}): sending datagrams one by one"
                for start in range(0, len(data), seg):
                    self._single(sock, data[start:start + seg])
                return
            self.errors += count
            self.last_error = f"{type(exc).__name__}: {exc.strerror or exc}"

    def _single(self, sock: socket.socket, data: memoryview) -> None:
        try:
            if self.addr is None:
                sock.send(data)
            else:
                sock.sendto(data, self.addr)
            self.calls += 1
            self.datagrams += 1
        except OSError as exc:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc.strerror or exc}"

    def stats(self) -> dict[str, object]:
        return {"gso": self.gso, "send_calls": self.calls, "datagrams": self.datagrams, "send_errors": self.errors,
                "last_error": self.last_error}
