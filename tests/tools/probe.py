"""UDP probe that measures what a link really does: one-way loss, delay, bursts.

Used by the impairment tests and bench, run on each side of a link inside its
namespace (`ip netns exec NS python -m tests.tools.probe recv|send ...`, from
the repository root or with it on PYTHONPATH, as lab.py starts it).
Every datagram carries a sequence number and the sender's CLOCK_MONOTONIC and
CLOCK_REALTIME timestamps; both ends share those clocks on one machine, so the
receiver gets exact one-way delays, twice: as the receiving program sees them
(`delay_*`: its own wake-up latency included) and at the moment the kernel took
the datagram in (`kernel_delay_*`, SO_TIMESTAMPNS against the realtime stamp:
what the link itself did). Both sides stop by themselves (count and time bounds).
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import struct
import sys
import time
from typing import Any

from traffic import rxstamp

HEADER = struct.Struct("!QQQ")  # sequence number, send time (ns) on CLOCK_MONOTONIC and on CLOCK_REALTIME


def percentiles(delays_ms: list[float], prefix: str = "delay") -> dict[str, float]:
    d = sorted(delays_ms)

    def pct(q: float) -> float:
        return d[min(len(d) - 1, int(q * len(d)))]

    return {f"{prefix}_min_ms": d[0], f"{prefix}_median_ms": statistics.median(d), f"{prefix}_p25_ms": pct(0.25),
            f"{prefix}_p75_ms": pct(0.75), f"{prefix}_p99_ms": pct(0.99), f"{prefix}_max_ms": d[-1],
            f"{prefix}_mean_ms": statistics.fmean(d), f"{prefix}_stdev_ms": statistics.pstdev(d) if len(d) > 1 else 0.0}


def summarize(seqs: list[int], delays_ms: list[float], sent: int,
              kernel_delays_ms: list[float] | None = None) -> dict[str, Any]:
    """Loss, duplicates, reordering, loss-burst lengths and delay percentiles."""
    unique = set(seqs)
    reordered = 0
    highest = -1
    for s in seqs:
        if s < highest:
            reordered += 1
        highest = max(highest, s)
    bursts: list[int] = []
    run = 0
    for s in range(sent):
        if s in unique:
            if run:
                bursts.append(run)
            run = 0
        else:
            run += 1
    if run:
        bursts.append(run)
    out: dict[str, Any] = {
        "sent": sent, "received": len(seqs), "unique": len(unique),
        "duplicates": len(seqs) - len(unique), "reordered": reordered,
        "loss_pct": 100.0 * (sent - len(unique & set(range(sent)))) / sent if sent else 0.0,
        "loss_bursts": len(bursts),
        "mean_burst": statistics.fmean(bursts) if bursts else 0.0,
    }
    if delays_ms:
        out.update(percentiles(delays_ms))
    if kernel_delays_ms:
        out.update(percentiles(kernel_delays_ms, "kernel_delay"))
    return out


def receive(bind: str, port: int, sent: int, idle_s: float, deadline_s: float) -> dict[str, Any]:
    """Collect datagrams until `sent` unique ones arrived, the link went quiet, or the deadline."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        rxstamp.enable(s)
        s.bind((bind, port))
        print("ready", flush=True)
        seqs: list[int] = []
        delays: list[float] = []
        kernel: list[float] = []
        unique: set[int] = set()
        end = time.monotonic() + deadline_s
        s.settimeout(deadline_s)
        while len(unique) < sent:
            now = time.monotonic()
            if now >= end:
                break
            s.settimeout(min(end - now, idle_s) if seqs else end - now)
            try:
                data, anc, _flags, _addr = s.recvmsg(65535, rxstamp.ANC_SPACE)
            except socket.timeout:
                break
            seq, t_ns, t_real = HEADER.unpack_from(data)
            seqs.append(seq)
            unique.add(seq)
            delays.append((time.monotonic_ns() - t_ns) / 1e6)
            stamp = rxstamp.stamp_ns(anc)
            if stamp is not None:
                kernel.append((stamp - t_real) / 1e6)
    return summarize(seqs, delays, sent, kernel)


def send(to: str, port: int, count: int, pps: float, size: int) -> dict[str, Any]:
    """Send `count` datagrams paced at `pps` (catching up after oversleeping)."""
    pad = b"\0" * max(0, size - HEADER.size)
    interval = 1.0 / pps
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        start = time.monotonic()
        for seq in range(count):
            ahead = start + seq * interval - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            s.sendto(HEADER.pack(seq, time.monotonic_ns(), time.time_ns()) + pad, (to, port))
        elapsed = time.monotonic() - start
    return {"sent": count, "seconds": elapsed}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.tools.probe")
    sub = ap.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("recv")
    r.add_argument("--bind", required=True)
    r.add_argument("--port", type=int, default=47000)
    r.add_argument("--count", type=int, required=True, help="datagrams the sender will send")
    r.add_argument("--idle", type=float, default=1.0, help="stop after this long without data")
    r.add_argument("--deadline", type=float, default=30.0)
    s = sub.add_parser("send")
    s.add_argument("--to", required=True)
    s.add_argument("--port", type=int, default=47000)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--pps", type=float, default=1000.0)
    s.add_argument("--size", type=int, default=64)
    a = ap.parse_args(argv)
    if a.mode == "recv":
        result = receive(a.bind, a.port, a.count, a.idle, a.deadline)
    else:
        result = send(a.to, a.port, a.count, a.pps, a.size)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
