"""The core's SMF side towards its UPFs: the emulated N4 (testbed.ran.n4), one client per planned UPF.

Apart from the AMF's NGAP procedures (amf.py) because its failure mode is
different: a UPF may be down or late. Association is retried every 2 s until
every planned UPF answered; a request that cannot reach its UPF marks it
unreachable and answers {"ok": False}, which the AMF turns into a reject #26
(insufficient resources) rather than an error.

Whether a UPF is alive is watched with real PFCP heartbeats (testbed.ran.pfcp,
UDP 8805, non-blocking): a UPF that leaves three in a row unanswered is "lost"
(requests to it are refused at once instead of waiting out a TCP timeout) and
`on_upf_change(name, alive)` tells the AMF, which moves sessions to their
fallback UPF; when it answers again it is "associated" and the AMF is told too.
An N4 request left unanswered (N4_TIMEOUT_S) only holds further requests to
that UPF until its next heartbeat answer: the AMF rejects them with a back-off
timer, and the UE asks again.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from testbed.ran import n4, pfcp
from testbed.ran.daemon import Log, Loop, StatusFile
from testbed.ran.plan import RanPlan

N4_TIMEOUT_S = 1.0  # a UPF answers N4 in milliseconds; the core's loop waits no longer than this for one


class Smf:
    """N4 clients of one core and what it knows of each UPF (unknown, associated, unreachable)."""

    def __init__(self, plan: RanPlan, name: str, address: str, n4_port: int, log: Log, status: StatusFile,
                 loop: Loop, pfcp_port: int = pfcp.PORT) -> None:
        self.name = name
        self.log = log
        self.status_file = status
        self.loop = loop
        self.upfs = {u.name: n4.Client(str(u.address), n4_port, source=address, timeout=N4_TIMEOUT_S)
                     for u in plan.upfs}
        self.upf_state = {u.name: "unknown" for u in plan.upfs}
        self.on_upf_change: Callable[[str, bool], None] | None = None
        # an N4 request that failed (monotonic time, error): requests to that UPF are refused at once until its
        # next PFCP heartbeat answer, so a dead UPF costs one N4 timeout, not one per request; whether it is lost
        # (sessions move) is the heartbeats' call alone, since a switch that stalls for a second is no dead UPF
        self.n4_failed: dict[str, tuple[float, str]] = {}
        self.heartbeats = pfcp.Supervisor(address, {u.name: str(u.address) for u in plan.upfs}, self._heard, log,
                                          port=pfcp_port)

    def start(self) -> None:
        """Associate with every UPF and start the heartbeats."""
        self.loop.add_reader(self.heartbeats.open().fileno(), self.heartbeats.on_read)
        self.loop.every(self.heartbeats.interval, self.heartbeats.tick)
        self.loop.call_later(0.0, self.associate)

    def lost(self, upf: str) -> bool:
        return self.upf_state.get(upf) == "lost"

    def _heard(self, upf: str, alive: bool) -> None:
        self.upf_state[upf] = "associated" if alive else "lost"
        self.status_file.dirty = True
        if self.on_upf_change is not None:
            self.on_upf_change(upf, alive)

    def associate(self) -> None:
        """Associate with every UPF not yet associated; again in 2 s while one is missing."""
        pending = [n for n, st in self.upf_state.items() if st in ("unknown", "unreachable")]  # lost: heartbeats
        for name in pending:
            client = self.upfs[name]
            client.timeout = 1.0
            try:
                answer = client.request({"op": "association", "smf": self.name})
                ok = bool(answer.get("ok"))
            except OSError as exc:
                ok, answer = False, {"error": exc.strerror or str(exc)}
            finally:
                client.timeout = N4_TIMEOUT_S
            state = "associated" if ok else "unreachable"
            if state != self.upf_state[name]:
                self.log("n4-association", upf=name, address=client.address, state=state, error=answer.get("error"))
                self.status_file.dirty = True
            self.upf_state[name] = state
        if any(st in ("unknown", "unreachable") for st in self.upf_state.values()):
            self.loop.call_later(2.0, self.associate)

    def available(self, upf: str) -> bool:
        """Whether requests to this UPF are worth sending: not lost, and no N4 failure since its last heartbeat
        answer."""
        return self._unavailable(upf) is None

    def _unavailable(self, upf: str) -> str | None:
        """Why requests to this UPF are refused at once, or None."""
        if self.lost(upf):
            return "lost (its PFCP heartbeats go unanswered)"
        failed = self.n4_failed.get(upf)
        if failed is not None and self.heartbeats.last_seen.get(upf, 0.0) <= failed[0]:
            return f"{failed[1]}; no PFCP heartbeat answer since"
        return None

    def request(self, upf: str, request: dict[str, Any]) -> dict[str, Any]:
        """One N4 request to a UPF; its answer, or {"ok": False, "error": ...} when it cannot be reached."""
        why = self._unavailable(upf)
        if why is not None:
            return {"ok": False, "error": f"N4 to {upf}: {why}"}
        self.n4_failed.pop(upf, None)  # heard from since: try again
        try:
            answer = self.upfs[upf].request(request)
            if not self.lost(upf):
                self.upf_state[upf] = "associated"
            return answer
        except OSError as exc:
            error = exc.strerror or str(exc)
            self.upf_state[upf] = "unreachable"
            self.n4_failed[upf] = (time.monotonic(), error)
            self.log("n4-error", upf=upf, op=request.get("op"), error=error)
            return {"ok": False, "error": f"N4 to {upf}: {error}"}

    def close(self) -> None:
        for c in self.upfs.values():
            c.close()
        self.heartbeats.close()

    def view(self) -> dict[str, Any]:
        """The status file's `n4` entry."""
        return {"protocol": "json-lines over TCP (not PFCP)", "upfs": dict(self.upf_state),
                "heartbeats": self.heartbeats.view()}
