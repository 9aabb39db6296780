"""Cloud-desktop sessions from a terminal: input events up, screen updates down, over verified TLS.

    python -m traffic.vdi_client --host vdi-01 --addr 10.0.0.5 --ca pki/ca.crt \
        [--mode office|video] [--sessions 1] [--input-interval 0.075] [--duration 10] [--interval 1]

Each session opens TLS to the desktop host, checks its certificate against
the run's CA with the host's name (as the paper's SSL tunnel would), says
hello with the desktop mode, then for `--duration` seconds sends an input
event (a keystroke or a mouse move, tens of bytes) every input interval,
jittered to 2/3..4/3 of it (50-100 ms for the default 75 ms), and reads every
screen update. Printed at the end, one JSON document:
  latency_ms      input -> the update answering it (its id echoed), every input
  throughput_bps  downstream application bytes per interval, all sessions summed
  peak_bps        the busiest 100 ms, as a rate
  sent / received inputs sent (before the last grace period) / answered
  errors          one line per failed session
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import ssl
import sys
import time

from traffic import vdi_wire as w

GRACE = 2.0  # seconds to wait for answers to the last inputs


class Session:
    def __init__(self, idx: int, args: argparse.Namespace):
        self.idx, self.args = idx, args
        self.t_start = time.monotonic()  # from the welcome on: origin of this session's throughput bins
        self.sent_at: dict[int, float] = {}
        self.latency_ms: list[float] = []
        self.sent = 0
        self.bins: dict[int, int] = {}  # 100 ms slot -> downstream bytes
        self.bytes_up = 0
        self.error: str | None = None
        self.mode: str | None = None

    async def run(self, ctx: ssl.SSLContext) -> None:
        a = self.args
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(a.addr or a.host, a.port, ssl=ctx, server_hostname=a.host), a.connect_timeout)
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            self.error = f"session {self.idx}: connect: {type(exc).__name__}: {exc}"
            return
        try:
            writer.write(w.frame(w.HELLO, json.dumps({"mode": a.mode, "session": self.idx}).encode()))
            kind, body = await asyncio.wait_for(w.read_frame(reader), a.connect_timeout)
            if kind != w.WELCOME:
                self.error = f"session {self.idx}: server said {kind!r} {body[:200]!r}"
                return
            self.mode = json.loads(body).get("mode")
            self.t_start = time.monotonic()
            recv = asyncio.ensure_future(self._receive(reader))
            await self._send(writer)
            # the last inputs' answers, then close
            deadline = time.monotonic() + GRACE
            while self.sent_at and time.monotonic() < deadline and not recv.done():
                await asyncio.sleep(0.02)
            writer.write(w.frame(w.BYE))
            recv.cancel()
            if self.sent_at:
                self.error = f"session {self.idx}: {len(self.sent_at)} inputs unanswered"
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError, ValueError) as exc:
            self.error = f"session {self.idx}: {type(exc).__name__}: {exc}"
        finally:
            try:
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), 2)
            except (OSError, ssl.SSLError, asyncio.TimeoutError):
                pass

    async def _send(self, writer: asyncio.StreamWriter) -> None:
        a, rng = self.args, random.Random()
        end = self.t_start + a.duration
        next_at = self.t_start
        input_id = 0
        while True:
            next_at += a.input_interval * rng.uniform(2 / 3, 4 / 3)
            if next_at >= end:
                break
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            input_id += 1
            kind = w.KEY if rng.random() < 0.6 else w.MOUSE
            now = time.monotonic()
            self.sent_at[input_id] = now
            data = w.input_frame(input_id, time.monotonic_ns(), kind, rng.randrange(1920), rng.randrange(1080))
            writer.write(data)
            self.sent += 1
            self.bytes_up += len(data)
            await writer.drain()
        await asyncio.sleep(max(0.0, end - time.monotonic()))

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                kind, body = await w.read_frame(reader)
                now = time.monotonic()
                slot = int((now - self.t_start) * 10)
                self.bins[slot] = self.bins.get(slot, 0) + w.HEADER.size + len(body)
                if kind == w.UPDATE and len(body) >= w.UPDATE_HEAD.size:
                    input_id, _clock = w.UPDATE_HEAD.unpack_from(body)
                    if input_id and input_id in self.sent_at:
                        self.latency_ms.append((now - self.sent_at.pop(input_id)) * 1000)
                elif kind == w.BYE:
                    return
        except (asyncio.IncompleteReadError, OSError, ssl.SSLError, ValueError) as exc:
            if self.error is None and not isinstance(exc, asyncio.IncompleteReadError):
                self.error = f"session {self.idx}: receive: {type(exc).__name__}: {exc}"


def summarize(sessions: list[Session], duration: float, interval: float) -> dict:
    """Samples of all sessions together: latencies in input order per session, throughput bins summed."""
    slots: dict[int, int] = {}
    for s in sessions:
        for k, v in s.bins.items():
            slots[k] = slots.get(k, 0) + v
    per = max(1, round(interval * 10))
    n_bins = int(duration * 10) // per  # full intervals inside the measured duration only
    tput = [sum(slots.get(b * per + i, 0) for i in range(per)) * 8 / (per / 10) for b in range(n_bins)]
    peak = max((v * 8 * 10 for k, v in slots.items() if k < int(duration * 10)), default=0)
    return {
        "latency_ms": [round(x, 3) for s in sessions for x in s.latency_ms],
        "throughput_bps": [round(x, 1) for x in tput],
        "interval_s": per / 10,
        "peak_bps": peak,
        "bytes_down": sum(slots.values()),
        "bytes_up": sum(s.bytes_up for s in sessions),
        "sent": sum(s.sent for s in sessions),
        "received": sum(len(s.latency_ms) for s in sessions),
        "sessions": len(sessions),
        "modes": sorted({s.mode for s in sessions if s.mode}),
        "errors": [s.error for s in sessions if s.error],
    }


async def run(args: argparse.Namespace) -> dict:
    ctx = ssl.create_default_context(cafile=args.ca)  # verifies the chain and the host name
    sessions = [Session(i + 1, args) for i in range(args.sessions)]
    await asyncio.gather(*(s.run(ctx) for s in sessions))
    return summarize(sessions, args.duration, args.interval)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", required=True, help="the desktop host's name (checked against its certificate)")
    ap.add_argument("--addr", help="its address (default: resolve --host)")
    ap.add_argument("--port", type=int, default=4172)
    ap.add_argument("--ca", required=True, help="CA certificate to verify the server with")
    ap.add_argument("--mode", choices=["office", "video"], default="office")
    ap.add_argument("--sessions", type=int, default=1)
    ap.add_argument("--input-interval", type=float, default=0.075, help="seconds between input events (mean)")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--interval", type=float, default=1.0, help="throughput bin, seconds (multiple of 0.1)")
    ap.add_argument("--connect-timeout", type=float, default=10.0)
    args = ap.parse_args(argv)
    if not 1 <= args.sessions <= 256 or not 0 < args.duration <= 3600 or args.input_interval < 0.005:
        ap.error("sessions 1..256, duration 0..3600 s, input interval >= 5 ms")
    out = asyncio.run(run(args))
    sys.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
    return 0 if not out["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
