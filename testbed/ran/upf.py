"""The emulated UPF: GTP-U (N3) on UDP 2152 in, IP (N6) out through a TUN, and back.

    python -m testbed.ran.upf --config upf.json [--status upf-status.json]

Sessions come from the core over the emulated N4 (testbed.ran.n4: JSON over
TCP 8805, not PFCP), accepted only from the core addresses in the config; the
core's PFCP Heartbeat Requests (real PFCP, UDP 8805, testbed.ran.pfcp) are
answered, so the core knows when this UPF is lost.

Uplink, per G-PDU received on <address>:2152, in this order of checks (each
failure is dropped and counted under its reason in the status file):
`unknown-gnb` the packet's source is not a known gNB (the config's, and any the
core named in an N4 modify); `malformed` not GTPv1-U; `not-gpdu` a GTP-U
message other than a G-PDU (Echo Request is answered, not dropped);
`unknown-teid` no session has this UL TEID; `wrong-gnb` the TEID is a session's
whose tunnel ends at another gNB; `not-ipv4` the inner packet is not IPv4;
`spoofed-source` the inner source address is not the session's; `to-upf` the
inner destination is the UPF itself (any address of its namespace, a broadcast,
multicast, loopback or 0.0.0.0/8: its kernel would take it in, not forward it);
`to-session` the inner destination is a session address of its own pools (the
kernel would send it straight back out through N6 to that UE, a path between
UEs that no switch sees and no slice grants). Survivors are
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
Drops are logged at most once a second per reason (with a count). A config
with `"verify": false` skips the gNB, TEID, inner-source and inner-destination checks: a broken
UPF on purpose, the negative control the GTP-U attack tests run against.

This module holds the packet loops; the session table and the N4 server are
upfn4.py.
"""
from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import time
from collections import Counter, deque
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from testbed.ran import daemon, gso, gtpu, n4, pfcp, tun
from testbed.ran.daemon import Log, Loop, StatusFile, need
from testbed.ran.upfn4 import N4Server, SessionTable

BATCH = 256  # packets drained per readiness event, per socket
BUF = 65536 + gtpu.HEADER_LEN
_TEID = struct.Struct("!I")
FORWARDING = "/proc/sys/net/ipv4/ip_forward"


class Drops:
    """Drops by reason: every one counted, logged at most once a second per reason (with how many since)."""

    def __init__(self, log: Log, status: StatusFile) -> None:
        self.log = log
        self.status_file = status
        self.counts: Counter[str] = Counter()
        self.recent: deque[dict[str, Any]] = deque(maxlen=20)
        self._logged: dict[str, tuple[float, int]] = {}  # reason -> (last log time, drops since)

    def __call__(self, reason: str, src: str | None = None, teid: int | None = None) -> None:
        self.counts[reason] += 1
        self.status_file.dirty = True
        now = time.monotonic()
        last, since = self._logged.get(reason, (0.0, 0))
        if now - last >= 1.0:
            self.recent.append({"time": round(time.time(), 3), "reason": reason, "src": src,
                                "teid": teid})
            self.log("drop", reason=reason, src=src, teid=f"{teid:#010x}" if teid is not None else None,
                     since_last=since + 1, total=self.counts[reason])
            self._logged[reason] = (now, 0)
        else:
            self._logged[reason] = (last, since + 1)


def local_addresses() -> set[int]:
    """Every IPv4 address this namespace takes in as its own: its interfaces' addresses and broadcasts."""
    try:
        r = subprocess.run(["ip", "-4", "-j", "addr", "show"], capture_output=True, text=True, timeout=10)
        out = set()
        for link in json.loads(r.stdout or "[]"):
            for a in link.get("addr_info", []):
                for key in ("local", "broadcast"):
                    if a.get(key):
                        out.add(int(IPv4Address(a[key])))
        return out
    except (OSError, ValueError, subprocess.SubprocessError):
        return set()


class Upf:
    """The UPF's packet loops (N3 <-> N6) over its session table and N4 server (upfn4.py)."""

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
        self.pool_ranges = [(int(n.network_address), int(n.netmask)) for n in map(IPv4Network, self.pools)]
        self.local_addresses: set[int] = {int(IPv4Address(self.address)), 0xFFFFFFFF}  # and the rest at start
        n6 = cfg.get("n6", {})
        self.tun_name = str(n6.get("tun", "upfn6"))
        self.mtu = int(n6.get("mtu", tun.DEFAULT_MTU))
        self.forwarding = bool(n6.get("forwarding", True))
        self.txqueuelen = int(n6.get("txqueuelen", 4000))
        self.max_sessions = int(cfg.get("max_sessions", 65536))
        # False only for the prober's negative control: a UPF that checks nothing lets GTP-U attacks through
        self.verify = bool(cfg.get("verify", True))
        self.gtpu_port = int(cfg.get("gtpu_port", gtpu.PORT))
        n4_port = int(cfg.get("n4_port", n4.PORT))
        self.drop = Drops(log, status)
        self.counters = Counter()
        self.table = SessionTable(self.max_sessions, self.known_gnbs, self.socket_for, self.counters, log)
        self.by_teid, self.by_addr = self.table.by_teid, self.table.by_addr  # read by the packet loops
        self.dscp_socks: dict[tuple[int, str], daemon.DscpPeer] = {}
        self.n4 = N4Server(self.address, n4_port, self.smfs, self.handle_n4, self.counters, log, loop)
        self.heartbeat = pfcp.Responder(self.address, self.smfs, int(cfg.get("pfcp_port", pfcp.PORT)))
        self.saved_forwarding: str | None = None
        self.gtp: socket.socket | None = None
        self.tun_fd: int | None = None
        self.ul_buf = bytearray(BUF)
        self.ul_view = memoryview(self.ul_buf)
        self.dl_batch = gso.Batch()  # G-PDU bursts towards gNBs
        self.started = time.time()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.tun_fd = tun.open_tun(self.tun_name)
        tun.bring_up(self.tun_name, mtu=self.mtu, txqueuelen=self.txqueuelen, routes=self.pools)
        self.local_addresses |= local_addresses()
        if self.forwarding:
            self.saved_forwarding = tun.read_sysctl(FORWARDING)
            if self.saved_forwarding != "1":
                tun.write_sysctl(FORWARDING, "1")
        self.gtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        daemon.set_buffers(self.gtp)
        self.gtp.bind((self.address, self.gtpu_port))
        self.gtp.setblocking(False)
        n4_listen = self.n4.listen()
        self.loop.add_reader(self.gtp.fileno(), self.on_gtp)
        self.loop.add_reader(self.tun_fd, self.on_tun)
        self.loop.add_reader(n4_listen.fileno(), self.n4.on_accept)
        self.loop.add_reader(self.heartbeat.open().fileno(), self.heartbeat.on_read)
        self.loop.every(1.0, self._tick)
        self.log("start", address=self.address, gtpu=self.gtpu_port, n4=f"tcp/{self.n4.port} (JSON, not PFCP)",
                 n6=self.tun_name, pools=",".join(self.pools) or "none", gnbs=",".join(sorted(self.known_gnbs)))
        self.status_file.maybe_write(self.status, force=True)

    def close(self) -> None:
        self.n4.close_conns()
        self.heartbeat.close()
        for s in [self.gtp, self.n4.listener]:
            if s is not None:
                s.close()
        self.dscp_socks.clear()
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

    # ------------------------------------------------------------------ uplink: N3 -> N6

    def on_gtp(self) -> None:
        sock, buf, view, tun_fd = self.gtp, self.ul_buf, self.ul_view, self.tun_fd
        known, by_teid, verify = self.known_gnbs, self.by_teid, self.verify
        local, pools = self.local_addresses, self.pool_ranges
        for _ in range(BATCH):
            try:
                n, (src, sport) = sock.recvfrom_into(buf)
            except BlockingIOError:
                return
            if src not in known and verify:
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
            if s is None and verify:
                self.drop("unknown-teid", src, teid)
                continue
            if s is not None and s.gnb is not None and s.gnb != src and verify:
                self.drop("wrong-gnb", src, teid)
                continue
            if end - off < 20 or buf[off] >> 4 != 4:
                self.drop("not-ipv4", src, teid)
                continue
            if s is not None and view[off + 12:off + 16] != s.addr_bytes and verify:
                self.drop("spoofed-source", src, teid)
                continue
            if verify:
                dst = int.from_bytes(buf[off + 16:off + 20], "big")
                if dst in local or buf[off + 16] in (0, 127) or buf[off + 16] >= 224:
                    self.drop("to-upf", src, teid)
                    continue
                if any(dst & mask == net for net, mask in pools):
                    self.drop("to-session", src, teid)
                    continue
            try:
                os.write(tun_fd, view[off:end])
            except OSError:
                self.drop("n6-write", src, teid)
                continue
            if s is not None:
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

    def socket_for(self, dscp: int, gnb: str) -> daemon.DscpPeer:
        """Where downlink G-PDUs towards one gNB with one outer DSCP go: from port 2152, as the gNB's come."""
        s = self.dscp_socks.get((dscp, gnb))
        if s is None:
            s = self.dscp_socks[(dscp, gnb)] = daemon.DscpPeer(self.gtp, gnb, self.gtpu_port, dscp)
        return s

    # ------------------------------------------------------------------ N4

    def handle_n4(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        self.status_file.dirty = True
        if op == "association":
            return {"ok": True, "upf": self.name, "sessions": len(self.table.by_seid)}
        if op in ("establish", "modify", "delete"):
            return getattr(self.table, op)(req)
        if op == "report":
            return {"ok": True, **self.status()}
        return {"ok": False, "error": f"unknown op {op!r}"}

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        sessions = [s.view() for s in self.table.by_seid.values()]
        return {
            "program": "upf", "name": self.name, "address": self.address, "pid": os.getpid(),
            "n4": self.n4.view(),
            "heartbeats": {"answered": self.heartbeat.answered, "refused": self.heartbeat.refused},
            "n6": {"tun": self.tun_name, "pools": self.pools},
            "known_gnbs": sorted(self.known_gnbs),
            "counters": {"sessions": len(sessions), "ul_packets": sum(s["ul_packets"] for s in sessions),
                         "ul_bytes": sum(s["ul_bytes"] for s in sessions),
                         "dl_packets": sum(s["dl_packets"] for s in sessions),
                         "dl_bytes": sum(s["dl_bytes"] for s in sessions), **self.counters},
            "verify": self.verify,
            "drops": {**self.drop.counts, **({"n3-send": self.dl_batch.errors} if self.dl_batch.errors else {})},
            "n3_sends": self.dl_batch.stats(),
            "recent_drops": list(self.drop.recent),
            "sessions": sessions,
        }


def main(argv: list[str] | None = None) -> int:
    return daemon.main("upf", __doc__, Upf, argv)


if __name__ == "__main__":
    raise SystemExit(main())
