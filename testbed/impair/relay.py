"""Userspace impairment relay process: a `Forwarder` plus its unix-socket control server.

Run as its own process (`python -m testbed.impair.relay --if-a X --if-b Y ...`,
normally through `testbed.impair.userspace.start_relay`) because it must keep
forwarding while the builder does other work, and a separate process can be
stopped by PID without touching anything else. Frames are moved by forward.py;
this module adds what lets other processes change a running link: one
root-only unix socket, served from the same select() loop as the frames, so a
change takes effect between two batches with no thread and no restart. Apart
from the two packet sockets, it is the only socket the relay opens.

Control protocol (unix stream socket, one JSON line in, one JSON line out):
  {"cmd": "ping"} | {"cmd": "stats"} |
  {"cmd": "set", "direction": "a_to_b"|"b_to_a", "impairment": {...}}
"""
from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from testbed.impair.forward import DIRECTIONS, Forwarder, log, tighten_timer_slack
from testbed.impair.spec import Impairment

IDLE_CHECK_S = 0.5  # how often an idle relay checks that its interfaces still exist
MAX_REQUEST = 1 << 20  # bytes of one request line; longer ones are answered with an error


class Relay:
    """The relay's main loop: frames from the forwarder, requests from the control socket."""

    def __init__(self, fwd: Forwarder, control_path: Path) -> None:
        self.fwd = fwd
        self.control_path = control_path
        self.control = open_control_socket(control_path)
        self.clients: dict[socket.socket, bytes] = {}  # connection -> request bytes so far

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        cmd = req.get("cmd")
        if cmd == "ping":
            return {"ok": True, "pid": os.getpid()}
        if cmd == "stats":
            return {"ok": True, "stats": self.fwd.stats()}
        if cmd == "set":
            direction = req.get("direction")
            if direction not in DIRECTIONS:
                return {"ok": False, "error": f"direction must be one of {DIRECTIONS}"}
            try:
                imp = Impairment.from_dict(req.get("impairment") or {})
            except (TypeError, ValueError) as exc:
                return {"ok": False, "error": str(exc)}
            self.fwd.set(direction, imp)
            return {"ok": True}
        return {"ok": False, "error": f"unknown command {cmd!r}"}

    def _accept(self) -> None:
        try:
            conn, _ = self.control.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self.clients[conn] = b""

    def _client(self, conn: socket.socket) -> None:
        """Read what the client sent; once a whole line (or EOF) is in, answer and close."""
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        buf = self.clients[conn] + data
        if data and b"\n" not in buf and len(buf) < MAX_REQUEST:
            self.clients[conn] = buf
            return
        del self.clients[conn]
        try:
            if b"\n" in buf:
                try:
                    reply = self.handle(json.loads(buf.split(b"\n", 1)[0]))
                except (ValueError, AttributeError) as exc:
                    reply = {"ok": False, "error": f"bad request: {exc}"}
                conn.settimeout(1.0)
                conn.sendall(json.dumps(reply).encode() + b"\n")
        except OSError:
            pass
        finally:
            conn.close()

    def run(self) -> int:
        """Forward until stopped (signal) or an interface disappears; returns the exit code."""
        fwd = self.fwd
        log(f"forwarding {fwd.describe()}")
        sa, sb = fwd.socks
        next_check = time.monotonic() + IDLE_CHECK_S
        while fwd.running:
            now = time.monotonic()
            nxt = fwd.depart(now)
            if now >= next_check:
                fwd.check_interfaces()
                next_check = now + IDLE_CHECK_S
            timeout = (next_check if nxt is None else min(next_check, nxt)) - now
            try:
                ready, _, _ = select.select([sa, sb, self.control, *self.clients], [], [], max(timeout, 0.0))
            except InterruptedError:
                continue
            for s in ready:
                if s is sa:
                    fwd.read(0)
                elif s is sb:
                    fwd.read(1)
                elif s is self.control:
                    self._accept()
                else:
                    self._client(s)
        self.close()
        return fwd.exit_code

    def close(self) -> None:
        log(f"stopping; stats {json.dumps(self.fwd.stats())}")
        self.fwd.close()
        for s in (self.control, *self.clients):
            s.close()
        try:
            self.control_path.unlink()
        except FileNotFoundError:
            pass


def open_control_socket(path: Path) -> socket.socket:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # root-only: the socket can change link behaviour
    try:
        s.bind(str(path))
    finally:
        os.umask(old)
    s.listen(8)
    s.setblocking(False)
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testbed.impair.relay", description=__doc__.split("\n")[0])
    ap.add_argument("--if-a", required=True)
    ap.add_argument("--if-b", required=True)
    ap.add_argument("--a-to-b", default="{}", help="Impairment as JSON")
    ap.add_argument("--b-to-a", default="{}", help="Impairment as JSON")
    ap.add_argument("--control", required=True, type=Path, help="unix socket path")
    ap.add_argument("--segmenting", action="store_true",
                    help="keep TCP segmentation on both ends: the link carries 64 KB TCP frames whole")
    args = ap.parse_args(argv)
    tighten_timer_slack()
    fwd = Forwarder(args.if_a, args.if_b, Impairment.from_dict(json.loads(args.a_to_b)),
                    Impairment.from_dict(json.loads(args.b_to_a)), args.segmenting)
    relay = Relay(fwd, args.control)

    def stop(signum: int, _frame: object) -> None:
        fwd.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return relay.run()


if __name__ == "__main__":
    sys.exit(main())
