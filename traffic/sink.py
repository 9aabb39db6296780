"""Capture at a node: record every frame that reaches its interface.

    python -m traffic.sink --iface IF [--listen 443 ...] [--max-seconds 300]

A raw AF_PACKET socket (promiscuous, so frames addressed to another MAC are
seen too) on the node's only interface. Frames the node sends itself are
ignored. Each distinct frame summary (traffic.packets.parse, minus the fields
that change per packet) is written as a JSON line the first time it is seen,
so the prober can decide while the capture still runs; when stdin closes (or
the time is up) the sink writes one `summary` line with a count, byte total
and first/last time per summary, then exits. Memory is bounded: at most
`--max-keys` distinct summaries are kept.

Optionally it also runs TCP listeners (traffic.listener) on the node's service
ports, so one process per node does both.
"""
from __future__ import annotations

import argparse
import json
import select
import socket
import struct
import sys
import threading
import time

from traffic.listener import Listeners
from traffic.packets import parse

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET, PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC = 263, 1, 1
SO_RCVBUFFORCE = 33  # Linux; not exported by Python's socket module
VOLATILE = ("sport",)  # per-packet fields left out of the summary key


def open_capture(iface: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    ifindex = socket.if_nametoindex(iface)
    # Membership is tied to this socket: the kernel drops promiscuity when it closes.
    s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b""))
    try:  # past net.core.rmem_max (we run as root): bursts of probes must not overflow the queue
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    return s


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iface", required=True)
    ap.add_argument("--listen", type=int, action="append", default=[], help="TCP port to accept on")
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument("--max-keys", type=int, default=50000)
    a = ap.parse_args(argv)

    cap = open_capture(a.iface)
    cap.setblocking(False)
    ls = Listeners(a.listen).start() if a.listen else None
    stdin_open = threading.Event()
    stdin_open.set()

    def watch_stdin() -> None:
        sys.stdin.read()
        stdin_open.clear()

    threading.Thread(target=watch_stdin, daemon=True).start()
    emit({"event": "ready", "iface": a.iface, "listen_errors": ls.errors if ls else {}})
    stats: dict[str, list] = {}  # key -> [summary, count, bytes, first, last]
    dropped = 0
    end = time.monotonic() + a.max_seconds
    while stdin_open.is_set() and time.monotonic() < end:
        r, _, _ = select.select([cap], [], [], 0.2)
        if not r:
            continue
        for _ in range(512):  # drain in batches
            try:
                frame, addr = cap.recvfrom(65535)
            except BlockingIOError:
                break
            except OSError:  # interface down (a link-down fault): keep waiting
                break
            if addr[2] == PACKET_OUTGOING:
                continue
            now = time.time()
            summ = parse(frame)
            key = json.dumps({k: v for k, v in summ.items() if k not in VOLATILE}, sort_keys=True)
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
