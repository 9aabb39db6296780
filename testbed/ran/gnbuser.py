"""The gNB's packet loops: RLS from and to its UEs, GTP-U (N3) to and from the UPFs.

Apart from the gNB's procedures (gnb.py) because this is the hot path and
nothing else: RLS DATA becomes a G-PDU in place (the GTP-U header overwrites
the RLS one and 8 octets of headroom) in a burst towards its UPF, sent through
one socket per (UPF, outer DSCP); a G-PDU is scattered on receipt, its header
into a scratch buffer and the packet straight into the burst to the UE behind
room for its RLS header. Bursts leave in one system call each (UDP
segmentation, testbed.ran.gso). RLS that is not DATA goes to the `control`
callback; drops go to `Drops`, logged at most once a second per reason.
"""
from __future__ import annotations

import socket
import struct
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from testbed.ran import daemon, gso, gtpu, rls
from testbed.ran.daemon import Log, Loop
from testbed.ran.gnbctx import GnbSession, GnbUe

BATCH = 256
BUF = 65536 + gtpu.HEADER_LEN
_TEID = struct.Struct("!I")
_UEID = struct.Struct("!I")


class Drops:
    """Drops by reason: every one counted, logged at most once a second per reason (with how many since)."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.counts: Counter[str] = Counter()
        self._logged: dict[str, tuple[float, int]] = {}

    def __call__(self, reason: str, **fields: Any) -> None:
        self.counts[reason] += 1
        now = time.monotonic()
        last, since = self._logged.get(reason, (0.0, 0))
        if now - last >= 1.0:
            self.log("drop", reason=reason, since_last=since + 1, total=self.counts[reason], **fields)
            self._logged[reason] = (now, 0)
        else:
            self._logged[reason] = (last, since + 1)


class GnbUserPlane:
    """The RLS and GTP-U sockets of one gNB; the session tables are UeContexts', shared."""

    def __init__(self, address: str, rls_port: int, gtpu_port: int, ul_sessions: dict[int, GnbSession],
                 dl_sessions: dict[int, GnbSession], control: Callable[[rls.Header, bytes, tuple[str, int]], None],
                 drop: Drops, log: Log, loop: Loop) -> None:
        self.address = address
        self.rls_port = rls_port
        self.gtpu_port = gtpu_port
        self.ul_sessions = ul_sessions
        self.dl_sessions = dl_sessions
        self.control = control
        self.drop = drop
        self.log = log
        self.loop = loop
        self.dscp_socks: dict[tuple[int, str], daemon.DscpPeer] = {}
        self.rls_sock: socket.socket | None = None
        self.gtp: socket.socket | None = None
        self.ul_batch = gso.Batch()  # G-PDU bursts towards UPFs
        self.dl_batch = gso.Batch()  # RLS DATA bursts towards UEs
        self.gtp_head = bytearray(gtpu.HEADER_LEN)  # where a G-PDU's header lands (see on_gtp)

    def open(self) -> None:
        self.rls_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        daemon.set_buffers(self.rls_sock)
        self.rls_sock.bind((self.address, self.rls_port))
        self.rls_sock.setblocking(False)
        self.gtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        daemon.set_buffers(self.gtp)
        self.gtp.bind((self.address, self.gtpu_port))
        self.gtp.setblocking(False)
        self.loop.add_reader(self.rls_sock.fileno(), self.on_rls)
        self.loop.add_reader(self.gtp.fileno(), self.on_gtp)

    def close(self) -> None:
        for s in [self.rls_sock, self.gtp]:
            if s is not None:
                s.close()
        self.dscp_socks.clear()

    def socket_for(self, dscp: int, upf: str) -> daemon.DscpPeer:
        """Where uplink G-PDUs towards one UPF with one outer DSCP go: from port 2152, as the UPF's come."""
        s = self.dscp_socks.get((dscp, upf))
        if s is None:
            s = self.dscp_socks[(dscp, upf)] = daemon.DscpPeer(self.gtp, upf, self.gtpu_port, dscp)
        return s

    def send_rls(self, ue: GnbUe, msg_type: int, payload: bytes = b"") -> None:
        try:
            self.rls_sock.sendto(rls.encode(msg_type, ue.ue_id, payload), ue.addr)
        except OSError as exc:
            self.log("rls-send-error", ue=ue.name or ue.ue_id, error=str(exc))

    def on_rls(self) -> None:
        """RLS from UEs: DATA becomes a G-PDU in place (the GTP-U header overwrites the RLS one and 8 octets
        of headroom) in the burst towards its UPF; anything else is control."""
        sock, batch, ul_sessions = self.rls_sock, self.ul_batch, self.ul_sessions
        buf, view = batch.buf, batch.view
        for _ in range(BATCH):
            off = batch.used
            try:
                n, addr = sock.recvfrom_into(view[off + 8:off + 8 + BUF])
            except BlockingIOError:
                break
            if n < rls.HEADER_LEN or buf[off + 8] != rls.MAGIC:
                self.drop("malformed-rls", src=addr[0])
                continue
            if buf[off + 9] == rls.DATA:
                ue_id = _UEID.unpack_from(buf, off + 12)[0]
                s = ul_sessions.get(ue_id << 8 | buf[off + 10])
                if s is None:
                    self.drop("unknown-session", src=addr[0], ue_id=ue_id, psi=buf[off + 10])
                    continue
                if addr[0] != s.ue.addr[0]:
                    self.drop("wrong-ue-address", src=addr[0], ue=s.ue.name)
                    continue
                buf[off:off + 16] = s.header
                buf[off + 2] = n >> 8  # GTP-U length: the packet (n - 8) + 8 optional/extension octets
                buf[off + 3] = n & 0xFF
                batch.push(s.sock, None, n + 8)
                s.ul_packets += 1
                s.ul_bytes += n - rls.HEADER_LEN
                continue
            try:
                hdr = rls.parse(buf, n, off + 8)
            except rls.RlsError:
                self.drop("malformed-rls", src=addr[0])
                continue
            self.control(hdr, bytes(view[off + 16:off + 8 + n]), addr)
        batch.flush()

    def on_gtp(self) -> None:
        """G-PDUs from UPFs -> RLS DATA bursts to UEs. A G-PDU is scattered on receipt: its 16-octet header
        (the shape this emulation sends) into a scratch buffer, the packet straight into the burst behind
        8 octets for its RLS header; other header shapes are put back together and moved (rare)."""
        sock, batch, dl_sessions, rls_sock = self.gtp, self.dl_batch, self.dl_sessions, self.rls_sock
        buf, view, head = batch.buf, batch.view, self.gtp_head
        for _ in range(BATCH):
            off = batch.used
            try:
                n, _anc, _flags, (src, sport) = sock.recvmsg_into([head, view[off + 8:off + 8 + BUF]])
            except BlockingIOError:
                break
            if n >= 16 and head[0] == 0x34 and head[1] == gtpu.G_PDU and head[11] == 0x85 and head[12] == 1 \
                    and head[15] == 0:
                teid = _TEID.unpack_from(head, 4)[0]
                length = min(n, 8 + (head[2] << 8 | head[3])) - 16
                if length < 0:
                    self.drop("malformed", src=src)
                    continue
            else:
                whole = bytes(head[:min(n, 16)]) + bytes(view[off + 8:off + 8 + max(0, n - 16)])
                try:
                    p = gtpu.parse(whole, n)
                except gtpu.GtpError:
                    self.drop("malformed", src=src)
                    continue
                if p.msg_type == gtpu.ECHO_REQUEST:
                    sock.sendto(gtpu.echo_response(p.seq or 0), (src, sport))
                    continue
                if p.msg_type != gtpu.G_PDU:
                    self.drop("not-gpdu", src=src, type=p.msg_type)
                    continue
                teid, length = p.teid, p.length
                buf[off + 8:off + 8 + length] = whole[p.offset:p.offset + length]
            s = dl_sessions.get(teid)
            if s is None:
                self.drop("unknown-teid", src=src, teid=f"{teid:#010x}")
                continue
            if src != s.upf:
                self.drop("unknown-upf", src=src, teid=f"{teid:#010x}")
                continue
            buf[off:off + 8] = s.rls_header
            batch.push(rls_sock, s.ue.addr, 8 + length)
            s.dl_packets += 1
            s.dl_bytes += length
        batch.flush()

    def drops(self) -> dict[str, int]:
        """The status file's `drops`: by reason, plus failed sends of whole bursts."""
        return {**self.drop.counts, **({"n3-send": self.ul_batch.errors} if self.ul_batch.errors else {}),
                **({"rls-send": self.dl_batch.errors} if self.dl_batch.errors else {})}
