"""The emulated UE: registers through its gNB, then one PDU session per slice, each a uesimtunN TUN.

    python -m testbed.ran.ue --config ue.json [--status ue-status.json]

- Radio: RLS (testbed.ran.rls) over UDP 4997 between its node address and its
  gNB's. HEARTBEATs every `heartbeat` seconds find the cell and keep the link;
  with no HEARTBEAT_ACK for `link_timeout` seconds (or a RELEASE from the gNB)
  the UE drops its sessions and registers again once a cell answers.
- Cell reselection: `fallback_gnbs` lists the gNBs the UE may use besides its
  own (`gnb`), in the order it tries them. When
  the link is lost the UE turns to the next one (and on, round the list, each
  given `link_timeout` to answer): it registers through whichever answers and
  re-establishes its sessions there (same addresses: the core keeps them), so
  a lost gNB costs its flows the detection time plus one registration. Each
  attachment is kept in the status (`attaches`), with the sessions lost and
  re-established.
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

This module holds the config, the link supervision and registration; the RLS
socket and the user plane are ueradio.py, the PDU sessions uesessions.py.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from ipaddress import IPv4Address
from typing import Any

from testbed.ran import daemon, rls, tun, uenas
from testbed.ran.daemon import ConfigError, Log, Loop, StatusFile, need
from testbed.ran.ueradio import UeRadio
from testbed.ran.uesessions import PduSessions, UeSession


class Ue:
    """One UE: link supervision and registration over its radio (UeRadio), its sessions (PduSessions)."""

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
        cells = [gnb, *cfg.get("fallback_gnbs", [])]
        if not all(isinstance(c, dict) and "address" in c for c in cells):
            raise ConfigError("gnb and fallback_gnbs: {name, address, port} each")
        self.cells = [(str(c.get("name", c["address"])), (str(IPv4Address(c["address"])), int(c.get("port", rls.PORT))))
                      for c in cells]
        self.cell = 0
        self.gnb = self.cells[0][1]
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
        self.search_since = time.monotonic()
        self.attaches: list[dict[str, Any]] = []  # one per registration: through which gNB, when, sessions back
        self.link_losses: list[dict[str, Any]] = []  # when and why the radio link was lost (the last 20)
        self.reg_sent_at = 0.0
        self.reg_attempts = 0
        self.reg_timer: list | None = None
        self.registration_ms: float | None = None
        self.reject: dict[str, Any] | None = None
        self.rejects: list[dict[str, Any]] = []
        self.allowed: tuple[str, ...] = ()
        self.counters: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()
        self.radio = UeRadio(self.address, self.gnb, self.rls_port, self.ue_id, self.sessions, self.on_control,
                             self.counters, self.drops, log, loop)
        self.pdus = PduSessions(self.sessions, self.ue_id, self.mtu, self.session_retry, self.max_retry,
                                self.session_attempts, self.radio, lambda: self.state == "registered",
                                self.counters, self.rejects, log, status, loop)
        self._seen = (0, 0)
        self.started = time.monotonic()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.radio.open()
        self.loop.every(self.heartbeat, self.on_heartbeat_timer)
        self.loop.every(1.0, self._tick)
        self.log("start", supi=self.supi, ue_id=self.ue_id, address=self.address, gnb=self.gnb[0],
                 sessions=",".join(f"{s.psi}:{s.slice or s.snssai}" for s in self.sessions.values()))
        self.radio.send(rls.HEARTBEAT)
        self.status_file.maybe_write(self.status, force=True)

    def close(self) -> None:
        if self.radio.sock is not None:
            self.radio.send(rls.RELEASE)
        for s in self.sessions.values():
            self.pdus.close(s)
        self.radio.close()

    def _tick(self) -> None:
        seen = (self.counters["ul_packets"] + sum(s.ul_packets for s in self.sessions.values()),
                sum(s.dl_packets for s in self.sessions.values()))
        if seen != self._seen:
            self._seen = seen
            self.status_file.dirty = True
        self.status_file.maybe_write(self.status)

    # ------------------------------------------------------------------ radio link

    def on_heartbeat_timer(self) -> None:
        now = time.monotonic()
        if self.link_up and now - self.last_ack > self.link_timeout:
            self.link_lost(f"no heartbeat answer for {self.link_timeout:g} s")
        elif not self.link_up and len(self.cells) > 1 and now - self.search_since > self.link_timeout:
            self.reselect("no answer from the cell")  # this one is silent too: the next on the list
        self.radio.send(rls.HEARTBEAT)

    def link_lost(self, why: str) -> None:
        self.link_up = False
        self.counters["link_losses"] += 1
        self.link_losses.append({"at": round(time.time(), 3), "reason": why, "gnb": self.cells[self.cell][0],
                                 "since_ack_s": round(time.monotonic() - self.last_ack, 2)})
        del self.link_losses[:-20]
        self.log("radio-link-lost", reason=why, state=self.state, gnb=self.cells[self.cell][0])
        self.reselect(why)
        self.restart()

    def reselect(self, why: str) -> None:
        """Search the next gNB of the list (a UE with one gNB keeps searching its own)."""
        self.search_since = time.monotonic()
        if len(self.cells) < 2:
            return
        old = self.cells[self.cell][0]
        self.cell = (self.cell + 1) % len(self.cells)
        self.gnb = self.cells[self.cell][1]
        self.radio.retarget(self.gnb)
        self.counters["cell_reselections"] += 1
        self.log("cell-reselect", old=old, new=self.cells[self.cell][0], address=self.gnb[0], reason=why)

    def restart(self) -> None:
        """Back to square one: sessions down, register again as soon as the cell answers."""
        self.counters["sessions_lost"] += sum(s.state == "active" for s in self.sessions.values())
        for s in self.sessions.values():
            self.pdus.close(s)
            s.reset()
        self.loop.cancel(self.reg_timer)
        self.reg_attempts, self.reg_sent_at = 0, 0.0
        if self.state != "rejected":
            self.state = "searching"
        self.status_file.dirty = True
        if self.link_up and self.state == "searching":
            self.register()

    def on_control(self, hdr: rls.Header, payload: bytes) -> None:
        if hdr.ue_id != self.ue_id:
            self.drops["other-ue"] += 1
            return
        if hdr.type == rls.HEARTBEAT_ACK:
            self.last_ack = time.monotonic()
            if not self.link_up:
                self.link_up = True
                self.log("cell-found", gnb=self.cells[self.cell][0], address=self.gnb[0])
                if self.state == "searching":
                    self.register()
            return
        if hdr.type == rls.RELEASE:  # the gNB dropped us (it lost its core, or stops): search again, the next first
            self.log("released-by-gnb", state=self.state, gnb=self.cells[self.cell][0])
            self.link_up = False
            self.reselect("released by the gNB")
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
        self.radio.send(rls.NAS, self.registration)
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
            self.attaches.append({"gnb": self.cells[self.cell][0], "registered_at": round(time.time(), 3),
                                  "registration_ms": self.registration_ms, "sessions_active_at": None})
            del self.attaches[:-20]
            self.log("registered", supi=self.supi, allowed=",".join(msg.allowed), tmsi=msg.tmsi,
                     rejected_nssai=",".join(msg.rejected) or None, ms=self.registration_ms)
            for s in self.sessions.values():
                self.pdus.request(s)
        elif isinstance(msg, uenas.RegistrationReject):
            self.loop.cancel(self.reg_timer)
            self.state = "rejected"
            name = uenas.MM_CAUSES.get(msg.cause)
            self.reject = {"kind": "registration", "cause": msg.cause, "cause_name": name}
            self.rejects.append({"time": round(time.time(), 3), **self.reject})
            self.log("reject", kind="registration", supi=self.supi, cause=msg.cause, cause_name=name)
        elif isinstance(msg, uenas.SessionAccept):
            self.pdus.accept(msg)
            self._sessions_back()
        elif isinstance(msg, uenas.SessionReject):
            self.pdus.reject(msg)
            self._sessions_back()
        else:
            self.log("nas-ignored", message=type(msg).__name__)

    def _sessions_back(self) -> None:
        """Once every session of this attachment is settled: when, and (after the first) how many came back."""
        last = self.attaches[-1] if self.attaches else None
        if last is None or last["sessions_active_at"] is not None:
            return
        if any(s.state == "requested" for s in self.sessions.values()):
            return
        last["sessions_active_at"] = round(time.time(), 3)
        last["sessions_active"] = sum(s.state == "active" for s in self.sessions.values())
        if len(self.attaches) > 1:
            self.counters["sessions_reestablished"] += last["sessions_active"]
        self.status_file.maybe_write(self.status, force=True)  # a drill waits on this

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        sessions = [s.view_dict() for s in self.sessions.values()]
        batch = self.radio.ul_batch
        return {
            "program": "ue", "name": self.name, "supi": self.supi, "ue_id": self.ue_id, "address": self.address,
            "pid": os.getpid(), "gnb": self.gnb[0], "cell": self.cells[self.cell][0],
            "gnbs": [name for name, _ in self.cells], "attaches": self.attaches, "link_losses": self.link_losses,
            "link": "up" if self.link_up else "down", "state": self.state,
            "registered": self.state == "registered", "registration_ms": self.registration_ms,
            "allowed_nssai": list(self.allowed), "reject": self.reject, "rejects": self.rejects[-100:],
            "sessions": sessions,
            "counters": {"ul_packets": sum(s["ul_packets"] for s in sessions),
                         "dl_packets": sum(s["dl_packets"] for s in sessions),
                         "ul_bytes": sum(s["ul_bytes"] for s in sessions),
                         "dl_bytes": sum(s["dl_bytes"] for s in sessions), **self.counters},
            "drops": {**self.drops, **({"rls-send": batch.errors} if batch.errors else {})},
            "uplink_sends": batch.stats(),
        }


def main(argv: list[str] | None = None) -> int:
    return daemon.main("ue", __doc__, Ue, argv)


if __name__ == "__main__":
    raise SystemExit(main())
