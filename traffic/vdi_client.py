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


class Lost(Exception):
    """The desktop host stopped answering (nothing for --dead-after seconds): fail over, where a spare is given."""


class Session:
    def __init__(self, idx: int, args: argparse.Namespace | None):
        self.idx, self.args = idx, args
        self.t_start = time.monotonic()  # from the first welcome on: origin of this session's throughput bins
        self.end: float | None = None  # the session's end: its duration after the first welcome
        self.sent_at: dict[int, tuple[float, float, str]] = {}  # input id -> (monotonic, wall clock, host) sent
        self.latency_ms: list[float] = []
        self.sent = 0
        self.bins: dict[int, int] = {}  # 100 ms slot -> downstream bytes
        self.bytes_up = 0
        self.error: str | None = None
        self.mode: str | None = None
        self.events: list[list] = []  # [wall clock, "connected" | "lost", host]: the failover timeline
        self.inputs: list[list] = []  # [wall clock sent, latency ms or None (never answered), host]
        self.input_id = 0

    async def run(self, ctx: ssl.SSLContext) -> None:
        """One session: to the assigned host, then (with --failover) to each spare in turn when one is lost."""
        a = self.args
        hosts = [(a.host, a.addr or a.host)] + list(a.failover or [])
        for n, (name, addr) in enumerate(hosts):
            try:
                await self._connection(ctx, name, addr)
                return
            except Lost as exc:
                self._drop(name)
                self.events.append([time.time(), "lost", name])
                if n + 1 == len(hosts) or (self.end is not None and time.monotonic() >= self.end):
                    self.error = f"session {self.idx}: {exc}; no spare host left"
                    return
            except _Failed as exc:
                self.error = f"session {self.idx}: {exc}"
                return

    def _drop(self, host: str) -> None:
        """Inputs still unanswered on a lost host: lost with it."""
        for _mono, wall, h in self.sent_at.values():
            self.inputs.append([wall, None, h])
        self.sent_at.clear()

    async def _connection(self, ctx: ssl.SSLContext, host: str, addr: str) -> None:
        a = self.args
        failover = bool(a.failover)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(addr, a.port, ssl=ctx, server_hostname=host), a.connect_timeout)
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            why = f"connect to {host}: {type(exc).__name__}: {exc}"
            raise (Lost(why) if failover else _Failed(why)) from None
        try:
            writer.write(w.frame(w.HELLO, json.dumps({"mode": a.mode, "session": self.idx}).encode()))
            kind, body = await asyncio.wait_for(w.read_frame(reader), a.connect_timeout)
            if kind != w.WELCOME:
                raise _Failed(f"server said {kind!r} {body[:200]!r}")
            self.mode = json.loads(body).get("mode")
            self.events.append([time.time(), "connected", host])
            if self.end is None:
                self.t_start = time.monotonic()
                self.end = self.t_start + a.duration
            recv = asyncio.ensure_future(self._receive(reader, a.dead_after if failover else None))
            send = asyncio.ensure_future(self._send(writer, host))
            await asyncio.wait([recv, send], return_when=asyncio.FIRST_COMPLETED)
            if recv.done() and isinstance(recv.exception(), Lost):
                send.cancel()
                raise recv.exception()
            await send
            # the last inputs' answers, then close
            deadline = time.monotonic() + GRACE
            while self.sent_at and time.monotonic() < deadline and not recv.done():
                await asyncio.sleep(0.02)
            writer.write(w.frame(w.BYE))
            recv.cancel()
            if self.sent_at:
                raise _Failed(f"{len(self.sent_at)} inputs unanswered")
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError, ValueError) as exc:
            why = f"{type(exc).__name__}: {exc}"
            raise (Lost(f"{host}: {why}") if failover else _Failed(why)) from None
        except Lost:
            writer.transport.abort()  # a dead host answers no TLS close: do not wait for it before failing over
            raise
        finally:
            try:
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), 2)
            except (OSError, ssl.SSLError, asyncio.TimeoutError):
                pass

    async def _send(self, writer: asyncio.StreamWriter, host: str) -> None:
        a, rng = self.args, random.Random()
        next_at = time.monotonic()
        while True:
            next_at += a.input_interval * rng.uniform(2 / 3, 4 / 3)
            if next_at >= self.end:
                break
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            self.input_id += 1
            kind = w.KEY if rng.random() < 0.6 else w.MOUSE
            self.sent_at[self.input_id] = (time.monotonic(), time.time(), host)
            data = w.input_frame(self.input_id, time.monotonic_ns(), kind, rng.randrange(1920), rng.randrange(1080))
            writer.write(data)
            self.sent += 1
            self.bytes_up += len(data)
            await writer.drain()
        await asyncio.sleep(max(0.0, self.end - time.monotonic()))

    async def _receive(self, reader: asyncio.StreamReader, dead_after: float | None) -> None:
        try:
            while True:
                try:
                    kind, body = await asyncio.wait_for(w.read_frame(reader), dead_after)
                except asyncio.TimeoutError:
                    raise Lost(f"nothing from the desktop host for {dead_after:g} s") from None
                now = time.monotonic()
                slot = int((now - self.t_start) * 10)
                self.bins[slot] = self.bins.get(slot, 0) + w.HEADER.size + len(body)
                if kind == w.UPDATE and len(body) >= w.UPDATE_HEAD.size:
                    input_id, _clock = w.UPDATE_HEAD.unpack_from(body)
                    if input_id and input_id in self.sent_at:
                        mono, wall, host = self.sent_at.pop(input_id)
                        self.latency_ms.append((now - mono) * 1000)
                        self.inputs.append([wall, round(self.latency_ms[-1], 3), host])
                elif kind == w.BYE:
                    return
        except (asyncio.IncompleteReadError, OSError, ssl.SSLError, ValueError) as exc:
            if dead_after is not None:  # failing over: a reset or a closed connection is a lost host
                raise Lost(f"receive: {type(exc).__name__}: {exc}") from None
            if self.error is None and not isinstance(exc, asyncio.IncompleteReadError):
                self.error = f"session {self.idx}: receive: {type(exc).__name__}: {exc}"


class _Failed(Exception):
    """The session failed for good (no failover): its error line."""


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


def timeline(sessions: list[Session]) -> list[dict]:
    """Per session, wall-clock times (comparable with the host's clock: nodes share its kernel): when it
    connected to or lost which host, and every input with its latency (None: lost with its host)."""
    return [{"session": s.idx, "events": s.events,
             "inputs": sorted(s.inputs + [[wall, None, h] for _m, wall, h in s.sent_at.values()])}
            for s in sessions]


async def run(args: argparse.Namespace) -> dict:
    ctx = ssl.create_default_context(cafile=args.ca)  # verifies the chain and the host name
    sessions = [Session(i + 1, args) for i in range(args.sessions)]
    await asyncio.gather(*(s.run(ctx) for s in sessions))
    out = summarize(sessions, args.duration, args.interval)
    if args.timeline:
        out["timeline"] = timeline(sessions)
    return out


def _host_addr(text: str) -> tuple[str, str]:
    name, _, addr = text.partition("=")
    if not name or not addr:
        raise argparse.ArgumentTypeError(f"expected HOST=ADDRESS, got {text!r}")
    return name, addr


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
    ap.add_argument("--failover", type=_host_addr, action="append", metavar="HOST=ADDR",
                    help="a spare desktop host to reconnect to when the current one is lost (repeat: in order)")
    ap.add_argument("--dead-after", type=float, default=1.0,
                    help="with --failover: a host silent this long is lost (it pushes an update every tick)")
    ap.add_argument("--timeline", action="store_true", help="add each session's connect/lose events and inputs")
    args = ap.parse_args(argv)
    if not 1 <= args.sessions <= 256 or not 0 < args.duration <= 3600 or args.input_interval < 0.005:
        ap.error("sessions 1..256, duration 0..3600 s, input interval >= 5 ms")
    out = asyncio.run(run(args))
    sys.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
    return 0 if not out["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
