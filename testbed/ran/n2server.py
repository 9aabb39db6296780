"""The core's side of N2: listening for gNBs, their connections, NGAP decoding and dispatch.

Kept apart from the AMF's procedures (amf.py) because it is transport work
that does not depend on what the messages mean: SCTP where the kernel has it,
the TCP fallback always (testbed.ran.n2), at most MAX_GNBS connections, and a
broken or unexpected PDU that is logged and counted but never takes the core
down. Each decoded message goes to the handler object's `n2_<procedure>`
method; only NGSetupRequest is accepted before a gNB's NG setup succeeded.
"""
from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from testbed.ran import n2, ngap
from testbed.ran.daemon import ConfigError, Log, Loop, StatusFile

MAX_GNBS = 256


class GnbPeer:
    """One connected gNB: its N2 connection and what its NG setup told us."""

    def __init__(self, conn: n2.Conn) -> None:
        self.conn = conn
        self.name: str | None = None
        self.gnb_id: int | None = None
        self.tac: int | None = None
        self.ready = False
        self.connected = time.time()


class N2Server:
    """The NGAP listeners and gNB connections of one core; procedures are the `handlers` object's."""

    def __init__(self, address: str, port: int, transport_pref: str, handlers: Any,
                 lost: Callable[[GnbPeer], int], log: Log, status: StatusFile, loop: Loop,
                 counters: Counter[str]) -> None:
        self.address = address
        self.port = port
        self.transport_pref = transport_pref
        self.handlers = handlers
        self.lost = lost  # releases the gNB's UEs; how many
        self.log = log
        self.status_file = status
        self.loop = loop
        self.counters = counters
        self.listeners: dict[int, tuple[socket.socket, str]] = {}
        self.peers: dict[int, GnbPeer] = {}
        self.transports: list[str] = []

    def start(self) -> list[str]:
        """Listen on every transport this kernel offers (TCP always); the transports used."""
        transports = [n2.TCP]
        if self.transport_pref != n2.TCP and n2.sctp_available():
            transports.insert(0, n2.SCTP)
        elif self.transport_pref == n2.SCTP:
            raise ConfigError("n2_transport is sctp but this kernel has no SCTP")
        for t in transports:
            s = n2.listen(self.address, self.port, t)
            self.listeners[s.fileno()] = (s, t)
            self.loop.add_reader(s.fileno(), lambda fd=s.fileno(): self.on_accept(fd))
        self.transports = transports
        return transports

    def close(self) -> None:
        for peer in list(self.peers.values()):
            peer.conn.close()
        for s, _t in self.listeners.values():
            s.close()

    def on_accept(self, fd: int) -> None:
        lsock, transport = self.listeners[fd]
        try:
            sock, peer_addr = lsock.accept()
        except BlockingIOError:
            return
        if len(self.peers) >= MAX_GNBS:
            self.log("n2-refused", peer=peer_addr[0], reason=f"more than {MAX_GNBS} gNBs")
            sock.close()
            return
        if transport == n2.TCP:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = n2.Conn(sock, transport, peer_addr)
        self.peers[conn.fileno()] = GnbPeer(conn)
        self.loop.add_reader(conn.fileno(), lambda cfd=conn.fileno(): self.on_n2(cfd))
        self.log("n2-connect", peer=peer_addr[0], transport=transport)

    def on_n2(self, fd: int) -> None:
        peer = self.peers.get(fd)
        if peer is None:
            return
        try:
            pdus = peer.conn.receive()
        except OSError as exc:
            self.peer_lost(fd, str(exc))
            return
        if pdus is None:
            self.peer_lost(fd, "closed by the gNB")
            return
        for pdu in pdus:
            try:
                msg = ngap.decode(pdu)
            except Exception as exc:  # broken APER, or a valid PDU missing what the emulation reads
                self.counters["ngap_undecodable"] += 1
                self.log("ngap-error", gnb=peer.name or peer.conn.peer[0], error=str(exc)[:200])
                continue
            self.status_file.dirty = True
            handler = getattr(self.handlers, "n2_" + msg.procedure, None)
            if handler is None:
                self.log("ngap-ignored", gnb=peer.name, procedure=msg.procedure)
                continue
            if msg.procedure != "NGSetupRequest" and not peer.ready:
                self.log("ngap-before-setup", peer=peer.conn.peer[0], procedure=msg.procedure)
                continue
            try:
                handler(peer, msg)
            except Exception as exc:  # one odd message must not take the core down: log it, go on
                self.counters["handler_errors"] += 1
                self.log("ngap-handler-error", procedure=msg.procedure, error=f"{type(exc).__name__}: {exc}"[:300])
            if fd not in self.peers:  # the handler lost the connection
                return

    def peer_lost(self, fd: int, why: str) -> None:
        peer = self.peers.pop(fd, None)
        if peer is None:
            return
        self.loop.remove_reader(fd)
        peer.conn.close()
        released = self.lost(peer)
        self.log("n2-disconnect", gnb=peer.name or peer.conn.peer[0], reason=why, ues_released=released)
        self.status_file.dirty = True

    def send(self, peer: GnbPeer, pdu: bytes) -> None:
        try:
            peer.conn.send(pdu)
        except OSError as exc:
            self.peer_lost(peer.conn.fileno(), f"send failed: {exc}")

    def view(self) -> dict[str, Any]:
        """The status file's `n2` entry: transports, and the fallback when there is no SCTP."""
        return {"transports": self.transports, "sctp_available": n2.SCTP in self.transports or n2.sctp_available(),
                "port": self.port, "fallback": None if n2.SCTP in self.transports else
                "NGAP over TCP, 4-octet length prefix per PDU (no SCTP in this kernel)"}

    def gnbs(self) -> list[dict[str, Any]]:
        return [{"name": p.name, "gnb_id": p.gnb_id, "tac": p.tac, "address": p.conn.peer[0],
                 "transport": p.conn.transport, "ready": p.ready} for p in self.peers.values()]
