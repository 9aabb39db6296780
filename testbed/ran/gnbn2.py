"""The gNB's side of N2: its connection to the AMF, NG setup, and NGAP decoding and dispatch.

Apart from the gNB's UE procedures (gnb.py) because it has its own life:
connect (SCTP where the kernel has it, else the TCP fallback, testbed.ran.n2;
with `auto`, alternating between them while neither connects, as SCTP may be
filtered on the way), retry with back-off until the AMF answers, and when N2
drops, release every UE and start over. NG setup's answers are handled here;
every other procedure goes to the handler object's `n2_<procedure>` method. A
broken PDU or a failing handler is logged and counted, never fatal.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from testbed.ran import n2, ngap
from testbed.ran.daemon import Log, Loop, StatusFile


class AmfLink:
    """One gNB's N2 connection; `state`: down, connecting, setup-sent, ready or setup-failed."""

    def __init__(self, amf: tuple[str, int], address: str, transport_pref: str, setup_request: Callable[[], bytes],
                 handlers: Any, ue_count: Callable[[], int], release_all: Callable[[], None], log: Log,
                 status: StatusFile, loop: Loop, counters: Counter[str]) -> None:
        self.amf = amf
        self.address = address
        self.transport_pref = transport_pref
        self.setup_request = setup_request
        self.handlers = handlers
        self.ue_count = ue_count
        self.release_all = release_all
        self.log = log
        self.status_file = status
        self.loop = loop
        self.counters = counters
        self.transport = ""
        self.conn: n2.Conn | None = None
        self.state = "down"
        self.retry = 0.5

    def choose_transport(self) -> str:
        self.transport = n2.choose(self.transport_pref)
        return self.transport

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def connect(self) -> None:
        try:
            sock = n2.connect(self.amf[0], self.amf[1], self.transport, source=self.address)
        except OSError as exc:
            self.state = "connecting"
            self.log("n2-connect-failed", amf=f"{self.amf[0]}:{self.amf[1]}", transport=self.transport,
                     error=exc.strerror or str(exc), retry_s=self.retry)
            if self.transport_pref == "auto" and n2.sctp_available():
                # SCTP may be filtered on the way (the AMF listens on both): alternate until one connects
                self.transport = n2.TCP if self.transport == n2.SCTP else n2.SCTP
            self.loop.call_later(self.retry, self.connect)
            self.retry = min(self.retry * 2, 5.0)
            return
        self.conn = n2.Conn(sock, self.transport, self.amf)
        self.loop.add_reader(self.conn.fileno(), self.on_n2)
        self.state = "setup-sent"
        self.send(self.setup_request())
        self.log("ng-setup-request", amf=self.amf[0], transport=self.transport)

    def send(self, pdu: bytes) -> None:
        if self.conn is None:
            return
        try:
            self.conn.send(pdu)
        except OSError as exc:
            self.lost(f"send failed: {exc}")

    def lost(self, why: str) -> None:
        self.log("n2-lost", amf=self.amf[0], reason=why, ues_released=self.ue_count())
        if self.conn is not None:
            self.loop.remove_reader(self.conn.fileno())
            self.conn.close()
            self.conn = None
        self.release_all()
        self.state = "connecting"
        self.retry = 0.5
        self.loop.call_later(self.retry, self.connect)

    def on_n2(self) -> None:
        try:
            pdus = self.conn.receive()
        except OSError as exc:
            self.lost(str(exc))
            return
        if pdus is None:
            self.lost("closed by the AMF")
            return
        for pdu in pdus:
            try:
                msg = ngap.decode(pdu)
            except Exception as exc:  # broken APER, or a valid PDU missing what the emulation reads
                self.counters["ngap_undecodable"] += 1
                self.log("ngap-error", error=str(exc)[:200])
                continue
            self.status_file.dirty = True
            name = "n2_" + msg.procedure
            handler = getattr(self, name, None) or getattr(self.handlers, name, None)
            if handler is None:
                self.log("ngap-ignored", procedure=msg.procedure)
            else:
                try:
                    handler(msg)
                except Exception as exc:  # one odd message must not take the gNB down: log it, go on
                    self.counters["handler_errors"] += 1
                    self.log("ngap-handler-error", procedure=msg.procedure, error=f"{type(exc).__name__}: {exc}"[:300])

    def n2_NGSetupResponse(self, msg: ngap.Ngap) -> None:
        self.state = "ready"
        self.retry = 0.5
        self.log("ng-setup", result="accepted", amf=msg.name, slices=",".join(str(s) for s in msg.slices))

    def n2_NGSetupFailure(self, msg: ngap.Ngap) -> None:
        self.state = "setup-failed"
        self.log("ng-setup", result="failed", cause=msg.cause)
        self.loop.remove_reader(self.conn.fileno())
        self.conn.close()
        self.conn = None
        self.loop.call_later(5.0, self.connect)

    def view(self) -> dict[str, Any]:
        """The status file's `n2` entry."""
        return {"transport": self.transport, "sctp_available": self.transport == n2.SCTP or n2.sctp_available(),
                "amf": f"{self.amf[0]}:{self.amf[1]}", "state": self.state}
