"""A throwaway two-namespace link for measuring impairments (tests/impair, bench/impair_bench.py).

Layout (everything named tbimp<random hex>, removed by destroy(), nothing else touched):

    ns tbimpXXXXXX-a         root namespace              ns tbimpXXXXXX-b
    [tbimpXXXXXXa0] ==veth== [..a1] <-relay-> [..b1] ==veth== [tbimpXXXXXXb0]
    10.250.N.1/30                                              10.250.N.2/30

or, with direct=True, a single veth a0 == b0 as a baseline. The namespaces have
no route anywhere else, so measurement traffic cannot leave them. Node-side
ends get offloads off, as the network builder does, for per-packet accuracy.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import select
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The repository root, so probe processes import `tests.tools.probe` whatever their cwd.
_REPO = str(Path(__file__).resolve().parents[2])
PROBE = [sys.executable, "-m", "tests.tools.probe"]


def _probe_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO, env.get("PYTHONPATH")) if p)
    return env


def _run(*cmd: str, timeout: float = 10.0, check: bool = True,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=check, env=env)


@dataclass
class PingResult:
    transmitted: int
    received: int
    duplicates: int
    rtts: list[float]

    @property
    def loss_pct(self) -> float:
        return 100.0 * (self.transmitted - self.received) / self.transmitted

    @property
    def median(self) -> float:
        return statistics.median(self.rtts)

    @property
    def stdev(self) -> float:
        return statistics.pstdev(self.rtts)


@dataclass
class NetPair:
    """Two namespaces joined through two root-namespace veth ends (if_a, if_b)."""

    suffix: str
    subnet: int
    direct: bool = False  # True: one veth straight from A to B (a baseline), no root-ns ends
    node_offloads: bool = False  # True: leave TSO/checksum offload on in the namespaces
    created_ns: list[str] = field(default_factory=list)
    created_links: list[str] = field(default_factory=list)

    @property
    def ns_a(self) -> str:
        return f"tbimp{self.suffix}-a"

    @property
    def ns_b(self) -> str:
        return f"tbimp{self.suffix}-b"

    def ifname(self, which: str) -> str:
        return f"tbimp{self.suffix}{which}"

    @property
    def if_a(self) -> str:
        return self.ifname("a1")

    @property
    def if_b(self) -> str:
        return self.ifname("b1")

    @property
    def ip_a(self) -> str:
        return f"10.250.{self.subnet}.1"

    @property
    def ip_b(self) -> str:
        return f"10.250.{self.subnet}.2"

    @classmethod
    def create(cls, direct: bool = False, node_offloads: bool = False) -> NetPair:
        """Build a fresh pair with a random tbimp<hex> suffix; undo everything on failure."""
        pair = cls(secrets.token_hex(3), secrets.randbelow(256), direct, node_offloads)
        try:
            pair._build()
        except BaseException:
            pair.destroy()
            raise
        return pair

    def _build(self) -> None:
        for ns in (self.ns_a, self.ns_b):
            _run("ip", "netns", "add", ns)
            self.created_ns.append(ns)
        if self.direct:
            _run("ip", "link", "add", self.ifname("a0"), "type", "veth", "peer", "name", self.ifname("b0"))
            self.created_links.append(self.ifname("a0"))
        for side, ip in (("a", self.ip_a), ("b", self.ip_b)):
            ns, inner, outer = f"tbimp{self.suffix}-{side}", self.ifname(f"{side}0"), self.ifname(f"{side}1")
            if not self.direct:
                _run("ip", "link", "add", inner, "type", "veth", "peer", "name", outer)
                self.created_links.append(outer)
            _run("ip", "link", "set", inner, "netns", ns)
            _run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            # the network builder does the same for node-side ends: per-packet accuracy
            if not self.node_offloads:
                _run("ip", "netns", "exec", ns, "ethtool", "-K", inner, "tx", "off", "rx", "off",
                     "tso", "off", "gso", "off", "gro", "off", check=False)
            _run("ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", inner)
            _run("ip", "-n", ns, "link", "set", inner, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")

    def destroy(self) -> None:
        """Remove exactly what create() made (tolerating parts already gone)."""
        for link in self.created_links:  # may already be inside a namespace: then it goes with it
            _run("ip", "link", "del", link, check=False)
        for ns in self.created_ns:
            _run("ip", "netns", "del", ns, check=False)

    def ping(self, count: int, interval: float = 0.01, timeout: float = 30.0, size: int = 56) -> PingResult:
        """Ping B from A; RTTs in ms (duplicates excluded)."""
        r = _run("ip", "netns", "exec", self.ns_a, "ping", "-n", "-c", str(count), "-i", str(interval),
                 "-s", str(size), "-W", "1", self.ip_b, timeout=timeout, check=False)
        rtts = [float(m) for m, dup in re.findall(r"time=([\d.]+) ms( \(DUP!\))?", r.stdout) if not dup]
        m = re.search(r"(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?", r.stdout)
        if not m:
            raise RuntimeError(f"cannot parse ping output: {r.stdout[-500:]} {r.stderr[-300:]}")
        return PingResult(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0), rtts)

    def udp(self, count: int, pps: float, size: int = 64, deadline: float = 20.0) -> dict[str, Any]:
        """One-way UDP probe A -> B (see tests/tools/probe.py); returns the receiver's summary."""
        port = str(40000 + secrets.randbelow(20000))
        env = _probe_env()
        recv = subprocess.Popen(
            ["ip", "netns", "exec", self.ns_b, *PROBE, "recv", "--bind", self.ip_b, "--port", port,
             "--count", str(count), "--deadline", str(deadline)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            ready, _, _ = select.select([recv.stdout], [], [], 10.0)
            if not (ready and recv.stdout.readline().strip() == "ready"):
                raise RuntimeError(f"UDP receiver did not start: {recv.stderr.read() if recv.poll() is not None else ''}")
            _run("ip", "netns", "exec", self.ns_a, *PROBE, "send", "--to", self.ip_b, "--port", port,
                 "--count", str(count), "--pps", str(pps), "--size", str(size), timeout=deadline, env=env)
            out, err = recv.communicate(timeout=deadline + 5)
            if recv.returncode != 0:
                raise RuntimeError(f"UDP receiver failed: {err}")
            return json.loads(out.strip().splitlines()[-1])
        finally:
            if recv.poll() is None:
                recv.kill()
                recv.wait()

    def iperf(self, seconds: int = 3, timeout: float = 30.0) -> float:
        """TCP throughput A -> B in bit/s, as seen by the receiver."""
        port = str(20000 + secrets.randbelow(20000))
        server = subprocess.Popen(["ip", "netns", "exec", self.ns_b, "iperf3", "-s", "-1", "-B", self.ip_b,
                                   "-p", port], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(50):  # wait (bounded) for the server to listen
                ss = _run("ip", "netns", "exec", self.ns_b, "ss", "-ltnH", f"sport = :{port}", check=False)
                if ss.stdout.strip():
                    break
                subprocess.run(["sleep", "0.05"])
            r = _run("ip", "netns", "exec", self.ns_a, "iperf3", "-c", self.ip_b, "-p", port, "-t",
                     str(seconds), "-J", timeout=timeout, check=False)
            data = json.loads(r.stdout or "{}")
            if "end" not in data:
                raise RuntimeError(f"iperf3 failed: {data.get('error', r.stderr[-300:])}")
            return float(data["end"]["sum_received"]["bits_per_second"])
        finally:
            server.kill()
            server.wait()
