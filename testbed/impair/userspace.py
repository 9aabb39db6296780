"""Userspace backend: one relay process per link (see relay.py for the loop).

The builder calls `start_relay` (or `UserspaceBackend().impair_link`) after it
has created the two root-namespace interfaces; the returned handle talks to the
relay over its unix control socket, so changes apply live with no restart.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from testbed.impair.base import DIRECTIONS, Direction, ImpairError, Port
from testbed.impair.spec import Impairment

# the directory holding the `testbed` package, so the relay imports the same code
_CODE_ROOT = str(Path(__file__).resolve().parents[2])


def control_request(path: Path, request: dict[str, Any], timeout: float = 2.0) -> dict[str, Any]:
    """Send one JSON request to a relay's control socket and return its reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        raise ImpairError(f"relay at {path} closed the control connection without replying")
    return json.loads(data)


class RelayHandle:
    """A running relay process; usable as a context manager (stops on exit)."""

    def __init__(self, proc: subprocess.Popen[bytes], control_path: Path, log_path: Path,
                 if_a: str, if_b: str) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.control_path = control_path
        self.log_path = log_path
        self.if_a, self.if_b = if_a, if_b

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.proc.poll() is not None:
            raise ImpairError(f"relay {self.pid} ({self.if_a}<->{self.if_b}) has exited "
                              f"with code {self.proc.returncode}; see {self.log_path}")
        try:
            reply = control_request(self.control_path, request)
        except OSError as exc:
            raise ImpairError(f"relay {self.pid} control socket {self.control_path}: {exc}") from exc
        if not reply.get("ok"):
            raise ImpairError(f"relay {self.pid} refused {request.get('cmd')}: {reply.get('error')}")
        return reply

    def set(self, direction: Direction, impairment: Impairment) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        self._call({"cmd": "set", "direction": direction, "impairment": impairment.to_dict()})

    def set_up(self, up: bool) -> None:
        """Cut or restore both directions, keeping the other settings."""
        current = self.stats()
        for d in DIRECTIONS:
            imp = Impairment.from_dict(current[d]["impairment"]).with_updates(up=up)
            self.set(d, imp)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per direction: rx/tx packets and bytes, dropped_* counters, duplicated,
        reordered, queued, and the impairment in force."""
        return self._call({"cmd": "stats"})["stats"]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if the relay has not exited within `timeout`."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        try:
            self.control_path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> RelayHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_relay(if_a: str, if_b: str, a_to_b: Impairment, b_to_a: Impairment,
                control_path: Path, log_path: Path, ready_timeout: float = 10.0) -> RelayHandle:
    """Spawn a relay between two root-namespace interfaces; return once it forwards.

    The relay runs in its own session so a Ctrl-C meant for the builder does not
    kill it before the builder's teardown runs; it exits by itself when either
    interface disappears. Its stdout/stderr go to `log_path` (appended).
    """
    control_path, log_path = Path(control_path), Path(log_path)
    if len(str(control_path)) > 100:
        raise ImpairError(f"control socket path too long for a unix socket: {control_path}")
    for name in (if_a, if_b):
        if not Path(f"/sys/class/net/{name}").exists():
            raise ImpairError(f"interface {name} does not exist in the root namespace")
    cmd = [sys.executable, "-m", "testbed.impair.relay", "--if-a", if_a, "--if-b", if_b,
           "--a-to-b", json.dumps(a_to_b.to_dict()), "--b-to-a", json.dumps(b_to_a.to_dict()),
           "--control", str(control_path)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_CODE_ROOT, env.get("PYTHONPATH")) if p)
    try:
        control_path.unlink()  # a stale socket would fake readiness
    except FileNotFoundError:
        pass
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    handle = RelayHandle(proc, control_path, log_path, if_a, if_b)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise ImpairError(f"relay {if_a}<->{if_b} exited with code {proc.returncode}:\n{tail}")
        if control_path.exists():
            try:
                control_request(control_path, {"cmd": "ping"}, timeout=1.0)
                return handle
            except (OSError, ValueError):
                pass
        time.sleep(0.02)
    handle.stop()
    raise ImpairError(f"relay {if_a}<->{if_b} not ready after {ready_timeout:.0f}s; see {log_path}")


class UserspaceBackend:
    """ImpairBackend running one relay process per link."""

    name = "userspace"

    def impair_link(self, if_a: Port, if_b: Port, a_to_b: Impairment, b_to_a: Impairment,
                    workdir: Path) -> RelayHandle:
        if not (if_a.in_root and if_b.in_root):
            raise ImpairError("the userspace relay needs both interfaces in the root namespace")
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        stem = f"relay-{if_a.ifname}-{if_b.ifname}"
        return start_relay(if_a.ifname, if_b.ifname, a_to_b, b_to_a,
                           workdir / f"{stem}.sock", workdir / f"{stem}.log")
