"""The emulated N4 between the SMF (in the core process) and each UPF: JSON lines over TCP 8805.

This is NOT PFCP (TS 29.244): it uses PFCP's port, and its operations mirror
PFCP's, but each request and answer is one line of JSON, which is all the
emulation needs to program a UPF's session table:

    {"op": "association", "smf": NAME}                      -> {"ok": true, "upf": NAME, "sessions": N}
    {"op": "establish", "seid": N, "ue": NAME, "supi": S, "slice": S, "address": A,
     "ul_teid": N, "qfi": N, "dscp": N[, "gnb": A, "dl_teid": N]}   -> {"ok": true}
    {"op": "modify", "seid": N, "gnb": A, "dl_teid": N}      -> {"ok": true}   (the DL tunnel, from the gNB)
    {"op": "delete", "seid": N}                              -> {"ok": true}
    {"op": "report"}                                         -> {"ok": true, "sessions": [...], "drops": {...}}

An error answers {"ok": false, "error": TEXT}. The UPF takes N4 only from the
core addresses in its config, as a UPF accepts PFCP only from its SMFs.
"""
from __future__ import annotations

import json
import socket
from typing import Any

PORT = 8805
MAX_LINE = 1 << 16


class N4Error(OSError):
    pass


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class LineReader:
    """Splits a byte stream into JSON objects, one per line; refuses lines longer than MAX_LINE."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buf += data
        out = []
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                if len(self._buf) > MAX_LINE:
                    raise N4Error(f"N4 line longer than {MAX_LINE} octets")
                return out
            line = bytes(self._buf[:i])
            del self._buf[:i + 1]
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise N4Error(f"N4 line is not JSON: {exc}") from exc
            if not isinstance(obj, dict):
                raise N4Error("N4 line is not a JSON object")
            out.append(obj)


class Client:
    """The SMF's side: one connection per UPF, blocking request/answer with a timeout, reconnecting once
    when the connection broke (not when the UPF is silent: the core's loop must not wait twice)."""

    def __init__(self, address: str, port: int = PORT, source: str | None = None, timeout: float = 2.0) -> None:
        self.address = address
        self.port = port
        self.source = source
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self._reader = LineReader()

    def _connect(self) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.source:
                s.bind((self.source, 0))
            s.settimeout(self.timeout)
            s.connect((self.address, self.port))
        except OSError:
            s.close()
            raise
        self._reader = LineReader()
        return s

    def request(self, obj: dict[str, Any]) -> dict[str, Any]:
        for attempt in (1, 2):
            try:
                if self.sock is None:
                    self.sock = self._connect()
                self.sock.sendall(encode(obj))
                while True:
                    data = self.sock.recv(MAX_LINE)
                    if not data:
                        raise N4Error(f"UPF {self.address} closed N4")
                    answers = self._reader.feed(data)
                    if answers:
                        return answers[0]
            except OSError as exc:
                self.close()
                if attempt == 2 or isinstance(exc, TimeoutError):  # a UPF that does not answer: once is enough
                    raise
        raise N4Error("unreachable")

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
