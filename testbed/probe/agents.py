"""Start the in-node programs (traffic.sink, traffic.send) and collect what they report.

One capture agent per host for the whole probe run (it also runs the host's
TCP service listeners); one sender per source host per phase, all concurrent.
Both are started a few at a time: a hundred Python programs starting at once
on 2 cores left the switch daemon, the link relays and the gNBs about a
hundredth of the CPU each for seconds (measured: 102 agents, ~7 s of CPU), long
enough for UEs to miss 5 s of heartbeat answers and drop their radio link.
Every process is bounded in time and is a child of a node, so the testbed's
teardown would kill it anyway; we stop them ourselves first.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from testbed.errors import TestbedError
from testbed.probe.sessions import job_fields, ue_routes
from testbed.ran.agents import N6_TUN

SYNC_TIMEOUT_S = 20.0  # for every capture agent to say it has written all that reached it
STARTING_AT_ONCE = 8  # programs starting (importing) together, at most
SENDER_WAVE_GAP_S = 0.15  # senders announce no readiness: a wave of STARTING_AT_ONCE, then this pause


def host_interfaces(tb) -> dict[str, str]:
    """host -> its interface name inside its namespace (hosts have exactly one link)."""
    out: dict[str, str] = {}
    for ln in tb.layout.links:
        for end, intf in ((ln.a, ln.intf_a), (ln.b, ln.intf_b)):
            if end not in tb.layout.dpids:
                out.setdefault(end, intf)
    return out


def plan_tuns(tb) -> dict[str, list[str]]:
    """UE -> the TUN of every session of its plan, UPF -> its N6 TUN; active at this moment or not: a UE that re-attaches
    (its radio link lost under load) has its sessions requested again for a moment, and a capture
    that left their TUNs out then missed every reply it got through them (traffic.sink re-opens a
    TUN that comes back)."""
    plan = getattr(tb, "ran", None)
    if plan is None:
        return {}
    out = {sub.name: sorted({s.tun for s in sub.sessions}) for sub in plan.subscribers if sub.sessions}
    # and each UPF's N6 TUN: what a session sends to the UPF itself would go in there (attack ue-to-upf)
    return out | {u.name: [N6_TUN] for u in plan.upfs}


class Captures:
    """A traffic.sink in every host (or in `hosts`); frames arrive in `frames[host]` while they run."""

    def __init__(self, tb, listen: dict[str, list[int]], max_seconds: float, hosts: set[str] | None = None):
        self.tb = tb
        self.ifaces = {h: i for h, i in host_interfaces(tb).items() if hosts is None or h in hosts}
        self.tuns = plan_tuns(tb)  # a 5G UE's replies arrive on its sessions' TUNs
        self.listen = listen
        self.max_seconds = max_seconds
        self.frames: dict[str, list[dict]] = {h: [] for h in self.ifaces}
        self.summary: dict[str, dict] = {}
        self.ready: dict[str, dict] = {}
        self.synced: dict[str, int] = {}  # host -> the last sync its agent answered
        self.lagging: set[str] = set()  # hosts whose agent did not answer the last sync in time
        self._sync_n = 0
        self.procs: dict[str, subprocess.Popen] = {}
        self.err_files: dict[str, Path] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _stderr(self, host: str):
        """Where an agent's stderr goes: a file in the run directory (a crash must say why), else nowhere."""
        d = getattr(getattr(self.tb, "manifest", None), "dir", None)
        if d is None:
            return subprocess.DEVNULL
        path = Path(d) / "probe-agents" / f"{host}.err"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.err_files[host] = path
        return open(path, "wb")

    def _why_dead(self, host: str) -> str:
        try:
            lines = self.err_files[host].read_text(errors="replace").strip().splitlines()
        except (KeyError, OSError):
            return ""
        return f": {lines[-1][:300]}" if lines else ""

    def start(self, timeout: float = 60.0, on_progress=None) -> None:
        """Start an agent in every host, STARTING_AT_ONCE at a time, and wait until all are ready."""
        deadline = time.monotonic() + timeout
        for h, intf in self.ifaces.items():
            while len(self.procs) - len(self.ready) >= STARTING_AT_ONCE:
                self._wait_step(deadline, timeout, on_progress)
            argv = [sys.executable, "-m", "traffic.sink", "--iface", intf, "--max-seconds", str(self.max_seconds)]
            for tun in self.tuns.get(h, []):
                argv += ["--iface", tun]
            for p in self.listen.get(h, []):
                argv += ["--listen", str(p)]
            err = self._stderr(h)
            try:
                proc = self.tb.node(h).popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=err, text=True)
            finally:
                if err is not subprocess.DEVNULL:
                    err.close()  # the child has its own copy
            self.procs[h] = proc
            t = threading.Thread(target=self._read, args=(h, proc), daemon=True)
            t.start()
            self._threads.append(t)
        while len(self.ready) < len(self.procs):
            self._wait_step(deadline, timeout, on_progress)

    def _wait_step(self, deadline: float, timeout: float, on_progress=None) -> None:
        """One look at the agents started so far: raises (after stopping them) if one died or time is up."""
        dead = [h for h, p in self.procs.items() if p.poll() is not None and h not in self.ready]
        if dead or time.monotonic() > deadline:
            self.stop()
            why = (f"capture agent exited in {dead[0]} (code {self.procs[dead[0]].returncode}"
                   f"{self._why_dead(dead[0])})" + (f" and {len(dead) - 1} more" if len(dead) > 1 else "")
                   if dead else "capture agents not ready")
            raise TestbedError(f"isolation probe: {why} (within {timeout:.0f}s)")
        if on_progress:
            on_progress(len(self.ready), len(self.ifaces))
        time.sleep(0.02)

    def _read(self, host: str, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            kind = ev.pop("event", "")
            with self._lock:
                if kind == "frame":
                    self.frames[host].append(ev)
                elif kind == "ready":
                    self.ready[host] = ev
                elif kind == "synced":
                    self.synced[host] = int(ev.get("n", 0))
                elif kind == "summary":
                    self.summary[host] = ev

    def sync(self, timeout: float = SYNC_TIMEOUT_S) -> set[str]:
        """Ask every running agent to catch up (`sync N`) and wait until each has answered: from then on
        its frames include everything that reached its node before the question. Returns the hosts whose
        agent did not answer in `timeout` (also kept in `lagging`)."""
        self._sync_n += 1
        n = self._sync_n
        for p in self.procs.values():
            try:
                p.stdin.write(f"sync {n}\n")
                p.stdin.flush()
            except (OSError, ValueError):  # an agent that ended: nothing to wait for
                pass
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                waiting = {h for h, p in self.procs.items() if p.poll() is None and self.synced.get(h, 0) < n}
            if not waiting or time.monotonic() > deadline:
                self.lagging = waiting
                return waiting
            time.sleep(0.02)

    def snapshot(self) -> dict[str, list[dict]]:
        """Frames seen so far, per host, once every agent has caught up (see `sync`): a frame that reached
        its target must not be missed because the agent there was behind."""
        self.sync()
        with self._lock:
            return {h: list(fs) for h, fs in self.frames.items()}

    def stop(self, timeout: float = 10.0) -> None:
        for p in self.procs.values():
            try:
                p.stdin.close()
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(2)
        for t in self._threads:
            t.join(2)


def send_all(tb, jobs: dict[str, dict], timeout: float) -> dict[str, dict]:
    """Run one traffic.send per node concurrently; node -> its JSON report (or {'error': ...})."""
    ifaces = host_interfaces(tb)
    routes = ue_routes(tb)
    procs = {}
    for node, job in jobs.items():
        job = {"iface": ifaces[node], **job_fields(routes, node, str(tb.layout.ips[node].ip), tb.layout.macs[node]),
               **job}
        if procs and len(procs) % STARTING_AT_ONCE == 0:
            time.sleep(SENDER_WAVE_GAP_S)
        p = tb.node(node).popen([sys.executable, "-m", "traffic.send"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs[node] = (p, json.dumps(job))
    # Feed and collect in threads: a job may exceed a pipe buffer.
    out: dict[str, dict] = {}
    deadline = time.monotonic() + timeout

    def run(node: str, p: subprocess.Popen, data: str) -> None:
        try:
            so, se = p.communicate(data, timeout=max(1.0, deadline - time.monotonic()))
            out[node] = json.loads(so) if so.strip() else {"error": se.strip()[-300:] or "no output"}
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            out[node] = {"error": f"sender timed out after {timeout:.0f}s"}
        except ValueError:
            out[node] = {"error": "unreadable sender output"}

    threads = [threading.Thread(target=run, args=(n, p, d), daemon=True) for n, (p, d) in procs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return out


def arrival_index(frames: dict[str, list[dict]]) -> tuple[dict[str, dict], dict[str, set[str]]]:
    """host -> {(ip_src, ip_dst, proto, dport-or-icmp-type): {tokens seen, None = no token}},
    and token -> {hosts where seen}."""
    flows: dict[str, dict] = {}
    tokens: dict[str, set[str]] = {}
    for host, fs in frames.items():
        s = flows.setdefault(host, {})
        for f in fs:
            if "ip_src" in f:
                key = (f["ip_src"], f["ip_dst"], f["proto"], f.get("dport", f.get("icmp_type")))
                s.setdefault(key, set()).add(f.get("token"))
            if "token" in f:
                tokens.setdefault(f["token"], set()).add(host)
    return flows, tokens


def tunnel_arrivals(frames: dict[str, list[dict]]) -> dict[str, set[str]]:
    """token -> hosts where it was seen inside a 5G tunnel (RLS or GTP-U): on its way, not arrived."""
    out: dict[str, set[str]] = {}
    for host, fs in frames.items():
        for f in fs:
            if "tunnel_token" in f:
                out.setdefault(f["tunnel_token"], set()).add(host)
    return out
