"""The UPF's control side: its session table and the emulated N4 it is programmed over.

Apart from the packet loops (upf.py) because it changes what they read, never
touches packets: sessions are kept by SEID, by UL TEID (uplink lookup) and by
UE address (downlink lookup), and N4 (testbed.ran.n4: JSON lines over TCP
8805, *not* PFCP) is accepted only from the SMF addresses in the config, at
most 16 connections. A re-used UE address replaces the stale session holding
it; a re-used UL TEID is refused.
"""
from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any

from testbed.ran import gtpu, n4
from testbed.ran.daemon import DscpPeer, Log, Loop

MAX_N4_CONNS = 16


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
        self.sock: DscpPeer | None = None
        self.ul_packets = self.ul_bytes = self.dl_packets = self.dl_bytes = 0
        self.created = time.time()

    def view(self) -> dict[str, Any]:
        return {"seid": self.seid, "ue": self.ue, "supi": self.supi, "slice": self.slice, "address": self.address,
                "ul_teid": self.ul_teid, "dl_teid": self.dl_teid, "gnb": self.gnb, "qfi": self.qfi, "dscp": self.dscp,
                "ul_packets": self.ul_packets, "ul_bytes": self.ul_bytes, "dl_packets": self.dl_packets,
                "dl_bytes": self.dl_bytes}


class SessionTable:
    """The sessions of one UPF and the N4 operations on them; `known_gnbs` grows with each downlink tunnel."""

    def __init__(self, max_sessions: int, known_gnbs: set[str], socket_for: Callable[[int, str], DscpPeer],
                 counters: Counter[str], log: Log) -> None:
        self.max_sessions = max_sessions
        self.known_gnbs = known_gnbs
        self.socket_for = socket_for
        self.counters = counters
        self.log = log
        self.by_teid: dict[int, UpfSession] = {}
        self.by_addr: dict[bytes, UpfSession] = {}
        self.by_seid: dict[int, UpfSession] = {}

    def establish(self, req: dict[str, Any]) -> dict[str, Any]:
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

    def modify(self, req: dict[str, Any]) -> dict[str, Any]:
        s = self.by_seid.get(int(req["seid"]))
        if s is None:
            return {"ok": False, "error": f"no session {req['seid']}"}
        self._set_dl(s, str(IPv4Address(req["gnb"])), int(req["dl_teid"]))
        self.log("session", op="modify", seid=s.seid, ue=s.ue, gnb=s.gnb, dl_teid=f"{s.dl_teid:#010x}")
        return {"ok": True}

    def delete(self, req: dict[str, Any]) -> dict[str, Any]:
        s = self.by_seid.get(int(req["seid"]))
        if s is None:
            return {"ok": False, "error": f"no session {req['seid']}"}
        self._remove(s)
        self.counters["sessions_deleted"] += 1
        self.log("session", op="delete", seid=s.seid, ue=s.ue, address=s.address)
        return {"ok": True}

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


class N4Server:
    """N4 connections from the configured SMFs: each request line gets `handle`'s answer, in order."""

    def __init__(self, address: str, port: int, smfs: set[str], handle: Callable[[dict[str, Any]], dict[str, Any]],
                 counters: Counter[str], log: Log, loop: Loop) -> None:
        self.address = address
        self.port = port
        self.smfs = smfs
        self.handle = handle
        self.counters = counters
        self.log = log
        self.loop = loop
        self.conns: dict[int, tuple[socket.socket, n4.LineReader, str]] = {}
        self.listener: socket.socket | None = None

    def listen(self) -> socket.socket:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((self.address, self.port))
        self.listener.listen(16)
        self.listener.setblocking(False)
        return self.listener

    def close_conns(self) -> None:
        for fd, (s, _r, _p) in list(self.conns.items()):
            s.close()
        self.conns.clear()

    def on_accept(self) -> None:
        try:
            conn, (peer, _port) = self.listener.accept()
        except BlockingIOError:
            return
        if peer not in self.smfs or len(self.conns) >= MAX_N4_CONNS:
            self.log("n4-refused", peer=peer, reason="not a configured SMF" if peer not in self.smfs else "too many")
            self.counters["n4_refused"] += 1
            conn.close()
            return
        conn.setblocking(False)
        fd = conn.fileno()
        self.conns[fd] = (conn, n4.LineReader(), peer)
        self.loop.add_reader(fd, lambda: self.on_n4(fd))
        self.log("n4-association", peer=peer)

    def on_n4(self, fd: int) -> None:
        conn, reader, peer = self.conns[fd]
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
            del self.conns[fd]
            self.log("n4-closed", peer=peer)
            return
        for req in requests:
            try:
                answer = self.handle(req)
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

    def view(self) -> dict[str, Any]:
        """The status file's `n4` entry."""
        return {"transport": "tcp", "port": self.port, "protocol": "json-lines (not PFCP)",
                "peers": sorted({p for _s, _r, p in self.conns.values()})}
