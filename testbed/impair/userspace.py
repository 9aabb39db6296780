"""Userspace backend: one relay process per link (forward.py moves the frames, relay.py runs it).

For kernels without sch_netem. `start_relay` spawns a relay between two
root-namespace interfaces (tests and the bench call it directly); the returned
handle, and `control_request` from any other process, talk to the relay over its
unix control socket, so changes apply live with no restart.
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
from typing import TYPE_CHECKING, Any

from testbed import naming
from testbed.netdev import offloads_off_command
from testbed.impair.base import (DIRECTIONS, Direction, ImpairBackend, ImpairError, Port, StartContext, htb_wiring,
                                 keeps_frames, needs_impairment)
from testbed.impair.spec import Impairment

if TYPE_CHECKING:
    from testbed.openflow.layout import LinkLayout

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


def far_segmentation_off(ln: LinkLayout, switch_end: str, ctx: StartContext) -> None:
    """The far end of a link a relay was spliced into sends real packets from now on: with userspace
    TSO it may have kept segmentation offload (testbed.netdev), and the relay's loss, duplication and
    rate must act on packets, not on 64 KB frames. Best effort: a vanished node needs nothing."""
    far, intf = (ln.a, ln.intf_a) if switch_end == ln.b else (ln.b, ln.intf_b)
    port = Port(intf, pid=ctx.netns_pid.get(far))
    subprocess.run([*port.ns_prefix(), "sh", "-c", offloads_off_command(intf)], capture_output=True, timeout=30,
                   check=False)


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
                control_path: Path, log_path: Path, ready_timeout: float = 10.0,
                segmenting: bool = False) -> RelayHandle:
    """Spawn a relay between two root-namespace interfaces; return once it forwards.

    `segmenting`: its ends keep TCP segmentation, so 64 KB frames cross it whole (a frame-safe link with
    userspace TSO in force: netdev.relay_offloads).

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
           "--control", str(control_path), *(["--segmenting"] if segmenting else [])]
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


def relay_ends(run_id: str, index: int) -> tuple[str, str]:
    """Root-namespace names of link `index`'s relay ends (the run prefix, so teardown finds them)."""
    base = f"{naming.run_prefix(run_id)}r{naming.b36(index)}"
    return base + "a", base + "b"


class UserspaceBackend(ImpairBackend):
    """A relay process per impaired link, between two root-namespace veth ends (see relaylink.py).

    node A | A-eth <-> rA | relay | rB <-> B-eth | node B. Rate stays with HTB on
    the node-side interfaces, so the relay's 0-delay fast path stays copy-free.
    """

    name = "userspace"

    def wiring(self, ln: LinkLayout, run_id: str) -> dict[str, Any]:
        kw = htb_wiring(ln)
        if needs_impairment(ln):
            from testbed.impair.relaylink import RelayLink  # Mininet: only in the building process

            kw.update(cls=RelayLink, relay_ends=relay_ends(run_id, ln.index))
        return kw

    def root_interfaces(self, ln: LinkLayout, run_id: str) -> list[str]:
        return list(relay_ends(run_id, ln.index)) if needs_impairment(ln) else []

    def start(self, ln: LinkLayout, ctx: StartContext) -> tuple[RelayHandle, dict[str, Any]]:
        ab, ba = self.impairments(ln)
        ra, rb = relay_ends(ctx.run_id, ln.index)
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        stem = ctx.workdir / naming.b36(ln.index)  # short: unix socket paths are limited to ~100 bytes
        handle = start_relay(ra, rb, ab, ba, stem.with_suffix(".sock"), stem.with_suffix(".log"),
                             segmenting=keeps_frames(ln, ctx.tso))
        return handle, self.record(ln, ab, ba, control=str(handle.control_path), relay_pid=handle.pid)

    @staticmethod
    def _call(record: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = control_request(Path(record["control"]), request)
        except OSError as exc:
            raise ImpairError(f"relay of {record['a']}:{record['b']} at {record['control']}: {exc}") from exc
        if not reply.get("ok"):
            raise ImpairError(f"relay refused {request.get('cmd')}: {reply.get('error')}")
        return reply

    def splice_interfaces(self, ln: LinkLayout, run_id: str) -> list[str]:
        return list(relay_ends(run_id, ln.index))

    def splice(self, ln: LinkLayout, ctx: StartContext, bridges: dict[str, str]) -> tuple[RelayHandle, dict[str, Any]]:
        """Splice a relay into a live, unimpaired link at one of its switch ports.

        The switch's port (ofport N) is moved to a new veth pair's end P, and the
        relay forwards between the old port interface (still paired with the
        other node) and P's peer Q: node | old end <-> relay <-> Q | P (ofport N)
        | switch. The OpenFlow port number stays, so the installed rules hold;
        frames in flight during the swap are lost, as on a re-patched cable.
        """
        end = ln.b if ln.b in bridges else ln.a if ln.a in bridges else None
        if end is None:
            raise ImpairError(f"link {ln.a}:{ln.b} has no switch end to splice a relay into")
        old, ofport = (ln.intf_b, ln.port_b) if end == ln.b else (ln.intf_a, ln.port_a)
        p, q = relay_ends(ctx.run_id, ln.index)
        mtu = f" mtu {ln.params.mtu}" if ln.params.mtu else ""
        script = "; ".join([
            f"ip link add {p}{mtu} type veth peer name {q}{mtu}",
            offloads_off_command(p), offloads_off_command(q),
            f"ip link set {p} up", f"ip link set {q} up",
            f"ovs-vsctl --timeout=10 -- del-port {bridges[end]} {old} -- add-port {bridges[end]} {p} "
            f"-- set Interface {p} ofport_request={ofport}"])
        r = subprocess.run(["sh", "-ec", script], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise ImpairError(f"splicing a relay into {ln.a}:{ln.b}: {r.stderr.strip()}")
        far_segmentation_off(ln, end, ctx)
        ab, ba = self.impairments(ln)
        if_a, if_b = (old, q) if end == ln.b else (q, old)
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        stem = ctx.workdir / naming.b36(ln.index)
        handle = start_relay(if_a, if_b, ab, ba, stem.with_suffix(".sock"), stem.with_suffix(".log"))
        return handle, self.record(ln, ab, ba, control=str(handle.control_path), relay_pid=handle.pid,
                                   spliced=True)

    def change(self, record: dict[str, Any], direction: Direction, impairment: Impairment) -> None:
        self._call(record, {"cmd": "set", "direction": direction, "impairment": impairment.to_dict()})

    def stats(self, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return self._call(record, {"cmd": "stats"})["stats"]
