"""Capture at a node: record every frame that reaches its interface.

    python -m traffic.sink --iface IF [--iface TUN ...] [--listen 443 ...] [--max-seconds 300]

A raw AF_PACKET socket (promiscuous, so frames addressed to another MAC are
seen too) on the node's only interface, and on a 5G UE on its PDU sessions'
TUNs too (a TUN's packets have no link layer: they are summarised behind an
empty Ethernet header; a TUN that does not exist is reported, not fatal). Frames the node sends itself are
ignored. Each distinct frame summary (traffic.packets.parse, minus the fields
that change per packet) is written as a JSON line the first time it is seen,
so the prober can decide while the capture still runs; when stdin closes (or
the time is up) the sink writes one `summary` line with a count, byte total
and first/last time per summary, then exits. Memory is bounded: at most
`--max-keys` distinct summaries are kept.

A line `sync N` on stdin is answered `{"event": "synced", "n": N}` once every
capture queue has been found empty after it: everything that reached the node
before the question has been written by then, so a prober that waits for the
answer decides on complete captures however far behind a loaded host left it.
The sink runs at a lower CPU priority (nice +10): an instrument yields to the
node's own programs and to the network it measures.

Optionally it also runs TCP listeners (traffic.listener) on the node's service
ports, so one process per node does both.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import select
import socket
import struct
import sys
import threading
import time

from traffic.instrument import yield_cpu
from traffic.listener import Listeners
from traffic.packets import parse

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET, PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC = 263, 1, 1
SO_RCVBUFFORCE = 33  # Linux; not exported by Python's socket module
VOLATILE = ("sport",)
ARPHRD_NONE = 0xFFFE  # a TUN's link type
NO_LINK_HEADER = bytes(12) + b"\x08\x00"  # an empty Ethernet header in front of a TUN's IPv4 packet  # per-packet fields left out of the summary key


# Classic BPF: drop what the node sends itself (packet type PACKET_OUTGOING) before it is queued: about half
# of what a gNB's or a UPF's interface carries, which the sink used to wake for, copy and skip
SO_ATTACH_FILTER = 26
SKF_AD_PKTTYPE = 0xFFFFF000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE
_NOT_OUTGOING = b"".join(struct.pack("HBBI", *insn) for insn in (
    (0x20, 0, 0, SKF_AD_PKTTYPE),  # ld  pkttype
    (0x15, 0, 1, PACKET_OUTGOING),  # jeq #OUTGOING ? next : skip one
    (0x06, 0, 0, 0),  # ret #0: drop
    (0x06, 0, 0, 0xFFFFFFFF),  # ret #-1: the whole frame
))
_FILTER = ctypes.create_string_buffer(_NOT_OUTGOING)  # the kernel copies it; kept for the process's life


def ignore_outgoing(s: socket.socket) -> None:
    """Attach the not-outgoing filter (best effort: the loop skips outgoing frames too)."""
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                     struct.pack("HL", len(_NOT_OUTGOING) // 8, ctypes.addressof(_FILTER)))
    except OSError:
        pass


def open_capture(iface: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    ignore_outgoing(s)  # before bind: nothing unfiltered is queued in between
    s.bind((iface, 0))
    ifindex = socket.if_nametoindex(iface)
    # Membership is tied to this socket: the kernel drops promiscuity when it closes.
    s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b""))
    try:  # past net.core.rmem_max (we run as root): bursts of probes must not overflow the queue
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    return s


REFRESH_S = 0.5  # how often the extra interfaces (a UE's TUNs) are looked up again
SYNC_POLL_S = 0.05  # how long the queues must stay empty before a sync is answered


class Extra:
    """Captures on the extra interfaces (a UE's session TUNs), by name: one that is missing now is
    opened when it appears, and one deleted and created again (a UE re-attaching recreates its
    TUNs) is opened again, since a capture bound to the old one sees nothing of the new."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.socks: dict[str, socket.socket] = {}
        self.index: dict[str, int] = {}

    def refresh(self) -> dict[str, str]:
        """(Re)open what appeared or changed; returns the names still missing, with why."""
        missing = {}
        for name in self.names:
            try:
                idx = socket.if_nametoindex(name)
                if self.index.get(name) == idx:
                    continue
                cap = open_capture(name)
            except OSError as exc:
                missing[name] = str(exc)
                continue
            cap.setblocking(False)
            old = self.socks.pop(name, None)
            if old is not None:
                old.close()
            self.socks[name], self.index[name] = cap, idx
        return missing


def _drain(cap: socket.socket, batch: int = 512):
    """Up to `batch` (frame, address) pairs waiting on a capture socket."""
    for _ in range(batch):
        try:
            yield cap.recvfrom(65535)
        except BlockingIOError:
            return
        except OSError:  # interface down (a link-down fault): keep waiting
            return


def summary_key(summ: dict) -> tuple:
    """What makes two frames the same for the prober: the summary without its per-packet fields (a tuple:
    a third of the cost of the JSON text it replaced, on every frame)."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in summ.items() if k not in VOLATILE))


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iface", required=True, action="append")
    ap.add_argument("--listen", type=int, action="append", default=[], help="TCP port to accept on")
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument("--max-keys", type=int, default=50000)
    a = ap.parse_args(argv)

    yield_cpu()
    first = open_capture(a.iface[0])
    first.setblocking(False)
    extra = Extra(a.iface[1:])
    missing = extra.refresh()
    ls = Listeners(a.listen).start() if a.listen else None
    stdin_open = threading.Event()
    stdin_open.set()

    asked = [0]  # the highest `sync N` read so far (written by the stdin thread only)

    def watch_stdin() -> None:
        for line in sys.stdin:
            word, _, n = line.partition(" ")
            if word == "sync" and n.strip().isdigit():
                asked[0] = max(asked[0], int(n))
        stdin_open.clear()

    threading.Thread(target=watch_stdin, daemon=True).start()
    emit({"event": "ready", "iface": a.iface[0], "ifaces": a.iface, "missing": missing,
          "listen_errors": ls.errors if ls else {}})
    stats: dict[str, list] = {}  # key -> [summary, count, bytes, first, last]
    dropped = 0
    end = time.monotonic() + a.max_seconds
    next_refresh = time.monotonic() + REFRESH_S
    answered = 0
    while stdin_open.is_set() and time.monotonic() < end:
        if time.monotonic() >= next_refresh:
            extra.refresh()
            next_refresh = time.monotonic() + REFRESH_S
        want = asked[0]
        ready, _, _ = select.select([first, *extra.socks.values()], [], [], SYNC_POLL_S if want > answered else 0.2)
        if want > answered and not ready:  # every queue empty after the question: all before it is written
            emit({"event": "synced", "n": want})
            answered = want
        for frame, addr in (x for cap in ready for x in _drain(cap)):
            if addr[2] == PACKET_OUTGOING:
                continue
            if addr[3] == ARPHRD_NONE:  # a TUN: a bare IP packet
                frame = NO_LINK_HEADER + frame
            now = time.time()
            summ = parse(frame)
            key = summary_key(summ)
            st = stats.get(key)
            if st is None:
                if len(stats) >= a.max_keys:
                    dropped += 1
                    continue
                stats[key] = [summ, 1, len(frame), now, now]
                emit({"event": "frame", "t": now, **summ})
            else:
                st[1] += 1
                st[2] += len(frame)
                st[4] = now
    if ls:
        ls.stop()
    emit({"event": "summary", "dropped_keys": dropped, "accepted": ls.accepted if ls else {},
          "frames": [{**s, "count": c, "bytes": b, "first": f, "last": la} for s, c, b, f, la in stats.values()]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
