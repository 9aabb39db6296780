"""The UE's radio: RLS over UDP towards its gNB, and the user plane both ways.

Apart from the UE's NAS and session logic (ue.py, uesessions.py) because it is
the packet loop: RLS DATA from the gNB is written straight from the receive
buffer into its session's TUN, and TUN reads are drained in batches into a
burst buffer behind their RLS header, each burst leaving in one system call
(UDP segmentation, testbed.ran.gso). Anything else that arrives (heartbeat
answers, NAS, releases) goes to the `control` callback. Stdlib only, like the
rest of the UE.
"""
from __future__ import annotations

import os
import socket
from collections import Counter
from collections.abc import Callable
from typing import Any

from testbed.ran import daemon, gso, rls
from testbed.ran.daemon import Log, Loop

BATCH = 256
BUF = 65536


class UeRadio:
    """The RLS socket of one UE; `sessions` (by PSI) is the UE's table, shared, read for the data path."""

    def __init__(self, address: str, gnb: tuple[str, int], rls_port: int, ue_id: int, sessions: dict[int, Any],
                 control: Callable[[rls.Header, bytes], None], counters: Counter[str], drops: Counter[str],
                 log: Log, loop: Loop) -> None:
        self.address = address
        self.gnb = gnb
        self.rls_port = rls_port
        self.ue_id = ue_id
        self.sessions = sessions
        self.control = control
        self.counters = counters
        self.drops = drops
        self.log = log
        self.loop = loop
        self.sock: socket.socket | None = None
        self.ul_batch = gso.Batch()
        self.rbuf = bytearray(BUF)
        self.rview = memoryview(self.rbuf)

    def open(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        daemon.set_buffers(self.sock, 2 << 20)
        self.sock.bind((self.address, self.rls_port))
        # connected: the kernel keeps the route, and delivers only what comes from the gNB's RLS port
        self.sock.connect(self.gnb)
        self.sock.setblocking(False)
        self.loop.add_reader(self.sock.fileno(), self.on_rls)

    def retarget(self, gnb: tuple[str, int]) -> None:
        """Talk to another gNB from now on (cell reselection): the socket is connected to it instead."""
        self.gnb = gnb
        if self.sock is not None:
            self.sock.connect(gnb)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()

    def send(self, msg_type: int, payload: bytes = b"", psi: int = 0) -> None:
        try:
            self.sock.send(rls.encode(msg_type, self.ue_id, payload, psi))
        except OSError as exc:
            self.counters["send_errors"] += 1
            if self.counters["send_errors"] <= 3:
                self.log("rls-send-error", error=exc.strerror or str(exc))

    def on_rls(self) -> None:
        sock, buf, view, sessions = self.sock, self.rbuf, self.rview, self.sessions
        for _ in range(BATCH):
            try:
                n = sock.recv_into(buf)
            except BlockingIOError:
                return
            except OSError:  # an ICMP error for an earlier send (gNB not up yet): nothing to read
                self.counters["icmp_errors"] += 1
                continue
            if n >= rls.HEADER_LEN and buf[0] == rls.MAGIC and buf[1] == rls.DATA:
                s = sessions.get(buf[2])
                if s is None or s.fd is None:
                    self.drops["no-session"] += 1
                    continue
                try:
                    os.write(s.fd, view[rls.HEADER_LEN:n])
                except OSError:
                    self.drops["tun-write"] += 1
                    continue
                s.dl_packets += 1
                s.dl_bytes += n - rls.HEADER_LEN
                continue
            try:
                hdr = rls.parse(buf, n)
            except rls.RlsError:
                self.drops["malformed-rls"] += 1
                continue
            self.control(hdr, bytes(view[rls.HEADER_LEN:n]))

    def on_tun(self, s: Any) -> None:
        """Packets of one session's TUN -> RLS DATA, written in place into the burst to the gNB."""
        fd, sock, batch, header = s.fd, self.sock, self.ul_batch, s.rls_header
        if fd is None:
            return
        buf, view, H = batch.buf, batch.view, rls.HEADER_LEN
        for _ in range(BATCH):
            off = batch.used
            try:
                n = os.readv(fd, [view[off + H:off + H + BUF]])
            except BlockingIOError:
                break
            buf[off:off + H] = header
            batch.push(sock, None, H + n)
            s.ul_packets += 1
            s.ul_bytes += n
        batch.flush()
