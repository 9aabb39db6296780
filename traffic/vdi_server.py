"""A cloud-desktop host's remote display service: TLS only, traffic shaped like PCoIP/Blast.

    python -m traffic.vdi_server --bind IP --port 4172 --cert NODE.crt --key NODE.key

No real desktop is rendered: what the network sees is emulated. The client
says in its hello which kind of desktop it runs (`office`: forms, EMR,
typing — about 100-150 kbit/s on average with ~1 Mbit/s peaks; `video`:
a desktop playing video or imaging cine loops — about 2 Mbit/s, per the
PCoIP/VMware View sizing guidance in DOMAIN.md). The server then
- answers every input event at once with a screen update that starts with
  the input's id (so the client measures input -> screen, the desktop's
  responsiveness a doctor feels), sized like a keystroke echo or a click's
  repaint;
- pushes its own updates every tick (100 ms office, 33 ms video), sized by
  ScreenModel: a bursty process whose long-run average is the mode's rate.
Plaintext connections fail the TLS handshake. Sessions are bounded in number
and end after a while without input, so the server stays bounded in memory.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import ssl
import sys
import time
from dataclasses import dataclass

from traffic import vdi_wire as w


@dataclass(frozen=True)
class Mode:
    avg_bps: float  # long-run downstream average the model holds to
    peak_bps: float  # most a single tick may carry, as a rate
    tick_s: float  # spacing of server-pushed updates
    idle_bytes: int  # typical small push between bursts (office: clock, cursor, caret)
    burst_p: float  # office: chance per tick that owed bytes go out as a burst (a repaint, a scroll)
    gop: int  # video: a key frame every `gop` ticks


MODES = {
    "office": Mode(avg_bps=125e3, peak_bps=1e6, tick_s=0.1, idle_bytes=120, burst_p=0.15, gop=0),
    "video": Mode(avg_bps=2e6, peak_bps=6e6, tick_s=1 / 30, idle_bytes=0, burst_p=0.0, gop=30),
}
MIN_BURST = 3000  # office: owed bytes worth a repaint burst
ECHO_BYTES = 400  # an input answer always gets at least this (the caret moves) even when the tick is full
MAX_OWED_S = 0.5  # office: never more than this much of the average behind (a short session still averages it)


class ScreenModel:
    """Sizes of screen updates for one session: bursty, with a long-run average of mode.avg_bps.

    Every byte sent (pushes and input answers) is counted; each tick the model
    knows how far it is behind the mode's average and pays that back in
    bursts (office) or by scaling the next frames (video). So a 10 s session
    already averages close to the mode's rate, while single 100 ms intervals
    still peak near mode.peak_bps.
    """

    def __init__(self, mode: Mode, rng: random.Random | None = None):
        self.mode, self.rng = mode, rng or random.Random()
        self.sent = 0
        self.ticks = 0
        self.burst_left = 0.0
        self.since_push = 0  # bytes of this tick so far (its push, then the input answers until the next)

    def owed(self, elapsed_s: float) -> float:
        return self.mode.avg_bps / 8 * elapsed_s - self.sent

    def input_answer(self, kind: int) -> int:
        """Bytes of the update answering one input: a caret/cursor echo, now and then a repaint."""
        r = self.rng
        if kind == w.KEY:
            size = r.lognormvariate(5.8, 0.5)  # median ~330 B: the glyphs typed plus the caret
        else:
            size = r.lognormvariate(4.8, 0.6)  # median ~120 B: a cursor move or hover
            if r.random() < 0.02:
                size += r.uniform(4000, 12000)  # a click opened something
        room = self.mode.peak_bps / 8 * self.mode.tick_s - self.since_push  # the tick's peak budget left
        size = int(min(size, max(room, ECHO_BYTES)))
        self.sent += size
        self.since_push += size
        return size

    def push(self, elapsed_s: float) -> int:
        """Bytes of the update pushed at this tick (0: nothing changed on screen)."""
        m, r = self.mode, self.rng
        self.ticks += 1
        cap = m.peak_bps / 8 * m.tick_s
        owed = self.owed(elapsed_s)
        if m.gop:  # video: key frame, then smaller delta frames, steered towards the average
            nominal = m.avg_bps / 8 * m.tick_s
            shape = 3.0 if self.ticks % m.gop == 1 else (m.gop - 3.0) / (m.gop - 1)
            size = nominal * shape * r.uniform(0.8, 1.2) + 0.25 * owed
        elif self.burst_left > 0:
            size = min(self.burst_left, cap * r.uniform(0.6, 1.0))
            self.burst_left -= size
        elif owed > MIN_BURST and (r.random() < m.burst_p or owed > m.avg_bps / 8 * MAX_OWED_S):
            self.burst_left = owed * r.uniform(1.0, 1.4)
            size = min(self.burst_left, cap * r.uniform(0.6, 1.0))
            self.burst_left -= size
        else:
            size = m.idle_bytes * r.uniform(0.5, 1.5) if r.random() < 0.5 else 0
        size = int(max(0.0, min(size, cap)))
        self.sent += size
        self.since_push = size
        return size


PIXELS = os.urandom(1 << 16)  # encrypted pixels look random; one buffer, sliced


def pixels(n: int) -> bytes:
    if n <= len(PIXELS):
        return PIXELS[:n]
    return (PIXELS * (n // len(PIXELS) + 1))[:n]


class Server:
    def __init__(self, max_sessions: int, idle_timeout: float):
        self.max_sessions, self.idle_timeout = max_sessions, idle_timeout
        self.active = 0
        self.served = 0
        self.refused = 0

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if self.active >= self.max_sessions:
            self.refused += 1
            writer.write(w.frame(w.BYE, b'{"error": "too many sessions"}'))
            await self._close(writer)
            return
        self.active += 1
        self.served += 1
        pusher = None
        try:
            kind, body = await asyncio.wait_for(w.read_frame(reader), 10)
            if kind != w.HELLO:
                return
            hello = json.loads(body or b"{}")
            mode_name = hello.get("mode", "office")
            mode = MODES.get(mode_name, MODES["office"])
            model = ScreenModel(mode)
            writer.write(w.frame(w.WELCOME, json.dumps({"mode": mode_name if mode_name in MODES else "office",
                                                        "tick_ms": mode.tick_s * 1000, "avg_bps": mode.avg_bps,
                                                        "peak_bps": mode.peak_bps}).encode()))
            t0 = time.monotonic()
            pusher = asyncio.ensure_future(self._push(writer, model, t0))
            while True:
                kind, body = await asyncio.wait_for(w.read_frame(reader), self.idle_timeout)
                if kind == w.BYE:
                    break
                if kind == w.INPUT and len(body) >= w.INPUT_BODY.size:
                    input_id, clock, ikind, _x, _y = w.INPUT_BODY.unpack_from(body)
                    size = model.input_answer(ikind)
                    writer.write(w.frame(w.UPDATE, w.UPDATE_HEAD.pack(input_id, clock) + pixels(size)))
                    await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, ssl.SSLError, ValueError,
                json.JSONDecodeError):
            pass
        finally:
            if pusher is not None:
                pusher.cancel()
            self.active -= 1
            print(json.dumps({"event": "session-end", "peer": str(peer)}), flush=True)
            await self._close(writer)

    async def _push(self, writer: asyncio.StreamWriter, model: ScreenModel, t0: float) -> None:
        tick = model.mode.tick_s
        n = 0
        try:
            while True:
                n += 1
                await asyncio.sleep(max(0.0, t0 + n * tick - time.monotonic()))
                size = model.push(time.monotonic() - t0)
                if size:
                    writer.write(w.frame(w.UPDATE, w.UPDATE_HEAD.pack(0, 0) + pixels(size)))
                    await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        try:
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), 2)
        except (ConnectionError, ssl.SSLError, asyncio.TimeoutError, OSError):
            pass


def _quiet_handshake_errors(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """A plaintext client or a port scan fails the handshake: expected, one line, no traceback."""
    exc = context.get("exception")
    if isinstance(exc, (ssl.SSLError, ConnectionError, OSError)):
        print(json.dumps({"event": "refused", "reason": str(exc)[:200]}), flush=True)
        return
    loop.default_exception_handler(context)


async def serve(args: argparse.Namespace) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_handshake_errors)
    server = Server(args.max_sessions, args.idle_timeout)
    srv = await asyncio.start_server(server.session, args.bind, args.port, ssl=ctx, ssl_handshake_timeout=10,
                                     backlog=128)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"event": "listening", "bind": args.bind, "port": args.port}), flush=True)
    async with srv:
        await stop.wait()
    print(json.dumps({"event": "stopped", "sessions": server.served, "refused_busy": server.refused}), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=4172)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--max-sessions", type=int, default=64)
    ap.add_argument("--idle-timeout", type=float, default=60.0, help="close a session after this long without input")
    args = ap.parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
