"""The UE's PDU sessions: requested with back-off, each accept a uesimtunN TUN, each reject kept.

Apart from registration and the radio link (ue.py) because a session has its
own life: its request is retransmitted as T3580 of TS 24.501 would (doubling,
capped, at most `attempts` times) so a busy core is not flooded; an accept
opens the TUN named in the config with the session address and the routes its
slice grants; a reject is logged with its 5GSM cause and kept (the last 100).
Stdlib only, like the rest of the UE.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from testbed.ran import rls, tun, uenas
from testbed.ran.daemon import ConfigError, Log, Loop, StatusFile
from testbed.ran.ueradio import UeRadio

MAX_BACKOFFS = 30  # asks again after at most this many back-off rejects in a row (a minute at the core's 2 s)


class UeSession:
    __slots__ = ("psi", "slice", "snssai", "dnn", "request", "tun", "routes", "state", "cause", "cause_name",
                 "address", "fd", "rls_header", "sent_at", "setup_ms", "attempts", "backoffs", "timer", "qfi",
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
        self.backoffs = 0  # requests again after a reject's back-off timer
        self.ul_packets = self.ul_bytes = self.dl_packets = self.dl_bytes = 0

    def view_dict(self) -> dict[str, Any]:
        return {"psi": self.psi, "slice": self.slice, "snssai": self.snssai, "dnn": self.dnn, "state": self.state,
                "address": self.address, "tun": self.tun if self.state == "active" else None, "qfi": self.qfi,
                "cause": self.cause, "cause_name": self.cause_name, "setup_ms": self.setup_ms,
                "routes": self.routes, "ul_packets": self.ul_packets, "ul_bytes": self.ul_bytes,
                "dl_packets": self.dl_packets, "dl_bytes": self.dl_bytes}


class PduSessions:
    """The sessions of one UE (by PSI), requested only while `registered()` says so."""

    def __init__(self, by_psi: dict[int, UeSession], ue_id: int, mtu: int, retry: float, max_retry: float,
                 attempts: int, radio: UeRadio, registered: Callable[[], bool], counters: Counter[str],
                 rejects: list[dict[str, Any]], log: Log, status: StatusFile, loop: Loop) -> None:
        self.by_psi = by_psi
        self.ue_id = ue_id
        self.mtu = mtu
        self.retry = retry
        self.max_retry = max_retry
        self.attempts = attempts
        self.radio = radio
        self.registered = registered
        self.counters = counters
        self.rejects = rejects
        self.log = log
        self.status_file = status
        self.loop = loop

    def request(self, s: UeSession) -> None:
        if not self.registered():
            return
        s.state = "requested"
        s.attempts += 1
        if s.attempts == 1 and not s.backoffs:  # set-up time counts from the first request, back-offs included
            s.sent_at = time.monotonic()
        self.radio.send(rls.NAS, s.request)
        self.counters["nas_up"] += 1
        self.loop.cancel(s.timer)
        s.timer = self.loop.call_later(min(self.retry * 2 ** (s.attempts - 1), self.max_retry),
                                       lambda: self._timeout(s))

    def _timeout(self, s: UeSession) -> None:
        if s.state != "requested" or not self.registered():
            return
        if s.attempts >= self.attempts:
            s.state = "timeout"
            self.status_file.dirty = True
            self.log("session-timeout", psi=s.psi, slice=s.slice, attempts=s.attempts)
            return
        self.request(s)

    def accept(self, msg: uenas.SessionAccept) -> None:
        s = self.by_psi.get(msg.psi)
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
        radio = self.radio
        self.loop.add_reader(fd, lambda: radio.on_tun(s))
        s.state, s.backoffs = "active", 0
        s.setup_ms = round((time.monotonic() - s.sent_at) * 1000, 2)
        self.log("session", psi=s.psi, slice=s.slice, dnn=msg.dnn or s.dnn, address=s.address, tun=name,
                 qfi=msg.qfi, routes=len(s.routes), ms=s.setup_ms)

    def reject(self, msg: uenas.SessionReject) -> None:
        s = self.by_psi.get(msg.psi)
        if s is None or s.state != "requested":
            return
        self.loop.cancel(s.timer)
        s.state, s.cause, s.cause_name = "rejected", msg.cause, uenas.SM_CAUSES.get(msg.cause)
        self.rejects.append({"time": round(time.time(), 3), "kind": "session", "psi": s.psi, "slice": s.slice,
                             "cause": msg.cause, "cause_name": s.cause_name})
        del self.rejects[:-100]
        retry = msg.backoff_s is not None and s.backoffs < MAX_BACKOFFS
        self.log("reject", kind="session", psi=s.psi, slice=s.slice, snssai=s.snssai, dnn=s.dnn,
                 cause=msg.cause, cause_name=s.cause_name, backoff_s=msg.backoff_s if retry else None)
        if retry:  # T3396: the core asks for patience, not for giving up
            s.backoffs += 1
            s.attempts = 0
            s.timer = self.loop.call_later(msg.backoff_s, lambda: self._after_backoff(s))

    def _after_backoff(self, s: UeSession) -> None:
        if s.state == "rejected":
            self.request(s)

    def _free_tun(self) -> str:
        taken = {s.tun for s in self.by_psi.values() if s.tun}
        return next(f"uesimtun{i}" for i in range(64) if f"uesimtun{i}" not in taken)

    def close(self, s: UeSession) -> None:
        self.loop.cancel(s.timer)
        if s.fd is not None:
            self.loop.remove_reader(s.fd)
            os.close(s.fd)  # the TUN and its routes vanish with the descriptor
            s.fd = None
