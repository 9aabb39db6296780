"""An RTP-like media stream over UDP: the video consultation between a tertiary expert and a clinic.

    python -m traffic.media receive --bind IP --port 5004
    python -m traffic.media send --to IP [--port 5004] [--bitrate 2e6] [--fps 30] [--duration 10]

`send` streams frames at a bit rate and frame rate (a key frame every `gop`
frames, three times the size of the others, as a video encoder does), cut
into packets of at most `--payload` bytes sent back to back, each carrying a
stream id, a sequence number and its send time. `receive` timestamps every
packet in the kernel (SO_TIMESTAMPNS) and, per stream, keeps: one-way delay
per packet (receive time minus send time: every node of the testbed shares
the host kernel's CLOCK_REALTIME, so no clock sync is needed), loss,
duplicates, reordering, the RFC 3550 interarrival jitter, and bytes received
per second.

Results travel back on the same port, like RTCP receiver reports: after the
stream the sender asks (QUERY, carrying how many packets it sent) and the
receiver answers with its JSON report cut into numbered chunks; missing
chunks are asked for again. So only the video port needs to be open (the
slice grants it; the answer is a reply). A HELLO / HELLO_ACK exchange first
confirms the path, so the first packets a fresh userspace datapath port drops
are not counted as the network's loss. The receiver prints a one-line summary
when a stream ends (queried, or idle for --idle seconds) and, on SIGUSR1, of
every stream it holds. It keeps at most --max-streams streams and reports.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import socket
import struct
import sys
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from traffic import rxstamp

MAGIC = b"MV"
HEAD = struct.Struct("!2sBIIQ")  # magic, type, stream id, seq / chunk index, send time ns (CLOCK_REALTIME)
HELLO, HELLO_ACK, MEDIA, QUERY, REPORT = 1, 2, 3, 4, 5
QUERY_BODY = struct.Struct("!IIH")  # packets sent, first chunk wanted, how many
CHUNK_HEAD = struct.Struct("!I")  # total chunks
CHUNK = 1100  # report bytes per datagram: well under any MTU, so nothing is fragmented
MAX_SAMPLES = 1_000_000  # per stream: raw delays kept (about 10 min at 2 Mbit/s)
FILL = os.urandom(2048)


def packet(kind: int, stream: int, seq: int, body: bytes = b"", ts_ns: int | None = None) -> bytes:
    return HEAD.pack(MAGIC, kind, stream, seq, time.time_ns() if ts_ns is None else ts_ns) + body


def parse(data: bytes) -> tuple[int, int, int, int, bytes] | None:
    """(type, stream, seq, send ns, body) of one of our datagrams; None for anything else."""
    if len(data) < HEAD.size or data[:2] != MAGIC:
        return None
    _m, kind, stream, seq, ts = HEAD.unpack_from(data)
    return kind, stream, seq, ts, data[HEAD.size:]


# ---------------------------------------------------------------- receiving


@dataclass
class Stream:
    """What the receiver knows of one stream (one sender's stream id)."""

    stream: int
    peer: str
    first_ns: int = 0  # arrival of the first media packet
    last_ns: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    received: int = 0
    duplicates: int = 0
    reordered: int = 0
    highest: int = -1
    seen: bytearray = field(default_factory=bytearray)  # bit per sequence number
    delays_ms: list[float] = field(default_factory=list)
    jitter_ms: float = 0.0  # RFC 3550 A.8 estimator
    prev_transit_ms: float | None = None
    bytes_per_s: list[int] = field(default_factory=list)
    bytes: int = 0
    sent: int | None = None  # told by the sender's query
    report: bytes | None = None  # the final JSON, once the stream is over
    final: dict | None = None  # its summary (the raw samples are dropped once the report is made)

    def add(self, seq: int, send_ns: int, recv_ns: int, size: int) -> None:
        self.last_seen = time.monotonic()
        byte, bit = divmod(seq, 8)
        if byte >= len(self.seen):
            if byte > 64 << 20:  # a sequence number beyond any bounded stream
                return
            self.seen.extend(b"\0" * (byte + 1 - len(self.seen) + 1024))
        if self.seen[byte] >> bit & 1:
            self.duplicates += 1
            return
        self.seen[byte] |= 1 << bit
        if not self.received:
            self.first_ns = recv_ns
        self.received += 1
        if seq < self.highest:
            self.reordered += 1
        self.highest = max(self.highest, seq)
        self.last_ns = max(self.last_ns, recv_ns)
        transit = (recv_ns - send_ns) / 1e6
        if len(self.delays_ms) < MAX_SAMPLES:
            self.delays_ms.append(transit)
        if self.prev_transit_ms is not None:
            self.jitter_ms += (abs(transit - self.prev_transit_ms) - self.jitter_ms) / 16
        self.prev_transit_ms = transit
        sec = (recv_ns - self.first_ns) // 1_000_000_000
        if sec < 24 * 3600:
            if sec >= len(self.bytes_per_s):
                self.bytes_per_s.extend([0] * (sec + 1 - len(self.bytes_per_s)))
            self.bytes_per_s[sec] += size
        self.bytes += size

    def summary(self) -> dict:
        if self.final is not None:
            return self.final
        d = sorted(self.delays_ms)
        expected = self.sent if self.sent is not None else self.highest + 1
        span = (self.last_ns - self.first_ns) / 1e9

        def pct(p: float) -> float | None:
            return round(d[max(1, math.ceil(p / 100 * len(d))) - 1], 3) if d else None

        return {"stream": self.stream, "peer": self.peer, "sent": self.sent, "expected": expected,
                "received": self.received, "lost": max(0, expected - self.received), "duplicates": self.duplicates,
                "reordered": self.reordered, "jitter_ms": round(self.jitter_ms, 3), "bytes": self.bytes,
                "seconds": round(span, 3),
                "delay_ms": {"min": pct(0.0001), "p50": pct(50), "p95": pct(95), "max": pct(100),
                             "mean": round(sum(d) / len(d), 3) if d else None}}

    def finish(self) -> None:
        """Freeze the report: summary plus raw per-packet delays and per-second throughput."""
        if self.report is not None:
            return
        span_s = (self.last_ns - self.first_ns) / 1e9
        full = int(span_s)  # the last second is partial: left out of the throughput series
        self.final = self.summary()
        rep = self.final | {"delays_ms": [round(x, 3) for x in self.delays_ms],
                                "throughput_bps": [b * 8 for b in self.bytes_per_s[:full]], "interval_s": 1.0}
        self.report = json.dumps(rep, separators=(",", ":")).encode()
        self.delays_ms, self.seen = [], bytearray()


class Receiver:
    def __init__(self, sock: socket.socket, max_streams: int, idle_s: float, out=sys.stdout):
        self.sock, self.max_streams, self.idle_s, self.out = sock, max_streams, idle_s, out
        self.streams: OrderedDict[tuple[str, int], Stream] = OrderedDict()

    def log(self, obj: dict) -> None:
        self.out.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self.out.flush()

    def _stream(self, peer: tuple, sid: int) -> Stream:
        key = (peer[0], sid)
        st = self.streams.get(key)
        if st is None:
            st = self.streams[key] = Stream(sid, f"{peer[0]}:{peer[1]}")
            while len(self.streams) > self.max_streams:
                self.streams.popitem(last=False)
        return st

    def handle(self, data: bytes, peer: tuple, recv_ns: int) -> None:
        p = parse(data)
        if p is None:
            return
        kind, sid, seq, send_ns, body = p
        if kind == MEDIA:
            st = self._stream(peer, sid)
            if st.report is None:
                st.add(seq, send_ns, recv_ns, len(data))
        elif kind == HELLO:
            self._stream(peer, sid)
            self.sock.sendto(packet(HELLO_ACK, sid, seq), peer)
        elif kind == QUERY and len(body) >= QUERY_BODY.size:
            sent, first, count = QUERY_BODY.unpack_from(body)
            st = self.streams.get((peer[0], sid))
            if st is None:
                self.sock.sendto(packet(REPORT, sid, 0, CHUNK_HEAD.pack(0) + b'{"error":"unknown stream"}'), peer)
                return
            if st.report is None:
                st.sent = sent
                st.finish()
                self.log({"event": "stream-end", **st.summary()})
            total = max(1, math.ceil(len(st.report) / CHUNK))
            for i in range(first, min(total, first + min(count, 256))):
                self.sock.sendto(packet(REPORT, sid, i, CHUNK_HEAD.pack(total) + st.report[i * CHUNK:(i + 1) * CHUNK]),
                                 peer)

    def expire(self) -> None:
        now = time.monotonic()
        for st in list(self.streams.values()):
            if st.report is None and st.received and now - st.last_seen > self.idle_s:
                st.finish()
                self.log({"event": "stream-idle", **st.summary()})
            elif st.report is not None and now - st.last_seen > 10 * self.idle_s:
                self.streams.pop((st.peer.rsplit(":", 1)[0], st.stream), None)

    def dump(self) -> None:
        for st in self.streams.values():
            self.log({"event": "stream", "finished": st.report is not None, **st.summary()})


def receive(args: argparse.Namespace) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    rxstamp.enable(sock)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    except OSError:
        pass
    sock.bind((args.bind, args.port))
    sock.settimeout(1.0)
    rx = Receiver(sock, args.max_streams, args.idle)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGUSR1, lambda *_: rx.dump())
    rx.log({"event": "listening", "bind": args.bind, "port": args.port})
    last_expire = time.monotonic()
    while not stop:
        try:
            data, anc, _flags, peer = sock.recvmsg(65535, 64)
        except socket.timeout:
            data = None
        except InterruptedError:
            continue
        if data is not None:
            stamp = rxstamp.stamp_ns(anc)
            rx.handle(data, peer, time.time_ns() if stamp is None else stamp)
        if time.monotonic() - last_expire > 1.0:
            rx.expire()
            last_expire = time.monotonic()
    rx.log({"event": "stopped", "streams": len(rx.streams)})
    return 0


# ---------------------------------------------------------------- sending


def frame_sizes(bitrate: float, fps: float, gop: int, n: int) -> list[int]:
    """Bytes of each of n frames: a key frame (3x) every `gop` frames, averaging bitrate/fps/8."""
    nominal = bitrate / fps / 8
    if gop <= 1:
        return [round(nominal)] * n
    small = nominal * gop / (gop + 2)  # gop-1 frames of `small` and one of 3*small average to nominal
    return [round(3 * small if i % gop == 0 else small) for i in range(n)]


def _replies(sock: socket.socket, wait: float) -> Iterator:
    """Each datagram (parsed) that arrives within `wait` seconds; ends early on a refused port."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            p = parse(sock.recv(65535))
        except (socket.timeout, ConnectionRefusedError):
            return
        yield p


def _ask(sock: socket.socket, msg: bytes, want: int, stream: int, tries: int, wait: float) -> bytes | None:
    """Send msg until a datagram of type `want` for `stream` comes back; its body, or None."""
    for _ in range(tries):
        sock.send(msg)
        for p in _replies(sock, wait):
            if p and p[0] == want and p[1] == stream:
                return p[4]
    return None


def fetch_report(sock: socket.socket, stream: int, sent: int, rounds: int = 20) -> dict:
    """The receiver's report for `stream`, reassembled from its chunks (missing ones asked again)."""
    chunks: dict[int, bytes] = {}
    total = None
    for _ in range(rounds):
        missing = [0] if total is None else [i for i in range(total) if i not in chunks]
        if not missing:
            break
        first = missing[0]
        count = min(256, missing[-1] - first + 1)
        sock.send(packet(QUERY, stream, 0, QUERY_BODY.pack(sent, first, count)))
        for p in _replies(sock, 0.5):
            if not p or p[0] != REPORT or p[1] != stream or len(p[4]) < CHUNK_HEAD.size:
                continue
            (tot,) = CHUNK_HEAD.unpack_from(p[4])
            if tot == 0:
                return {"error": p[4][CHUNK_HEAD.size:].decode(errors="replace")}
            total = tot
            chunks[p[2]] = p[4][CHUNK_HEAD.size:]
            if len(chunks) == total:
                break
    if total is None or len(chunks) < total:
        return {"error": f"receiver report incomplete ({len(chunks)}/{total or '?'} chunks)"}
    return json.loads(b"".join(chunks[i] for i in range(total)))


def send(args: argparse.Namespace) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.connect((args.to, args.port))
    stream = random.getrandbits(32) or 1
    if _ask(sock, packet(HELLO, stream, 0), HELLO_ACK, stream, tries=int(args.connect_timeout / 0.5), wait=0.5) is None:
        return {"error": f"no answer from a receiver at {args.to}:{args.port}", "sent": 0}
    n_frames = max(1, int(args.duration * args.fps))
    sizes = frame_sizes(args.bitrate, args.fps, args.gop, n_frames)
    seq = errors = sent_bytes = 0
    t0 = time.monotonic()
    for i, size in enumerate(sizes):
        time.sleep(max(0.0, t0 + i / args.fps - time.monotonic()))
        left = size
        while left > 0:
            body = min(args.payload, left)
            pad = max(0, body - HEAD.size - 4)
            data = packet(MEDIA, stream, seq, struct.pack("!I", i) + FILL[:pad])
            try:
                sock.send(data)
                sent_bytes += len(data)
            except OSError:  # ENOBUFS/ECONNREFUSED: the packet is gone; counted as sent (and lost)
                errors += 1
            seq += 1
            left -= body
    elapsed = time.monotonic() - t0
    time.sleep(0.2)  # let the last packets land before asking
    report = fetch_report(sock, stream, seq)
    return {"stream": stream, "sent": seq, "sent_bytes": sent_bytes, "send_errors": errors,
            "send_seconds": round(elapsed, 3), "bitrate": args.bitrate, "fps": args.fps, "receiver": report}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("receive", help="bind the video port and report on every stream")
    r.add_argument("--bind", default="0.0.0.0")
    r.add_argument("--port", type=int, default=5004)
    r.add_argument("--max-streams", type=int, default=64)
    r.add_argument("--idle", type=float, default=10.0, help="a stream without packets this long has ended")
    s = sub.add_parser("send", help="stream to a receiver, then print its report")
    s.add_argument("--to", required=True)
    s.add_argument("--port", type=int, default=5004)
    s.add_argument("--bitrate", type=float, default=2e6, help="bit/s")
    s.add_argument("--fps", type=float, default=30.0)
    s.add_argument("--gop", type=int, default=30, help="a key frame every this many frames")
    s.add_argument("--payload", type=int, default=1200, help="max bytes per packet")
    s.add_argument("--duration", type=float, default=10.0)
    s.add_argument("--connect-timeout", type=float, default=5.0)
    args = ap.parse_args(argv)
    if args.cmd == "receive":
        return receive(args)
    if not (0 < args.duration <= 3600 and 0 < args.fps <= 240 and 1e3 <= args.bitrate <= 1e9
            and HEAD.size + 4 <= args.payload <= 1472):
        ap.error("duration 0..3600 s, fps 0..240, bitrate 1 kbit/s..1 Gbit/s, payload 24..1472 bytes")
    out = send(args)
    sys.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
    return 0 if "error" not in out and "error" not in out["receiver"] else 1


if __name__ == "__main__":
    sys.exit(main())
