"""What the built-in 5G programs share: config, event log, status file, signals and the event loop.

Each program (`python -m testbed.ran.<prog> --config FILE.json [--status FILE.json]`):

- reads one JSON config (written by testbed.ran.agents);
- logs one line per event to stdout: `<UTC time> <prog>[<name>] <event> key=value ...`
  (values with spaces are quoted), flushed at once so a supervisor sees it live;
- keeps a small JSON status file (counters, sessions, rejects), rewritten
  atomically (temporary file + rename) at most every `STATUS_INTERVAL` seconds
  and once more on exit, so a reader never sees half a file;
- stops cleanly on SIGTERM or SIGINT: the signal wakes the loop through a
  socketpair (signal.set_wakeup_fd), the program closes what it opened (TUN
  interfaces vanish with their descriptor) and exits 0;
- exits 2 on a config it cannot use, 1 when it cannot start (the log says why).

Stdlib only: the UE imports this, and a UE process must stay small.
"""
from __future__ import annotations

import argparse
import heapq
import itertools
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

STATUS_INTERVAL = 0.5
MAX_CONFIG_BYTES = 16 << 20
MAX_EVENTS = 64  # epoll events handled per wake-up


class ConfigError(ValueError):
    """The config file is missing, not JSON, or lacks a key the program needs."""


def load_config(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES >> 20} MiB")
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the config is a JSON object")
    return doc


def need(cfg: dict[str, Any], key: str, kind: type | tuple[type, ...] = object) -> Any:
    if key not in cfg:
        raise ConfigError(f"config key {key!r} is missing")
    if not isinstance(cfg[key], kind):
        raise ConfigError(f"config key {key!r} has the wrong type ({type(cfg[key]).__name__})")
    return cfg[key]


def _fmt(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return json.dumps(text) if (not text or any(c in text for c in ' "=\n')) else text


class Log:
    """One line per event: time, program and instance, event name, then key=value fields."""

    def __init__(self, prog: str, name: str, stream: TextIO | None = None) -> None:
        self.prefix = f"{prog}[{name}]"
        self.stream = stream or sys.stdout

    def __call__(self, event: str, **fields: Any) -> None:
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        parts = [stamp, self.prefix, event] + [f"{k}={_fmt(v)}" for k, v in fields.items() if v is not None]
        try:
            self.stream.write(" ".join(parts) + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # stdout gone (supervisor died): keep running, stay quiet
            pass


class StatusFile:
    """A JSON document rewritten atomically, at most every `interval` seconds unless forced."""

    def __init__(self, path: str | None, interval: float = STATUS_INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self._last = 0.0
        self.dirty = True

    def maybe_write(self, build: Callable[[], dict[str, Any]], force: bool = False) -> None:
        if not self.path or not (self.dirty or force):
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        doc = build()
        doc["updated"] = round(time.time(), 3)
        tmp = f"{self.path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, sort_keys=False)
            f.write("\n")
        os.replace(tmp, self.path)
        self._last = now
        self.dirty = False


class Loop:
    """An epoll loop with timers; a SIGTERM/SIGINT sets `stopping` and wakes it at once."""

    def __init__(self) -> None:
        self.ep = select.epoll()
        self.readers: dict[int, Callable[[], None]] = {}
        self.timers: list[tuple[float, int, list]] = []
        self._seq = itertools.count()
        self.stopping = False
        self.signal: str | None = None
        self._old_handlers: dict[int, object] = {}
        self._old_wakeup = -1
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.add_reader(self._wake_r.fileno(), self._drain_wakeup)

    def install_signals(self) -> None:
        self._old_wakeup = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True
        self.signal = signal.Signals(signum).name

    def _drain_wakeup(self) -> None:
        try:
            while self._wake_r.recv(512):
                pass
        except BlockingIOError:
            pass

    def add_reader(self, fd: int, callback: Callable[[], None]) -> None:
        self.readers[fd] = callback
        self.ep.register(fd, select.EPOLLIN)

    def remove_reader(self, fd: int) -> None:
        if self.readers.pop(fd, None) is not None:
            try:
                self.ep.unregister(fd)
            except (OSError, ValueError):
                pass

    def call_later(self, delay: float, callback: Callable[[], None]) -> list:
        """Run `callback` once after `delay` seconds; returns a handle for `cancel`."""
        handle = [callback]
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self._seq), handle))
        return handle

    @staticmethod
    def cancel(handle: list | None) -> None:
        if handle:
            handle[0] = None

    def every(self, interval: float, callback: Callable[[], None]) -> None:
        def tick() -> None:
            callback()
            self.call_later(interval, tick)
        self.call_later(interval, tick)

    def run(self) -> None:
        while not self.stopping:
            timeout = 1.0
            if self.timers:
                timeout = max(0.0, min(timeout, self.timers[0][0] - time.monotonic()))
            try:
                events = self.ep.poll(timeout, MAX_EVENTS)
            except InterruptedError:
                events = []
            for fd, _mask in events:
                cb = self.readers.get(fd)
                if cb is not None:
                    cb()
                if self.stopping:
                    return
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now and not self.stopping:
                _when, _seq, handle = heapq.heappop(self.timers)
                if handle[0] is not None:
                    handle[0]()

    def close(self) -> None:
        """Close the loop and give back the signal handlers it took (main() may run inside another program)."""
        try:
            signal.set_wakeup_fd(self._old_wakeup)
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
        except (ValueError, TypeError):
            pass
        self.ep.close()
        self._wake_r.close()
        self._wake_w.close()


def set_buffers(sock: socket.socket, size: int = 4 << 20) -> None:
    """Large socket buffers (past net.core.*mem_max: we run as root) so bursts are queued, not dropped."""
    for force, plain in ((33, socket.SO_RCVBUF), (32, socket.SO_SNDBUF)):  # SO_RCVBUFFORCE, SO_SNDBUFFORCE
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, plain, size)


IPTOS_SHIFT = 2  # DSCP is the upper six bits of the TOS octet


class DscpPeer:
    """One peer and one DSCP value, sent to through the program's one GTP-U socket (bound to port 2152).

    Real GTP-U entities send from port 2152 as well as to it, and so must these: a
    datagram from 2152 to 2152 between a gNB and its UPF is what the switches let
    through without their connection tracker (testbed.slicing.flows, `direct`).
    A socket per DSCP would need a port of its own (two sockets bound to 2152 split
    the peer's datagrams between them), so the marking rides on each send instead
    (an IP_TOS control message). It quacks like a connected socket for gso.Batch:
    `send(data)` and `sendmsg(buffers, cmsgs)`.
    """

    __slots__ = ("sock", "addr", "tos", "tos_only")

    def __init__(self, sock: socket.socket, peer: str, port: int, dscp: int) -> None:
        self.sock, self.addr = sock, (peer, port)
        self.tos = (socket.IPPROTO_IP, socket.IP_TOS, struct.pack("i", dscp << IPTOS_SHIFT))
        self.tos_only = [self.tos]

    def send(self, data) -> int:
        return self.sock.sendmsg([data], self.tos_only, 0, self.addr)

    def sendmsg(self, buffers, cmsgs) -> int:
        return self.sock.sendmsg(buffers, [*cmsgs, self.tos], 0, self.addr)


def parse_args(prog: str, doc: str | None, argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=f"python -m testbed.ran.{prog}", description=(doc or "").split("\n\n")[0])
    ap.add_argument("--config", required=True, help="the program's JSON config (testbed.ran.agents writes it)")
    ap.add_argument("--status", help="where to keep the JSON status file")
    return ap.parse_args(argv)


def main(prog: str, doc: str | None, factory: Callable[[dict[str, Any], Log, StatusFile, Loop], Any],
         argv: list[str] | None = None) -> int:
    """Load the config, build the program, run its loop until a signal; 0 on a clean stop."""
    args = parse_args(prog, doc, argv)
    try:
        cfg = load_config(args.config)
        name = str(cfg.get("name", prog))
    except ConfigError as exc:
        Log(prog, "?")("config-error", error=str(exc))
        return 2
    log = Log(prog, name)
    status = StatusFile(args.status)
    loop = Loop()
    loop.install_signals()
    program = None
    code = 0
    try:
        try:
            program = factory(cfg, log, status, loop)
        except (ValueError, KeyError, TypeError) as exc:  # a value in the config the program cannot use
            raise ConfigError(f"{type(exc).__name__}: {exc}") from exc
        program.start()
        loop.run()
        log("stop", signal=loop.signal or "end")
    except ConfigError as exc:
        log("config-error", error=str(exc))
        code = 2
    except OSError as exc:
        log("error", error=f"{type(exc).__name__}: {exc}")
        code = 1
    finally:
        if program is not None:
            try:
                program.close()
            except Exception as exc:  # closing must not hide why we stopped
                log("close-error", error=str(exc))
            try:
                status.maybe_write(program.status, force=True)
            except OSError as exc:
                log("status-error", error=str(exc))
        loop.close()
    return code
