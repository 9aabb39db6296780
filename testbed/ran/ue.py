"""The emulated UE: registers through its gNB, then one PDU session per slice, each a uesimtunN TUN.

    python -m testbed.ran.ue --config ue.json [--status ue-status.json]

- Radio: RLS (testbed.ran.rls) over UDP 4997 between its node address and its
  gNB's. HEARTBEATs every `heartbeat` seconds find the cell and keep the link;
  with no HEARTBEAT_ACK for `link_timeout` seconds (or a RELEASE from the gNB)
  the UE drops its sessions and registers again once the cell answers.
- Registration: the Registration Request from the config (plain NAS, encoded by
  testbed.ran.agents with pycrate) goes up as RLS NAS, resent with back-off
  until answered. An accept starts the sessions; a reject is logged with its
  5GMM cause, kept in the status file, and the UE stays up (no retry: a
  rejected subscriber does not insist).
- Sessions: every configured PDU Session Establishment Request (in its UL NAS
  Transport) is sent at once; each accept becomes the TUN named in the config
  (uesimtun0, uesimtun1, ... as UERANSIM names them) with the session address
  (/32), MTU 1400, and routes for the config's destinations (the services its
  slice grants) through it, from that address. A reject is logged with its
  5GSM cause and kept in the status file.
- User plane: a packet read from a session's TUN goes to the gNB as RLS DATA
  with the session's id; RLS DATA from the gNB is written to the TUN of its
  session id. TUN reads are drained in batches straight into a burst buffer
  behind their RLS header, and a burst leaves in one system call (UDP
  segmentation, testbed.ran.gso): on the wire, still one datagram per packet.

Small on purpose (no pycrate, no pydantic: testbed.ran.uenas reads NAS): a UE
process stays far below 20 MiB resident.
"""
from __future__ import annotations

import os
import socket
import time
from collections import Counter
from ipaddress import IPv4Address
from typing import Any

from testbed.ran import daemon, gso, rls, tun, uenas
from testbed.ran.daemon import ConfigError, Log, Loop, StatusFile, need

BATCH = 256
BUF = 65536


class UeSession:
    __slots__ = ("psi", "slice", "snssai", "dnn", "request", "tun", "routes", "state", "cause", "cause_name",
                 "address", "fd", "rls_header", "sent_at", "setup_ms", "attempts", "timer", "qfi",
                 "ul_packets", "ul_bytes", "dl_packets", "dl_bytes")

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.psi = int(cfg["psi"])
        if not 1 <= self.psi <= 15:
            raise ConfigError(f"PDU session id {self.psi} outside 1..15")
        self.slice = str(cfg.get("slice", ""))
        self.snssai = cfg.get("snssai")
        self.dnn = cfg.get("dnn")
        self.request = bytes.fromhex(cfg["request"])
        self.tun: str | None = cfg.get("tun")
        self.routes = [str(r) for r in cfg.get("routes", [])]
        self.fd: int | None = None
        self.rls_header = b""
        self.timer: list | None = None
        self.reset()

    def reset(self) -> None:
        self.state = "idle"
        self.cause = self.cause_name = None
        self.address: str | None = None
        self.qfi: int | None = None
        self.sent_at = 0.0
        self.setup_ms: float | None = None
        self.attempts = 0
        self.ul_packets = self.ul_bytes = self.dl_packets = self.dl_bytes = 0

    def view_dict(self) -> dict[str, Any]:
        return {"psi": self.psi, "slice": self.slice, "snssai": self.snssai, "dnn": self.dnn, "state": self.state,
                "address": self.address, "tun": self.tun if self.state == "active" else None, "qfi": self.qfi,
                "cause": self.cause, "cause_name": self.cause_name, "setup_ms": self.setup_ms,
                "routes": self.routes, "ul_packets": self.ul_packets, "ul_bytes": self.ul_bytes,
                "dl_packets": self.dl_packets, "dl_bytes": self.dl_bytes}


class Ue:
    def __init__(self, cfg: dict[str, Any], log: Log, status: StatusFile, loop: Loop) -> None:
        self.log = log
        self.status_file = status
        self.loop = loop
        self.name = str(cfg.get("name", "ue"))
        self.supi = str(need(cfg, "supi", str))
        self.ue_id = int(need(cfg, "ue_id", int))
        if not 0 < self.ue_id <= rls.MAX_UE_ID:
            raise ConfigError(f"ue_id {self.ue_id} outside 1..{rls.MAX_UE_ID}")
        self.address = str(IPv4Address(need(cfg, "address", str)))
        gnb = need(cfg, "gnb", dict)
        self.gnb = (str(IPv4Address(gnb["address"])), int(gnb.get("port", rls.PORT)))
        self.rls_port = int(cfg.get("rls_port", rls.PORT))
        self.registration = bytes.fromhex(need(cfg, "registration", str))
        self.sessions = {s.psi: s for s in (UeSession(c) for c in cfg.get("sessions", []))}
        if len(self.sessions) != len(cfg.get("sessions", [])):
            raise ConfigError("two sessions share a PDU session id")
        self.mtu = int(cfg.get("mtu", tun.DEFAULT_MTU))
        timers = cfg.get("timers", {})
        self.heartbeat = float(timers.get("heartbeat", 1.0))
        self.link_timeout = float(timers.get("link_timeout", 5.0))
        # T3510 (registration) and T3580 (PDU session establishment) of TS 24.501: a busy core is not flooded
        # with retransmissions; a lost message costs this long (the radio link here loses none on its own)
        self.retry = float(timers.get("retry", 15.0))
        self.session_retry = float(timers.get("session_retry", 16.0))
        self.max_retry = float(timers.get("max_retry", 60.0))
        self.session_attempts = int(timers.get("session_attempts", 5))
        self.state = "searching"  # searching -> registering -> registered | rejected
        self.link_up = False
        self.last_ack = 0.0
        self.reg_sent_at = 0.0
        self.reg_attempts = 0
        self.reg_timer: list | None = None
        self.registration_ms: float | None = None
        self.reject: dict[str, Any] | None = None
        self.rejects: list[dict[str, Any]] = []
        self.allowed: tuple[str, ...] = ()
        self.counters: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()
        self.sock: socket.socket | None = None
        self.ul_batch = gso.Batch()
        self.rbuf = bytearray(BUF)
        self.rview = memoryview(self.rbuf)
        self._seen = (0, 0)
        self.started = time.monotonic()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        daemon.set_buffers(self.sock, 2 << 20)
        self.sock.bind((self.address, self.rls_port))
        # connected: the kernel keeps the route, and delivers only what comes from the gNB's RLS port
        self.sock.connect(self.gnb)
        self.sock.setblocking(False)
        self.loop.add_reader(self.sock.fileno(), self.on_rls)
        self.loop.every(self.heartbeat, self.on_heartbeat_timer)
        self.loop.every(1.0, self._tick)
        self.log("start", supi=self.supi, ue_id=self.ue_id, address=self.address, gnb=self.gnb[0],
                 sessions=",".join(f"{s.psi}:{s.slice or s.snssai}" for s in self.sessions.values()))
        self.send(rls.HEARTBEAT)
        self.status_file.maybe_write(self.status, force=True)

    def close(self) -> None:
        if self.sock is not None:
            self.send(rls.RELEASE)
        for s in self.sessions.values():
            self.close_session(s)
        if self.sock is not None:
            self.sock.close()

    def _tick(self) -> None:
        seen = (self.counters["ul_packets"] + sum(s.ul_packets for s in self.sessions.values()),
                sum(s.dl_packets for s in self.sessions.values()))
        if seen != self._seen:
            self._seen = seen
            self.status_file.dirty = True
        self.status_file.maybe_write(self.status)

    def send(self, msg_type: int, payload: bytes = b"", psi: int = 0) -> None:
        try:
            self.sock.send(rls.encode(msg_type, self.ue_id, payload, psi))
        except OSError as exc:
            self.counters["send_errors"] += 1
            if self.counters["send_errors"] <= 3:
                self.log("rls-send-error", error=exc.strerror or str(exc))

    # ------------------------------------------------------------------ radio link

    def on_heartbeat_timer(self) -> None:
        self.send(rls.HEARTBEAT)
        if self.link_up and time.monotonic() - self.last_ack > self.link_timeout:
            self.link_lost(f"no heartbeat answer for {self.link_timeout:g} s")

    def link_lost(self, why: str) -> None:
        self.link_up = False
        self.log("radio-link-lost", reason=why, state=self.state)
        self.restart()

    def restart(self) -> None:
        """Back to square one: sessions down, register again as soon as the cell answers."""
        for s in self.sessions.values():
            self.close_session(s)
            s.reset()
        self.loop.cancel(self.reg_timer)
        self.reg_attempts, self.reg_sent_at = 0, 0.0
        if self.state != "rejected":
            self.state = "searching"
        self.status_file.dirty = True
        if self.link_up and self.state == "searching":
            self.register()

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
            self.on_control(hdr, bytes(view[rls.HEADER_LEN:n]))

    def on_control(self, hdr: rls.Header, payload: bytes) -> None:
        if hdr.ue_id != self.ue_id:
            self.drops["other-ue"] += 1
            return
        if hdr.type == rls.HEARTBEAT_ACK:
            self.last_ack = time.monotonic()
            if not self.link_up:
                self.link_up = True
                self.log("cell-found", gnb=self.gnb[0])
                if self.state == "searching":
                    self.register()
            return
        if hdr.type == rls.RELEASE:  # the gNB dropped us (it lost its core, or stops): search the cell again
            self.log("released-by-gnb", state=self.state)
            self.link_up = False
            self.restart()
            return
        if hdr.type == rls.NAS:
            self.counters["nas_down"] += 1
            try:
                msg = uenas.decode(payload)
            except uenas.NasError as exc:
                self.log("nas-error", error=str(exc))
                return
            self.on_nas(msg)

    # ------------------------------------------------------------------ registration

    def register(self) -> None:
        self.state = "registering"
        self.reg_attempts += 1
        if self.reg_attempts == 1 or not self.reg_sent_at:
            self.reg_sent_at = time.monotonic()
        self.send(rls.NAS, self.registration)
        self.counters["nas_up"] += 1
        self.log("registration-request", supi=self.supi, attempt=self.reg_attempts)
        delay = min(self.retry * 2 ** min(self.reg_attempts - 1, 8), self.max_retry)
        self.loop.cancel(self.reg_timer)
        self.reg_timer = self.loop.call_later(delay, self._registration_timeout)

    def _registration_timeout(self) -> None:
        if self.state == "registering" and self.link_up:
            self.register()

    def on_nas(self, msg: Any) -> None:
        self.status_file.dirty = True
        if isinstance(msg, uenas.RegistrationAccept):
            if self.state != "registering":
                return
            self.loop.cancel(self.reg_timer)
            self.state = "registered"
            self.registration_ms = round((time.monotonic() - self.reg_sent_at) * 1000, 2)
            self.reg_attempts, self.reg_sent_at = 0, 0.0
            self.allowed = msg.allowed
            self.log("registered", supi=self.supi, allowed=",".join(msg.allowed), tmsi=msg.tmsi,
                     rejected_nssai=",".join(msg.rejected) or None, ms=self.registration_ms)
            for s in self.sessions.values():
                self.request_session(s)
        elif isinstance(msg, uenas.RegistrationReject):
            self.loop.cancel(self.reg_timer)
            self.state = "rejected"
            name = uenas.MM_CAUSES.get(msg.cause)
            self.reject = {"kind": "registration", "cause": msg.cause, "cause_name": name}
            self.rejects.append({"time": round(time.time(), 3), **self.reject})
            self.log("reject", kind="registration", supi=self.supi, cause=msg.cause, cause_name=name)
        elif isinstance(msg, uenas.SessionAccept):
            self.on_session_accept(msg)
        elif isinstance(msg, uenas.SessionReject):
            s = self.sessions.get(msg.psi)
            if s is None or s.state != "requested":
                return
            self.loop.cancel(s.timer)
            s.state, s.cause, s.cause_name = "rejected", msg.cause, uenas.SM_CAUSES.get(msg.cause)
            self.rejects.append({"time": round(time.time(), 3), "kind": "session", "psi": s.psi, "slice": s.slice,
                                 "cause": msg.cause, "cause_name": s.cause_name})
            del self.rejects[:-100]
            self.log("reject", kind="session", psi=s.psi, slice=s.slice, snssai=s.snssai, dnn=s.dnn,
                     cause=msg.cause, cause_name=s.cause_name)
        else:
            self.log("nas-ignored", message=type(msg).__name__)

    # ------------------------------------------------------------------ sessions

    def request_session(self, s: UeSession) -> None:
        if self.state != "registered":
            return
        s.state = "requested"
        s.attempts += 1
        if s.attempts == 1:
            s.sent_at = time.monotonic()
        self.send(rls.NAS, s.request)
        self.counters["nas_up"] += 1
        self.loop.cancel(s.timer)
        s.timer = self.loop.call_later(min(self.session_retry * 2 ** (s.attempts - 1), self.max_retry),
                                       lambda: self._session_timeout(s))

    def _session_timeout(self, s: UeSession) -> None:
        if s.state != "requested" or self.state != "registered":
            return
        if s.attempts >= self.session_attempts:
            s.state = "timeout"
            self.status_file.dirty = True
            self.log("session-timeout", psi=s.psi, slice=s.slice, attempts=s.attempts)
            return
        self.request_session(s)

    def on_session_accept(self, msg: uenas.SessionAccept) -> None:
        s = self.sessions.get(msg.psi)
        if s is None or s.state != "requested":
            self.log("session-accept-ignored", psi=msg.psi, reason="not requested")
            return
        self.loop.cancel(s.timer)
        s.address, s.qfi = str(msg.address), msg.qfi
        name = s.tun or self._free_tun()
        try:
            fd = tun.open_tun(name)
            try:
                tun.bring_up(name, s.address, self.mtu, routes=s.routes)
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:
            s.state, s.cause_name = "failed", f"TUN {name}: {exc}"
            self.log("session-failed", psi=s.psi, slice=s.slice, tun=name, error=str(exc))
            return
        s.tun, s.fd = name, fd
        s.rls_header = rls.encode(rls.DATA, self.ue_id, psi=s.psi)
        self.loop.add_reader(fd, lambda: self.on_tun(s))
        s.state = "active"
        s.setup_ms = round((time.monotonic() - s.sent_at) * 1000, 2)
        self.log("session", psi=s.psi, slice=s.slice, dnn=msg.dnn or s.dnn, address=s.address, tun=name,
                 qfi=msg.qfi, routes=len(s.routes), ms=s.setup_ms)

    def _free_tun(self) -> str:
        taken = {s.tun for s in self.sessions.values() if s.tun}
        return next(f"uesimtun{i}" for i in range(64) if f"uesimtun{i}" not in taken)

    def close_session(self, s: UeSession) -> None:
        self.loop.cancel(s.timer)
        if s.fd is not None:
            self.loop.remove_reader(s.fd)
            os.close(s.fd)  # the TUN and its routes vanish with the descriptor
            s.fd = None

    def on_tun(self, s: UeSession) -> None:
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

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        sessions = [s.view_dict() for s in self.sessions.values()]
        return {
            "program": "ue", "name": self.name, "supi": self.supi, "ue_id": self.ue_id, "address": self.address,
            "pid": os.getpid(), "gnb": self.gnb[0], "link": "up" if self.link_up else "down", "state": self.state,
            "registered": self.state == "registered", "registration_ms": self.registration_ms,
            "allowed_nssai": list(self.allowed), "reject": self.reject, "rejects": self.rejects[-100:],
            "sessions": sessions,
            "counters": {"ul_packets": sum(s["ul_packets"] for s in sessions),
                         "dl_packets": sum(s["dl_packets"] for s in sessions),
                         "ul_bytes": sum(s["ul_bytes"] for s in sessions),
                         "dl_bytes": sum(s["dl_bytes"] for s in sessions), **self.counters},
            "drops": {**self.drops, **({"rls-send": self.ul_batch.errors} if self.ul_batch.errors else {})},
            "uplink_sends": self.ul_batch.stats(),
        }


def main(argv: list[str] | None = None) -> int:
    return daemon.main("ue", __doc__, Ue, argv)


if __name__ == "__main__":
    raise SystemExit(main())
