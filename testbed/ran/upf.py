"""The emulated UPF: GTP-U (N3) on UDP 2152 in, IP (N6) out through a TUN, and back.

    python -m testbed.ran.upf --config upf.json [--status upf-status.json]

Sessions come from the core over the emulated N4 (testbed.ran.n4: JSON over
TCP 8805, not PFCP), accepted only from the core addresses in the config.

Uplink, per G-PDU received on <address>:2152, in this order of checks (each
failure is dropped and counted under its reason in the status file):
`unknown-gnb` the packet's source is not a known gNB (the config's, and any the
core named in an N4 modify); `malformed` not GTPv1-U; `not-gpdu` a GTP-U
message other than a G-PDU (Echo Request is answered, not dropped);
`unknown-teid` no session has this UL TEID; `wrong-gnb` the TEID is a session's
whose tunnel ends at another gNB; `not-ipv4` the inner packet is not IPv4;
`spoofed-source` the inner source address is not the session's. Survivors are
decapsulated into the N6 TUN (`upfn6`): with forwarding on in the UPF's
namespace and routes for the session pools through the TUN, the kernel sends
them on towards the servers with the UE's session address as source.

Downlink: packets the kernel routes into the TUN (addressed to a session
address) are looked up by destination and sent to the session's gNB as G-PDUs
with its DL TEID, QFI and the session's outer DSCP; `no-session` /
`no-dl-tunnel` when there is none yet.

The data loops read in batches from non-blocking sockets and the TUN into
preallocated buffers with headroom for the GTP-U header, so a packet is never
copied in Python, and downlink G-PDUs leave in bursts of one system call each
(UDP segmentation, testbed.ran.gso: still one datagram per packet on the wire).
Drops are logged at most once a second per reason (with a count).
"""
from __future__ import annotations

import os
import socket
import struct
import time
from collections import Counter, deque
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from testbed.ran import daemon, gso, gtpu, n4, tun
from testbed.ran.daemon import ConfigError, Log, Loop, StatusFile, need

BATCH = 256  # packets drained per readiness event, per socket
BUF = 65536 + gtpu.HEADER_LEN
_TEID = struct.Struct("!I")
FORWARDING = "/proc/sys/net/ipv4/ip_forward"


class UpfSession:
    __slots__ = ("seid", "ue", "supi", "slice", "address", "addr_bytes", "ul_teid", "dl_teid", "gnb", "qfi", "dscp",
                 "dl_header", "sock", "ul_packets", "ul_bytes", "dl_packets", "dl_bytes", "created")

    def __init__(self, req: dict[str, Any]) -> None:
        self.seid = int(req["seid"])
        self.ue = str(req.get("ue", ""))
        self.supi = str(req.get("supi", ""))
        self.slice = str(req.get("slice", ""))
        self.address = str(IPv4Address(req["address"]))
        self.addr_bytes = IPv4Address(self.address).packed
        self.ul_teid = int(req["ul_teid"])
        self.qfi = int(req.get("qfi", 1))
        self.dscp = int(req.get("dscp", 0))
        self.dl_teid: int | None = None
        self.gnb: str | None = None
        self.dl_header: bytes | None = None
        self.sock: socket.socket | None = None
        self.ul_packets = self.ul_bytes = self.dl_packets = self.dl_bytes = 0
        self.created = time.time()

    def view(self) -> dict[str, Any]:
        return {"seid": self.seid, "ue": self.ue, "supi": self.supi, "slice": self.slice, "address": self.address,
                "ul_teid": self.ul_teid, "dl_teid": self.dl_teid, "gnb": self.gnb, "qfi": self.qfi, "dscp": self.dscp,
                "ul_packets": self.ul_packets, "ul_bytes": self.ul_bytes, "dl_packets": self.dl_packets,
                "dl_bytes": self.dl_bytes}


class Upf:
    def __init__(self, cfg: dict[str, Any], log: Log, status: StatusFile, loop: Loop) -> None:
        self.cfg = cfg
        self.log = log
        self.status_file = status
        self.loop = loop
        self.name = str(cfg.get("name", "upf"))
        self.address = str(IPv4Address(need(cfg, "address", str)))
        self.smfs = {str(IPv4Address(a)) for a in need(cfg, "smf", list)}
        self.known_gnbs = {str(IPv4Address(a)) for a in cfg.get("gnbs", [])}
        self.pools = [str(IPv4Network(p)) for p in cfg.get("pools", [])]
        n6 = cfg.get("n6", {})
        self.tun_name = str(n6.get("tun", "upfn6"))
        self.mtu = int(n6.get("mtu", tun.DEFAULT_MTU))
        self.forwarding = bool(n6.get("forwarding", True))
        self.txqueuelen = int(n6.get("txqueuelen", 4000))
        self.max_sessions = int(cfg.get("max_sessions", 65536))
        self.gtpu_port = int(cfg.get("gtpu_port", gtpu.PORT))
        self.n4_port = int(cfg.get("n4_port", n4.PORT))
        self.by_teid: dict[int, UpfSession] = {}
        self.by_addr: dict[bytes, UpfSession] = {}
        self.by_seid: dict[int, UpfSession] = {}
        self.drops: Counter[str] = Counter()
        self.recent_drops: deque[dict[str, Any]] = deque(maxlen=20)
        self._drop_logged: dict[str, tuple[float, int]] = {}  # reason -> (last log time, drops since)
        self.counters = Counter()
        self.dscp_socks: dict[tuple[int, str], socket.socket] = {}
        self.n4_conns: dict[int, tuple[socket.socket, n4.LineReader, str]] = {}
        self.saved_forwarding: str | None = None
        self.gtp: socket.socket | None = None
        self.n4_listen: socket.socket | None = None
        self.tun_fd: int | None = None
        self.ul_buf = bytearray(BUF)
        self.ul_view = memoryview(self.ul_buf)
        self.dl_batch = gso.Batch()  # G-PDU bursts towards gNBs
        self.started = time.time()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.tun_fd = tun.open_tun(self.tun_name)
        tun.bring_up(self.tun_name, mtu=self.mtu, txqueuelen=self.txqueuelen, routes=self.pools)
        if self.forwarding:
            self.saved_forwarding = tun.read_sysctl(FORWARDING)
            if self.saved_forwarding != "1":
                tun.write_sysctl(FORWARDING, "1")
        self.gtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        daemon.set_buffers(self.gtp)
        self.gtp.bind((self.address, self.gtpu_port))
        self.gtp.setblocking(False)
        self.n4_listen = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.n4_listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.n4_listen.bind((self.address, self.n4_port))
        self.n4_listen.listen(16)
        self.n4_listen.setblocking(False)
        self.loop.add_reader(self.gtp.fileno(), self.on_gtp)
        self.loop.add_reader(self.tun_fd, self.on_tun)
        self.loop.add_reader(self.n4_listen.fileno(), self.on_n4_accept)
        self.loop.every(1.0, self._tick)
        self.log("start", address=self.address, gtpu=self.gtpu_port, n4=f"tcp/{self.n4_port} (JSON, not PFCP)",
                 n6=self.tun_name, pools=",".join(self.pools) or "none", gnbs=",".join(sorted(self.known_gnbs)))
        self.status_file.maybe_write(self.status, force=True)

    def close(self) -> None:
        for fd, (s, _r, _p) in list(self.n4_conns.items()):
            s.close()
        self.n4_conns.clear()
        for s in [self.gtp, self.n4_listen, *self.dscp_socks.values()]:
            if s is not None:
                s.close()
        if self.tun_fd is not None:
            os.close(self.tun_fd)  # the TUN and its routes go with it
            self.tun_fd = None
        if self.saved_forwarding is not None and self.saved_forwarding != "1":
            try:
                tun.write_sysctl(FORWARDING, self.saved_forwarding)  # as IPMininet's routers do: restore on stop
            except OSError:
                pass

    def _tick(self) -> None:
        self.status_file.dirty = True  # the counters move with every packet: rewrite once a second
        self.status_file.maybe_write(self.status)

    # ------------------------------------------------------------------ drops

    def drop(self, reason: str, src: str | None = None, teid: int | None = None) -> None:
        self.drops[reason] += 1
        self.status_file.dirty = True
        now = time.monotonic()
        last, since = self._drop_logged.get(reason, (0.0, 0))
        if now - last >= 1.0:
            self.recent_drops.append({"time": round(time.time(), 3), "reason": reason, "src": src,
                                      "teid": teid})
            self.log("drop", reason=reason, src=src, teid=f"{teid:#010x}" if teid is not None else None,
                     since_last=since + 1, total=self.drops[reason])
            self._drop_logged[reason] = (now, 0)
        else:
            self._drop_logged[reason] = (last, since + 1)

    # ------------------------------------------------------------------ uplink: N3 -> N6

    def on_gtp(self) -> None:
        sock, buf, view, tun_fd = self.gtp, self.ul_buf, self.ul_view, self.tun_fd
        known, by_teid = self.known_gnbs, self.by_teid
        for _ in range(BATCH):
            try:
                n, (src, sport) = sock.recvfrom_into(buf)
            except BlockingIOError:
                return
            if src not in known:
                self.drop("unknown-gnb", src, _TEID.unpack_from(buf, 4)[0] if n >= 8 else None)
                continue
            if n >= 16 and buf[0] == 0x34 and buf[1] == gtpu.G_PDU and buf[11] == 0x85 and buf[12] == 1 \
                    and buf[15] == 0:
                teid = _TEID.unpack_from(buf, 4)[0]
                off, end = 16, min(n, 8 + (buf[2] << 8 | buf[3]))
            else:
                try:
                    p = gtpu.parse(buf, n)
                except gtpu.GtpError:
                    self.drop("malformed", src)
                    continue
                if p.msg_type == gtpu.ECHO_REQUEST:
                    sock.sendto(gtpu.echo_response(p.seq or 0), (src, sport))
                    self.counters["echo_requests"] += 1
                    continue
                if p.msg_type != gtpu.G_PDU:
                    self.drop("not-gpdu", src, p.teid)
                    continue
                teid, off, end = p.teid, p.offset, p.offset + p.length
            s = by_teid.get(teid)
            if s is None:
                self.drop("unknown-teid", src, teid)
                continue
            if s.gnb is not None and s.gnb != src:
                self.drop("wrong-gnb", src, teid)
                continue
            if end - off < 20 or buf[off] >> 4 != 4:
                self.drop("not-ipv4", src, teid)
                continue
            if view[off + 12:off + 16] != s.addr_bytes:
                self.drop("spoofed-source", src, teid)
                continue
            try:
                os.write(tun_fd, view[off:end])
            except OSError:
                self.drop("n6-write", src, teid)
                continue
            s.ul_packets += 1
            s.ul_bytes += end - off

    # ------------------------------------------------------------------ downlink: N6 -> N3

    def on_tun(self) -> None:
        """N6 -> N3: each packet is read behind 16 octets for its G-PDU header, in the burst to its gNB."""
        fd, batch, by_addr = self.tun_fd, self.dl_batch, self.by_addr
        buf, view, H = batch.buf, batch.view, gtpu.HEADER_LEN
        for _ in range(BATCH):
            off = batch.used
            try:
                n = os.readv(fd, [view[off + H:off + H + BUF]])
            except BlockingIOError:
                break
            if n < 20:
                continue
            s = by_addr.get(bytes(view[off + H + 16:off + H + 20]))
            if s is None:
                self.drop("no-session")
                continue
            if s.dl_header is None:
                self.drop("no-dl-tunnel", teid=s.ul_teid)
                continue
            buf[off:off + H] = s.dl_header
            buf[off + 2] = (n + 8) >> 8
            buf[off + 3] = (n + 8) & 0xFF
            batch.push(s.sock, None, H + n)
            s.dl_packets += 1
            s.dl_bytes += n
        batch.flush()

    def socket_for(self, dscp: int, gnb: str) -> socket.socket:
        """One sending socket per (gNB, outer DSCP): IP_TOS set once, connected so the route is cached."""
        s = self.dscp_socks.get((dscp, gnb))
        if s is None:
            s = self.dscp_socks[(dscp, gnb)] = daemon.dscp_socket(self.address, gnb, self.gtpu_port, dscp)
        return s

    # ------------------------------------------------------------------ N4

    def on_n4_accept(self) -> None:
        try:
            conn, (peer, _port) = self.n4_listen.accept()
        except BlockingIOError:
            return
        if peer not in self.smfs or len(self.n4_conns) >= 16:
            self.log("n4-refused", peer=peer, reason="not a configured SMF" if peer not in self.smfs else "too many")
            self.counters["n4_refused"] += 1
            conn.close()
            return
        conn.setblocking(False)
        fd = conn.fileno()
        self.n4_conns[fd] = (conn, n4.LineReader(), peer)
        self.loop.add_reader(fd, lambda: self.on_n4(fd))
        self.log("n4-association", peer=peer)

    def on_n4(self, fd: int) -> None:
        conn, reader, peer = self.n4_conns[fd]
        try:
            data = conn.recv(n4.MAX_LINE)
            requests = reader.feed(data) if data else None
        except BlockingIOError:
            return
        except OSError as exc:
            self.log("n4-error", peer=peer, error=str(exc))
            requests = None
        if requests is None:
            self.loop.remove_reader(fd)
            conn.close()
            del self.n4_conns[fd]
            self.log("n4-closed", peer=peer)
            return
        for req in requests:
            try:
                answer = self.handle_n4(req)
            except (KeyError, ValueError, TypeError) as exc:
                answer = {"ok": False, "error": f"bad {req.get('op')} request: {exc}"}
                self.log("n4-bad-request", peer=peer, op=req.get("op"), error=str(exc))
            conn.setblocking(True)
            conn.settimeout(2.0)
            try:
                conn.sendall(n4.encode(answer))
            except OSError:
                pass
            conn.setblocking(False)

    def handle_n4(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        self.status_file.dirty = True
        if op == "association":
            return {"ok": True, "upf": self.name, "sessions": len(self.by_seid)}
        if op == "establish":
            s = UpfSession(req)
            old = self.by_seid.get(s.seid)
            if old is not None:
                self._remove(old)
            if len(self.by_seid) >= self.max_sessions:
                return {"ok": False, "error": f"session table full ({self.max_sessions})"}
            if s.ul_teid in self.by_teid:
                return {"ok": False, "error": f"UL TEID {s.ul_teid:#x} already in use"}
            if s.addr_bytes in self.by_addr:
                self._remove(self.by_addr[s.addr_bytes])  # the address was re-assigned: the old session is stale
            self.by_seid[s.seid] = s
            self.by_teid[s.ul_teid] = s
            self.by_addr[s.addr_bytes] = s
            if req.get("gnb") is not None and req.get("dl_teid") is not None:
                self._set_dl(s, str(IPv4Address(req["gnb"])), int(req["dl_teid"]))
            self.counters["sessions_established"] += 1
            self.log("session", op="establish", seid=s.seid, ue=s.ue, slice=s.slice, address=s.address,
                     ul_teid=f"{s.ul_teid:#010x}", qfi=s.qfi, dscp=s.dscp)
            return {"ok": True}
        if op == "modify":
            s = self.by_seid.get(int(req["seid"]))
            if s is None:
                return {"ok": False, "error": f"no session {req['seid']}"}
            self._set_dl(s, str(IPv4Address(req["gnb"])), int(req["dl_teid"]))
            self.log("session", op="modify", seid=s.seid, ue=s.ue, gnb=s.gnb, dl_teid=f"{s.dl_teid:#010x}")
            return {"ok": True}
        if op == "delete":
            s = self.by_seid.get(int(req["seid"]))
            if s is None:
                return {"ok": False, "error": f"no session {req['seid']}"}
            self._remove(s)
            self.counters["sessions_deleted"] += 1
            self.log("session", op="delete", seid=s.seid, ue=s.ue, address=s.address)
            return {"ok": True}
        if op == "report":
            return {"ok": True, **self.status()}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def _set_dl(self, s: UpfSession, gnb: str, dl_teid: int) -> None:
        s.gnb, s.dl_teid = gnb, dl_teid
        s.dl_header = gtpu.template(dl_teid, s.qfi, uplink=False)
        s.sock = self.socket_for(s.dscp, gnb)
        self.known_gnbs.add(gnb)

    def _remove(self, s: UpfSession) -> None:
        self.by_seid.pop(s.seid, None)
        if self.by_teid.get(s.ul_teid) is s:
            del self.by_teid[s.ul_teid]
        if self.by_addr.get(s.addr_bytes) is s:
            del self.by_addr[s.addr_bytes]

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        sessions = [s.view() for s in self.by_seid.values()]
        return {
            "program": "upf", "name": self.name, "address": self.address, "pid": os.getpid(),
            "n4": {"transport": "tcp", "port": self.n4_port, "protocol": "json-lines (not PFCP)",
                   "peers": sorted({p for _s, _r, p in self.n4_conns.values()})},
            "n6": {"tun": self.tun_name, "pools": self.pools},
            "known_gnbs": sorted(self.known_gnbs),
            "counters": {"sessions": len(sessions), "ul_packets": sum(s["ul_packets"] for s in sessions),
                         "ul_bytes": sum(s["ul_bytes"] for s in sessions),
                         "dl_packets": sum(s["dl_packets"] for s in sessions),
                         "dl_bytes": sum(s["dl_bytes"] for s in sessions), **self.counters},
            "drops": {**self.drops, **({"n3-send": self.dl_batch.errors} if self.dl_batch.errors else {})},
            "n3_sends": self.dl_batch.stats(),
            "recent_drops": list(self.recent_drops),
            "sessions": sessions,
        }


def main(argv: list[str] | None = None) -> int:
    return daemon.main("upf", __doc__, Upf, argv)


if __name__ == "__main__":
    raise SystemExit(main())
