"""The core's SMF side towards its UPFs: the emulated N4 (testbed.ran.n4), one client per planned UPF.

Apart from the AMF's NGAP procedures (amf.py) because its failure mode is
different: a UPF may be down or late. Association is retried every 2 s until
every planned UPF answered; a request that cannot reach its UPF marks it
unreachable and answers {"ok": False}, which the AMF turns into a reject #26
(insufficient resources) rather than an error.
"""
from __future__ import annotations

from typing import Any

from testbed.ran import n4
from testbed.ran.daemon import Log, Loop, StatusFile
from testbed.ran.plan import RanPlan


class Smf:
    """N4 clients of one core and what it knows of each UPF (unknown, associated, unreachable)."""

    def __init__(self, plan: RanPlan, name: str, address: str, n4_port: int, log: Log, status: StatusFile,
                 loop: Loop) -> None:
        self.name = name
        self.log = log
        self.status_file = status
        self.loop = loop
        self.upfs = {u.name: n4.Client(str(u.address), n4_port, source=address) for u in plan.upfs}
        self.upf_state = {u.name: "unknown" for u in plan.upfs}

    def associate(self) -> None:
        """Associate with every UPF not yet associated; again in 2 s while one is missing."""
        pending = [n for n, st in self.upf_state.items() if st != "associated"]
        for name in pending:
            client = self.upfs[name]
            client.timeout = 1.0
            try:
                answer = client.request({"op": "association", "smf": self.name})
                ok = bool(answer.get("ok"))
            except OSError as exc:
                ok, answer = False, {"error": exc.strerror or str(exc)}
            finally:
                client.timeout = 2.0
            state = "associated" if ok else "unreachable"
            if state != self.upf_state[name]:
                self.log("n4-association", upf=name, address=client.address, state=state, error=answer.get("error"))
                self.status_file.dirty = True
            self.upf_state[name] = state
        if any(st != "associated" for st in self.upf_state.values()):
            self.loop.call_later(2.0, self.associate)

    def request(self, upf: str, request: dict[str, Any]) -> dict[str, Any]:
        """One N4 request to a UPF; its answer, or {"ok": False, "error": ...} when it cannot be reached."""
        try:
            answer = self.upfs[upf].request(request)
            self.upf_state[upf] = "associated"
            return answer
        except OSError as exc:
            self.upf_state[upf] = "unreachable"
            self.log("n4-error", upf=upf, op=request.get("op"), error=exc.strerror or str(exc))
            return {"ok": False, "error": f"N4 to {upf}: {exc.strerror or exc}"}

    def close(self) -> None:
        for c in self.upfs.values():
            c.close()

    def view(self) -> dict[str, Any]:
        """The status file's `n4` entry."""
        return {"protocol": "json-lines over TCP (not PFCP)", "upfs": dict(self.upf_state)}
